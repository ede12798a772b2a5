"""Shared fixtures: the tools on PATH, the real local channel, throwaway repos.

End-to-end tests run the real pipeline (depfinder, py-rattler, conda-pack)
against a local conda channel built from the host Python and real PyPI
wheels (scripts/build-channel, cached by content in build/channel). They run
`make` in a throwaway copy of this repository so projects/ here stays clean.
"""
from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "scripts"))  # the portable_env package
VENV_BIN = REPO / ".venv" / "bin"
HOST_GLIBC = platform.libc_ver()[1]  # the local channel's python was built against it
PKGS = REPO / "build" / "pkgs"
CACHE = REPO / "build" / "cache"
# What a throwaway repo copies: the template, without projects or outputs.
TEMPLATE_FILES = ["Makefile", "requirements.txt", "requirements.in", "requirements-dev.txt", "requirements-dev.in",
                  "scripts", "templates", "dist/.gitkeep", ".gitignore"]


def write_tree(root: Path, files: dict[str, str]) -> Path:
    """Create files (relative path -> text) under root."""
    for rel, text in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    return root


def tool_env() -> dict[str, str]:
    """The environment with the tools venv first on PATH."""
    env = dict(os.environ)
    env["PATH"] = f"{VENV_BIN}:{env.get('PATH', '')}"
    env.pop("MAKEFLAGS", None)
    env.pop("MAKELEVEL", None)
    return env


def run(cmd: list[str] | str, cwd: Path = REPO, check: bool = False, **kw) -> subprocess.CompletedProcess:
    """Run a command with the tools on PATH; output captured as text."""
    proc = subprocess.run(cmd, cwd=cwd, env=kw.pop("env", tool_env()), capture_output=True, text=True,
                          shell=isinstance(cmd, str), **kw)
    if check and proc.returncode != 0:
        raise AssertionError(f"{cmd} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def script(name: str, *args: str, **kw) -> subprocess.CompletedProcess:
    """Run scripts/<name> with arguments."""
    return run([str(REPO / "scripts" / name), *args], **kw)


@pytest.fixture(scope="session")
def channel() -> str:
    """file:// URL of the real local channel (built once, cached by content)."""
    out = REPO / "build" / "channel"
    run([str(REPO / "scripts" / "build-channel"), "--out", str(out), "--wheels",
         str(REPO / "templates" / "demo-channel.txt"), "--cache", str(REPO / "build" / "wheels")], check=True)
    return f"file://{out}"


@pytest.fixture(scope="session")
def host_python() -> str:
    """The python version of the local channel (the host's)."""
    return "{}.{}".format(*sys.version_info[:2])


class Repo:
    """A throwaway copy of this repository to run make in."""

    def __init__(self, root: Path) -> None:
        self.root = root
        for name in TEMPLATE_FILES:
            src, dst = REPO / name, root / name
            dst.parent.mkdir(parents=True, exist_ok=True)
            if src.is_dir():
                shutil.copytree(src, dst, copy_function=shutil.copy2,
                                ignore=shutil.ignore_patterns("__pycache__", ".*.tmp", ".mypy_cache"))
            else:
                shutil.copy2(src, dst)
        (root / ".venv").symlink_to(REPO / ".venv")
        (root / "projects").mkdir()

    def project(self, name: str, files: dict[str, str], settings: str | None = None) -> Path:
        """Create projects/<name> with the given files (and project.yml)."""
        pdir = self.root / "projects" / name
        for rel, text in files.items():
            (pdir / rel).parent.mkdir(parents=True, exist_ok=True)
            (pdir / rel).write_text(text)
        if settings is not None:
            (pdir / "project.yml").write_text(settings)
        return pdir

    def make(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        """Run make here, sharing the package and repodata caches. A build
        against a local channel (CHANNELS=file://...) targets this machine's
        glibc: that channel is made from this OS's python and suits it only."""
        if any(a.startswith("CHANNELS=file://") for a in args) and not any(
                a.startswith("TARGET_GLIBC=") for a in args):
            args = (*args, f"TARGET_GLIBC={HOST_GLIBC}")
        return run(["make", f"PKGS={PKGS}", f"CACHE={CACHE}", *args], cwd=self.root, check=check)


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    return Repo(tmp_path / "repo")
