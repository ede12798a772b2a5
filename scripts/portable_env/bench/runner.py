"""The whole benchmark: every section in order, the results dictionary and its files."""

from __future__ import annotations

import json
import os
import shlex
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from portable_env.bench import archives, builds, imports, synthetic
from portable_env.bench.machine import machine_info
from portable_env.bench.measure import CORES, log, rmtree
from portable_env.bench.report import markdown
from portable_env.bench.workspace import PROJECT, Compressors, Workspace


@dataclass(frozen=True)
class Options:
    """What to measure and where (scripts/bench's command line)."""

    out: Path
    runs: int
    quick: bool
    files: int  # of the synthetic scan project
    channel: str
    python: str
    keep: bool


def tree_bytes(root: Path) -> int:
    """Apparent size of every file under root."""
    return sum(os.lstat(os.path.join(d, f)).st_size for d, _s, fs in os.walk(root) for f in fs)


def run_all(ws: Workspace, opts: Options) -> dict[str, Any]:
    """Every measurement; the results dictionary."""
    started = time.perf_counter()
    ws.out.mkdir(parents=True, exist_ok=True)
    rmtree(ws.work)
    ws.work.mkdir(parents=True)
    machine = machine_info()
    sections: dict[str, float] = {}

    def section(name: str, fn: Callable[[], Any]) -> Any:
        start = time.perf_counter()
        result = fn()
        sections[name] = round(time.perf_counter() - start, 1)
        return result

    def setup() -> None:
        ws.ensure_channel()
        ws.setup_repo()

    section("setup", setup)
    built = section("build", lambda: builds.builds(ws))
    noop = section("noop", lambda: builds.noop(ws))
    log(f"noop: {noop['median_s'] * 1000:.0f} ms, no step ran: {noop['no_step_ran']}")
    pack = section("pack", lambda: archives.pack(ws))
    verify = section("verify", lambda: archives.verify(ws))
    build = builds.build_figures(built, pack, verify)
    imported = section("imports", lambda: imports.imports(ws, pack["tar.zst-3"]["size_bytes"]))
    scan = section("scan", lambda: synthetic.scan(ws, opts.files))
    full, slim = pack["tar.gz-4"]["size_bytes"], pack["tar.gz-4-slim"]["size_bytes"]
    machine["load_average_end"] = os.getloadavg()
    if machine["load_average_start"][0] > 0.5 * CORES:
        ws.notes.append(
            f"the machine was busy when the benchmark started (load average "
            f"{machine['load_average_start'][0]:.2f} on {CORES} cores): figures are noisier"
        )
    return {
        "machine": machine,
        "settings": {
            "runs": ws.runs,
            "quick": opts.quick,
            "scan_files": opts.files,
            "channel": ws.channel,
            "python": ws.python,
            "project": PROJECT,
            "gzip_tool": ws.tools.gzip[0],
            "env_bytes": tree_bytes(ws.env_dir),
            "command": shlex.join(ws.make_cmd("pack", pkgs=ws.pkgs_warm, cache=ws.cache)),
        },
        "noop": noop,
        "scan": scan,
        "build": build,
        "pack": pack,
        "verify": verify,
        "imports": imported,
        "slim": {
            "full_bytes": full,
            "slim_bytes": slim,
            "saved_bytes": full - slim,
            "saved_pct": round(100 * (full - slim) / full, 1),
            "ratio": round(slim / full, 3),
            "note": pack["tar.gz-4-slim"].get("slim_note", ""),
        },
        "notes": ws.notes,
        "section_s": sections,
        "total_s": round(time.perf_counter() - started, 1),
    }


def bench(opts: Options) -> int:
    """Run the benchmark; write OUT/results.json and OUT/results.md and print the report."""
    out = opts.out.resolve()
    tools = Compressors.detect()
    ws = Workspace(out=out, runs=opts.runs, channel=opts.channel, python=opts.python, tools=tools,
                   notes=list(tools.notes))  # fmt: skip
    try:
        results = run_all(ws, opts)
    finally:
        if not opts.keep:
            ws.cleanup()
    report = markdown(results)
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    (out / "results.md").write_text(report)
    print(report)
    log(f"wrote {out / 'results.json'} and {out / 'results.md'} in {results['total_s']:.0f}s")
    return 0
