"""Which of a project's files the scan reads: the one test-code rule, and the
files that are never part of the program (build scripts, other platforms,
docs shipped inside a package)."""

from __future__ import annotations

import re
from pathlib import Path

from portable_env.files import SOURCE_SUFFIXES, is_test_path, walk

# Not part of the program at run time: build and task-runner scripts.
NOT_RUNTIME = {"setup.py", "noxfile.py", "fabfile.py", "pavement.py"}
DOC_DIRS = {
    "examples",
    "example",
    "docs",
    "doc",
    "demo",
    "demos",
    "gallery",
    "tutorial",
    "tutorials",
    "samples",
    "sample",
}
PLATFORM_FILE_RE = re.compile(
    r"(^|[_.-])(windows|win32|win64|winapi|wintypes|nt|darwin|macos|"
    r"osx|cocoa|ios|android)([_.-]|$)",
    re.IGNORECASE,
)


def is_shipped_docs(rel: Path, root: Path, dirs: dict[Path, list[str]]) -> bool:
    """Examples and docs shipped inside a package (holoviews/examples/...):
    a DOC_DIRS folder without __init__.py in a package folder. Not
    importable, not run by the package."""
    for i, part in enumerate(rel.parts[:-1]):
        if (
            i
            and part.lower() in DOC_DIRS
            and "__init__.py" in dirs.get(root.joinpath(*rel.parts[:i]), ())
            and "__init__.py" not in dirs.get(root.joinpath(*rel.parts[: i + 1]), ())
        ):
            return True
    return False


def is_other_platform(rel: Path) -> bool:
    """A file named for another platform (_windows.py, win32_utils.py, ...)."""
    return bool(PLATFORM_FILE_RE.search(rel.name.rsplit(".", 1)[0]))


def select_sources(root: Path, include_tests: bool) -> tuple[list[Path], dict[Path, list[str]], int]:
    """(source files to scan, every walked folder -> its file names, number of
    test files skipped). Walks with portable_env.files.walk, the one walker."""
    dirs: dict[Path, list[str]] = {}
    sources: list[Path] = []
    skipped_tests = 0
    for d, _sub, files in walk(root):
        dirs[d] = files
        for f in files:
            if not f.endswith(SOURCE_SUFFIXES):
                continue
            p = d / f
            rel = p.relative_to(root)
            if f in NOT_RUNTIME or is_other_platform(rel) or is_shipped_docs(rel, root, dirs):
                continue
            if not include_tests and is_test_path(rel):
                skipped_tests += 1
                continue
            sources.append(p)
    return sources, dirs, skipped_tests
