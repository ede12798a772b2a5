"""Verify a packed environment the way a user on another machine uses it.

1. check the archive against its .sha256 file (when given);
2. unpack it into a fresh directory at a different path, refusing entries
   that would land outside it (absolute paths, `..`, links pointing out);
3. run `bin/python bin/conda-unpack` there;
4. with a clean environment (no PATH python, PYTHONPATH, PYTHONHOME), run
   THE import probe (portable_env.probe, the installer's too) with the
   unpacked `bin/python`: every import name of every installed detected
   package (required, optional, on-demand) imports, `sys.prefix` is the new
   directory; a failure names the import and its package;
5. run every python script in bin/ (packages' console scripts) as a user
   does without activation (`env -i PATH=/usr/bin:/bin`, another working
   directory): it must start the unpacked python (a .pth hook in the
   throwaway copy reports sys.prefix and exits before the script's code);
   with pip installed, `bin/python -m pip --version` runs pip from there;
6. check that no file, text or binary, still contains the build prefix
   (a bytes search), naming the packages of the files that do;
7. run the project's `smoke_test` command, if any, with the unpacked bin/
   first on PATH.
The unpacked copy is removed afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

from packaging.requirements import Requirement

from portable_env import formats, probe
from portable_env.errors import UserError, report, run
from portable_env.files import canon, conda_file_owners, sha256_of, spec_name
from portable_env.lock import read_deps, read_env_file
from portable_env.settings import load

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


# deps.yml lists of detected packages; verify imports those that were installed.
DETECTED = ("required", "optional", "on_demand")


def import_packages(deps: Path, env_file: Path | None) -> dict[str, str]:
    """Import name -> package of the detected packages (required, optional,
    on-demand) that were installed: those in the environment.yml, if given."""
    data = read_deps(deps)
    detected = {pkg for key in DETECTED for pkg in data.get(key) or []}
    if env_file:
        spec = read_env_file(env_file)
        installed = {spec_name(s) for s in spec.specs}
        # The pip: section's requirements, as the scan names them ("pypi:<PEP 503 name>").
        installed |= {"pypi:" + canon(Requirement(r).name) for r in spec.pip.requirements}
        detected &= installed
    evidence = data.get("imports") or {}
    return {name: pkg for pkg in sorted(detected) for name in (evidence.get(pkg) or {}) if name}


def import_names(deps: Path, env_file: Path | None) -> list[str]:
    """Import names of the installed detected packages (import_packages)."""
    return sorted(import_packages(deps, env_file))


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


def run_imports(root: Path, names: list[str], env: dict[str, str], packages: dict[str, str] | None = None) -> None:
    """THE import probe, run by the unpacked python (packages: import name -> package, for messages)."""
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
        lines = probe.problems(result, str(root))
        owners = packages or {}
        named = [
            f"{line} (package {owners[n]})" if n in owners else line
            for n, line in zip(result["failed"], lines, strict=False)
        ]
        raise UserError("imports failed in the unpacked environment:\n" + "\n".join(named + lines[len(named) :]))


def run_smoke_test(root: Path, command: str, env: dict[str, str]) -> None:
    """Run the smoke test command in the unpacked environment."""
    smoke_env = dict(env, PATH=f"{root / 'bin'}:{env['PATH']}")
    proc = subprocess.run(["bash", "-c", command], env=smoke_env, cwd=root, capture_output=True, text=True)
    if proc.returncode != 0:
        raise UserError(
            f"smoke_test '{command}' failed (exit {proc.returncode}): {(proc.stderr or proc.stdout).strip()[-2000:]}"
        )


def leftover_prefix(root: Path, prefix: bytes) -> list[str]:
    """Files (text and binary) under root that still contain prefix."""
    hits = []
    for dirpath, _dirs, files in os.walk(root):
        for fname in files:
            path = Path(dirpath, fname)
            if path.is_symlink() or not path.is_file():
                continue
            with open(path, "rb") as fh:
                if prefix in fh.read():
                    hits.append(path.relative_to(root).as_posix())
    return sorted(set(hits) - EXPECTED_PREFIX_FILES)


def owners(root: Path) -> dict[str, str]:
    """File -> name of the package that installed it (the unpacked conda-meta records)."""
    return {rel: name for rel, (name, _version) in conda_file_owners(root).items()}


def check_leftover_prefix(root: Path, build_prefix: str, project: str = "") -> None:
    """UserError naming the files (and their packages) that still contain the build prefix."""
    hits = leftover_prefix(root, build_prefix.encode())
    if not hits:
        return
    by = owners(root)
    shown = []
    for rel in hits[:20]:
        with open(root / rel, "rb") as fh:
            kind = "binary" if b"\0" in fh.read(8192) else "text"
        shown.append(f"  {rel} ({kind}, {'package ' + by[rel] if rel in by else 'no package'})")
    p = project or "<project>"
    raise UserError(
        f"{len(hits)} files still contain the build prefix {build_prefix}:\n"
        + "\n".join(shown)
        + f"\n  they would point at the build machine; recreate the environment (its package cache entries "
        f"were probably gone): make PROJECT={p} clean, then make PROJECT={p} pack"
    )


# --- scripts and pip without activation ----------------------------------------

ENTRY_HOOK = "zzz-portable-env-verify.pth"
ENTRY_VAR = "PORTABLE_ENV_VERIFY_ENTRY"  # not PYTHON*: python -E still sees it
# A .pth line runs at startup, before the script's own code: report where
# this python lives and stop, so no console script does any work here.
ENTRY_CODE = (
    "import os, sys, json; "
    f"os.environ.get({ENTRY_VAR!r}) and (print(json.dumps([sys.executable, sys.prefix])), "
    "sys.stdout.flush(), os._exit(0))\n"
)
POLYGLOT = b"'" * 3 + b"exec'"  # line 2 of pack.RELOCATABLE_SHEBANG


def python_scripts(root: Path) -> list[str]:
    """bin/ files that run with a python: a python shebang or the relocatable polyglot."""
    found = []
    bin_dir = root / "bin"
    for path in sorted(bin_dir.iterdir()) if bin_dir.is_dir() else []:
        if path.is_symlink() or not path.is_file() or path.name.startswith("."):
            continue
        with open(path, "rb") as fh:
            head = fh.read(256).split(b"\n")
        first = head[0]
        if (first.startswith(b"#!") and b"python" in first) or (
            first.startswith(b"#!/bin/sh") and len(head) > 1 and head[1].startswith(POLYGLOT)
        ):
            found.append(path.name)
    return found


def site_packages(root: Path) -> Path | None:
    """The unpacked environment's site-packages folder, if it has one."""
    found = sorted((root / "lib").glob("python3*/site-packages"))
    return found[0] if found else None


def run_scripts(root: Path, env: dict[str, str], cwd: Path) -> int:
    """Run every python script of bin/ without activation; UserError naming those
    that do not start the unpacked python. Returns how many ran."""
    names = python_scripts(root)
    site = site_packages(root)
    if not names or site is None:
        return 0
    hook = site / ENTRY_HOOK
    hook.write_text(ENTRY_CODE)
    bad = []
    try:
        for name in names:
            try:
                proc = subprocess.run(
                    [str(root / "bin" / name)],
                    env=dict(env, **{ENTRY_VAR: "1"}),
                    cwd=cwd,
                    stdin=subprocess.DEVNULL,
                    capture_output=True,
                    text=True,
                    timeout=120,
                )
            except (OSError, subprocess.TimeoutExpired) as exc:
                bad.append(f"  bin/{name}: {exc}")
                continue
            lines = proc.stdout.strip().splitlines()
            try:
                exe, prefix = json.loads(lines[-1]) if lines else (None, None)
            except ValueError:
                exe, prefix = None, None
            if prefix is None or os.path.realpath(prefix) != os.path.realpath(root):
                why = f"started {exe}" if exe else f"exit {proc.returncode}: {proc.stderr.strip()[-300:]}"
                bad.append(f"  bin/{name}: {why}")
    finally:
        hook.unlink(missing_ok=True)
    if bad:
        raise UserError(
            f"{len(bad)} scripts in bin/ do not start the packed python without activation "
            "(env -i PATH=/usr/bin:/bin):\n" + "\n".join(bad)
        )
    return len(names)


def has_package(root: Path, name: str) -> bool:
    """Whether the unpacked environment holds the conda package name."""
    for record in (root / "conda-meta").glob(f"{name}-*.json"):
        try:
            if json.loads(record.read_text()).get("name") == name:
                return True
        except (OSError, ValueError):
            continue
    return False


def run_pip(root: Path, env: dict[str, str], cwd: Path) -> None:
    """`bin/python -m pip --version` runs the unpacked environment's pip."""
    proc = subprocess.run(
        [str(root / "bin" / "python"), "-m", "pip", "--version"], env=env, cwd=cwd, capture_output=True, text=True
    )
    where = os.path.realpath(root)
    if proc.returncode != 0 or where not in os.path.realpath(proc.stdout.split(" from ", 1)[-1].split(" (")[0]):
        raise UserError(
            f"bin/python -m pip --version does not run the packed pip (exit {proc.returncode}): "
            f"{(proc.stderr or proc.stdout).strip()[-1000:]}"
        )


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
    packages: dict[str, str] | None = None,
    project: str = "",
) -> float:
    """Run every check (names None: the archive manifest's imports; packages:
    import name -> package, for messages); returns the seconds taken."""
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
        run_imports(root, names, env, packages)
        ran = run_scripts(root, env, tmp)
        if ran:
            print(f"verify: {ran} scripts in bin/ start the packed python without activation", file=sys.stderr)
        if has_package(root, "pip"):
            run_pip(root, env, tmp)
        if build_prefix:
            check_leftover_prefix(root, build_prefix, project)
        if smoke:
            print(f"verify: smoke test: {smoke}", file=sys.stderr, flush=True)
            run_smoke_test(root, smoke, env)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return time.monotonic() - start


CLI_DOC = """Verify a packed environment the way a user on another machine uses it.

Checks the archive against its .sha256 file (when given), unpacks it at
another path (refusing entries that would escape it), runs conda-unpack,
runs the import probe with the unpacked python (the installer runs the same
one) for every installed detected package (required, optional, on-demand),
runs every python script in bin/ without activation (it must start the
unpacked python) and `bin/python -m pip --version` when pip is installed,
checks no file, text or binary, still contains the build prefix, and runs
the settings' smoke_test. Exits non-zero naming the import or file that broke.
See scripts/portable_env/verify.py.
"""


def main(argv: list[str] | None = None) -> int:
    """scripts/verify-pack: see CLI_DOC."""
    ap = argparse.ArgumentParser(
        prog="verify-pack", description=CLI_DOC, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("tarball", type=Path)
    ap.add_argument(
        "--deps", type=Path, help=f"deps.yml: the detected imports to check (default: the archive's {MANIFEST})"
    )
    ap.add_argument("--env-file", type=Path, help="environment.yml: only the packages it installed are checked")
    ap.add_argument("--sha256", type=Path, help="sha256sum-style file to check the archive against")
    ap.add_argument("--build-prefix", help="path the environment was built at (must not remain)")
    ap.add_argument("--workdir", type=Path, help="where to unpack (default: the system temp dir)")
    ap.add_argument("--project", default="", help="project name for messages (default: the settings')")
    ap.add_argument("--settings", type=Path, help="build/<project>/settings.json: its smoke_test command is run too")
    args = ap.parse_args(argv)
    try:
        settings = load(args.settings) if args.settings else None
    except UserError as exc:
        report(exc, "verify")
        return 1
    project = args.project or (settings.project if settings else "")

    def go() -> int:
        packages = import_packages(args.deps, args.env_file) if args.deps else None
        names = sorted(packages) if packages is not None else None
        smoke = (settings.smoke_test if settings else None) or ""
        took = verify(args.tarball, names, args.build_prefix, args.workdir, smoke, args.sha256, packages, project)
        print(f"verify: {args.tarball.name} OK ({took:.1f}s)", file=sys.stderr)
        return 0

    return run(go, f"[{project}] verify" if project else "verify")
