"""End-to-end: real depfinder scan, py-rattler solve/install, conda-pack, verify.

Every test runs `make` in a throwaway copy of the repository against the real
local channel (tests/conftest.py), then uses the tarball as a user would.
"""
from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import HOST_GLIBC, REPO, Repo, run

TINY = {
    "app.py": "import yaml\nimport six\n\nprint(yaml.safe_dump({'ok': six.PY3}))\n",
    "helpers/util.py": "def later():\n    import dateutil.parser\n    return dateutil.parser\n",
}


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def overrides(channel: str, python: str) -> list[str]:
    return [f"CHANNELS={channel}", f"PYTHON={python}"]


def unpack_as_user(tarball: Path, where: Path, code: str) -> subprocess.CompletedProcess:
    """The README's target-side steps, in a clean shell with no python on PATH."""
    where.mkdir(parents=True)
    steps = (f"tar -xzf {tarball} -C {where} && ./{where.name}/bin/python ./{where.name}/bin/conda-unpack && "
             f"source {where.name}/bin/activate && python -c \"{code}\" && source {where.name}/bin/deactivate")
    return subprocess.run(["env", "-i", "PATH=/usr/bin:/bin", "HOME=/tmp", "bash", "-c", steps],
                          cwd=where.parent, capture_output=True, text=True)


def test_small_project_packs_and_runs_at_a_new_path(repo: Repo, channel: str, host_python: str,
                                                     tmp_path: Path) -> None:
    repo.project("tiny", TINY)
    out = repo.make("PROJECT=tiny", *overrides(channel, host_python), "pack")
    for step in ("scan", "render", "lock", "env", "pack", "verify"):
        assert f"[tiny] {step}" in out.stderr, step
    tarball = repo.root / "dist" / "tiny-linux-64.tar.gz"
    assert (repo.root / "dist" / "tiny-linux-64.tar.gz.sha256").read_text().split() == [sha(tarball),
                                                                                        tarball.name]
    user = unpack_as_user(tarball, tmp_path / "elsewhere" / "tiny",
                          "import sys, yaml, six, dateutil.parser; print(sys.prefix)")
    assert user.returncode == 0, user.stderr
    assert user.stdout.strip() == str(tmp_path / "elsewhere" / "tiny")
    # An override build keeps its lock under build/, never in the project folder.
    assert sorted(p.name for p in (repo.root / "projects" / "tiny").iterdir()) == ["app.py", "helpers"]
    locks = list((repo.root / "build" / "tiny").glob("override-*/conda-linux-64.lock"))
    assert len(locks) == 1 and "@EXPLICIT" in locks[0].read_text()
    assert repo.make("-q", "PROJECT=tiny", *overrides(channel, host_python), "pack", check=False).returncode == 0


def test_touch_repacks_nothing_and_a_new_import_repacks(repo: Repo, channel: str, host_python: str) -> None:
    pdir = repo.project("tiny", TINY)
    args = ["PROJECT=tiny", *overrides(channel, host_python), "pack"]
    repo.make(*args)
    tarball = repo.root / "dist" / "tiny-linux-64.tar.gz"
    first = sha(tarball)
    (pdir / "app.py").write_text(TINY["app.py"] + "# a comment, same imports\n")
    out = repo.make(*args)
    assert "solving" not in out.stderr
    assert "[tiny] env: inputs unchanged" in out.stderr and "[tiny] pack: inputs unchanged" in out.stderr
    assert "[tiny] verify" not in out.stderr
    assert sha(tarball) == first
    assert repo.make("-q", *args, check=False).returncode == 0
    (pdir / "more.py").write_text("import attr\n")
    out = repo.make(*args)
    assert "solving" in out.stderr and "[tiny] verify: done" in out.stderr
    imported = re.search(r"verify: importing \d+ modules: (.*)", out.stderr)
    assert imported and "attr" in imported[1].split()  # the new import is verified in the unpacked copy
    assert sha(tarball) != first


def test_committed_lock_rebuilds_in_a_fresh_clone_without_solving(tmp_path: Path, channel: str,
                                                                   host_python: str) -> None:
    # A private copy of the channel, so its repodata can be taken away below.
    chan = tmp_path / "channel"
    shutil.copytree(channel.removeprefix("file://"), chan, copy_function=shutil.copy2)
    origin = Repo(tmp_path / "origin")
    origin.project("tiny", TINY, settings=f'python: "{host_python}"\nchannels: [file://{chan}]\n'
                                          f'target: {{glibc: "{HOST_GLIBC}"}}\n')
    origin.make("PROJECT=tiny", "lock")
    pdir = origin.root / "projects" / "tiny"
    assert (pdir / "rattler-lock.yml").exists() and (pdir / "conda-linux-64.lock").exists()
    run("git init -q && git add -A && git -c user.name=t -c user.email=t@t commit -qm init", cwd=origin.root,
        check=True)
    clone = tmp_path / "clone"
    run(["git", "clone", "-q", str(origin.root), str(clone)], check=True)
    (clone / ".venv").unlink(missing_ok=True)
    (clone / ".venv").symlink_to(REPO / ".venv")
    for repodata in chan.glob("*/repodata.json"):
        repodata.unlink()  # any solve would now fail
    out = Repo.make(type("R", (), {"root": clone})(), "PROJECT=tiny", "pack")  # type: ignore[arg-type]
    assert "solving" not in out.stderr and "unchanged since the lock was solved" in out.stderr
    assert (clone / "dist" / "tiny-linux-64.tar.gz").exists()
    assert run("git status --porcelain", cwd=clone).stdout.strip() == "", "the committed lock was rewritten"


def test_example_project_end_to_end(repo: Repo, channel: str, host_python: str, tmp_path: Path) -> None:
    shutil.copytree(REPO / "projects" / "example", repo.root / "projects" / "example")
    out = repo.make("PROJECT=example", *overrides(channel, host_python), "pack")
    assert "importing 4 modules: numpy pandas scipy sklearn" in out.stderr
    tarball = repo.root / "dist" / "example-linux-64.tar.gz"
    user = unpack_as_user(tarball, tmp_path / "target" / "example",
                          "import numpy, scipy, pandas, sklearn; print(sklearn.__version__)")
    assert user.returncode == 0, user.stderr
    (deps_file,) = (repo.root / "build" / "example").glob("*/deps.yml")
    deps = deps_file.read_text()
    assert deps.startswith("required:\n- numpy\n- pandas\n- scikit-learn\n- scipy\n")


def test_unknown_import_fails_with_override_hint_then_packs(repo: Repo, channel: str, host_python: str) -> None:
    pdir = repo.project("odd", {"main.py": "import six\n"})
    args = ["PROJECT=odd", *overrides(channel, host_python), "pack"]
    repo.make(*args)
    tarball = repo.root / "dist" / "odd-linux-64.tar.gz"
    good = sha(tarball)
    (pdir / "main.py").write_text("import six\nimport sixish\n")
    out = repo.make(*args, check=False)
    assert out.returncode != 0
    assert "import 'sixish' (in main.py:2)" in out.stderr
    assert "imports: {sixish: <package>}" in out.stderr and "projects/odd/project.yml" in out.stderr
    assert sha(tarball) == good, "the earlier good tarball is left intact"
    assert subprocess.run(["sha256sum", "-c", tarball.name + ".sha256"], cwd=tarball.parent).returncode == 0
    (pdir / "project.yml").write_text('imports:\n  sixish: ""\n')
    repo.make(*args)
    assert sha(tarball) == good, "the ignored import leaves the same environment: the same bytes"


def test_verify_rejects_a_changed_tarball(repo: Repo, channel: str, host_python: str) -> None:
    pdir = repo.project("tiny", {"app.py": "import six\n"})
    args = ["PROJECT=tiny", *overrides(channel, host_python)]
    repo.make(*args, "pack")
    (pdir / "later.py").write_text("import attr\n")  # the code moved on; the tarball did not
    out = repo.make(*args, "verify")
    assert "importing 1 modules: six" in out.stderr and "OK" in out.stderr, "checks what it was built for"
    tarball = repo.root / "dist" / "tiny-linux-64.tar.gz"
    data = bytearray(tarball.read_bytes())
    data[len(data) // 2] ^= 0xFF
    tarball.unlink()  # a new inode: the verified copy under build/ stays intact
    tarball.write_bytes(bytes(data))
    out = repo.make(*args, "verify", check=False)
    assert out.returncode != 0 and "does not match" in out.stderr and "tiny-linux-64.tar.gz" in out.stderr


@pytest.mark.parametrize("project, message", [
    ("", "PROJECT is not set"),
    ("../etc", "is not a valid project name"),
    ("nope", "no project 'nope': projects/nope/ does not exist"),
])
def test_bad_project_names_list_the_projects(repo: Repo, project: str, message: str) -> None:
    repo.project("alpha", {"a.py": "import six\n"})
    out = repo.make(f"PROJECT={project}", "pack", check=False)
    assert out.returncode != 0 and message in out.stderr and "projects: alpha" in out.stderr


def test_project_without_python_files_is_an_error(repo: Repo) -> None:
    repo.project("empty", {"README.txt": "nothing here\n"})
    out = repo.make("PROJECT=empty", "deps", check=False)
    assert out.returncode != 0 and "projects/empty" in out.stderr
    assert not list((repo.root / "build" / "empty").glob("*/deps.yml"))


def test_malformed_settings_name_the_file_and_valid_keys(repo: Repo) -> None:
    repo.project("conf", {"a.py": "import six\n"}, settings="pyhton: '3.11'\n")
    out = repo.make("PROJECT=conf", "deps", check=False)
    assert out.returncode != 0
    assert "projects/conf/project.yml: unknown key 'pyhton'; valid keys: python," in out.stderr


def test_zstd_slim_compiled_pack(repo: Repo, channel: str, host_python: str, tmp_path: Path) -> None:
    from slimpkg import KEPT, SLIMMED, slim_channel  # a package with tests/, include/, *.a and docs

    repo.project("fast", {"app.py": "import yaml\nimport dateutil\nimport slimdemo\n"},
                 settings="format: tar.zst\ncompression_level: 3\nslim: true\ncompile: true\n")
    both = f"{channel} {slim_channel(tmp_path / 'slim')}"
    out = repo.make("PROJECT=fast", *overrides(both, host_python), "pack")
    assert "slim: leaving out" in out.stderr and "compiling .pyc" in out.stderr
    tarball = repo.root / "dist" / "fast-linux-64.tar.zst"
    assert (repo.root / "dist" / "fast-linux-64.tar.zst.sha256").exists()
    listing = run(f"zstd -dc {tarball} | tar -tf -", check=True).stdout.split()
    assert any("/__pycache__/" in name and name.endswith(".pyc") for name in listing), "compiled"
    assert not any(name.startswith("include/") or name.endswith(".a") for name in listing), "slimmed"
    assert not set(SLIMMED) & set(listing) and set(KEPT) <= set(listing), "slimdemo's tests, header, .a, docs"
    where = tmp_path / "t" / "fast"
    where.mkdir(parents=True)
    user = subprocess.run(["env", "-i", "PATH=/usr/bin:/bin", "bash", "-c",
                           f"tar --zstd -xf {tarball} -C {where} && {where}/bin/python {where}/bin/conda-unpack && "
                           f"{where}/bin/python -c 'import yaml, dateutil.parser, slimdemo'"], capture_output=True,
                          text=True)
    assert user.returncode == 0, user.stderr


def test_shipped_code_launcher_and_smoke_test(repo: Repo, channel: str, host_python: str, tmp_path: Path) -> None:
    pdir = repo.project("tool", {
        "hello/__init__.py": "",
        "hello/cli.py": ("import sys\nimport six\n\ndef main():\n"
                         "    print('hello', sys.argv[1:], sys.prefix)\n    return 0\n"),
    }, settings='ship_code: true\nentry_points:\n  hello: "hello.cli:main"\nsmoke_test: "hello --check"\n')
    out = repo.make("PROJECT=tool", *overrides(channel, host_python), "pack")
    assert "verify: smoke test: hello --check" in out.stderr
    where = tmp_path / "moved" / "tool"
    where.mkdir(parents=True)
    tarball = repo.root / "dist" / "tool-linux-64.tar.gz"
    user = subprocess.run(["env", "-i", "PATH=/usr/bin:/bin", "bash", "-c",
                           f"tar -xzf {tarball} -C {where} && {where}/bin/hello a b"],
                          capture_output=True, text=True)
    assert user.returncode == 0, user.stderr
    assert user.stdout.strip() == f"hello ['a', 'b'] {where}"
    (pdir / "project.yml").write_text('ship_code: true\nentry_points:\n  hello: "hello.cli:main"\n'
                                      'smoke_test: "hello && false"\n')
    out = repo.make("PROJECT=tool", *overrides(channel, host_python), "pack", check=False)
    assert out.returncode != 0 and "smoke_test 'hello && false' failed" in out.stderr
