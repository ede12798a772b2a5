"""The projects of this repository: list them, find the changed ones, create one.

A project is a folder projects/<name>/ whose name is safe as a directory and
artifact name: letters, digits, '.', '_', '-', not starting with '.' or '-'.
This module (stdlib only: CI's plan job runs it before the tools exist) is
the one place that rule and the project discovery live; the
Makefile (`make new`, `make list`, `make all`) and CI call it.

    scripts/projects list [--json] [NAME|all ...]   the projects (or check NAMEs)
    scripts/projects changed [--base REF] [--json]  the projects whose inputs changed
    scripts/projects new NAME                       create projects/NAME from templates/
    scripts/projects tag TAG                        the project of a release tag NAME-vX.Y

`changed` reads changed paths (one per line, relative to the repository root)
on standard input, or runs `git diff --name-only REF...HEAD` with --base. A
path under projects/<name>/ selects <name> (if that project still exists); a
path under one of the shared build inputs (GLOBAL_INPUTS) selects them all.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
# Inputs of every project's build: a change to any of them rebuilds all.
# A trailing '/' means everything under that folder.
GLOBAL_INPUTS = (
    "Makefile",
    "requirements.txt",
    "requirements.in",
    "scripts/",
    "templates/",
    ".github/workflows/build.yml",
)
NAME_CHARS = "letters, digits, '.', '_', '-' (not starting with '.' or '-')"
SAFE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]*")
TAG = re.compile(r"(?P<project>.+)-v(?P<version>[0-9][A-Za-z0-9._+-]*)")


class ProjectError(Exception):
    """A failure with a message for the user (printed without a traceback)."""


def name_problem(name: str) -> str | None:
    """Why NAME is not a valid project name, or None when it is."""
    if not name:
        return "the project name is empty; give one: make new PROJECT=<name>"
    if SAFE_NAME.fullmatch(name):
        return None
    if "/" in name:
        why = "contains '/' (a project is one folder directly under projects/)"
    elif any(c.isspace() for c in name):
        why = "contains white space"
    elif name[0] in ".-":
        why = f"starts with '{name[0]}'"
    else:
        bad = sorted({c for c in name if not SAFE_NAME.fullmatch("a" + c)})
        why = "contains " + ", ".join(repr(c) for c in bad)
    return f"'{name}' is not a valid project name: it {why}; use {NAME_CHARS}"


def discover(root: Path) -> list[str]:
    """The project names under root/projects, sorted; hidden folders are skipped.

    Raises ProjectError naming every folder whose name is not valid, since
    neither make nor CI could build it.
    """
    pdir = root / "projects"
    if not pdir.is_dir():
        return []
    names = sorted(p.name for p in pdir.iterdir() if p.is_dir() and not p.name.startswith("."))
    bad = [f"projects/{n}/: {name_problem(n)}; rename the folder" for n in names if name_problem(n)]
    if bad:
        raise ProjectError("\n".join(bad))
    return names


def select(names: Iterable[str], projects: list[str]) -> list[str]:
    """Expand 'all' and check that each named project exists; keeps the given order."""
    chosen: list[str] = []
    for name in names:
        if name == "all":
            wanted = projects
        elif problem := name_problem(name):
            raise ProjectError(problem)
        elif name not in projects:
            raise ProjectError(
                f"no project '{name}': projects/{name}/ does not exist (projects: {', '.join(projects) or 'none'})"
            )
        else:
            wanted = [name]
        chosen += [p for p in wanted if p not in chosen]
    return chosen


def affected(paths: Iterable[str], projects: list[str]) -> list[str]:
    """The projects (sorted) that a change to PATHS rebuilds."""
    hit: set[str] = set()
    for raw in paths:
        path = raw.strip().removeprefix("./")
        if not path:
            continue
        if any(path == g or (g.endswith("/") and path.startswith(g)) for g in GLOBAL_INPUTS):
            return list(projects)
        parts = path.split("/")
        if len(parts) >= 2 and parts[0] == "projects" and parts[1] in projects:
            hit.add(parts[1])
    return sorted(hit)


def git_changed(root: Path, base: str) -> list[str]:
    """Paths changed between the merge base of BASE and HEAD, and HEAD."""
    cmd = ["git", "-C", str(root), "diff", "--name-only", "--no-renames", "-z", f"{base}...HEAD"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise ProjectError(
            f"'{' '.join(cmd)}' failed: {proc.stderr.strip()}\n"
            "  is BASE a commit this clone has? (CI: check out with fetch-depth: 0)"
        )
    return [p for p in proc.stdout.split("\0") if p]


def create(root: Path, name: str) -> Path:
    """Create projects/NAME from templates/new-project/ and templates/project.yml."""
    if problem := name_problem(name):
        raise ProjectError(problem)
    target = root / "projects" / name
    if target.exists() or target.is_symlink():
        raise ProjectError(f"projects/{name} already exists; choose another name (or delete it first)")
    skeleton, settings = root / "templates" / "new-project", root / "templates" / "project.yml"
    for need in (skeleton, settings):
        if not need.exists():
            raise ProjectError(f"{need.relative_to(root)} is missing; restore it from the template repository")
    # Filled under a hidden name (skipped by discover), then renamed into place.
    tmp = target.parent / f".{name}.new-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        shutil.copytree(skeleton, tmp, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        shutil.copyfile(settings, tmp / "project.yml")
        os.rename(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def tag_project(tag: str, projects: list[str]) -> str:
    """The project a release tag NAME-vVERSION names (it must exist)."""
    m = TAG.fullmatch(tag)
    if not m:
        raise ProjectError(f"tag '{tag}' is not <project>-v<version> (e.g. foo-v1.2)")
    return select([m["project"]], projects)[0]


def emit(names: list[str], as_json: bool) -> None:
    """Print names one per line, or as one JSON list (a GitHub Actions matrix)."""
    if as_json:
        print(json.dumps(names, separators=(",", ":")))
    elif names:
        print("\n".join(names))


def main() -> int:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--root", type=Path, default=ROOT, help="the repository root (default: %(default)s)")
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)
    ls = sub.add_parser("list", parents=[common], help="print the projects, one per line")
    ls.add_argument("names", nargs="*", metavar="NAME", help="only these (checked to exist); 'all' for every one")
    ls.add_argument("--json", action="store_true", help="print a JSON list")
    ch = sub.add_parser("changed", parents=[common], help="print the projects whose inputs changed")
    ch.add_argument("--base", metavar="REF", help="compare REF...HEAD with git (default: read paths on stdin)")
    ch.add_argument("--json", action="store_true", help="print a JSON list")
    new = sub.add_parser("new", parents=[common], help="create projects/NAME from templates/")
    new.add_argument("name", metavar="NAME")
    tg = sub.add_parser("tag", parents=[common], help="print the project of a release tag NAME-vX.Y")
    tg.add_argument("tag", metavar="TAG")
    args = ap.parse_args()
    root: Path = args.root
    try:
        if args.command == "new":
            target = create(root, args.name)
            files = sorted(str(p.relative_to(target)) for p in target.rglob("*") if p.is_file())
            print(
                f"created projects/{args.name}/ ({', '.join(files)})\n"
                f"  next: put your code there, then: make PROJECT={args.name} pack",
                file=sys.stderr,
            )
            return 0
        projects = discover(root)
        if args.command == "list":
            emit(select(args.names, projects) if args.names else projects, args.json)
        elif args.command == "changed":
            paths = git_changed(root, args.base) if args.base else sys.stdin.read().splitlines()
            emit(affected(paths, projects), args.json)
        else:
            print(tag_project(args.tag, projects))
    except ProjectError as exc:
        for line in str(exc).splitlines():
            print(line if line.startswith(" ") else f"error: {line}", file=sys.stderr)
        return 1
    return 0
