"""End to end, the goals a user types: make installer, manifest, size,
lock-diff, verify (failing on a planted build path), FORMAT= for every
format, V=1, clean PROJECT=..., distclean and demo, each in a throwaway
repository copy against the real local channel.
"""
from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest
from conftest import CACHE, PKGS, REPO, Repo, run, tool_env
from portable_env import formats
from slimpkg import KEPT, SLIMMED, slim_channel

TINY = {"app.py": "import yaml\nimport slimdemo\n"}


def tar_names(archive: Path) -> list[str]:
    with formats.open_tar(archive) as tf:
        return [m.name for m in tf]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, channel: str, host_python: str) -> tuple[Repo, list[str]]:
    """A repository copy (a git repository) with project tiny packed, and its make overrides."""
    root = tmp_path_factory.mktemp("goals")
    extra = slim_channel(root)
    repo = Repo(root / "repo")
    repo.project("tiny", TINY)
    args = ["PROJECT=tiny", f"CHANNELS={channel} {extra}", f"PYTHON={host_python}"]
    repo.make(*args, "pack")
    return repo, args


def test_installer_goal_builds_a_checked_self_extracting_file(built: tuple[Repo, list[str]],
                                                              tmp_path: Path) -> None:
    repo, args = built
    repo.make(*args, "installer")
    dist = repo.root / "dist"
    installer = dist / "tiny-linux-64.sh"
    run(["sha256sum", "-c", "tiny-linux-64.sh.sha256"], cwd=dist, check=True)
    check = run(["bash", str(installer), "--check"], check=True)
    assert "tiny" in check.stdout + check.stderr
    target = tmp_path / "opt" / "tiny"
    run(["bash", str(installer), "-p", str(target)], check=True)
    probe = run([str(target / "bin" / "python"), "-c", "import yaml, slimdemo; print(slimdemo.VALUE)"], check=True)
    assert probe.stdout.strip() == "42"
    mtime = installer.stat().st_mtime_ns
    repo.make(*args, "installer")
    assert installer.stat().st_mtime_ns == mtime, "an up-to-date installer is not rebuilt"


def test_manifest_goal_prints_the_archive_contents(built: tuple[Repo, list[str]]) -> None:
    repo, args = built
    out = repo.make(*args, "manifest").stdout
    m = json.loads((repo.root / "dist" / "tiny-linux-64.manifest.json").read_text())
    assert m["tarball"]["name"] in out
    for pkg in m["packages"]:
        assert re.search(rf"\b{re.escape(pkg['name'])}\b", out), pkg["name"]
    assert "slimdemo" in out and "pyyaml" in out


def test_size_goal_shows_bytes_by_package_and_what_slim_saves(built: tuple[Repo, list[str]]) -> None:
    repo, args = built
    out = repo.make(*args, "size").stdout
    lines = out.splitlines()
    archive = repo.root / "dist" / "tiny-linux-64.tar.gz"
    assert lines[0].startswith(f"tiny-linux-64.tar.gz: {archive.stat().st_size / 2**20:.1f} MiB")
    rows = [line.split() for line in lines[2:] if line.startswith("  ") and not line.startswith("  ...")]
    names = [r[0] for r in rows]
    assert names[0] == "python", "the largest package first"
    assert "slimdemo" in names and "pyyaml" in names
    slim_row = next(line for line in lines if line.split()[:1] == ["slimdemo"])
    assert "#" in slim_row, "a bar per package"
    counted = re.search(r"slim: true would leave out (\d+) files", out)
    assert counted and int(counted[1]) >= len(SLIMMED)


def test_slim_leaves_out_a_packages_tests_headers_docs_and_static_libraries(built: tuple[Repo, list[str]]) -> None:
    """The control first: without slim the files are in the archive; with it they are not."""
    repo, args = built
    full = tar_names(repo.root / "dist" / "tiny-linux-64.tar.gz")
    assert set(SLIMMED + KEPT) <= set(full)
    (repo.root / "projects" / "tiny" / "project.yml").write_text("slim: true\n")
    try:
        out = repo.make(*args, "pack")
        assert "slim: leaving out" in out.stderr
        slim = tar_names(repo.root / "dist" / "tiny-linux-64.tar.gz")
        assert not set(SLIMMED) & set(slim) and set(KEPT) <= set(slim)
        assert "slim: true is set" in repo.make(*args, "size").stdout
    finally:
        (repo.root / "projects" / "tiny" / "project.yml").unlink()
        repo.make(*args, "pack")


def git(repo: Repo, *args: str) -> str:
    return run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=repo.root, check=True).stdout


def test_lock_diff_goal_against_a_git_ref(built: tuple[Repo, list[str]]) -> None:
    repo, args = built
    (kdir,) = (repo.root / "build" / "tiny").glob("override-*")
    shutil.rmtree(repo.root / ".git", ignore_errors=True)
    git(repo, "init", "-q", "-b", "main")
    committed = repo.root / "projects" / "tiny" / "rattler-lock.yml"
    shutil.copy2(kdir / "rattler-lock.yml", committed)  # the lock as committed on main
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "base")
    git(repo, "checkout", "-q", "-b", "change")
    try:
        out = repo.make(*args, "lock-diff", "BASE=main").stdout
        assert "no change" in out
        (repo.root / "projects" / "tiny" / "more.py").write_text("import dateutil\n")
        out = repo.make(*args, "lock-diff", "BASE=main").stdout
        added = [line.split()[1] for line in out.splitlines() if line.startswith("  + ")]
        assert "python-dateutil" in added and "pyyaml" not in added
        assert re.search(r"\d+ added, 0 removed, 0 changed, \d+ unchanged", out)
        summary = run([str(repo.root / "scripts" / "report"), "summary", "--project", "tiny", "--base", "main",
                       "--lock", str(kdir / "rattler-lock.yml")], cwd=repo.root, check=True).stdout
        assert "**Lock change** against `main`" in summary and "| added | python-dateutil |" in summary
        bad = repo.make(*args, "lock-diff", "BASE=no-such-branch", check=False)
        assert bad.returncode != 0 and "error: lock-diff: BASE 'no-such-branch' is not a commit" in bad.stderr
        hostile = repo.make(*args, "lock-diff", "BASE=--output=/tmp/x; touch pwned", check=False)
        assert hostile.returncode != 0 and "is not a git ref" in hostile.stderr
        assert not (repo.root / "pwned").exists()
    finally:
        (repo.root / "projects" / "tiny" / "more.py").unlink(missing_ok=True)
        committed.unlink()
        shutil.rmtree(repo.root / ".git")


def test_summary_is_markdown_with_the_lock_change(built: tuple[Repo, list[str]]) -> None:
    repo, _args = built
    proc = run([str(repo.root / "scripts" / "report"), "summary", "--project", "tiny"], cwd=repo.root, check=True)
    text = proc.stdout
    m = json.loads((repo.root / "dist" / "tiny-linux-64.manifest.json").read_text())
    assert text.startswith("### tiny: `tiny-linux-64.tar.gz`")
    assert f"| packages | {len(m['packages'])} (python {m['python']}) |" in text
    assert f"`{m['tarball']['sha256']}`" in text and "| target | Linux, x86_64" in text
    assert "| python |" in text, "the largest packages"


def test_verify_fails_on_a_planted_build_path(built: tuple[Repo, list[str]], tmp_path: Path) -> None:
    """A text file in the archive naming the build path (one conda-unpack
    does not know of) fails make verify, which names the file."""
    repo, args = built
    dist = repo.root / "dist"
    archive = dist / "tiny-linux-64.tar.gz"
    saved = tmp_path / "saved"
    saved.mkdir()
    for p in dist.glob("tiny-linux-64.tar.gz*"):
        shutil.copy2(p, saved / p.name)
    (kdir,) = (repo.root / "build" / "tiny").glob("override-*")
    build_prefix = str((kdir / "env").resolve())
    try:
        assert repo.make(*args, "verify").returncode == 0, "the control: the real archive verifies"
        planted = tmp_path / "planted"
        with formats.open_tar(archive) as src, tarfile.open(planted, "w:gz") as dst:
            for member in src:
                dst.addfile(member, src.extractfile(member) if member.isreg() else None)
            data = f"data_dir = {build_prefix}/share/tiny\n".encode()
            info = tarfile.TarInfo("share/tiny-settings.cfg")
            info.size = len(data)
            dst.addfile(info, io.BytesIO(data))
        shutil.copy2(planted, archive)
        digest = run(["sha256sum", archive.name], cwd=dist, check=True).stdout
        (dist / "tiny-linux-64.tar.gz.sha256").write_text(digest)
        out = repo.make(*args, "verify", check=False)
        assert out.returncode != 0
        assert "still contain the build prefix" in out.stderr
        assert "share/tiny-settings.cfg (text, no package)" in out.stderr
        assert "Traceback" not in out.stderr
    finally:
        for p in saved.iterdir():
            shutil.copy2(p, dist / p.name)


def test_v1_shows_the_commands_and_quiet_does_not(built: tuple[Repo, list[str]]) -> None:
    repo, args = built
    (repo.root / "dist" / "tiny-linux-64.sh").unlink(missing_ok=True)
    quiet = repo.make(*args, "installer")
    assert "scripts/publish" not in quiet.stdout
    (repo.root / "dist" / "tiny-linux-64.sh").unlink()
    loud = repo.make(*args, "V=1", "installer")
    assert "scripts/publish" in loud.stdout and "tiny-linux-64.sh dist" in loud.stdout


@pytest.mark.parametrize("fmt", formats.names())
def test_every_format_packs_verifies_and_installs(built: tuple[Repo, list[str]], fmt: str, tmp_path: Path) -> None:
    repo, args = built
    program = formats.FORMATS[fmt].program
    if program and shutil.which(program) is None:
        assert not os.environ.get("CI"), f"CI must have {program}"
        pytest.skip(f"needs {program}")
    repo.make(*args, f"FORMAT={fmt}", "pack", "installer")
    dist = repo.root / "dist"
    archive = dist / f"tiny-linux-64.{fmt}"
    with open(archive, "rb") as raw:
        assert formats.detect(raw).name == fmt
    run(["sha256sum", "-c", f"tiny-linux-64.{fmt}.sha256"], cwd=dist, check=True)
    m = json.loads((dist / "tiny-linux-64.manifest.json").read_text())
    assert m["tarball"]["format"] == fmt and m["tarball"]["name"] == archive.name
    target = tmp_path / "t"
    run(["bash", str(dist / "tiny-linux-64.sh"), "-p", str(target)], check=True)
    run([str(target / "bin" / "python"), "-c", "import yaml, slimdemo"], check=True)


def test_clean_one_project_keeps_the_others(built: tuple[Repo, list[str]]) -> None:
    repo, args = built
    root = repo.root
    other = [root / "dist" / "tiny-b-linux-64.tar.gz", root / "build" / "tiny-b" / "x"]
    for p in other:
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text("another project's\n")
    (root / "projects" / "tiny-b").mkdir()
    repo.make("PROJECT=tiny", "clean")
    assert not (root / "build" / "tiny").exists()
    assert not list((root / "dist").glob("tiny-linux-64.*"))
    assert all(p.exists() for p in other) and (root / "projects" / "tiny" / "app.py").exists()
    out = repo.make(*args, "pack")  # rebuilds from the lock, in the shared package cache
    assert "[tiny] verify: done" in out.stderr


def test_distclean_removes_build_venv_and_dist_but_not_projects(tmp_path: Path) -> None:
    repo = Repo(tmp_path / "repo")
    repo.project("keep", {"main.py": "import json\n"})
    for rel in ["build/channel/linux-64/repodata.json", "build/pkgs/x/y", "build/keep/default/env/z",
                "dist/keep-linux-64.tar.gz", "scripts/portable_env/__pycache__/pack.cpython-311.pyc"]:
        (repo.root / rel).parent.mkdir(parents=True, exist_ok=True)
        (repo.root / rel).write_text("x")
    run(["make", "distclean"], cwd=repo.root, check=True)
    assert not (repo.root / "build").exists() and not (repo.root / ".venv").exists()
    assert not (repo.root / "scripts" / "portable_env" / "__pycache__").exists(), "make tools' .pyc files"
    assert (repo.root / "scripts" / "portable_env" / "pack.py").exists()
    assert sorted(p.name for p in (repo.root / "dist").iterdir()) == [".gitkeep"]
    assert (repo.root / "projects" / "keep" / "main.py").exists()
    assert (REPO / ".venv" / "bin" / "python").exists(), "the link is gone, not the tools it pointed at"


def test_demo_packs_the_example_project(tmp_path: Path, channel: str) -> None:
    repo = Repo(tmp_path / "repo")
    shutil.copytree(REPO / "projects" / "example", repo.root / "projects" / "example",
                    ignore=shutil.ignore_patterns("rattler-lock.yml", "conda-*.lock"))
    proc = subprocess.run(["make", "demo", f"CHANNEL_DIR={REPO / 'build' / 'channel'}", f"PKGS={PKGS}",
                           f"CACHE={CACHE}"], cwd=repo.root, capture_output=True, text=True,
                          env=tool_env())
    assert proc.returncode == 0, proc.stderr[-3000:]
    dist = repo.root / "dist"
    run(["sha256sum", "-c", "example-linux-64.tar.gz.sha256"], cwd=dist, check=True)
    assert "[example] verify: done" in proc.stderr
    assert not list((repo.root / "projects" / "example").glob("conda-*.lock")), "the demo's lock stays in build/"


# --- the report logic, on small inputs -------------------------------------------

def test_compare_names_added_removed_and_changed() -> None:
    from portable_env.report import Pkg, compare

    old = {"a": Pkg("a", "1", "0"), "b": Pkg("b", "1", "0"), "c": Pkg("c", "1", "0")}
    new = {"a": Pkg("a", "1", "0"), "b": Pkg("b", "2", "0"), "d": Pkg("d", "1", "0")}
    assert compare(old, new) == ([Pkg("d", "1", "0")], [Pkg("c", "1", "0")], [(old["b"], new["b"])], 1)
    assert compare(new, new)[:3] == ([], [], [])


def test_compiled_files_count_for_their_sources_package() -> None:
    from portable_env.report import OTHER, owner_of

    owners = {"lib/python3.11/site-packages/six.py": "six"}
    assert owner_of("lib/python3.11/site-packages/__pycache__/six.cpython-311.pyc", owners) == "six"
    assert owner_of("lib/python3.11/site-packages/__pycache__/other.cpython-311.pyc", owners) == OTHER
    assert owner_of("share/tiny/app.py", owners) == OTHER
