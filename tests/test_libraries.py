"""Unit tests of the library benchmark over every list
(portable_env.scan.libraries, scripts/score-libraries): the detector that
keeps the scan's full output and the three recalls, on a tiny package
scanned by the real find-deps (no network, no shared scorer run)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import REPO, write_tree
from portable_env.errors import UserError
from portable_env.scan.libraries import detect, load_scorer, summarise


def test_recalls_count_required_installed_and_named_dependencies(tmp_path: Path) -> None:
    src = write_tree(
        tmp_path / "lib-1.0-py3-none-any",
        {
            "lib/__init__.py": "import requests\nfrom lib import io\n",
            "lib/io.py": "def to_hdf5():\n    import h5py\n"
            "try:\n    import ujson\nexcept ImportError:\n    ujson = None\n",
        },
    )
    raw = tmp_path / "raw"
    out = detect(REPO / "scripts" / "find-deps", src, raw, "3.11")
    assert (raw / "lib-1.0-py3-none-any.yml").read_text() == out
    assert not list(raw.glob(".*.tmp")), "written through a temporary file"
    # the scorer's JSON: truth requests, h5py, ujson, setuptools (never imported); requests detected
    row = {
        "wheel": "lib-1.0-py3-none-any.whl",
        "required": ["h5py", "requests", "setuptools", "ujson"],
    }
    js = tmp_path / "list.json"
    totals = {"packages": 1, "required": 4, "tp": 1, "detected": 1, "detected_declared": 1}
    js.write_text(json.dumps({"totals": totals, "packages": [row]}))
    s = summarise(js, raw, str.lower)
    assert (s["recall"], s["installed"], s["named"]) == (0.25, 0.5, 0.75)
    assert s["precision"] == 1.0 and s["required"] == 4 and s["packages"] == 1


def test_a_missing_scorer_is_an_error_naming_the_path(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"score\.py is not there; pass --scorer PATH"):
        load_scorer(tmp_path / "score.py")
