"""Measurements: wall + CPU samples, medians, figures against a bound, and running commands."""

from __future__ import annotations

import os
import resource
import shlex
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from portable_env.errors import UserError

# scripts/portable_env/bench/measure.py -> the repository root
REPO = Path(__file__).resolve().parents[3]
CORES = os.cpu_count() or 1
MAKE_VARS = ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES", "MAKE_TERMOUT", "MAKE_TERMERR", "PORTABLE_ENV_LOCK")


class BenchError(UserError):
    """A command of the benchmark failed; the message says which."""


def log(msg: str) -> None:
    """A progress line on stderr."""
    print(f"bench: {msg}", file=sys.stderr, flush=True)


def tool_env() -> dict[str, str]:
    """This environment with the tools venv first on PATH and no make state
    inherited from a calling make (`make bench`)."""
    env = dict(os.environ)
    env["PATH"] = f"{REPO / '.venv' / 'bin'}:{env.get('PATH', '')}"
    for var in MAKE_VARS:
        env.pop(var, None)
    return env


def clean_env(home: Path, **extra: str) -> dict[str, str]:
    """The target side: no python on PATH, no PYTHON* variables (like verify-pack)."""
    return {"PATH": "/usr/bin:/bin", "HOME": str(home), "LANG": "C.UTF-8", **extra}


def run(
    cmd: list[str] | str, cwd: Path = REPO, env: dict[str, str] | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run a command (a string runs in bash with pipefail), output captured."""
    argv = ["bash", "-o", "pipefail", "-euc", cmd] if isinstance(cmd, str) else cmd
    proc = subprocess.run(
        argv, cwd=cwd, env=env if env is not None else tool_env(), capture_output=True, text=True, check=False
    )
    if check and proc.returncode != 0:
        shown = cmd if isinstance(cmd, str) else shlex.join(cmd)
        raise BenchError(f"command failed (exit {proc.returncode}): {shown}\n" + indented(proc.stdout, proc.stderr))
    return proc


def indented(*texts: str, limit: int = 3000) -> str:
    """The last `limit` characters of each text, every line indented (hint lines of a UserError)."""
    lines = [line for text in texts for line in text[-limit:].splitlines() if line.strip()]
    return "\n".join(f"    {line}" for line in lines) or "    (no output)"


@dataclass(frozen=True)
class Sample:
    """One measurement: wall seconds and CPU seconds (user + system, this
    process and the children it waited for). CPU time is much less disturbed
    than wall time by other work on a shared machine."""

    wall: float
    cpu: float

    def __add__(self, other: Sample) -> Sample:
        return Sample(self.wall + other.wall, self.cpu + other.cpu)


def cpu_now() -> float:
    """CPU seconds used so far by this process and its waited-for children."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def timed_call(fn: Callable[[], Any]) -> Sample:
    """Wall and CPU seconds of one call."""
    cpu, start = cpu_now(), time.perf_counter()
    fn()
    return Sample(time.perf_counter() - start, cpu_now() - cpu)


def timed(
    cmd: list[str] | str, cwd: Path = REPO, env: dict[str, str] | None = None, check: bool = True
) -> tuple[Sample, subprocess.CompletedProcess[str]]:
    """(wall and CPU seconds, process) of one command."""
    procs: list[subprocess.CompletedProcess[str]] = []
    sample = timed_call(lambda: procs.append(run(cmd, cwd=cwd, env=env, check=check)))
    return sample, procs[0]


def median_sample(samples: list[Sample]) -> Sample:
    """Medians of the wall and of the CPU times."""
    return Sample(statistics.median(x.wall for x in samples), statistics.median(x.cpu for x in samples))


def figure(
    runs: list[Sample], bound_runs: list[Sample], bound: str, goal: str | None = None, **extra: Any
) -> dict[str, Any]:
    """One measured figure: medians of it and of its bound, and their ratios
    (wall: `ratio`, CPU: `cpu_ratio`)."""
    med, bmed = median_sample(runs), median_sample(bound_runs)
    return {
        "median_s": round(med.wall, 6),
        "runs_s": [round(x.wall, 6) for x in runs],
        "cpu_s": round(med.cpu, 6),
        "bound": bound,
        "bound_s": round(bmed.wall, 6),
        "bound_runs_s": [round(x.wall, 6) for x in bound_runs],
        "bound_cpu_s": round(bmed.cpu, 6),
        "ratio": round(med.wall / bmed.wall, 3) if bmed.wall > 0 else None,
        "cpu_ratio": round(med.cpu / bmed.cpu, 3) if bmed.cpu > 0 else None,
        "goal": goal,
        "met": None,
        **extra,
    }


def rmtree(path: Path) -> None:
    """Remove a tree (or file), if present."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()
