"""Faults for real: signals mid-step, a crashing installer, concurrent builds,
a damaged environment, bad channels and pins; and byte-identical rebuilds."""
from __future__ import annotations

import hashlib
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import yaml
from conftest import CACHE, HOST_GLIBC, PKGS, REPO, Repo, tool_env

TINY = {"app.py": "import yaml\nimport six\n", "lazy.py": "def f():\n    import dateutil\n"}


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def make_args(channel: str, python: str, project: str = "tiny") -> list[str]:
    return [f"PROJECT={project}", f"CHANNELS={channel}", f"PYTHON={python}", f"TARGET_GLIBC={HOST_GLIBC}"]


def start_make(repo: Repo, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    """make in its own process group (like a terminal job), stderr piped. SIGINT
    and SIGQUIT are reset to their defaults, as a terminal job has them: a test
    run started in the background by a shell without job control inherits them
    ignored, and make would then build on through the interrupt."""
    return subprocess.Popen([*DEFAULT_SIGNALS, "make", f"PKGS={PKGS}", f"CACHE={CACHE}", *args], cwd=repo.root,
                            env=env or tool_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


# exec the command with SIGINT and SIGQUIT at their defaults (no preexec_fn: threads)
DEFAULT_SIGNALS = [sys.executable, "-c", "import os, signal, sys\nfor s in (signal.SIGINT, signal.SIGQUIT):\n"
                   "    signal.signal(s, signal.SIG_DFL)\nos.execvp(sys.argv[1], sys.argv[1:])"]


def interrupt_at(proc: subprocess.Popen, marker: str, sig: int, timeout: float = 120) -> str:
    """Read stderr until marker appears, then signal the whole job; all stderr read."""
    seen = ""
    deadline = time.monotonic() + timeout
    assert proc.stderr is not None
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stderr], [], [], 1)
        if ready:
            line = proc.stderr.readline()
            if not line:
                break
            seen += line
            if marker in line:
                os.killpg(proc.pid, sig)
                break
    seen += proc.stderr.read()
    proc.wait(timeout=60)
    return seen


def final_artifacts_are_whole(root: Path, project: str) -> None:
    """Whatever exists under a final name is complete."""
    bdir = root / "build" / project
    for deps in bdir.glob("*/deps.yml"):
        assert "required" in yaml.safe_load(deps.read_text())
    for explicit in bdir.glob("*/conda-*.lock"):
        assert "@EXPLICIT" in explicit.read_text()
    for tarball in (root / "dist").glob(f"{project}-*.tar.gz"):
        pytest.fail(f"{tarball} published by an interrupted first build")


@pytest.mark.parametrize("step, sig", [
    ("[example] env ...", signal.SIGINT),
    ("[example] pack ...", signal.SIGTERM),
    ("[example] verify ...", signal.SIGINT),
    ("importing 4 modules", signal.SIGKILL),
])
def test_interrupted_build_leaves_nothing_half_made(repo: Repo, channel: str, host_python: str, step: str,
                                                     sig: int) -> None:
    shutil.copytree(REPO / "projects" / "example", repo.root / "projects" / "example")
    args = make_args(channel, host_python, "example")
    seen = interrupt_at(start_make(repo, *args, "pack"), step, sig)
    assert step in seen
    final_artifacts_are_whole(repo.root, "example")
    if "env" in step:
        assert not list((repo.root / "build" / "example").glob("*/env.stamp")), "interrupted env is not done"
    again = repo.make(*args, "pack")
    assert "[example] verify: done" in again.stderr
    assert "OK" in repo.make(*args, "verify").stderr


def test_installer_crash_is_retried_and_leaves_no_half_env(repo: Repo, channel: str, host_python: str,
                                                            tmp_path: Path) -> None:
    repo.project("tiny", TINY)
    env = tool_env()
    env["PORTABLE_ENV_FAULT_INSTALL_SEGV"] = str(tmp_path / "crashed-once")
    proc = subprocess.run(["make", f"PKGS={PKGS}", f"CACHE={CACHE}", *make_args(channel, host_python), "pack"],
                          cwd=repo.root, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "the installer died (signal 11) on attempt 1 of 2" in proc.stderr
    assert (tmp_path / "crashed-once").exists()
    assert (repo.root / "dist" / "tiny-linux-64.tar.gz").exists()


def test_two_builds_of_one_project_at_once(repo: Repo, channel: str, host_python: str) -> None:
    repo.project("tiny", TINY)
    args = make_args(channel, host_python)
    procs = [start_make(repo, *args, "pack") for _ in range(2)]
    errs = [p.communicate(timeout=300)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], errs
    assert sum("[tiny] verify: done" in e for e in errs) == 1, "the second build found the work done"
    assert any("waiting: another build of this project" in e for e in errs)
    out = subprocess.run(["sha256sum", "-c", "tiny-linux-64.tar.gz.sha256"], cwd=repo.root / "dist",
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stdout
    assert "OK" in repo.make(*args, "verify").stderr


def test_damaged_environment_is_recreated_not_packed(repo: Repo, channel: str, host_python: str) -> None:
    repo.project("tiny", TINY)
    args = make_args(channel, host_python)
    repo.make(*args, "pack")
    env = next((repo.root / "build" / "tiny").glob("*/env"))
    victim = next(env.glob("lib/python*/site-packages/six.py"))
    victim.unlink()
    for packed in (repo.root / "build" / "tiny").glob("*/tiny-linux-64.tar.gz"):
        packed.unlink()
    out = repo.make(*args, "pack")
    assert "is incomplete (1 files missing" in out.stderr and "[tiny] verify: done" in out.stderr
    assert victim.exists()


def test_identical_inputs_give_identical_tarballs(tmp_path: Path, channel: str, host_python: str) -> None:
    first, second = Repo(tmp_path / "one"), Repo(tmp_path / "checkout-two")
    for r in (first, second):
        r.project("tiny", TINY)
        r.make(*make_args(channel, host_python), "pack")
    a = first.root / "dist" / "tiny-linux-64.tar.gz"
    b = second.root / "dist" / "tiny-linux-64.tar.gz"
    assert sha(a) == sha(b), "another checkout path gives the same bytes"
    before = sha(a)
    first.make("clean")
    assert not a.exists()
    first.make(*make_args(channel, host_python), "pack")
    assert sha(a) == before, "a clean rebuild gives the same bytes"
    assert (first.root / "dist" / "tiny-linux-64.tar.gz.sha256").read_text().split()[0] == before


def test_unreachable_channel_is_named(repo: Repo, host_python: str) -> None:
    repo.project("tiny", TINY)
    out = repo.make("PROJECT=tiny", "CHANNELS=file:///nope/channel", f"PYTHON={host_python}", "pack", check=False)
    assert out.returncode != 0
    assert "file:///nope/channel" in out.stderr and "error: lock:" in out.stderr
    assert "Traceback" not in out.stderr


def test_conflicting_pins_say_what_to_relax(repo: Repo, channel: str, host_python: str) -> None:
    repo.project("tiny", TINY, settings='packages: ["six>=100"]\n')
    out = repo.make(*make_args(channel, host_python), "pack", check=False)
    assert out.returncode != 0
    assert "cannot be satisfied" in out.stderr and "projects/tiny/project.yml" in out.stderr
    assert "Traceback" not in out.stderr


def test_check_lock_tells_a_stale_lock_without_solving(repo: Repo, channel: str, host_python: str) -> None:
    pdir = repo.project("tiny", TINY)
    args = make_args(channel, host_python)
    repo.make(*args, "lock")
    assert "lock is current" in repo.make(*args, "check-lock").stdout
    (pdir / "more.py").write_text("import attr\n")
    out = repo.make(*args, "check-lock", check=False)
    assert out.returncode != 0 and "lock is stale" in out.stderr and "make PROJECT=tiny lock" in out.stderr


def test_full_dist_disk_is_named_and_leaves_nothing_half_written(repo: Repo, channel: str, host_python: str,
                                                                  tmp_path: Path) -> None:
    """A full dist/ disk, without root: dist/ lives on another file system
    (/dev/shm), so publish must copy into it, and the file it copies into is
    /dev/full, where every write fails with ENOSPC as on a full disk."""
    repo.project("tiny", TINY)
    shm = Path("/dev/shm")
    if not shm.is_dir() or not os.access(shm, os.W_OK) or shm.stat().st_dev == repo.root.stat().st_dev:
        assert not os.environ.get("CI"), "CI needs a writable /dev/shm on its own file system for this test"
        pytest.skip("needs a writable /dev/shm on another file system than the repository")
    other = Path(tempfile.mkdtemp(prefix="full-dist-", dir=shm))
    dist = repo.root / "dist"
    shutil.rmtree(dist)
    dist.symlink_to(other)
    try:
        (other / "tiny-linux-64.tar.gz.sha256.tmp").symlink_to("/dev/full")
        out = repo.make(*make_args(channel, host_python), "pack", check=False)
        assert out.returncode != 0
        assert "No space left on device" in out.stderr and "cannot write dist/tiny-linux-64.tar.gz" in out.stderr
        assert list(other.iterdir()) == [], "no partial archive, and no checksum without its archive"
        repo.make(*make_args(channel, host_python), "pack")
        assert subprocess.run(["sha256sum", "-c", "tiny-linux-64.tar.gz.sha256"], cwd=dist).returncode == 0
    finally:
        shutil.rmtree(other, ignore_errors=True)


def test_damaged_package_cache_entry_is_fetched_again(repo: Repo, channel: str, host_python: str,
                                                       tmp_path: Path) -> None:
    repo.project("tiny", TINY)
    pkgs = tmp_path / "private-pkgs"  # not the shared cache other tests use
    args = [f"PKGS={pkgs}", *make_args(channel, host_python), "pack"]
    repo.make(*args)
    victim = next(pkgs.glob("six-*/site-packages/six.py"))
    victim.unlink()
    for env in (repo.root / "build" / "tiny").glob("*/env"):
        shutil.rmtree(env)
    for packed in (repo.root / "build" / "tiny").glob("*/tiny-linux-64.tar.gz"):
        packed.unlink()
    out = repo.make(*args)
    assert "the package cache had incomplete entries (six-" in out.stderr
    assert "[tiny] verify: done" in out.stderr and victim.exists()
