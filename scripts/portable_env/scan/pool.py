"""Parse a project's sources on every core.

The sources are cut into contiguous slices of about equal bytes, each
parsed by parse.parse_sources in a forked worker, and the results joined in
source order: the same Parsed as one process gives (uses, modules and
unparsed in the same order), so the scan's output does not depend on the
number of workers. Small projects (under MIN_SLICE_BYTES per worker) and
systems without fork are parsed in this process.
"""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from portable_env.scan.parse import Context, Parsed, parse_sources

MIN_SLICE_BYTES = 1 << 20  # below this a worker's start costs more than it saves
MAX_JOBS = 8

# What the forked workers parse with: set before the pool starts, inherited (never pickled).
_JOB: tuple[Path, Context] | None = None


def slices(sizes: list[int], parts: int) -> list[range]:
    """Contiguous index ranges of sizes, `parts` of them (fewer when there
    are fewer items), each about the same total."""
    total, start, acc = sum(sizes), 0, 0
    out: list[range] = []
    for i, size in enumerate(sizes):
        acc += size
        if len(out) < parts - 1 and acc >= total * (len(out) + 1) / parts:
            out.append(range(start, i + 1))
            start = i + 1
    if start < len(sizes):
        out.append(range(start, len(sizes)))
    return out


def join(parts: list[Parsed]) -> Parsed:
    """The Parsed of consecutive slices, in their order."""
    out = Parsed()
    for p in parts:
        out.uses.extend(p.uses)
        out.modules.update(p.modules)
        out.unparsed.extend(p.unparsed)
        out.parsed += p.parsed
        out.written |= p.written
    return out


def _parse_slice(paths: list[Path]) -> Parsed:
    assert _JOB is not None
    return parse_sources(_JOB[0], paths, _JOB[1])


def jobs_for(total_bytes: int, jobs: int | None = None, min_slice: int = MIN_SLICE_BYTES) -> int:
    """Workers for a project of total_bytes: one per core (at most MAX_JOBS), one per min_slice bytes."""
    cores = jobs or min(
        len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1, MAX_JOBS
    )
    return max(1, min(cores, total_bytes // min_slice))


def parse_all(
    root: Path, sources: list[Path], ctx: Context, jobs: int | None = None, min_slice: int = MIN_SLICE_BYTES
) -> Parsed:
    """parse_sources of every source, on up to `jobs` forked workers (jobs_for)."""
    global _JOB
    sizes = []
    for p in sources:
        try:
            sizes.append(p.stat().st_size)
        except OSError:
            sizes.append(0)  # parse_sources reports it
    n = jobs_for(sum(sizes), jobs, min_slice)
    if n < 2 or "fork" not in multiprocessing.get_all_start_methods():
        return parse_sources(root, sources, ctx)
    cuts = slices(sizes, n)
    _JOB = (root, ctx)
    try:
        with ProcessPoolExecutor(len(cuts), mp_context=multiprocessing.get_context("fork")) as pool:
            parts = list(pool.map(_parse_slice, [[sources[i] for i in cut] for cut in cuts]))
    finally:
        _JOB = None
    return join(parts)
