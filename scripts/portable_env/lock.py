"""Locks: solve an environment.yml with py-rattler, write and read the lock files.

Two files per lock, each written through a temporary name:

- the rattler lock (``rattler-lock.yml``: name, version, build, URL, sha256,
  depends), written and read only through ``rattler.LockFile`` (``read_records``
  is the one reader);
- an ``@EXPLICIT`` spec (``conda-<platform>.lock``: url#sha256 lines) that conda
  and micromamba install from without solving; its header records the sha256
  of the environment.yml it was solved from (``recorded_hash``).

Solving is skipped when that recorded hash equals the current environment.yml's,
so a fresh clone or a touched file never re-solves.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from portable_env.errors import UserError
from portable_env.files import spec_name, write_atomic

HASH_LINE = "# spec-sha256: "
EXPLICIT_MARK = "@EXPLICIT"


# ---------------------------------------------------------------- the spec hash


def spec_hash(env_file: Path) -> str:
    """sha256 of the environment.yml bytes."""
    return hashlib.sha256(env_file.read_bytes()).hexdigest()


def recorded_hash(explicit: Path) -> str | None:
    """The spec hash recorded in an explicit lock's header, if any."""
    try:
        for line in explicit.read_text().splitlines():
            if line.startswith(HASH_LINE):
                return line[len(HASH_LINE) :].strip()
            if line.startswith(EXPLICIT_MARK):
                break
    except OSError:
        return None
    return None


# ---------------------------------------------------------------- reading locks


def read_records(lock: Path, platform: str) -> list[Any]:
    """The locked ``rattler.RepoDataRecord`` s of the lock's default environment for platform.

    The one reader of a rattler lock. Raises UserError when the file is missing,
    unreadable or has no packages for platform.
    """
    import rattler
    from rattler.exceptions import ParseCondaLockError

    try:
        env = rattler.LockFile.from_path(lock).default_environment()
    except (ParseCondaLockError, OSError) as exc:
        raise UserError(
            f"{lock} is not a readable lock file ({exc}); restore it "
            f"(git checkout -- {lock}) or re-solve it with make lock"
        ) from None
    # conda_repodata_records_for_platform() panicked in py-rattler 0.28: take the mapping.
    records = (env.conda_repodata_records() if env else {}).get(platform)
    if not records:
        raise UserError(f"{lock} has no packages for {platform}; re-solve with make lock")
    return list(records)


def _hex(digest: bytes | str | None) -> str:
    """A record's sha256 as hex ('' when absent)."""
    if digest is None:
        return ""
    return digest.hex() if isinstance(digest, bytes) else str(digest)


def package_hashes(lock: Path, platform: str) -> dict[str, str]:
    """Package file name -> sha256 of the platform's packages, from a rattler lock or an @EXPLICIT lock."""
    try:
        text = lock.read_text()
    except OSError as exc:
        raise UserError(f"{lock}: cannot read the lock ({exc.strerror}); re-solve with make lock") from None
    if EXPLICIT_MARK not in text:
        return {r.file_name: _hex(r.sha256) for r in read_records(lock, platform)}
    found: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith(("#", "@")) and "#" in line:
            url, digest = line.rsplit("#", 1)
            found[url.rsplit("/", 1)[-1]] = digest
    return found


# ---------------------------------------------------------------- solving


@dataclass(frozen=True)
class EnvSpec:
    """What lock-env reads from an environment.yml."""

    name: str
    channels: list[str]
    specs: list[str]


def read_env_file(env_file: Path) -> EnvSpec:
    """The name, channels and match specs of an environment.yml."""
    try:
        data = yaml.safe_load(env_file.read_text()) or {}
    except OSError as exc:
        raise UserError(f"{env_file}: cannot read it ({exc.strerror}); run make env-file") from None
    except yaml.YAMLError as exc:
        raise UserError(f"{env_file}: not valid YAML ({exc}); run make env-file to render it again") from None
    if not isinstance(data, dict):
        raise UserError(f"{env_file}: must be a mapping (name, channels, dependencies); run make env-file")
    specs = data.get("dependencies") or []
    bad = [s for s in specs if not isinstance(s, str)]
    if bad:
        raise UserError(f"{env_file}: only conda match specs are supported in dependencies, not {bad[0]!r}")
    channels = data.get("channels") or []
    if not channels:
        raise UserError(f"{env_file}: no channels; set 'channels:' in the project's project.yml or CHANNELS=...")
    return EnvSpec(str(data.get("name", "")), [str(c) for c in channels], list(specs))


def scan_results(deps_file: Path | None) -> dict[str, Any]:
    """deps.yml (imports: package -> import name -> ["file:line", ...], on_demand: [...]), if given."""
    if not deps_file or not deps_file.exists():
        return {}
    try:
        data = yaml.safe_load(deps_file.read_text()) or {}
    except (OSError, yaml.YAMLError):
        return {}  # only used to explain a failure: never a failure of its own
    return data if isinstance(data, dict) else {}


def missing_message(missing: list[str], channels: list[str], scan: dict[str, Any], settings: str) -> str:
    """Explain packages absent from every channel, with the fix for each."""
    lines = [f"no package of that name in the channels ({', '.join(channels)}):"]
    for name in missing:
        imports = (scan.get("imports") or {}).get(name) or {}
        if imports:
            for imp, where in imports.items():
                lines.append(
                    f"  - '{name}': import '{imp}' (in {', '.join(where[:3])}){' ...' if len(where) > 3 else ''}"
                )
                lines.append(
                    f"      if '{imp}' comes from another conda package, add to {settings}:"
                    f"  imports: {{{imp}: <package>}}"
                )
                lines.append(f'      if it is not needed, add:  imports: {{{imp}: ""}}')
            if name in (scan.get("on_demand") or []):
                lines.append(
                    f"      it is only imported on demand: `install_on_demand: false` in "
                    f"{settings} leaves out every such package"
                )
        else:
            lines.append(f"  - '{name}': listed in 'packages:' of {settings} (or the template); fix or remove it")
    return "\n".join(lines)


async def _missing_names(channels: list[str], platform: str, names: list[str], gateway: Any) -> list[str]:
    """Names that no channel has a package for (on platform or noarch)."""
    result = await gateway.query(channels, [platform, "noarch"], names, recursive=False)
    found = {r.name.normalized for group in result for r in group}
    return [n for n in names if n.lower() not in found]


async def solve(
    channels: list[str], specs: list[str], platform: str, cache_dir: Path, scan: dict[str, Any], settings: str
) -> list[Any]:
    """Solve specs against channels for one platform; UserError when impossible."""
    import rattler
    from rattler.exceptions import FetchRepoDataError, GatewayError, InvalidMatchSpecError, SolverError

    gateway = rattler.Gateway(cache_dir=cache_dir)
    try:
        missing = await _missing_names(channels, platform, sorted({spec_name(s) for s in specs}), gateway)
        if missing:
            raise UserError(missing_message(missing, channels, scan, settings))
        return list(
            await rattler.solve(
                sources=channels,
                specs=specs,
                gateway=gateway,
                platforms=[rattler.Platform(platform), rattler.Platform("noarch")],
                virtual_packages=rattler.VirtualPackage.detect(),
            )
        )
    except (FetchRepoDataError, GatewayError) as exc:
        raise UserError(
            f"cannot read the channels {channels}: {exc}\n"
            "  check the channel URL (a local channel needs <dir>/<subdir>/repodata.json) "
            "and the network, or set CHANNELS=..."
        ) from None
    except InvalidMatchSpecError as exc:
        raise UserError(f"invalid package spec: {exc}\n  fix it in {settings} ('packages:')") from None
    except SolverError as exc:
        raise UserError(
            f"the specs cannot be satisfied together: {exc}\n"
            f"  relax the pins in {settings} ('packages:', 'python:') or PYTHON=..."
        ) from None


# ---------------------------------------------------------------- writing locks


def explicit_text(records: list[Any], platform: str, name: str, digest: str) -> str:
    """The @EXPLICIT lock: a header, then url#sha256 in install order."""
    import rattler

    by_name = {r.name.normalized: r for r in records}
    ordered = [by_name[p.name.normalized] for p in rattler.RepoDataRecord.sort_topologically(records)]
    lines = [
        f"# Exact environment of project '{name}', generated by scripts/lock-env (portable-env).",
        f"# Install without solving:  conda create -n {name} --file <this file>",
        f"#                      or:  micromamba create -n {name} -f <this file>",
        "# (the url#sha256 lines need conda >= 24.9)",
        f"# platform: {platform}",
        f"{HASH_LINE}{digest}",
        EXPLICIT_MARK,
    ]
    lines += [f"{r.url}#{_hex(r.sha256)}" for r in ordered]
    return "\n".join(lines) + "\n"


def write_lock(records: list[Any], channels: list[str], platform: str, path: Path) -> None:
    """Write the rattler lock file through a temporary name."""
    import rattler

    lock = rattler.LockFile([rattler.LockPlatform(platform)])
    lock.set_channels("default", [rattler.LockChannel(c) for c in channels])
    for r in sorted(records, key=lambda r: r.name.normalized):
        lock.add_conda_package("default", rattler.LockPlatform(platform), r)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        lock.to_path(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


# ---------------------------------------------------------------- the step


def _current_hash(env_file: Path) -> str:
    """spec_hash of the environment.yml being locked; UserError when it cannot be read."""
    try:
        return spec_hash(env_file)
    except OSError as exc:
        raise UserError(f"{env_file}: cannot read it ({exc.strerror}); run make env-file") from None


def check(env_file: Path, lock: Path, explicit: Path) -> int:
    """Whether the lock is current for env_file: 0 (current) or 1 (stale), with a message."""
    if recorded_hash(explicit) == _current_hash(env_file) and lock.exists():
        print(f"lock is current: {explicit} was solved from this {env_file}")
        return 0
    why = "is missing" if not explicit.exists() else "was solved from a different environment.yml"
    print(f"lock is stale: {explicit} {why}; run make lock to re-solve", file=sys.stderr)
    return 1


def lock_env(
    env_file: Path,
    lock: Path,
    explicit: Path,
    platform: str,
    cache_dir: Path,
    deps: Path | None,
    settings_file: str,
    force: bool = False,
) -> None:
    """Solve env_file into lock + explicit, unless they were solved from the same content (and not force)."""
    digest = _current_hash(env_file)
    if recorded_hash(explicit) == digest and lock.exists() and not force:
        for p in (lock, explicit):
            os.utime(p)
        print(
            f"lock: {env_file} unchanged since the lock was solved; kept {explicit} (make lock re-solves)",
            file=sys.stderr,
        )
        return
    spec = read_env_file(env_file)
    print(
        f"lock: solving {len(spec.specs)} specs for {platform} against {', '.join(spec.channels)}",
        file=sys.stderr,
        flush=True,
    )
    records = asyncio.run(solve(spec.channels, spec.specs, platform, cache_dir, scan_results(deps), settings_file))
    write_lock(records, spec.channels, platform, lock)
    write_atomic(explicit, explicit_text(records, platform, spec.name, digest))
    local = [c for c in spec.channels if c.startswith("file:")]
    if local and "build" not in explicit.parts:
        print(
            f"lock: warning: {explicit} records local paths ({', '.join(local)}); it only installs "
            "where that channel exists. For a local channel prefer CHANNELS=..., which keeps its lock "
            "under build/",
            file=sys.stderr,
        )
    print(f"lock: {len(records)} packages -> {explicit}, {lock}", file=sys.stderr)
