"""The one file walker: the scan, ship-code and Make's source list agree on
what a project's files are (portable_env.files)."""

from __future__ import annotations

import json
import os
import stat
import threading
from pathlib import Path

from conftest import REPO, run, script
from portable_env import files, ship
from portable_env.scan.sources import select_sources

TREE = [
    "app.py", "notes.ipynb", "pkg/__init__.py", "pkg/core.py", "pkg/data.csv", "sub/deeper/tool.py",
    "tests/test_app.py", "conftest.py", ".hidden/secret.py", ".dot.py", "__pycache__/app.cpython-311.py",
    "venv/pyvenv.cfg", "venv/lib/site.py", "env/conda-meta/x.json", "env/lib/m.py", ".ipynb_checkpoints/n.ipynb",
    "node_modules/x/y.py", "README.txt",
]


def make_tree(root: Path) -> None:
    for rel in TREE:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text("import os\n" if rel.endswith(".py") else "{}\n")


def test_scan_ship_and_make_see_the_same_files(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    make_tree(root)
    walked = [p.as_posix() for p in files.project_files(root)]
    assert walked == ["app.py", "conftest.py", "notes.ipynb", "pkg/__init__.py", "pkg/core.py",
                      "sub/deeper/tool.py", "tests/test_app.py"]
    # Make's list: scripts/project-files --mk
    out = tmp_path / "files.mk"
    run([str(REPO / "scripts" / "project-files"), str(root), "--mk", str(out)], check=True)
    listed = out.read_text().split("SOURCES := ", 1)[1].split("\n", 1)[0].split()
    assert listed == [f"{root}/{p}" for p in walked]
    dirs = out.read_text().split("SOURCE_DIRS := ", 1)[1].split("\n", 1)[0].split()
    assert sorted(dirs) == sorted([str(root)] + [f"{root}/{d}" for d in ("pkg", "sub", "sub/deeper", "tests")])
    # The scan, test code included: the same files.
    scanned, _dirs, _skipped = select_sources(root, include_tests=True)
    assert sorted(p.relative_to(root).as_posix() for p in scanned) == walked
    # Ship: the same files minus test code (the one test rule), plus package data.
    shipped = ship.code_files(root)
    assert [p for p in shipped if p.endswith((".py", ".ipynb"))] == [
        p for p in walked if not files.is_test_path(Path(p))]
    assert "pkg/data.csv" in shipped


def read_fifo(fifo: Path, got: list[bytes]) -> threading.Thread:
    """A reader of a FIFO in the background (what a device or pipe reader sees)."""
    t = threading.Thread(target=lambda: got.append(fifo.read_bytes()), daemon=True)
    t.start()
    return t


def test_an_output_that_is_no_regular_file_is_written_to_not_replaced(tmp_path: Path) -> None:
    """`find-deps -o /dev/null` (or /dev/stdout, a FIFO) must write into it:
    the temp-then-rename of every artifact would replace the device itself (as
    root, /dev/null became a YAML file). A FIFO stands in for the device."""
    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / "app.py").write_text("import numpy\n")
    fifo = tmp_path / "out.fifo"
    os.mkfifo(fifo)
    got: list[bytes] = []
    reader = read_fifo(fifo, got)
    script("find-deps", str(proj), "-o", str(fifo), check=True, timeout=120)
    reader.join(30)
    assert stat.S_ISFIFO(fifo.stat().st_mode), "still the FIFO, not a file renamed over it"
    assert got and b"- numpy" in got[0]
    settings = tmp_path / "settings.json"
    settings.write_text(json.dumps({
        "project": "p", "channels": ["conda-forge"], "python": "3.12", "packages": [], "exclude": [],
        "install_optional": False, "install_on_demand": True, "pypi": [], "pip": False,
    }))
    deps = tmp_path / "deps.yml"
    deps.write_text("required: [numpy]\n")
    got = []
    reader = read_fifo(fifo, got)
    script("render-env", "--template", str(REPO / "templates" / "environment.yml"), "--deps", str(deps),
           "--settings", str(settings), "--out", str(fifo), check=True, timeout=120)
    reader.join(30)
    assert stat.S_ISFIFO(fifo.stat().st_mode) and got and b"- numpy" in got[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["deps.yml", "out.fifo", "proj", "settings.json"], (
        "no temporary file left beside it"
    )
