"""The scan's parse on several processes gives what one process gives."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import write_tree
from portable_env.scan import pool, render, scan
from portable_env.scan.evaluate import Evaluator
from portable_env.scan.parse import Context, parse_sources
from portable_env.scan.sources import select_sources


def project(root: Path) -> Path:
    files = {f"app/m{i:02d}.py": (f"import os\nimport numpy\nfrom . import m{(i + 1) % 30:02d}\n"
                                  f"try:\n    import ujson\nexcept ImportError:\n    ujson = None\n"
                                  f"def f{i}():\n    import pandas.io.{'sql' if i % 2 else 'json'}\n")
             for i in range(30)}
    files["app/__init__.py"] = ""
    files["broken.py"] = "def (:\n"
    files["run.py"] = "import sys\nif __name__ == '__main__':\n    import scipy.stats\n"
    files["nb.ipynb"] = json.dumps({"cells": [
        {"cell_type": "code", "source": ["%%writefile helper.py\n", "import requests\n"]},
        {"cell_type": "code", "source": ["import helper\n", "import matplotlib.pyplot as plt\n"]}],
        "metadata": {}, "nbformat": 4, "nbformat_minor": 5})
    write_tree(root, files)
    return root


@pytest.mark.parametrize("jobs", [2, 3, 7])
def test_parallel_parse_is_the_one_process_parse(tmp_path: Path, jobs: int) -> None:
    root = project(tmp_path / "p")
    sources, _dirs, _skipped = select_sources(root, False)
    ctx = Context(Evaluator((3, 11)), {"os", "sys"})
    one = parse_sources(root, sources, ctx)
    many = pool.parse_all(root, sources, ctx, jobs=jobs, min_slice=1)
    assert pool.jobs_for(10**9, jobs, 1) == jobs and pool.jobs_for(10, jobs) == 1, "the control: it did fork"
    assert many == one
    assert one.unparsed and one.written == {"helper"} and len(one.modules) == 32


def test_scan_output_does_not_depend_on_the_workers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = project(tmp_path / "p")
    single = render(scan(root))
    monkeypatch.setattr(pool, "MIN_SLICE_BYTES", 1)
    original = pool.parse_all
    monkeypatch.setattr("portable_env.scan.parse_all", lambda r, s, c: original(r, s, c, jobs=3, min_slice=1))
    assert render(scan(root)) == single


def test_slices_are_contiguous_and_balanced() -> None:
    assert pool.slices([5, 5, 5, 5], 2) == [range(0, 2), range(2, 4)]
    assert pool.slices([1, 1, 10, 1], 3) == [range(0, 3), range(3, 4)], "never more slices than worth it"
    assert pool.slices([3], 4) == [range(0, 1)]
    cuts = pool.slices(list(range(1, 101)), 7)
    assert [i for c in cuts for i in c] == list(range(100)) and len(cuts) == 7
