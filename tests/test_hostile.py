"""Hostile input is an interface: every value from the command line,
project.yml or a file name is data, never code.

Each case of the table runs make in a throwaway repository beside an
"outside" folder and asserts: a non-zero exit, an ``error:`` message naming
what was wrong and the valid form, every file inside and outside the
repository unchanged, and no injected command run (the injected commands
would create a file named PWNED). These tests need no channel: a bad value
must fail before any step runs.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest
from conftest import Repo, run

PWN = "touch PWNED"  # what every injection attempt tries to run (in the repo, or /tmp/...)


def snapshot(*roots: Path) -> dict[str, str]:
    """Every file and folder under roots -> its content hash (or 'dir'),
    symlinks not followed (.venv is a link to the real one)."""
    out: dict[str, str] = {}
    for root in roots:
        for dirpath, dirs, files in os.walk(root):
            d = Path(dirpath)
            for name in dirs:
                out[str(d / name)] = "dir"
            for name in files:
                p = d / name
                out[str(p)] = "link" if p.is_symlink() else hashlib.sha256(p.read_bytes()).hexdigest()
    return out


@pytest.fixture
def world(tmp_path: Path) -> tuple[Repo, Path]:
    """A throwaway repo with the example project and a built settings file,
    and a folder outside it that no make run may touch."""
    repo = Repo(tmp_path / "repo")
    repo.project("example", {"first_file.py": "import numpy\n"})
    repo.project("example-b", {"b.py": "import yaml\n"})
    outside = tmp_path / "outside"
    (outside / "data").mkdir(parents=True)
    (outside / "data" / "keep.txt").write_text("precious\n")
    (repo.root / "dist" / "example-b-linux-64.tar.gz").write_text("other project's archive\n")
    (repo.root / "build" / "example-b").mkdir(parents=True)
    (repo.root / "build" / "example-b" / "keep").write_text("other project's build\n")
    repo.make("PROJECT=example", "settings")
    return repo, outside


def assert_refused(repo: Repo, outside: Path, args: list[str], expect: str) -> str:
    """make ARGS fails with `error:` + EXPECT and changes nothing anywhere;
    returns what it printed."""
    before = snapshot(repo.root, outside)
    proc = repo.make(*args, check=False)
    after = snapshot(repo.root, outside)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, f"{args} succeeded:\n{out}"
    assert "error:" in out and expect in out, f"{args}: message lacks {expect!r}:\n{out}"
    assert "Traceback" not in out, out
    assert not any(Path(p).name == "PWNED" for p in after), f"{args}: an injected command ran"
    assert not Path("/tmp/PWNED").exists()
    changed = sorted(set(before.items()) ^ set(after.items()))
    assert not changed, f"{args} changed files: {changed}"
    return out


BAD_PROJECTS = [
    "../outside", "../../outside/data", "/", "*", "ex ample", "ex'ample", 'ex"ample', f"ex;{PWN}",
    f"$({PWN})", f"`{PWN}`", f"$(shell {PWN})", "-rf", ".hidden", "..", "a\nb", "example/../example-b",
]


@pytest.mark.parametrize("goal", ["pack", "clean", "deps", "new"])
@pytest.mark.parametrize("project", BAD_PROJECTS)
def test_bad_project_names_change_nothing(world: tuple[Repo, Path], goal: str, project: str) -> None:
    repo, outside = world
    assert_refused(repo, outside, [f"PROJECT={project}", goal], "not a valid project name")


@pytest.mark.parametrize("goal", ["clean", "pack"])
def test_empty_project_is_refused_not_everything(world: tuple[Repo, Path], goal: str) -> None:
    repo, outside = world
    for value in ("", " "):
        assert_refused(repo, outside, [f"PROJECT={value}", goal], "PROJECT is not set")


BAD_VALUES = [
    ("CHANNELS", "conda-forge'", "not a channel name"),
    ("CHANNELS", f"x;{PWN}", "not a channel name"),
    ("CHANNELS", f"$({PWN})", "not a channel name"),
    ("CHANNELS", f"$(shell {PWN})", "not a channel name"),
    ("CHANNELS", f"`{PWN}`", "not a channel name"),
    ("CHANNELS", "conda-forge\nhttp://x'", "not a channel name"),
    ("PYTHON", f"3.11'; {PWN}; '", "not a version"),
    ("PYTHON", f"$(shell {PWN})", "not a version"),
    ("PYTHON", "3.x", "not a version"),
    ("FORMAT", "zip;x", "not one of tar.gz"),
    ("FORMAT", f"tar.gz; {PWN}", "not one of tar.gz"),
    ("FORMAT", f"$(shell {PWN})", "not one of tar.gz"),
    ("FORMAT", "-rf", "not one of tar.gz"),
    ("TARGET_GLIBC", f"2.17; {PWN}", "not a quoted glibc version"),
    ("TARGET_GLIBC", f"$(shell {PWN})", "not a quoted glibc version"),
]


@pytest.mark.parametrize(("var", "value", "expect"), BAD_VALUES)
@pytest.mark.parametrize("goal", ["pack", "deps"])
def test_bad_override_values_change_nothing(world: tuple[Repo, Path], var: str, value: str, expect: str,
                                            goal: str) -> None:
    repo, outside = world
    assert_refused(repo, outside, ["PROJECT=example", f"{var}={value}", goal], expect)


BAD_SETTINGS = [
    ('format: "zip;x"\n', "'format' must be one of"),
    ('slim: "yes"\n', "'slim' must be true or false"),
    ("compile: 1\n", "'compile' must be true or false"),
    ("python: 3.10\n", "quote the version"),
    ("python: \"3.11'; touch PWNED; '\"\n", "'python' must be"),
    ("channels: [\"conda-forge'; touch PWNED\"]\n", "is not a channel name"),
    ("channels: |\n  conda-forge\n  defaults\n", "'channels' must be a list"),
    ('packages: ["numpy; touch PWNED"]\n', "is not a conda match spec"),
    ('packages: ["numpy\\n--x"]\n', "is not a conda match spec"),
    ('exclude: ["$(touch PWNED)"]\n', "is not a package name"),
    ('imports: {"a b": numpy}\n', "'imports'"),
    ('imports: {cv3: "opencv; touch PWNED"}\n', "'imports'"),
    ('imports: {"bin/../../usr/bin/x": ""}\n', "'imports'"),
    ('imports: {"dist:x;rm": numpy}\n', "'imports'"),
    ('entry_points: {"../evil": "m:f"}\n', "'entry_points'"),
    ('entry_points: {tool: "/etc/passwd.py"}\n', "'entry_points'"),
    ('entry_points: {tool: "../../x.py"}\n', "'entry_points'"),
    ("compression_level: 99\n", "does not fit format tar.gz"),
    ("compression_level: true\n", "'compression_level' must be a whole number"),
    ("smoke_test: 3\n", "'smoke_test' must be a command"),
    ("unknown_key: 1\n", "unknown key 'unknown_key'"),
    ("- just\n- a list\n", "must be a mapping"),
    ("format: [unclosed\n", "not valid YAML"),
    ("slim:\n", "'slim' has no value"),
    ("target: {glibc: 2.17}\n", "not a quoted glibc version"),
    ("target: {glibc: \"2.17; touch PWNED\"}\n", "not a quoted glibc version"),
    ("target: {cpu: zen3}\n", "is not one of x86_64"),
    ("target: {cuda: 12}\n", "not a quoted CUDA version"),
    ("target: {os: linux}\n", "unknown key 'os'"),
    ("target: 2.17\n", "'target' must be a mapping"),
]


@pytest.mark.parametrize(("text", "expect"), BAD_SETTINGS)
def test_bad_settings_change_nothing(world: tuple[Repo, Path], text: str, expect: str) -> None:
    repo, outside = world
    (repo.root / "projects" / "example" / "project.yml").write_text(text)
    out = assert_refused(repo, outside, ["PROJECT=example", "pack"], expect)
    assert "projects/example/project.yml: " in out


def test_yaml_booleans_and_block_scalars_are_honoured(world: tuple[Repo, Path]) -> None:
    """What YAML reads as a boolean is honoured, a block scalar command is
    kept as one value: nothing silently ignored."""
    repo, _ = world
    (repo.root / "projects" / "example" / "project.yml").write_text(
        "slim: yes\ncompile: True\ninstall_on_demand: off\nsmoke_test: |\n  echo a\n  echo 'b; c'\n")
    proc = repo.make("PROJECT=example", "settings")
    s = json.loads(proc.stdout)
    assert (s["slim"], s["compile"], s["install_on_demand"]) == (True, True, False)
    assert s["smoke_test"] == "echo a\necho 'b; c'\n"


def test_adopt_from_is_data(world: tuple[Repo, Path]) -> None:
    """FROM reaches adopt as data: a value with shell syntax is a path that
    does not exist, and nothing runs or changes."""
    repo, outside = world
    for value in (f"../outside; {PWN}", f"$(shell {PWN})", f"`{PWN}`", ""):
        assert_refused(repo, outside, ["PROJECT=example", f"FROM={value}", "adopt"], "adopt")


def test_values_that_are_paths_stay_data(world: tuple[Repo, Path]) -> None:
    """PKGS/CACHE and friends are passed as data even when they look like code."""
    repo, _ = world
    proc = repo.make("PROJECT=example", f"PKGS=$(shell {PWN})", f"CACHE=`{PWN}`", "settings", check=False)
    assert proc.returncode == 0, proc.stderr
    assert not (repo.root / "PWNED").exists()


def test_hostile_file_names_are_data(world: tuple[Repo, Path]) -> None:
    """Files named like Make or shell syntax are scanned as files, never run,
    and left out of Make's list with a warning."""
    repo, _ = world
    pdir = repo.root / "projects" / "example"
    for name in (f"$(shell {PWN}).py", "a b.py", f"x;{PWN}.py", "c:d.py", "`x`.py", "p%q.py"):
        (pdir / name).write_text("import yaml\n")
    proc = repo.make("PROJECT=example", "settings")
    assert "Make cannot track" in proc.stderr
    files_mk = (repo.root / "build" / "example" / "files.mk").read_text()
    assert "first_file.py" in files_mk and "$" not in files_mk.replace("$(", "")
    assert not (repo.root / "PWNED").exists() and not (pdir / "PWNED").exists()


def test_clean_removes_exactly_the_projects_files(world: tuple[Repo, Path]) -> None:
    repo, outside = world
    dist = repo.root / "dist"
    for name in ("example-linux-64.tar.gz", "example-linux-64.tar.gz.sha256", "example-linux-64.sh",
                 "example-linux-64.manifest.json"):
        (dist / name).write_text("x")
    before = snapshot(outside)
    repo.make("PROJECT=example", "clean")
    assert not (repo.root / "build" / "example").exists()
    assert sorted(p.name for p in dist.iterdir()) == [".gitkeep", "example-b-linux-64.tar.gz"]
    assert (repo.root / "build" / "example-b" / "keep").exists()
    assert snapshot(outside) == before


def test_help_list_clean_and_dry_run_write_nothing(world: tuple[Repo, Path]) -> None:
    """help, list and -n start no step and write nothing; clean writes
    nothing beyond removing what it names."""
    repo, outside = world
    for args in (["help"], ["list"], ["PROJECT=example", "help"], ["-n", "PROJECT=example", "pack"],
                 ["--dry-run", "PROJECT=example", "deps"]):
        before = snapshot(repo.root, outside)
        proc = repo.make(*args)
        assert proc.returncode == 0
        assert snapshot(repo.root, outside) == before, args
    before = snapshot(repo.root, outside)
    proc = repo.make("-n", "PROJECT=example", "CHANNELS=conda-forge", "pack")
    assert "make -n shows the plan with the settings computed last time" in proc.stderr
    assert snapshot(repo.root, outside) == before


def test_parse_starts_no_python(world: tuple[Repo, Path], tmp_path: Path) -> None:
    """help, list, clean and -n read the Makefile without running Python:
    with python3 hidden from PATH they still work."""
    repo, _ = world
    repo.make("PROJECT=example-b", "settings")
    (repo.root / ".venv").unlink()  # the tools' python is out of reach too
    shim = tmp_path / "bin"
    shim.mkdir()
    for tool in ("bash", "make", "sed", "grep", "awk", "uname", "rm", "find", "env", "cat"):
        real = run(["bash", "-c", f"command -v {tool}"]).stdout.strip()
        if real:
            (shim / tool).symlink_to(real)
    env = {"PATH": str(shim), "HOME": str(tmp_path)}
    for args in (["help"], ["PROJECT=example", "clean"], ["-n", "PROJECT=example-b", "deps"]):
        proc = run(["make", *args], cwd=repo.root, env=env)
        assert proc.returncode == 0, (args, proc.stderr)
