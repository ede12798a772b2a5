"""The synthetic large project the scan is measured on, and the scan section."""

from __future__ import annotations

import random
import sys
from pathlib import Path
from typing import Any

import yaml

from portable_env.bench.measure import Sample, figure, log, rmtree, timed
from portable_env.bench.workspace import Workspace

SCAN_GOAL_RATIO = 2.0
STDLIB = [
    "os",
    "sys",
    "json",
    "re",
    "math",
    "logging",
    "itertools",
    "functools",
    "pathlib",
    "typing",
    "dataclasses",
    "collections",
    "subprocess",
    "datetime",
    "hashlib",
    "argparse",
    "textwrap",
    "enum",
]
THIRD_PARTY = [
    "numpy",
    "pandas",
    "scipy",
    "yaml",
    "requests",
    "matplotlib.pyplot",
    "sklearn.linear_model",
    "click",
    "dateutil.parser",
    "six",
    "pytz",
    "joblib",
    "tqdm",
    "jinja2",
    "attr",
]
BODY = '''

class Thing{n}:
    """A generated class; the scan only cares about its imports."""

    limit = {n}

    def __init__(self, value: int, name: str = "thing{n}") -> None:
        self.value = value
        self.name = name
        self.items: list[int] = []

    def compute(self, xs: list[int]) -> int:
        total = 0
        for x in xs:
            if x % 3 == 0:
                total += x * self.value
            elif x % 5 == 0:
                total -= x
            else:
                total += len(str(x))
        return total

    def describe(self) -> str:
        return f"{{self.name}}: {{self.value}} ({{len(self.items)}} items)"


def helper_{n}(a, b=2, *args, **kwargs):
    """Combine the arguments into a dictionary."""
    data = {{"a": a, "b": b, "n": len(args), "keys": sorted(kwargs)}}
    with_squares = [i * i for i in range(a) if i % 2]
    return data, sum(with_squares), {{k: v for k, v in kwargs.items() if v}}
'''


PER_PACKAGE = 40


def module_text(rng: random.Random, pname: str, pkg: int, m: int) -> str:
    """Module m of subpackage pkg: stdlib, third-party, relative and absolute local imports, an
    optional (try/except ImportError) and a lazy (in a function) import, and some generated code."""
    lines = [
        f'"""Module bigapp.{pname}.mod{m:03d}: generated for the scan benchmark."""',
        "from __future__ import annotations",
        "",
    ]
    lines += [f"import {name}" for name in rng.sample(STDLIB, rng.randint(3, 6))]
    lines.append("from collections import OrderedDict")
    lines += [f"import {name}" for name in rng.sample(THIRD_PARTY, rng.randint(1, 3))]
    if m:
        lines.append(f"from . import mod{rng.randrange(m):03d}")
        lines.append(f"from .mod{rng.randrange(m):03d} import helper_{rng.randrange(m)}")
    if pkg:
        lines.append(f"from bigapp.pkg{rng.randrange(pkg):03d} import mod{rng.randrange(PER_PACKAGE):03d}")
    optional = rng.choice(THIRD_PARTY)
    lines += ["", "try:", f"    import {optional}", "except ImportError:", f"    {optional.split('.')[0]} = None", ""]
    text = "\n".join(lines)
    for k in range(rng.randint(3, 6)):
        text += BODY.format(n=m * 10 + k)
    lazy = rng.choice(THIRD_PARTY)
    return text + f"\n\ndef lazy_{m}():\n    import {lazy}\n    return {lazy.split('.')[0]}\n"


def generate_project(root: Path, files: int, seed: int = 6) -> tuple[int, int]:
    """Write `files` .py files under root (package bigapp: subpackages of 40
    modules, see module_text); the same seed writes the same bytes.
    Returns (files, bytes)."""
    rng = random.Random(seed)
    rmtree(root)
    written = total = 0

    def write(path: Path, text: str) -> None:
        nonlocal written, total
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        written += 1
        total += len(text.encode())

    write(root / "bigapp" / "__init__.py", '"""Generated package for the scan benchmark."""\n')
    pkg = 0
    while written < files:
        pname = f"pkg{pkg:03d}"
        pdir = root / "bigapp" / pname
        write(pdir / "__init__.py", f'"""bigapp.{pname}"""\nfrom . import mod000\n')
        for m in range(PER_PACKAGE):
            if written >= files:
                break
            write(pdir / f"mod{m:03d}.py", module_text(rng, pname, pkg, m))
        pkg += 1
    return written, total


PARSE_ALL = r"""
import ast, os, sys
n = 0
for dirpath, dirs, files in os.walk(sys.argv[1]):
    for name in files:
        if name.endswith(".py"):
            path = os.path.join(dirpath, name)
            with open(path, "rb") as f:
                ast.parse(f.read(), path)
            n += 1
print(n)
"""


def scan(ws: Workspace, n_files: int) -> dict[str, Any]:
    """find-deps on the synthetic project against ast.parse of every file in one process."""
    root = ws.out / "synthetic"
    files, size = generate_project(root, n_files)
    times: list[Sample] = []
    bounds: list[Sample] = []
    required: list[str] = []
    for _ in range(ws.runs):
        took, proc = timed([str(ws.repo / "scripts" / "find-deps"), str(root)], cwd=ws.work)
        times.append(took)
        required = (yaml.safe_load(proc.stdout) or {}).get("required") or []
        bounds.append(timed([sys.executable, "-c", PARSE_ALL, str(root)], cwd=ws.work)[0])
    fig = figure(
        times, bounds, "ast.parse of every file in one process", goal=f"<= {SCAN_GOAL_RATIO}x bound", files=files,
        bytes=size, required_found=required,
    )  # fmt: skip
    fig["met"] = fig["ratio"] is not None and fig["ratio"] <= SCAN_GOAL_RATIO
    log(f"scan: {files} files, {fig['median_s']:.2f}s vs bound {fig['bound_s']:.2f}s")
    rmtree(root)
    return fig
