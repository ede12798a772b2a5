"""Wheels: the download cache (pip download for this interpreter) and what a wheel holds."""

from __future__ import annotations

import calendar
import os
import platform
import re
import shutil
import sys
import tempfile
import zipfile
from collections.abc import Sequence
from pathlib import Path

from portable_env.channel.common import Tools, run_tool
from portable_env.channel.inputs import WheelPin
from portable_env.errors import UserError


def wheel_tag_ranks() -> dict[str, int]:
    """Wheel tags the running interpreter accepts, best first."""
    from packaging.tags import sys_tags

    return {str(tag): rank for rank, tag in enumerate(sys_tags())}


def find_cached_wheel(cache: Path, pin: WheelPin, ranks: dict[str, int]) -> Path | None:
    """Best cached wheel for `pin` this interpreter can use, if any."""
    from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename
    from packaging.version import InvalidVersion, Version

    try:
        want = Version(pin.version)
    except InvalidVersion as e:
        raise UserError(f"line {pin.line}: {pin.name}=={pin.version}: {e}") from None
    best: tuple[int, Path] | None = None
    for path in cache.glob("*.whl") if cache.is_dir() else ():
        try:
            name, version, _build, tags = parse_wheel_filename(path.name)
        except (InvalidWheelFilename, InvalidVersion):
            continue
        if name != canonicalize_name(pin.name) or version != want:
            continue
        rank = min((ranks[str(t)] for t in tags if str(t) in ranks), default=None)
        if rank is not None and (best is None or rank < best[0]):
            best = (rank, path)
    return best[1] if best else None


def download_wheel(pin: WheelPin, cache: Path, ranks: dict[str, int], tools: Tools, verbose: bool) -> Path:
    """pip-download the wheel of `pin` for this interpreter into `cache`."""
    from packaging.tags import parse_tag

    tags = [next(iter(parse_tag(t))) for t in ranks]
    platforms = sorted({t.platform for t in tags} - {"any"})
    abis = sorted({t.abi for t in tags})
    vi = sys.version_info
    cache.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".download-", dir=cache))
    try:
        cmd = [
            tools.python,
            "-m",
            "pip",
            "download",
            "--quiet",
            "--no-input",
            "--disable-pip-version-check",
            "--progress-bar",
            "off",
            "--only-binary=:all:",
            "--no-deps",
            "--implementation",
            "cp",
            "--python-version",
            f"{vi.major}.{vi.minor}",
        ]
        cmd += [arg for abi in abis for arg in ("--abi", abi)]
        cmd += [arg for plat in platforms for arg in ("--platform", plat)]
        cmd += ["--dest", str(tmp), f"{pin.name}=={pin.version}"]
        run_tool(
            cmd,
            f"pip download {pin.name}=={pin.version}",
            f"check network access to PyPI (or pip's index settings), and that {pin.name} "
            f"{pin.version} publishes a wheel for cp{vi.major}{vi.minor} on {platform.machine()} "
            "(otherwise pin another version)",
            verbose,
        )
        got = list(tmp.glob("*.whl"))
        if len(got) != 1:
            raise UserError(f"pip download {pin.name}=={pin.version} produced {len(got)} wheels, expected 1")
        dest = cache / got[0].name
        os.replace(got[0], dest)
        return dest
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def wheel_info(wheel: Path) -> tuple[bool, int, tuple[str, ...]]:
    """(pure python?, newest entry time in epoch seconds, top-level import names)."""
    with zipfile.ZipFile(wheel) as zf:
        infos = zf.infolist()
        names = [i.filename for i in infos]
        wheel_meta = next((n for n in names if re.fullmatch(r"[^/]+\.dist-info/WHEEL", n)), None)
        root_is_pure = True
        if wheel_meta:
            text = zf.read(wheel_meta).decode("utf-8", "replace")
            root_is_pure = bool(re.search(r"^Root-Is-Purelib:\s*true\s*$", text, re.MULTILINE | re.IGNORECASE))
        newest = max((calendar.timegm((*i.date_time, 0, 0, 0)) for i in infos), default=315532800)
    return root_is_pure, newest, import_names(names)


def import_names(paths: Sequence[str]) -> tuple[str, ...]:
    """Top-level importable names among wheel (or site-packages) paths.

    Private names (`_yaml`) are dropped unless there is nothing else.
    """
    found: set[str] = set()
    for path in paths:
        first, sep, _rest = path.partition("/")
        if sep:
            if first.endswith((".dist-info", ".data", ".libs")) or first == "__pycache__":
                continue
            candidate = first
        elif first.endswith((".py", ".so", ".pyd")):
            candidate = first.split(".", 1)[0]
        else:
            continue
        if candidate.isidentifier():
            found.add(candidate)
    public = {n for n in found if not n.startswith("_")}
    return tuple(sorted(public or found))
