"""scripts/bench --quick: every section is measured, with a ratio to its bound.

No timing is asserted (the machine may be busy); only that each figure is a
number, that its lower bound was measured, and that the report was written.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

from conftest import script
from portable_env.bench import synthetic

FIGURE_KEYS = ("median_s", "bound_s", "ratio", "cpu_s", "bound_cpu_s", "cpu_ratio")


def is_number(x: object) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def check_figure(name: str, fig: dict) -> None:
    for key in FIGURE_KEYS:
        assert is_number(fig.get(key)), f"{name}.{key} = {fig.get(key)!r}"
    assert fig["median_s"] > 0 and fig["bound_s"] > 0, name
    assert fig["bound"], f"{name}: the bound is not described"
    assert fig["runs_s"] and fig["bound_runs_s"], name
    assert math.isclose(fig["ratio"], fig["median_s"] / fig["bound_s"], rel_tol=0.01), name


def test_quick_bench_reports_every_section(tmp_path: Path, channel: str, host_python: str) -> None:
    out = tmp_path / "bench"
    proc = script("bench", "--quick", "--out", str(out), "--channel", channel, "--python", host_python)
    assert proc.returncode == 0, proc.stderr[-4000:]
    results = json.loads((out / "results.json").read_text())

    machine = results["machine"]
    assert machine["cores"] >= 1 and machine["cpu"] and machine["python"] and machine["date"]
    assert is_number(machine["ram_gib"])

    figures = {"noop": results["noop"], "scan": results["scan"], "verify": results["verify"]}
    figures.update({f"build.{k}": results["build"][k] for k in ("cold", "warm")})
    figures.update({f"pack.{k}": results["pack"][k] for k in ("tar.gz-4", "tar.zst-3", "tar.gz-4-slim")})
    figures.update({f"imports.{k}": results["imports"][k]
                    for k in ("no_pyc_first_start", "no_pyc_read_only", "compile_first_start")})
    for name, fig in figures.items():
        check_figure(name, fig)

    # The no-op ran no step and started no pipeline tool; the goals are judged.
    noop = results["noop"]
    assert noop["no_step_ran"] is True, noop["output"]
    assert noop["steps_ran"] == [] and noop["pipeline_tools_started"] == []
    for name in ("noop", "scan"):
        assert isinstance(results[name]["met"], bool), name
    for key, pack in results["pack"].items():
        assert isinstance(pack["met"], bool), key
        assert pack["size_bytes"] > 0 and pack["bound_size_bytes"] > 0 and is_number(pack["size_ratio"]), key

    # The scan read the synthetic project and found its third-party imports.
    scan = results["scan"]
    assert scan["files"] == 300 and scan["bytes"] > 0
    assert {"numpy", "pandas"} <= set(scan["required_found"])

    # The build steps ran, the verify parts and sizes are numbers.
    for kind in ("cold", "warm"):
        steps = set(results["build"][kind]["steps_s"])
        assert "env" in steps and (steps >= {"archive"} or steps >= {"pack", "verify"}), steps
    assert all(is_number(v) for v in results["verify"]["parts_s"].values())
    slim = results["slim"]
    assert slim["slim_bytes"] < slim["full_bytes"] and is_number(slim["ratio"]) and slim["saved_bytes"] > 0
    # The import bound ran with the .pyc that a first start writes in place.
    assert results["imports"]["no_pyc_first_start"]["pyc_written"] > 100
    assert results["imports"]["compile_first_start"]["pyc_in_tarball"] > 1000
    cost = results["imports"]["compile_cost"]
    assert cost["tarball_bytes"] > 0 and is_number(cost["size_ratio"])

    # The readable report has the table, and the work files are gone.
    report = (out / "results.md").read_text()
    assert "| Measurement | Median | Lower bound |" in report
    for label in ("No-op", "Scan", "Cold build", "Warm build", "Pack tar.gz -4", "Pack tar.zst -3", "--slim",
                  "verify", "Import"):
        assert label in report, label
    assert sorted(p.name for p in out.iterdir()) == ["results.json", "results.md"]


def test_synthetic_project_mixes_stdlib_local_and_third_party_imports(tmp_path: Path) -> None:
    files, size = synthetic.generate_project(tmp_path / "big", 120)
    sources = sorted((tmp_path / "big").rglob("*.py"))
    assert files == len(sources) == 120 and size == sum(p.stat().st_size for p in sources)
    text = "\n".join(p.read_text() for p in sources)
    assert "import os" in text or "import json" in text
    assert "from . import mod" in text and "from bigapp.pkg000 import" in text
    assert "import numpy" in text and "except ImportError:" in text
    # Deterministic: the same seed writes the same bytes.
    again = tmp_path / "again"
    synthetic.generate_project(again, 120)
    assert [p.read_bytes() for p in sorted(again.rglob("*.py"))] == [p.read_bytes() for p in sources]
