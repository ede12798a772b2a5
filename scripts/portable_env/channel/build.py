"""The channel build: wheels and the host python -> checked, indexed packages, swapped in whole."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from portable_env.channel.common import Tools, find_tools, human_size, log, map_parallel, step
from portable_env.channel.convert import convert_wheel
from portable_env.channel.hostpython import build_python_abi_package, build_python_package
from portable_env.channel.index import index_channel, locked, solve_check, swap_into_place, unsatisfied_depends
from portable_env.channel.inputs import (
    STAMP,
    Host,
    WheelPin,
    builder_source,
    collect_inputs,
    conda_name_for,
    host_info,
    inputs_digest,
    is_up_to_date,
    parse_wheel_list,
    tool_versions,
)
from portable_env.channel.wheels import download_wheel, find_cached_wheel, wheel_info, wheel_tag_ranks
from portable_env.errors import UserError

MANIFEST = "manifest.json"


@dataclass(frozen=True)
class Built:
    """A package placed in the staging channel."""

    name: str
    version: str
    build: str
    subdir: str
    file: str
    pypi_name: str | None
    imports: tuple[str, ...]


def conda_names_of(pins: Sequence[WheelPin]) -> dict[WheelPin, str]:
    """The conda name of every pinned wheel; refuses two packages of one name."""
    from whl2conda.api.stdrename import load_std_renames

    std_renames = load_std_renames(update=False)
    conda_names = {pin: conda_name_for(pin, std_renames) for pin in pins}
    names = list(conda_names.values())
    clash = sorted({n for n in names if names.count(n) > 1} | ({"python", "python_abi"} & set(names)))
    if clash:
        raise UserError(
            f"wheel list: more than one package would be named {', '.join(clash)} "
            "(python and python_abi are made from the host interpreter); "
            "drop a line or rename it with 'as conda-name'"
        )
    return conda_names


def gather_wheels(pins: Sequence[WheelPin], cache: Path, tools: Tools, verbose: bool) -> dict[WheelPin, Path]:
    """The wheel of every pin: from the cache, else downloaded into it (4 at a time)."""
    ranks = wheel_tag_ranks()
    wheels: dict[WheelPin, Path] = {}
    missing: list[WheelPin] = []
    for pin in pins:
        cached = find_cached_wheel(cache, pin, ranks)
        if cached:
            wheels[pin] = cached
        else:
            missing.append(pin)
    if wheels:
        log(f"{len(wheels)} of {len(pins)} wheels found in {cache}")

    def fetch(pin: WheelPin) -> Path:
        start = time.monotonic()
        path = download_wheel(pin, cache, ranks, tools, verbose)
        log(f"downloaded {path.name} ({human_size(path.stat().st_size)}) ... {time.monotonic() - start:.1f}s")
        return path

    for pin, path in zip(missing, map_parallel(fetch, missing, 4), strict=True):
        wheels[pin] = path
    return wheels


def make_packages(
    staging: Path,
    work: Path,
    wheels: dict[WheelPin, Path],
    conda_names: dict[WheelPin, str],
    host: Host,
    tools: Tools,
    verbose: bool,
) -> list[dict[str, Any]]:
    """Convert every wheel and package the host python, in parallel; their index.json dicts."""

    def convert(pin: WheelPin) -> dict[str, Any]:
        start = time.monotonic()
        wheel = wheels[pin]
        pure, timestamp, _imports = wheel_info(wheel)
        index = convert_wheel(wheel, conda_names[pin], pure, timestamp, work, staging, tools, verbose)
        log(f"converted {index['name']}-{index['version']} ({index['subdir']}) ... {time.monotonic() - start:.1f}s")
        return index

    def make_python(_: None) -> dict[str, Any]:
        start = time.monotonic()
        index = build_python_package(host, work, staging, tools, verbose)
        log(f"packaged python-{host.version} from {host.prefix} ... {time.monotonic() - start:.1f}s")
        return index

    # Largest first keeps both cores busy to the end.
    order = sorted(wheels, key=lambda p: -wheels[p].stat().st_size)
    jobs: list[tuple[Callable[[Any], dict[str, Any]], Any]] = [(make_python, None)]
    jobs += [(convert, pin) for pin in order]
    indexes: list[dict[str, Any]] = map_parallel(lambda job: job[0](job[1]), jobs, os.cpu_count() or 2)
    python_index = indexes[0]
    indexes.append(build_python_abi_package(host, work, staging, python_index["timestamp"] // 1000))
    return indexes


def check_and_index(staging: Path, work: Path, indexes: Sequence[dict[str, Any]], host: Host) -> None:
    """Refuse unsatisfiable dependencies, write the repodata, solve everything together."""
    with step("checked dependencies"):
        problems = unsatisfied_depends(indexes)
        if problems:
            raise UserError(
                "unsatisfiable dependencies in the channel:\n    "
                + "\n    ".join(problems)
                + "\n  add the missing packages to the wheel list (pin 'name==version'; "
                "'name==version as conda-name' sets the conda name)"
            )
    with step(f"indexed the channel ({', '.join(sorted(p.name for p in staging.iterdir() if p.is_dir()))})"):
        index_channel(staging)
    with step("solved all packages together"):
        solve_check(staging, sorted({ix["name"] for ix in indexes}), host, work / "rattler-cache")


def build(
    staging: Path, work: Path, pins: list[WheelPin], cache: Path, host: Host, tools: Tools, verbose: bool
) -> list[Built]:
    """Build every package into `staging`, check and index it."""
    conda_names = conda_names_of(pins)
    for sd in ("noarch", host.subdir):
        (staging / sd).mkdir(parents=True, exist_ok=True)
    wheels = gather_wheels(pins, cache, tools, verbose)
    indexes = make_packages(staging, work, wheels, conda_names, host, tools, verbose)
    check_and_index(staging, work, indexes, host)

    by_conda = {conda_names[p]: p for p in pins}
    built: list[Built] = []
    for ix in sorted(indexes, key=lambda i: i["name"]):
        pin = by_conda.get(ix["name"])
        imports: tuple[str, ...] = wheel_info(wheels[pin])[2] if pin else ()
        built.append(
            Built(
                ix["name"],
                str(ix["version"]),
                ix["build"],
                ix["subdir"],
                f"{ix['subdir']}/{ix['name']}-{ix['version']}-{ix['build']}.conda",
                pin.name if pin else None,
                imports,
            )
        )
    return built


def write_manifest(channel: Path, built: Sequence[Built], host: Host) -> None:
    """channel/manifest.json: what is in the channel, with import names."""
    doc = {
        "python": {"version": host.version, "from": str(host.prefix), "subdir": host.subdir},
        "packages": [
            {
                "name": b.name,
                "version": b.version,
                "build": b.build,
                "subdir": b.subdir,
                "file": b.file,
                "pypi_name": b.pypi_name,
                "imports": list(b.imports),
            }
            for b in built
        ],
    }
    (channel / MANIFEST).write_text(json.dumps(doc, indent=2) + "\n")


def input_digest(wheel_list: bytes, host: Host) -> str:
    """The hash of everything the channel is built from (compared with its STAMP)."""
    return inputs_digest(collect_inputs(wheel_list, builder_source(), host, tool_versions()))


def build_channel(out_arg: Path, wheels_arg: Path, cache_arg: Path | None = None, verbose: bool = False) -> int:
    """Build the channel `out_arg` from the wheel list `wheels_arg` unless it is up to date.

    `cache_arg` is the wheel download cache (default: `wheels` beside the
    channel). Returns 0; raises UserError with the fix on a failure.
    """
    start = time.monotonic()
    out = Path(os.path.abspath(out_arg))
    try:
        wheel_list = wheels_arg.read_bytes()
    except OSError as e:
        raise UserError(f"cannot read the wheel list {wheels_arg}: {e.strerror}") from None
    host = host_info()
    digest = input_digest(wheel_list, host)
    subdirs = ("noarch", host.subdir)
    if is_up_to_date(out, digest, subdirs):
        log(f"channel up to date: {out_arg}")
        return 0
    pins = parse_wheel_list(wheel_list.decode("utf-8", "replace"), str(wheels_arg))
    tools = find_tools()
    out.parent.mkdir(parents=True, exist_ok=True)
    with locked(out.parent / f".{out.name}.lock"):
        if is_up_to_date(out, digest, subdirs):  # another build finished meanwhile
            log(f"channel up to date: {out_arg}")
            return 0
        cache = Path(os.path.abspath(cache_arg)) if cache_arg else out.parent / "wheels"
        log(f"building {out_arg} from {wheels_arg} ({len(pins)} wheels) and python {host.version}")
        staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
        work = Path(tempfile.mkdtemp(prefix=f".{out.name}.work-", dir=out.parent))
        try:
            built = build(staging, work, pins, cache, host, tools, verbose)
            write_manifest(staging, built, host)
            (staging / STAMP).write_text(digest + "\n")
            os.chmod(staging, 0o755)
            swap_into_place(staging, out)
        finally:
            shutil.rmtree(work, ignore_errors=True)
            shutil.rmtree(staging, ignore_errors=True)
    size = sum(p.stat().st_size for p in out.rglob("*.conda"))
    log(f"channel ready: {out_arg} ({len(built)} packages, {human_size(size)}) in {time.monotonic() - start:.1f}s")
    return 0
