"""ship-code: the project's own code shipped into the environment (share/<project>/, launchers)."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from conftest import script
from portable_env import files, ship
from portable_env.settings import resolve


def fake_env(root: Path) -> Path:
    """A prefix with one package owning bin/owned and share/pkg/x."""
    (root / "conda-meta").mkdir(parents=True)
    (root / "conda-meta" / "pkg-1-0.json").write_text(json.dumps({"files": ["bin/owned", "share/clash/x"]}))
    (root / "lib" / "python3.11" / "site-packages").mkdir(parents=True)
    (root / "bin").mkdir()
    (root / "bin" / "owned").write_text("package file")
    return root


def write_settings(project: Path, text: str, out: Path) -> Path:
    """project.yml with text, validated by the settings model into out (settings.json)."""
    (project / "project.yml").write_text(text)
    out.write_text(resolve(project).to_json())
    return out


def test_ship_code_settings_replace_and_remove(tmp_path: Path) -> None:
    prefix = fake_env(tmp_path / "env")
    project = tmp_path / "p"
    for rel, text in {"main.py": "print(1)\n", "rattler-lock.yml": "", "conda-linux-64.lock": "",
                      "conftest.py": "", "x_test.py": "", ".hidden.py": "", "__pycache__/main.pyc": "",
                      "lib/helper.py": "", "lib/data.csv": "", "pkg/__init__.py": "", "pkg/sub/data.json": "{}",
                      "pkg/tests/test_pkg.py": ""}.items():
        (project / rel).parent.mkdir(parents=True, exist_ok=True)
        (project / rel).write_text(text)
    settings = write_settings(project, "ship_code: true\nentry_points:\n  go: main:run\n  old: main:run\n",
                              tmp_path / "settings.json")
    args = ["--settings", str(settings), "--prefix", str(prefix)]
    planned = json.loads(script("ship-code", "--plan", *args[:2], check=True).stdout)
    script("ship-code", "--plan", *args[:2], "--out", str(tmp_path / "plan.json"), check=True)
    assert json.loads((tmp_path / "plan.json").read_text()) == planned
    assert not (prefix / "share").exists(), "--plan touches no environment"
    script("ship-code", *args, check=True)
    assert json.loads((prefix / "share/portable-env/code.json").read_text()) == planned
    code = prefix / "share" / "p"
    assert sorted(p.relative_to(code).as_posix() for p in code.rglob("*") if p.is_file()) == [
        "lib/helper.py", "main.py", "pkg/__init__.py", "pkg/sub/data.json"]
    assert (prefix / "lib/python3.11/site-packages/portable-env-p.pth").read_text() == "../../../share/p\n"
    assert os.access(prefix / "bin" / "go", os.X_OK) and (prefix / "bin" / "old").exists()
    record = json.loads((prefix / "share/portable-env/code.json").read_text())
    assert record["entry_points"] == {"go": "main:run", "old": "main:run"} and len(record["files"]) == 4
    # Again, with one entry point less and a file removed: replaced, stale launcher gone.
    (project / "lib" / "helper.py").unlink()
    write_settings(project, "ship_code: true\nentry_points:\n  go: main:run\n", settings)
    script("ship-code", *args, check=True)
    assert not (code / "lib" / "helper.py").exists() and not (prefix / "bin" / "old").exists()
    assert [p.name for p in (prefix / "share").iterdir() if p.name.startswith(".")] == []
    # ship_code: false takes the code away again; the package's files stay.
    write_settings(project, "ship_code: false\n", settings)
    script("ship-code", *args, check=True)
    assert not code.exists() and not (prefix / "bin" / "go").exists()
    assert not (prefix / "share/portable-env/code.json").exists()
    assert not (prefix / "lib/python3.11/site-packages/portable-env-p.pth").exists()
    assert (prefix / "bin" / "owned").read_text() == "package file"


@pytest.mark.parametrize("entry, message", [
    ("owned = main:run", "belongs to an installed package"),
    ("python = main:run", "is not allowed"),
    ("x = nothere.py", "is not among the shipped files"),
    ("x = main:run:bad", "is neither module:function"),
    ("free = main:run", "is not a portable-env launcher"),
])
def test_ship_code_refuses_bad_entry_points(tmp_path: Path, entry: str, message: str) -> None:
    prefix = fake_env(tmp_path / "env")
    (prefix / "bin" / "free").write_text("someone else's file")
    project = tmp_path / "proj"
    project.mkdir()
    (project / "main.py").write_text("def run():\n    return 0\n")
    proc = script("ship-code", "--project-dir", str(project), "--prefix", str(prefix), "--code",
                  "--entry-point", entry)
    assert proc.returncode == 1 and message in proc.stderr, proc.stderr
    assert proc.stderr.startswith("error: [proj] ship-code: ")
    assert not (prefix / "share" / "proj").exists()


def test_ship_code_refuses_a_share_dir_owned_by_a_package(tmp_path: Path) -> None:
    prefix = fake_env(tmp_path / "env")
    project = tmp_path / "clash"
    project.mkdir()
    (project / "main.py").write_text("")
    proc = script("ship-code", "--project-dir", str(project), "--prefix", str(prefix), "--code")
    assert proc.returncode == 1 and "packages install files in share/clash/" in proc.stderr
    assert (prefix / "conda-meta").is_dir() and not (prefix / "share" / "portable-env").exists()


def test_ship_code_script_entry_needs_shipping(tmp_path: Path) -> None:
    prefix = fake_env(tmp_path / "env")
    project = tmp_path / "proj"
    project.mkdir()
    (project / "run.py").write_text("")
    proc = script("ship-code", "--project-dir", str(project), "--prefix", str(prefix), "--entry-point", "r = run.py")
    assert proc.returncode == 1 and "ship_code: true" in proc.stderr


def test_ship_code_needs_settings_or_a_project_dir(tmp_path: Path) -> None:
    proc = script("ship-code", "--plan")
    assert proc.returncode == 2 and "--settings build/P/settings.json or --project-dir" in proc.stderr
    proc = script("ship-code", "--plan", "--settings", str(tmp_path / "settings.json"))
    assert proc.returncode == 1 and "cannot read the settings" in proc.stderr and "Traceback" not in proc.stderr


SHAPES = ["main.py", "nb.ipynb", "notes.txt", "project.yml", "rattler-lock.yml", "conda-linux-64.lock",
          "conftest.py", "test_main.py", "main_test.py", "tests/test_a.py", "tests/helper.py", "test/x.py",
          ".hidden.py", ".hid/x.py", "__pycache__/m.py", "node_modules/x.py", "venv/pyvenv.cfg", "venv/lib/x.py",
          "condaenv/conda-meta/x.json", "condaenv/x.py", "pkg/__init__.py", "pkg/data.csv", "pkg/m.pyc",
          "pkg/sub/deep.json", "pkg/sub/mod.py", "pkg/tests/test_p.py", "pkg/tests/data.txt", "pkg/.env",
          "scripts/run.py", "scripts/readme.md", "with space.py", "__init__.py", "top.dat"]


def test_ship_files_are_the_project_files_minus_tests_plus_package_data(tmp_path: Path) -> None:
    """One walker: ship's sources are exactly files.project_files (the scan's and Make's list)
    without test code, and its other files are data files inside packages that the same walk finds."""
    for rel in SHAPES:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("")
    shipped = ship.code_files(tmp_path)
    sources = [p.as_posix() for p in files.project_files(tmp_path) if not files.is_test_path(p)]
    assert [f for f in shipped if f.endswith((".py", ".ipynb"))] == sources
    walked = {(d / n).relative_to(tmp_path).as_posix() for d, _dirs, names in files.walk(tmp_path) for n in names}
    data = [f for f in shipped if not f.endswith((".py", ".ipynb"))]
    assert set(data) <= walked
    assert data == ["pkg/data.csv", "pkg/sub/deep.json"]
    assert sources == ["__init__.py", "main.py", "nb.ipynb", "pkg/__init__.py", "pkg/sub/mod.py",
                       "scripts/run.py", "with space.py"]
