"""The two multi-step transactions of the graph, so the Makefile stays one
command per rule (``scripts/build-step env|archive``).

env:     create the environment from the lock, unless the content gate says
         the lock (and the settings that shape the env) are what it was
         made from and no package file is missing.
archive: ship the project's code, check the env against the target machine
         (the lock's target, no ELF file needing a newer glibc), write the
         manifest into the env, pack it, verify the archive at another path,
         and only then give it its final name, its checksum, manifest and
         SBOM (the `checksum` sub-step: the env's manifest plus the
         archive's record, write-manifest --base, the archive read once for
         its sha256). An environment found incomplete here is recreated
         first, never packed.

Each sub-step is one of the executables (scripts/create-env, ship-code,
check-target, write-manifest, pack-env, verify-pack), run with a progress line.
The archive's sub-steps run in this process (their module's main() with
its command line), so conda-pack and cyclonedx are imported once and the ELF
files are read once (portable_env.glibc remembers each file's result) for
the target check and the manifest; creating the environment (rattler) stays
in child processes. The build checks each SBOM cheaply as it writes it
(sbom.check_sbom); the full strict CycloneDX validation, seconds of
imports, is the tests' (write-manifest --validate).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from portable_env import env, gate, glibc, manifest, pack, pypi, ship, verify
from portable_env.errors import UserError, run
from portable_env.rattler_exit import exit_without_finalizing
from portable_env.settings import Settings, load

SCRIPTS = Path(__file__).resolve().parent.parent


def step(project: str, label: str, cmd: list[str], in_process: bool = False) -> None:
    """Run one sub-step with a progress line and its duration; a failure
    (the sub-step printed why) stops the transaction. in_process: run the
    executable's main() here (run_script) instead of in a child process."""
    tag = f"[{project}] {label}"
    print(f"{tag} ...", file=sys.stderr, flush=True)
    start = time.monotonic()
    code = run_script(cmd) if in_process else subprocess.run(cmd).returncode
    took = f"{time.monotonic() - start:.1f}s"
    if code != 0:
        raise UserError(f"{tag}: FAILED after {took} (exit {code}); see the messages above")
    print(f"{tag}: done in {took}", file=sys.stderr, flush=True)


# The executables run in this process: scripts/<name> -> its module's main(argv).
IN_PROCESS: dict[str, Callable[[list[str] | None], int]] = {
    "ship-code": ship.main,
    "check-target": glibc.main,
    "write-manifest": manifest.main,
    "pack-env": pack.main,
    "verify-pack": verify.main,
}


def run_script(cmd: list[str]) -> int:
    """Exit code of an executable's main() (IN_PROCESS) run in this process
    with cmd as its command line (what a child process would return)."""
    main = IN_PROCESS[Path(cmd[0]).name]
    saved = sys.argv
    sys.argv = list(cmd)
    try:
        code = main(cmd[1:])
    except SystemExit as exc:  # argparse
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except Exception:  # a bug in the sub-step: its traceback, as a child process would print it
        traceback.print_exc()
        code = 1
    finally:
        sys.argv = saved
        sys.stdout.flush()
        sys.stderr.flush()
    return int(code or 0)


def tool(name: str) -> str:
    """Path of an executable in scripts/."""
    return str(SCRIPTS / name)


def env_salt(s: Settings) -> str:
    """The settings that shape the environment beyond the lock."""
    return f"compile={s.compile}"


def env_complete(prefix: Path) -> bool:
    """True when every file the env's packages recorded is there."""
    return (prefix / "conda-meta").is_dir() and env.check(prefix) == 0


def env_locks(s: Settings, lock: Path) -> list[str]:
    """The lock files the environment is made from: the conda lock, and the PyPI lock beside it if any."""
    beside = pypi.lock_path(lock, s.platform)
    return [str(lock)] + ([str(beside)] if beside.is_file() else [])


def create_env(s: Settings, lock: Path, prefix: Path, stamp: Path, pkgs: str) -> None:
    """(Re)create the environment from the lock (then its PyPI packages) and record the gate."""
    stamp.unlink(missing_ok=True)
    cmd = [
        tool("create-env"),
        "--lock",
        str(lock),
        "--prefix",
        str(prefix),
        "--cache-dir",
        pkgs,
        "--platform",
        s.platform,
    ] + (["--compile"] if s.compile else [])
    step(s.project, "create", cmd)
    pypi_lock = pypi.lock_path(lock, s.platform)
    if pypi_lock.is_file():
        step(
            s.project,
            "pypi",
            [tool("install-pypi"), "--lock", str(pypi_lock), "--prefix", str(prefix), "--cache-dir"]
            + [str(Path(pkgs).with_name("pypi"))]
            + (["--compile"] if s.compile else []),
        )
    gate.record(stamp, gate.digest(env_locks(s, lock), env_salt(s)))


def env_main(args: argparse.Namespace) -> int:
    """build-step env: the environment, recreated only when needed."""
    s = load(args.settings)
    value = gate.digest(env_locks(s, args.lock), env_salt(s))
    if gate.is_current(args.stamp, value, [str(args.prefix / "conda-meta")]) and env_complete(args.prefix):
        os.utime(args.stamp)
        print(f"[{s.project}] env: inputs unchanged, kept {args.prefix}", file=sys.stderr)
        return 0
    create_env(s, args.lock, args.prefix, args.stamp, args.pkgs)
    return 0


def archive_main(args: argparse.Namespace) -> int:
    """build-step archive: ship, manifest, pack, verify, then publish the
    archive under its final name (in its build folder)."""
    s = load(args.settings)
    out: Path = args.out
    outputs = [out, Path(f"{out}.sha256"), args.manifest, args.sbom]
    inputs = [str(p) for p in (args.stamp, args.deps, args.env_file, args.settings, args.lock)]
    stamp = Path(f"{out}.stamp")
    value = gate.digest(inputs, "archive")
    if gate.is_current(stamp, value, [str(p) for p in outputs]):
        for p in [*outputs, stamp]:
            os.utime(p)
        print(f"[{s.project}] pack: inputs unchanged, kept {out}", file=sys.stderr)
        return 0
    stamp.unlink(missing_ok=True)
    if not env_complete(args.prefix):
        print(f"[{s.project}] archive: {args.prefix} is incomplete; recreating it from the lock", file=sys.stderr)
        create_env(s, args.lock, args.prefix, args.stamp, args.pkgs)
    meta = args.prefix / "share" / "portable-env"
    unverified = Path(f"{out}.unverified")
    locks = ["--lock", str(args.lock), "--lock", str(args.explicit)]
    manifest_args = ["--prefix", str(args.prefix), "--deps", str(args.deps), "--settings", str(args.settings), *locks]
    try:
        step(
            s.project,
            "ship",
            [
                tool("ship-code"),
                "--project-dir",
                s.project_dir,
                "--prefix",
                str(args.prefix),
                "--settings",
                str(args.settings),
            ],
            in_process=True,
        )
        step(
            s.project,
            "target",
            [
                tool("check-target"),
                "--prefix",
                str(args.prefix),
                "--settings",
                str(args.settings),
                "--explicit",
                str(args.explicit),
            ],
            in_process=True,
        )
        step(
            s.project,
            "manifest",
            [
                tool("write-manifest"),
                *manifest_args,
                "--out-manifest",
                str(meta / "manifest.json"),
                "--out-sbom",
                str(meta / "sbom.cdx.json"),
            ],
            in_process=True,
        )
        step(
            s.project,
            "pack",
            [tool("pack-env"), "--prefix", str(args.prefix), "--out", str(unverified), "--settings", str(args.settings)]
            + (["-v"] if args.verbose else []),
            in_process=True,
        )
        step(
            s.project,
            "verify",
            [
                tool("verify-pack"),
                str(unverified),
                "--deps",
                str(args.deps),
                "--env-file",
                str(args.env_file),
                "--settings",
                str(args.settings),
                "--build-prefix",
                str(args.prefix.resolve()),
                "--workdir",
                str(args.workdir),
            ],
            in_process=True,
        )
        os.replace(unverified, out)
    finally:
        unverified.unlink(missing_ok=True)
    step(
        s.project,
        "checksum",
        [
            tool("write-manifest"),
            "--base",
            str(meta / "manifest.json"),
            "--tarball",
            str(out),
            "--out-sha256",
            f"{out}.sha256",
            "--out-manifest",
            str(args.manifest),
            "--out-sbom",
            str(args.sbom),
        ],
        in_process=True,
    )
    gate.record(stamp, value)
    return 0


def main(argv: list[str] | None = None) -> int:
    """scripts/build-step: run the env or the archive transaction."""
    ap = argparse.ArgumentParser(
        prog="build-step", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = ap.add_subparsers(dest="command", required=True)
    for name in ("env", "archive"):
        p = sub.add_parser(name)
        p.add_argument("--settings", type=Path, required=True, help="build/P/KEY/settings.json")
        p.add_argument("--lock", type=Path, required=True, help="the rattler lock")
        p.add_argument("--prefix", type=Path, required=True, help="the environment")
        p.add_argument("--stamp", type=Path, required=True, help="the environment's gate stamp")
        p.add_argument("--pkgs", default="build/pkgs", help="the package cache")
    ar = sub.choices["archive"]
    ar.add_argument("--explicit", type=Path, required=True, help="the @EXPLICIT lock")
    ar.add_argument("--deps", type=Path, required=True)
    ar.add_argument("--env-file", type=Path, required=True)
    ar.add_argument("--out", type=Path, required=True, help="the verified archive to write")
    ar.add_argument("--manifest", type=Path, required=True)
    ar.add_argument("--sbom", type=Path, required=True)
    ar.add_argument("--workdir", type=Path, default=Path("build/tmp"))
    ar.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args(argv)
    code = run(lambda: env_main(args) if args.command == "env" else archive_main(args))
    if "rattler" in sys.modules:  # a sub-step used rattler here (the lock checks)
        exit_without_finalizing(code)
    return code
