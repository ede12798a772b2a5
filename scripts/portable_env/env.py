"""Environments: create one from a rattler lock with py-rattler, check one is complete.

No solving and no conda: the locked packages are fetched into the shared
package cache and hard-linked into the prefix. The prefix is removed first, so
a half-installed environment from an interrupted run never survives. The
install runs in a child process (``python -m portable_env.env``) and is retried
when that process dies (py-rattler's installer was seen to segfault once).

Post-link scripts run as conda runs them (rattler skips them by default and
ignores their failures when asked to run them): after every package is
linked, in dependency order, ``bash -x PREFIX/bin/.NAME-post-link.sh`` with
PREFIX, ROOT_PREFIX, PKG_NAME, PKG_VERSION, PKG_BUILDNUM set and PREFIX/bin
first on PATH; a failing one fails the install with its output, and the
messages a script leaves in PREFIX/.messages.txt are printed (the file is
removed). They run once, here on the build machine: conda-unpack never runs
them on the target.

An environment is incomplete (``check``) when a package file is missing, or
when a package with `file_mode: binary` prefix placeholders has lost its
package cache entry: conda-pack relocates those files only from the cache
copy (``uncached_binaries``).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from portable_env.errors import UserError
from portable_env.files import env_records

# Fault injection for the test suite: the first install attempt's process
# kills itself with SIGSEGV after installing, like the crash seen once in
# py-rattler's worker threads. The value is a marker file path.
FAULT_ENV = "PORTABLE_ENV_FAULT_INSTALL_SEGV"
SCRIPTS = Path(__file__).resolve().parent.parent  # what the child needs on sys.path


def missing_files(prefix: Path) -> list[str]:
    """Files listed in the prefix's conda-meta records that do not exist."""
    meta = prefix / "conda-meta"
    if not meta.is_dir():
        return ["conda-meta/"]
    missing = []
    for _meta, record in env_records(prefix):
        for rel in record.get("files") or []:
            if not os.path.lexists(prefix / rel):
                missing.append(rel)
    return missing


def uncached_binaries(prefix: Path, records: list[tuple[Path, dict[str, Any]]] | None = None) -> dict[str, list[str]]:
    """Package name -> its `file_mode: binary` placeholder files whose package
    cache copy (the record's link.source) is gone: conda-pack cannot relocate
    them. records: files.env_records(prefix), when the caller has them."""
    lost: dict[str, list[str]] = {}
    for record, data in env_records(prefix) if records is None else records:
        source = (data.get("link") or {}).get("source") or data.get("extracted_package_dir") or ""
        noarch = bool(data.get("noarch"))  # cached under other paths (site-packages/, python-scripts/)
        for entry in (data.get("paths_data") or {}).get("paths") or []:
            if entry.get("file_mode") != "binary" or not entry.get("prefix_placeholder"):
                continue
            cached = os.path.isdir(source) and (noarch or os.path.isfile(os.path.join(source, entry["_path"])))
            if not (source and cached):
                lost.setdefault(str(data.get("name") or record.stem), []).append(entry["_path"])
    return lost


def check(prefix: Path) -> int:
    """0 when no package file of prefix is missing and every binary-placeholder
    file can be relocated, else 1 with a message."""
    missing = missing_files(prefix)
    if missing:
        print(
            f"env: {prefix} is incomplete ({len(missing)} files missing, e.g. {missing[0]}); recreating it",
            file=sys.stderr,
        )
        return 1
    lost = uncached_binaries(prefix)
    if lost:
        print(
            f"env: {prefix} is incomplete: the package cache entries of {', '.join(lost)} are gone "
            "(their binary files can only be relocated from there); recreating it",
            file=sys.stderr,
        )
        return 1
    return 0


def post_link_scripts(prefix: Path, records: list[Any]) -> None:
    """Run the packages' post-link scripts as conda does (in records' order); UserError naming a failing one."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "CONDA_"))}
    messages = prefix / ".messages.txt"
    for r in records:
        name = r.name.normalized
        script = prefix / "bin" / f".{name}-post-link.sh"
        if not script.is_file():
            continue
        print(f"env: running the post-link script of {name}", file=sys.stderr, flush=True)
        env = dict(
            base,
            PREFIX=str(prefix),
            ROOT_PREFIX=str(prefix),
            PKG_NAME=name,
            PKG_VERSION=str(r.version),
            PKG_BUILDNUM=str(r.build_number),
            PATH=os.pathsep.join(filter(None, [str(prefix / "bin"), base.get("PATH")])),
        )
        proc = subprocess.run(
            ["bash", "-x", str(script)], env=env, cwd=prefix, stdin=subprocess.DEVNULL, capture_output=True, text=True
        )
        said = messages.read_text(errors="replace").strip() if messages.is_file() else ""
        messages.unlink(missing_ok=True)
        if said:
            print(f"env: {name}: {said}", file=sys.stderr)
        if proc.returncode != 0:
            output = "\n".join(x for x in (said, proc.stdout.strip(), proc.stderr.strip()) if x)[-3000:]
            raise UserError(
                f"the post-link script of package {name} {r.version} (bin/.{name}-post-link.sh) failed "
                f"(exit {proc.returncode}):\n{output}\n  the package does not work without it: pin another "
                "build or version of it in project.yml ('packages:'), or leave it out"
            )


def compile_pyc(prefix: Path) -> None:
    """Precompile the environment's Python files, deterministically (unchecked-hash pycs)."""
    python = prefix / "bin" / "python"
    if not python.exists():
        return
    print("env: compiling .pyc files", file=sys.stderr, flush=True)
    # -s/-p: the .pyc files record paths without the build prefix (Python
    # uses the real path of the source when it loads them). -f and no
    # bytecode from the imports of compileall itself: otherwise the modules
    # it imports keep .pyc files that name the build path.
    subprocess.run(
        [
            str(python),
            "-m",
            "compileall",
            "-q",
            "-f",
            "-j",
            "0",
            "--invalidation-mode",
            "unchecked-hash",
            "-s",
            str(prefix),
            "-p",
            "/",
            str(prefix / "lib"),
        ],
        check=False,
        stdout=subprocess.DEVNULL,
        env={"PATH": "/usr/bin:/bin", "SOURCE_DATE_EPOCH": "0", "PYTHONDONTWRITEBYTECODE": "1"},
    )
    for pyc in prefix_pycs(prefix):
        pyc.unlink(missing_ok=True)


def prefix_pycs(prefix: Path) -> list[Path]:
    """.pyc files compiled from sources that hold the install prefix (files
    with a prefix placeholder, e.g. _sysconfigdata): conda-unpack rewrites the
    source on the target, and an unchecked-hash .pyc would keep the build path."""
    found = []
    for _meta, record in env_records(prefix):
        for entry in (record.get("paths_data") or {}).get("paths") or []:
            rel = entry.get("_path", "")
            if entry.get("prefix_placeholder") and rel.endswith(".py"):
                source = prefix / rel
                found += sorted(source.parent.glob(f"__pycache__/{source.stem}.*.pyc"))
    return found


# The child's exit code when it removed broken package cache entries: the
# parent installs again in a fresh process (the failed installer's threads
# are gone with the old one, so nothing writes into the prefix any more).
REFETCH = 75


def install(lock: Path, prefix: Path, cache_dir: Path, platform: str, refetch: bool = True) -> int:
    """Install the lock into prefix (runs inside the child process); REFETCH
    when a package cache entry was broken and has been removed (refetch: else
    a UserError naming the cache)."""
    import asyncio

    import rattler
    from rattler.exceptions import InstallerError

    from portable_env.lock import read_records  # the lock reader (imported here: pack needs none of it)

    records = read_records(lock, platform)
    print(f"env: installing {len(records)} packages into {prefix}", file=sys.stderr, flush=True)
    try:
        asyncio.run(rattler.install(records, target_prefix=prefix, cache_dir=cache_dir, show_progress=False))
    except InstallerError as exc:
        # A cache entry with files deleted fails to link: drop the entries
        # the error names; the parent installs once more (they are fetched again).
        broken = sorted(set(re.findall(re.escape(str(cache_dir)) + r"/([^/\s]+)/", str(exc))))
        if not broken:
            raise UserError(f"installing into {prefix} failed: {exc}") from None
        if not refetch:
            raise UserError(
                f"installing into {prefix} failed: {exc}\n  delete the package cache {cache_dir} and run again "
                "(make recreates every environment that needs the deleted packages, fetching them again)"
            ) from None
        print(
            f"env: the package cache had incomplete entries ({', '.join(broken)}); removed them, installing again",
            file=sys.stderr,
            flush=True,
        )
        for name in broken:
            shutil.rmtree(cache_dir / name, ignore_errors=True)
        return REFETCH
    # rattler leaves its cache marker in the prefix; it names the build path
    # and is no part of the environment.
    (prefix / "CACHEDIR.TAG").unlink(missing_ok=True)
    post_link_scripts(prefix, list(rattler.RepoDataRecord.sort_topologically(records)))
    marker = os.environ.get(FAULT_ENV)
    if marker and not os.path.exists(marker):
        Path(marker).touch()
        os.kill(os.getpid(), signal.SIGSEGV)
    return 0


def run_child(lock: Path, prefix: Path, cache_dir: Path, platform: str, refetch: bool = True) -> int:
    """Run install() in a child process; its return code (negative: killed by that signal)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SCRIPTS), env.get("PYTHONPATH")]))
    return subprocess.call(
        [
            sys.executable,
            "-m",
            "portable_env.env",
            "--lock",
            str(lock),
            "--prefix",
            str(prefix),
            "--cache-dir",
            str(cache_dir),
            "--platform",
            platform,
            *([] if refetch else ["--no-refetch"]),
        ],
        env=env,
    )


def create(lock: Path, prefix: Path, cache_dir: Path, platform: str, compile_: bool = False, tries: int = 2) -> None:
    """(Re)create prefix from lock, retrying when the installer process dies; UserError when it cannot."""
    refetched = False
    attempt = 0
    while attempt < tries:
        shutil.rmtree(prefix, ignore_errors=True)
        rc = run_child(lock, prefix, cache_dir, platform, refetch=not refetched)
        if rc == 0:
            if compile_:
                compile_pyc(prefix)
            return
        shutil.rmtree(prefix, ignore_errors=True)
        if rc == REFETCH and not refetched:
            refetched = True  # broken cache entries removed: once more, in a new process
            continue
        if rc > 0:  # a reported error (bad lock, missing package): retrying will not help
            raise UserError(f"could not create {prefix} from {lock} (see above); the partial environment was removed")
        attempt += 1
        print(f"env: the installer died (signal {-rc}) on attempt {attempt} of {tries}", file=sys.stderr)
    raise UserError(
        f"the installer kept dying; {prefix} was removed. Run the same make command again; "
        f"if it keeps failing, run with V=1 and delete the package cache {cache_dir} "
        "(make then recreates every environment that needs it, fetching its packages again)."
    )


def _child_main() -> int:
    """The child process: install the lock into the prefix (paths made absolute)."""
    ap = argparse.ArgumentParser(prog="portable_env.env", description="install a lock (create-env's child)")
    ap.add_argument("--lock", type=Path, required=True)
    ap.add_argument("--prefix", type=Path, required=True)
    ap.add_argument("--cache-dir", type=Path, required=True)
    ap.add_argument("--platform", required=True)
    ap.add_argument("--no-refetch", action="store_true", help="a broken cache entry is an error (second try)")
    args = ap.parse_args()
    return install(args.lock, args.prefix.resolve(), args.cache_dir.resolve(), args.platform, not args.no_refetch)


if __name__ == "__main__":
    from portable_env.rattler_exit import run_and_exit

    run_and_exit(_child_main, "env")
