"""Checking, indexing and publishing a channel: dependency closure, repodata, solve, swap."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import errno
import fcntl
import os
import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from portable_env.channel.inputs import Host
from portable_env.errors import UserError


def unsatisfied_depends(indexes: Sequence[dict[str, Any]]) -> list[str]:
    """One message per dependency that no package of the channel satisfies.

    `indexes` are the packages' index.json dicts; virtual packages (`__glibc`)
    are the installer's business and are skipped.
    """
    import rattler

    by_name: dict[str, list[Any]] = {}
    for ix in indexes:
        record = rattler.PackageRecord(
            name=ix["name"],
            version=str(ix["version"]),
            build=rattler.BuildString(ix["build"]),
            build_number=int(ix.get("build_number", 0)),
            subdir=ix["subdir"],
            depends=list(ix.get("depends", [])),
        )
        by_name.setdefault(ix["name"], []).append(record)
    problems: list[str] = []
    for ix in indexes:
        for dep in ix.get("depends", []):
            spec = rattler.MatchSpec(dep)
            name = spec.name.normalized
            if name.startswith("__"):
                continue
            candidates = by_name.get(name, [])
            if any(spec.matches(c) for c in candidates):
                continue
            have = ", ".join(sorted(f"{c.version} {c.build}" for c in candidates))
            why = f"only {name} {have} is in the channel" if candidates else f"no package '{name}' is in the channel"
            problems.append(f"{ix['name']}-{ix['version']} depends on '{dep}', but {why}")
    return problems


def index_channel(channel: Path) -> None:
    """Write <subdir>/repodata.json for every subdir with py-rattler."""
    from rattler.index import index_fs

    asyncio.run(index_fs(channel, force=True, write_zst=False, write_shards=False))
    with contextlib.suppress(OSError):
        (channel / ".tmp").rmdir()  # rattler's scratch directory, left empty


def solve_check(channel: Path, names: Sequence[str], host: Host, cache: Path) -> None:
    """Solve all packages together for this machine (its glibc), proving the channel is self-consistent."""
    import platform

    import rattler
    from rattler.exceptions import SolverError

    from portable_env.lock import Target, rattler_virtual_packages

    here = Target(glibc=platform.libc_ver()[1] or "2.17", cpu=host.machine)

    async def solve() -> list[Any]:
        return await rattler.solve(
            sources=[channel.as_uri()],
            specs=list(names),
            gateway=rattler.Gateway(cache_dir=cache),
            platforms=[rattler.Subdir(host.subdir), rattler.Subdir("noarch")],
            virtual_packages=rattler_virtual_packages(here, host.subdir),
        )

    try:
        asyncio.run(solve())
    except SolverError as e:  # names the conflict
        raise UserError(f"the packages of the new channel cannot be installed together:\n    {e}") from None


def swap_into_place(staging: Path, out: Path) -> None:
    """Replace `out` by `staging` atomically (renameat2 exchange where possible)."""
    if not out.exists():
        os.rename(staging, out)
        return
    if not out.is_dir() or out.is_symlink():
        raise UserError(f"{out} exists and is not a channel directory; remove it")
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        at_fdcwd, rename_exchange = -100, 2
        if libc.renameat2(at_fdcwd, os.fsencode(staging), at_fdcwd, os.fsencode(out), rename_exchange) == 0:
            shutil.rmtree(staging)  # now holds the old channel
            return
        if ctypes.get_errno() not in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
            raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()), str(out))
    except AttributeError:
        pass  # no renameat2 in this libc
    old = out.with_name(f".{out.name}.old-{os.getpid()}")
    os.rename(out, old)
    os.rename(staging, out)
    shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def locked(lock_path: Path) -> Iterator[None]:
    """Hold an exclusive lock so two builds of one channel do not race."""
    with open(lock_path, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
