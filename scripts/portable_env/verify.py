"""Verify a packed environment the way a user on another machine uses it.

1. check the archive against its .sha256 file (when given);
2. unpack it into a fresh directory at a different path, refusing entries
   that would land outside it (absolute paths, `..`, links pointing out);
3. run `bin/python bin/conda-unpack` there;
4. with a clean environment (no PATH python, PYTHONPATH, PYTHONHOME), run
   THE import probe (portable_env.probe, the installer's too) with the
   unpacked `bin/python`: every import name imports, `sys.prefix` is the
   new directory;
5. check that no text file still contains the build prefix;
6. run the project's `smoke_test` command, if any, with the unpacked bin/
   first on PATH.
The unpacked copy is removed afterwards.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import yaml

from portable_env import formats, probe
from portable_env.errors import UserError
from portable_env.files import sha256_of, spec_name

MANIFEST = "share/portable-env/manifest.json"  # written by scripts/write-manifest
# conda-pack's own relocation script records the old prefix on purpose.
EXPECTED_PREFIX_FILES = {"bin/conda-unpack"}


def check_checksum(tarball: Path, sha_file: Path) -> None:
    """Compare the archive with the first hash in a sha256sum-style file."""
    try:
        expected = sha_file.read_text().split()[0]
    except (OSError, IndexError):
        raise UserError(f"{sha_file}: missing or empty checksum file; rebuild with make pack") from None
    actual = sha256_of(tarball)
    if actual != expected:
        raise UserError(
            f"{tarball}: sha256 {actual} does not match {sha_file} ({expected}); "
            "the file is corrupt or was changed: rebuild it with make pack or copy it again"
        )


def import_names(deps: Path, env_file: Path | None) -> list[str]:
    """Import names of the required packages (those in the environment.yml, if given)."""
    data = yaml.safe_load(deps.read_text()) or {}
    required = set(data.get("required") or [])
    if env_file:
        env = yaml.safe_load(env_file.read_text()) or {}
        required &= {spec_name(s) for s in env.get("dependencies") or []}
    evidence = data.get("imports") or {}
    return sorted({name for pkg in required for name in (evidence.get(pkg) or {}) if name})


def safe_extract(tarball: Path, dest: Path) -> None:
    """Unpack any format of the table, refusing members that would escape
    dest (tarfile's 'data' filter)."""
    try:
        with formats.open_tar(tarball) as tf:
            tf.extractall(dest, filter="data")
    except tarfile.FilterError as exc:
        raise UserError(f"{tarball}: unsafe entry, refused: {exc}") from None
    except formats.READ_ERRORS as exc:
        raise UserError(
            f"{tarball}: cannot unpack ({exc}); the archive is corrupt or truncated: rebuild it with make pack"
        ) from None


def clean_env(home: Path) -> dict[str, str]:
    """A minimal environment: no inherited python on PATH, no PYTHON* variables."""
    # No .pyc writing: the unpacked copy is deleted right after.
    return {"PATH": "/usr/bin:/bin", "HOME": str(home), "LANG": "C.UTF-8", "PYTHONDONTWRITEBYTECODE": "1"}


def run_unpack(root: Path, env: dict[str, str]) -> None:
    """Run bin/conda-unpack with the unpacked python."""
    unpack = root / "bin" / "conda-unpack"
    if not unpack.exists():
        raise UserError("bin/conda-unpack is missing from the archive: it was not made by conda-pack")
    proc = subprocess.run([str(root / "bin" / "python"), str(unpack)], env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise UserError(f"bin/conda-unpack failed (exit {proc.returncode}): {proc.stderr.strip()[-2000:]}")


def run_imports(root: Path, names: list[str], env: dict[str, str]) -> None:
    """THE import probe, run by the unpacked python."""
    proc = subprocess.run(
        [str(root / "bin" / "python"), "-c", probe.source(), "--json", str(root), *names],
        env=env,
        cwd=root,
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        raise UserError(f"bin/python does not run (exit {proc.returncode}): {proc.stderr.strip()[-2000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    if not result["relocated"]:
        raise UserError(f"sys.prefix is {result['prefix']}, not the unpack directory {root}: not relocated")
    if result["failed"]:
        raise UserError("imports failed in the unpacked environment:\n" + "\n".join(probe.problems(result, str(root))))


def run_smoke_test(root: Path, command: str, env: dict[str, str]) -> None:
    """Run the smoke test command in the unpacked environment."""
    smoke_env = dict(env, PATH=f"{root / 'bin'}:{env['PATH']}")
    proc = subprocess.run(["bash", "-c", command], env=smoke_env, cwd=root, capture_output=True, text=True)
    if proc.returncode != 0:
        raise UserError(
            f"smoke_test '{command}' failed (exit {proc.returncode}): {(proc.stderr or proc.stdout).strip()[-2000:]}"
        )


def leftover_prefix(root: Path, prefix: bytes) -> list[str]:
    """Text files (no NUL byte) under root that still contain prefix."""
    hits = []
    for dirpath, _dirs, files in os.walk(root):
        for fname in files:
            path = Path(dirpath, fname)
            if path.is_symlink():
                continue
            data = path.read_bytes()
            if prefix in data and b"\0" not in data[:8192]:
                hits.append(str(path.relative_to(root)))
    return sorted(set(hits) - EXPECTED_PREFIX_FILES)


def manifest_imports(root: Path) -> list[str]:
    """The import names the archive's own manifest lists (what it was built for)."""
    manifest = root / MANIFEST
    if not manifest.is_file():
        raise UserError(f"the archive has no {MANIFEST}; give --deps build/<project>/deps.yml")
    return list(json.loads(manifest.read_text()).get("smoke_imports") or [])


def verify(
    tarball: Path,
    names: list[str] | None,
    build_prefix: str | None = None,
    workdir: Path | None = None,
    smoke: str = "",
    sha_file: Path | None = None,
) -> float:
    """Run every check (names None: the archive manifest's imports); returns the seconds taken."""
    start = time.monotonic()
    if not tarball.is_file():
        raise UserError(f"{tarball}: no such archive; build it with make PROJECT=<name> pack")
    if sha_file:
        check_checksum(tarball, sha_file)
    if workdir:
        workdir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="verify-", dir=workdir)).resolve()
    try:
        root = tmp / "unpacked-elsewhere"
        root.mkdir()
        print(f"verify: unpacking {tarball.name} into {root}", file=sys.stderr, flush=True)
        safe_extract(tarball, root)
        env = clean_env(tmp)
        run_unpack(root, env)
        if names is None:
            names = manifest_imports(root)
        print(f"verify: importing {len(names)} modules: {' '.join(names)}", file=sys.stderr, flush=True)
        run_imports(root, names, env)
        if build_prefix:
            hits = leftover_prefix(root, build_prefix.encode())
            if hits:
                shown = "\n".join(f"  {h}" for h in hits[:20])
                raise UserError(f"{len(hits)} text files still contain the build prefix {build_prefix}:\n{shown}")
        if smoke:
            print(f"verify: smoke test: {smoke}", file=sys.stderr, flush=True)
            run_smoke_test(root, smoke, env)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return time.monotonic() - start
