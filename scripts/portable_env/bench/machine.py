"""The machine a benchmark ran on: cores, CPU, RAM, Python, OS, tool versions, load."""

from __future__ import annotations

import datetime
import os
import platform
import shutil
import subprocess
from pathlib import Path
from typing import Any

from portable_env.bench.measure import CORES


def first_line(cmd: list[str]) -> str:
    """First output line of `cmd --version`-like commands, or 'not found'."""
    if not shutil.which(cmd[0]):
        return "not found"
    proc = subprocess.run(cmd, capture_output=True, text=True)
    return (proc.stdout or proc.stderr).strip().splitlines()[0] if (proc.stdout or proc.stderr).strip() else "?"


def machine_info() -> dict[str, Any]:
    """Cores, CPU model, RAM, Python, OS, tool versions, load and date."""
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        cpu = platform.processor() or "unknown"
    ram = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                ram = round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    try:
        from importlib.metadata import version

        conda_pack = version("conda-pack")
    except Exception:
        conda_pack = "?"
    return {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "cores": CORES,
        "cpu": cpu,
        "ram_gib": ram,
        "python": platform.python_version(),
        "os": platform.platform(),
        "load_average_start": os.getloadavg(),
        "tools": {
            "make": first_line(["make", "--version"]),
            "tar": first_line(["tar", "--version"]),
            "pigz": first_line(["pigz", "--version"]),
            "zstd": first_line(["zstd", "--version"]),
            "conda-pack": conda_pack,
        },
    }
