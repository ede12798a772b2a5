"""File helpers: hashing, atomic writes, and the one walker of a project's files.

``project_files`` is the single definition of what a project's files are:
the scan, ship-code and Make's source list (``scripts/project-files``) all
use it, so they cannot disagree.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

# Folders that are never project code: caches, VCS data, virtual envs.
SKIP_DIRS = frozenset(
    {
        "__pycache__",
        "node_modules",
        "site-packages",
        "dist-packages",
        ".git",
        ".hg",
        ".svn",
        ".tox",
        ".nox",
        ".venv",
        ".ipynb_checkpoints",
        ".mypy_cache",
        ".pytest_cache",
        "__pypackages__",
    }
)
SOURCE_SUFFIXES = (".py", ".ipynb")
# Test code (scanned only with include_tests, never shipped): the one rule.
TEST_DIR_RE = re.compile(r"^_*(tests?|testing|unittests?|test[-_].*|.*[-_]tests?|benchmarks?|asv_bench)$", re.I)
TEST_FILE_RE = re.compile(r"^(test_.*|.*_test|tests?|conftest|.*_tests|pytest_.*|pytest|.*_pytest)\.py$")
# A pytest plugin package (pytest_playwright/, pytest_django/) is its own code,
# also in its modules named for pytest (pytest_playwright/pytest_playwright.py).
PYTEST_NAME_RE = re.compile(r"^(pytest_.*|pytest|.*_pytest)$")


def sha256_of(path: Path | str) -> str:
    """Hex sha256 of a file's bytes, read in blocks."""
    import hashlib  # here: loading OpenSSL costs every step that does not hash

    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_atomic(path: Path, data: str | bytes, mode: int = 0o644) -> None:
    """Write data to path through a unique temporary file in the same folder
    and a rename: readers see the old or the new content, never a part. A
    path that is no regular file (`-o /dev/null`, /dev/stdout, a FIFO) is
    written to as it is: a rename would replace the device itself."""
    path = Path(path)
    raw = data.encode() if isinstance(data, str) else data
    if path.exists() and not path.is_file() and not path.is_dir():
        with open(path, "wb") as fh:
            fh.write(raw)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(raw)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_if_changed(path: Path, data: str | bytes, mode: int = 0o644) -> bool:
    """write_atomic only when the bytes differ (the mtime moves on real change
    only); True when the file was written."""
    new = data.encode() if isinstance(data, str) else data
    try:
        if Path(path).read_bytes() == new:
            return False
    except OSError:
        pass
    write_atomic(Path(path), new, mode)
    return True


def spec_name(spec: str) -> str:
    """Package name of a conda match spec ("numpy>=1.26" -> "numpy")."""
    return re.split(r"[ =<>!~\[]", str(spec).strip(), maxsplit=1)[0]


def canon(name: str) -> str:
    """Comparable package name (lowercase, -_. runs as '-')."""
    return re.sub(r"[-_.]+", "-", name).lower()


def is_test_path(rel: Path) -> bool:
    """Test code: tests/, test/, testing/, _tests/, benchmarks/ folders,
    test_*.py, *_test.py, tests.py, conftest.py, pytest plugin modules
    (pytest_*.py) unless inside a pytest plugin package (pytest_x/)."""
    if any(TEST_DIR_RE.match(p) for p in rel.parts[:-1]):
        return True
    if not TEST_FILE_RE.match(rel.name):
        return False
    plugin_module = PYTEST_NAME_RE.match(rel.name.removesuffix(".py"))
    return not (plugin_module and any(PYTEST_NAME_RE.match(p) for p in rel.parts[:-1]))


def env_records(prefix: Path) -> list[tuple[Path, dict[str, Any]]]:
    """(file, record) of each readable conda-meta/*.json package record of
    prefix, sorted by file name; unreadable ones are skipped (the callers
    that must refuse them read the records strictly: manifest, adopt)."""
    import json

    out = []
    for meta in sorted((prefix / "conda-meta").glob("*.json")):
        try:
            record = json.loads(meta.read_bytes())
        except (OSError, ValueError):
            continue
        if isinstance(record, dict):
            out.append((meta, record))
    return out


def conda_file_owners(prefix: Path) -> dict[str, tuple[str, str]]:
    """Prefix-relative path -> (name, version) of the conda package that
    installed it, from the env's conda-meta/*.json "files" lists (env_records)."""
    found: dict[str, tuple[str, str]] = {}
    for meta, record in env_records(prefix):
        for rel in record.get("files") or []:
            found[rel] = (str(record.get("name") or meta.stem), str(record.get("version") or ""))
    return found


def walk(root: Path) -> Iterator[tuple[Path, list[str], list[str]]]:
    """os.walk of a project tree, sorted, without hidden folders, caches and
    virtual environments (folders with pyvenv.cfg or conda-meta/)."""
    for dirpath, dirnames, filenames in os.walk(root):
        d = Path(dirpath)
        keep = []
        for name in sorted(dirnames):
            if name in SKIP_DIRS or name.startswith("."):
                continue
            sub = d / name
            if (sub / "pyvenv.cfg").exists() or (sub / "conda-meta").is_dir():
                continue
            keep.append(name)
        dirnames[:] = keep
        yield d, keep, sorted(f for f in filenames if not f.startswith("."))


def project_files(root: Path) -> list[Path]:
    """The project's source files (.py, .ipynb), relative to root, sorted."""
    out = []
    for d, _dirs, files in walk(root):
        for name in files:
            if name.endswith(SOURCE_SUFFIXES):
                out.append((d / name).relative_to(root))
    return sorted(out, key=lambda p: p.as_posix())


def project_dirs(root: Path) -> list[Path]:
    """The folders project_files looks into (root first), relative to root:
    a file added, removed or renamed in one changes that folder's mtime."""
    return [d.relative_to(root) for d, _dirs, _files in walk(root)]


# Characters a file name may have to be listed for Make (anything else would
# be read by Make as syntax: spaces, '$', '%', ':', '#', '\\', wildcards).
MAKE_SAFE = re.compile(r"[\w.+,=@/-]+")


def make_fragment(root: Path) -> tuple[str, list[str]]:
    """files.mk for Make (SOURCES, SOURCE_DIRS) and the names left out of it."""
    files = [root / p for p in project_files(root)]
    dirs = [root / d for d in project_dirs(root)]
    left_out = [str(p) for p in files + dirs if not MAKE_SAFE.fullmatch(str(p))]
    ok = [str(p) for p in files if MAKE_SAFE.fullmatch(str(p))]
    okd = [str(p) for p in dirs if MAKE_SAFE.fullmatch(str(p))]
    text = (
        f"# Written by scripts/project-files; do not edit.\nSOURCES := {' '.join(ok)}\nSOURCE_DIRS := {' '.join(okd)}\n"
    )
    return text, left_out


def main(argv: list[str] | None = None) -> int:
    """scripts/project-files: print the files, or write Make's list of them."""
    import argparse
    import sys

    ap = argparse.ArgumentParser(prog="project-files", description="List a project's files (the one walker).")
    ap.add_argument("project_dir", type=Path)
    ap.add_argument("--mk", type=Path, help="write Make's fragment (SOURCES, SOURCE_DIRS) here")
    args = ap.parse_args(argv)
    root: Path = args.project_dir
    if not root.is_dir():
        print(f"error: {root}: no such project folder", file=sys.stderr)
        return 1
    if args.mk is None:
        for p in project_files(root):
            print(root / p)
        return 0
    text, left_out = make_fragment(root)
    for name in left_out:
        print(
            f"warning: '{name}' has a character Make cannot track (space, $, %, :, #, ...); rename it so "
            "changes to it trigger a rebuild (the scan still reads it)",
            file=sys.stderr,
        )
    write_atomic(args.mk, text)
    return 0
