"""Where the benchmark works: the repository copy, its make calls, and the compressors of the bounds."""

from __future__ import annotations

import platform
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from portable_env.bench.measure import CORES, REPO, BenchError, clean_env, log, rmtree, run
from portable_env.settings import Overrides, resolve

PROJECT = "example"
# What the repository copy holds (as tests/conftest.py copies it), plus the project.
COPY = [
    "Makefile", "requirements.txt", "requirements.in", "scripts", "templates", "dist/.gitkeep", ".gitignore",
    f"projects/{PROJECT}",
]  # fmt: skip
DEFAULT_CHANNEL = REPO / "build" / "channel"


@dataclass
class Compressors:
    """Shell commands for the bounds: pigz (else gzip), the zstd CLI (else the zstandard module)."""

    gzip: list[str]
    zstd_c: str  # compress stdin to stdout, level 3, all cores
    zstd_d: str  # decompress stdin to stdout
    zstd_name: str  # how a report names zstd_c
    notes: list[str] = field(default_factory=list)  # what is missing, for the report

    @classmethod
    def detect(cls) -> Compressors:
        """The best tools installed here, with a note for each missing one."""
        notes: list[str] = []
        gzip = ["pigz", f"-p{CORES}"] if shutil.which("pigz") else ["gzip"]
        if gzip == ["gzip"]:
            notes.append(
                "pigz is not installed (apt-get install -y pigz): the tar.gz bounds use single-threaded "
                "gzip, so the tar.gz ratios are flattering"
            )
        if shutil.which("zstd"):
            return cls(gzip, "zstd -q -T0 -3", "zstd -dc", "zstd -T0 -3", notes)
        py = shlex.quote(sys.executable)
        notes.append(
            "the zstd CLI is not installed (apt-get install -y zstd): the zstd bounds use the zstandard module"
        )
        return cls(
            gzip,
            f"{py} -c 'import sys, zstandard; zstandard.ZstdCompressor(level=3, threads=-1)"
            ".copy_stream(sys.stdin.buffer, sys.stdout.buffer)'",
            f"{py} -c 'import sys, zstandard; zstandard.ZstdDecompressor()"
            ".copy_stream(sys.stdin.buffer, sys.stdout.buffer)'",
            "python zstandard, level 3, all cores",
            notes,
        )

    def gnu_extract(self, tarball: Path, dest: Path) -> None:
        """Unpack with GNU tar (pigz/zstd for decompression)."""
        dest.mkdir(parents=True)
        decompress = self.zstd_d if tarball.name.endswith(".zst") else f"{self.gzip[0]} -dc"
        run(f"{decompress} < {shlex.quote(str(tarball))} | tar -xf - -C {shlex.quote(str(dest))}")


@dataclass
class Workspace:
    """The benchmark's paths and options: OUT, the repository copy in it, the channel and python."""

    out: Path
    runs: int
    channel: str
    python: str
    tools: Compressors
    key: str = ""  # build/<project>/<key>/ of the repository copy, known after setup
    notes: list[str] = field(default_factory=list)

    @property
    def work(self) -> Path:
        return self.out / "work"

    @property
    def repo(self) -> Path:
        return self.out / "repo"

    @property
    def pkgs_warm(self) -> Path:
        return self.out / "pkgs-warm"

    @property
    def cache(self) -> Path:
        return self.out / "cache"

    @property
    def kdir(self) -> Path:
        return self.repo / "build" / PROJECT / self.key

    @property
    def deps(self) -> Path:
        return self.kdir / "deps.yml"

    @property
    def env_dir(self) -> Path:
        return self.kdir / "env"

    @property
    def tarball(self) -> Path:
        return self.kdir / f"{PROJECT}-linux-64.tar.gz"

    @property
    def target_glibc(self) -> str:
        """TARGET_GLIBC= of the builds: this machine's glibc against a local
        (file://) channel, which is made from this OS's python and suits it
        only; otherwise the project's own target."""
        return platform.libc_ver()[1] if self.channel.startswith("file://") else ""

    def make_cmd(self, *goals: str, pkgs: Path, cache: Path) -> list[str]:
        """`make` of the project in the repository copy, against the channel and python."""
        glibc = [f"TARGET_GLIBC={self.target_glibc}"] if self.target_glibc else []
        return [
            "make", "--no-print-directory", f"PROJECT={PROJECT}", f"CHANNELS={self.channel}",
            f"PYTHON={self.python}", *glibc, f"PKGS={pkgs}", f"CACHE={cache}", *goals,
        ]  # fmt: skip

    def make(self, *goals: str, pkgs: Path, cache: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run make_cmd in the repository copy."""
        return run(self.make_cmd(*goals, pkgs=pkgs, cache=cache), cwd=self.repo, check=check)

    def ensure_channel(self) -> None:
        """Build the local channel when it is the default one and missing."""
        if self.channel == DEFAULT_CHANNEL.as_uri() and not (DEFAULT_CHANNEL / "noarch" / "repodata.json").exists():
            log("building the local channel (make channel)")
            run(["make", "--no-print-directory", "channel"])

    def setup_repo(self) -> None:
        """A fresh copy of the repository with projects/example, solved up to the lock."""
        rmtree(self.repo)
        for name in COPY:
            src, dst = REPO / name, self.repo / name
            dst.parent.mkdir(parents=True, exist_ok=True)
            if src.is_dir():
                shutil.copytree(src, dst, copy_function=shutil.copy2)  # with the .pyc make tools wrote
            elif src.exists():
                shutil.copy2(src, dst)
        (self.repo / ".venv").symlink_to(REPO / ".venv")
        log("preparing the repository copy (scan, render, lock)")
        self.make("lock", pkgs=self.pkgs_warm, cache=self.cache)
        overrides = Overrides(channels=self.channel, python=self.python, target_glibc=self.target_glibc)
        self.key = resolve(self.repo / "projects" / PROJECT, overrides=overrides, root=self.repo).key
        if not (self.kdir / "rattler-lock.yml").is_file():
            raise BenchError(f"make lock wrote no {self.kdir / 'rattler-lock.yml'}: the build key is not {self.key}")

    def reset_build(self) -> None:
        """Delete the env, the packed tarball and their stamps (the lock stays)."""
        for path in [
            self.env_dir,
            self.kdir / "env.stamp",
            self.kdir / "env.stamp.tmp",
            *self.kdir.glob(f"{PROJECT}-*.tar*"),
            *(self.repo / "dist").glob(f"{PROJECT}-*"),
        ]:
            rmtree(path)

    def conda_unpack(self, root: Path) -> None:
        """Run an unpacked env's conda-unpack with its own python, on the target side's environment."""
        run([str(root / "bin" / "python"), str(root / "bin" / "conda-unpack")], env=clean_env(self.work))

    def cleanup(self) -> None:
        """Remove the repository copy, the caches and the work files."""
        for path in (
            self.work, self.repo, self.pkgs_warm, self.out / "pkgs-cold", self.cache, self.out / "cache-cold",
            self.out / "synthetic",
        ):  # fmt: skip
            rmtree(path)
