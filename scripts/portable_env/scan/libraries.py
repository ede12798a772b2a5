"""The library benchmark over every list: the shared scorer
(../shared/bench/imports/score.py: each pinned wheel's code against its
`Requires-Dist` metadata) run on the visible list and the held-out lists
(tests/data/held-out-libraries*.txt), with three recalls per list:

- required: what the issue's goal counts (the scan's `required:` list);
- installed: `required:` + `on_demand:` (what a project installs by default);
- named: a required dependency the scan finds anywhere (required, optional
  or on demand). The rest are dependencies the wheel's code never imports
  as the scan reads it (setuptools, tzdata, certifi, an entry-point plugin
  loaded by name): the bound of any scan of the code, under these rules.

The scan's full output for each wheel is kept under OUT/raw/ (the detector
is `score-libraries --detect`, which runs find-deps and keeps a copy).
"""

from __future__ import annotations

import importlib.util
import json
import shlex
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import ModuleType

import yaml

from portable_env.errors import UserError
from portable_env.files import write_atomic

SECTIONS = ("required", "on_demand", "optional")


def load_scorer(path: Path) -> ModuleType:
    """The shared scorer as a module (its name normaliser)."""
    if not path.is_file():
        raise UserError(f"{path}: the shared import benchmark's score.py is not there; pass --scorer PATH")
    spec = importlib.util.spec_from_file_location("bench_score", path)
    if spec is None or spec.loader is None:
        raise UserError(f"{path}: cannot be loaded as a Python module")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def detect(find_deps: Path, src: Path, raw: Path, python: str) -> str:
    """Run find-deps on `src`, keep its output as raw/<folder>.yml, return it."""
    out = subprocess.run(
        [sys.executable, str(find_deps), "--python", python, str(src)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    write_atomic(raw / f"{src.name}.yml", out)
    return out


def run_list(scorer: Path, listing: Path, out: Path, detector: str, timeout: float) -> Path:
    """Score one list with the shared scorer (`timeout` seconds per package); returns its JSON file."""
    js = out / f"{listing.stem}.json"
    txt = out / f"{listing.stem}.txt"
    cmd = [sys.executable, str(scorer), "--list", str(listing), "--detector", detector, "--json", str(js)]
    cmd += ["--timeout", str(timeout)]
    with txt.open("w") as fh:
        subprocess.run(cmd, check=True, stdout=fh, stderr=subprocess.STDOUT)
    return js


def summarise(js: Path, raw: Path, norm: Callable[[str], str]) -> dict[str, float | int]:
    """The scorer's totals of one scored list, with the installed and named recalls."""
    doc = json.loads(js.read_text())
    inst = named = 0
    for p in doc["packages"]:
        truth = set(p["required"])
        f = raw / f"{p['wheel'].removesuffix('.whl')}.yml"
        scan = (yaml.safe_load(f.read_text()) if f.is_file() else None) or {}
        sec = {s: {norm(n) for n in scan.get(s) or []} for s in SECTIONS}
        inst += len(truth & (sec["required"] | sec["on_demand"]))
        named += len(truth & (sec["required"] | sec["on_demand"] | sec["optional"]))
    totals = doc["totals"]  # counts, and precision/recall rounded to 4 places: use the counts
    div = max(totals["required"], 1)
    precision = totals["detected_declared"] / max(totals["detected"], 1)
    return {
        **totals,
        "precision": precision,
        "recall": totals["tp"] / div,
        "installed": inst / div,
        "named": named / div,
    }


def score_all(lists: list[Path], scorer: Path, out: Path, self_cmd: list[str], jobs: int, timeout: float) -> str:
    """Score every list (`jobs` at once, `timeout` seconds per package); returns a markdown table."""
    bench = load_scorer(scorer)
    raw = out / "raw"
    out.mkdir(parents=True, exist_ok=True)
    detector = " ".join(shlex.quote(a) for a in [*self_cmd, "--detect", "--raw", str(raw)]) + " {dir}"
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        done = list(pool.map(lambda lst: run_list(scorer, lst, out, detector, timeout), lists))
    rows = [
        "| list | packages | required deps | precision | recall | installed recall | named recall |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for lst, js in zip(lists, done, strict=True):
        s = summarise(js, raw, bench.norm)
        rows.append(
            f"| {lst.name} | {s['packages']} | {s['required']} | {s['precision']:.3f} | {s['recall']:.3f} "
            f"| {s['installed']:.3f} | {s['named']:.3f} |"
        )
    return "\n".join(rows) + "\n"
