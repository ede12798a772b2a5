"""The one file walker: the scan, ship-code and Make's source list agree on
what a project's files are (portable_env.files)."""

from __future__ import annotations

from pathlib import Path

from conftest import REPO, run
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
