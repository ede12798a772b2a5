"""Ship a project's own code inside its environment, with launchers.

What is shipped (setting ``ship_code: true``): the project's files as
``portable_env.files.project_files`` lists them (the walker the scan and Make's
source list use: *.py and *.ipynb, without hidden files and folders, caches and
virtual environments), minus test code (files.is_test_path: the scan's rule,
the one definition), plus the data files of the project's Python packages
(every other file the same walk finds inside a folder with __init__.py, except
compiled files, project.yml and lock files). They are copied to ENV/share/P/;
a .pth file puts that folder on the environment's sys.path (at the end).

Entry points (``entry_points: {NAME: SPEC}``) become launchers ENV/bin/NAME:
``module:function`` calls function() (dotted: obj.method) and exits with its
return value, like pip's console scripts; ``module`` runs ``python -m module``;
``path/script.py`` runs the shipped script. A launcher is a small /bin/sh
script that finds python and the code beside itself (readlink -f "$0"), so it
works wherever the archive is unpacked, with or without conda-unpack.

Only new files are added to ENV (its package files are hard links into the
package cache and are never touched). The code is staged in a temporary folder
and renamed into place; launchers and the .pth file are written through
temporary names. What was shipped is recorded in ENV/share/portable-env/code.json
(files with sha256, entry points); running again replaces what the previous
run shipped and removes launchers no longer asked for.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from portable_env.errors import UserError, run
from portable_env.files import conda_file_owners, is_test_path, project_files, sha256_of, walk, write_atomic
from portable_env.settings import FUNCTION_RE, LAUNCHER_NAME_RE, MODULE_RE, RESERVED_LAUNCHERS, load

RECORD = "share/portable-env/code.json"
MARKER = "# portable-env launcher"
# The launcher rules are the settings model's (files conda-pack adds to bin/ are reserved).
NAME_RE, RESERVED = LAUNCHER_NAME_RE, RESERVED_LAUNCHERS

LAUNCHER_CALL = """#!/bin/sh
{marker}: {name} -> {spec} (project {project}).
# Finds python and the project's code beside itself: works at any unpack path.
bin=$(dirname "$(readlink -f "$0")")
exec "$bin/python" -c '{code}' "${{bin%/*}}/share/{project}" "$0" "$@"
"""
LAUNCHER_SCRIPT = """#!/bin/sh
{marker}: {name} -> {spec} (project {project}).
# Finds python and the project's code beside itself: works at any unpack path.
bin=$(dirname "$(readlink -f "$0")")
exec "$bin/python" "${{bin%/*}}/share/{project}/{spec}" "$@"
"""
# Python run by a launcher: argv = [-c, CODE_DIR, LAUNCHER, args...]. The
# code dir replaces -c's '' (the current directory) at the front of sys.path.
PY_PRELUDE = (
    "import sys; code = sys.argv[1]; sys.argv[:3] = [sys.argv[2]]; "
    'sys.path[:1] = [code] if sys.path[:1] == [""] else [code] + sys.path[:1]; '
)
PY_CALL = PY_PRELUDE + (
    'import importlib; f = importlib.import_module("{module}")\n'
    'for a in "{attr}".split("."): f = getattr(f, a)\n'
    "sys.exit(f())"
)
PY_MODULE = PY_PRELUDE + 'import runpy; runpy.run_module("{module}", run_name="__main__", alter_sys=True)'


# Package data that is not code to ship: compiled files, settings, locks.
NOT_DATA_RE = re.compile(r".*\.py[co]|project\.yml|rattler-lock\.yml|conda-.*\.lock")


def _package_data(root: Path) -> list[Path]:
    """Non-source files of the project's packages: what walk() finds inside a folder with __init__.py."""
    found = []
    in_package: set[Path] = set()
    for d, _dirs, files in walk(root):
        rel_dir = d.relative_to(root)
        if rel_dir == Path("."):
            continue  # the project folder itself is no package, even with an __init__.py
        if "__init__.py" in files or rel_dir.parent in in_package:
            in_package.add(rel_dir)
        if rel_dir not in in_package:
            continue
        found += [rel_dir / n for n in files if not n.endswith((".py", ".ipynb")) and not NOT_DATA_RE.fullmatch(n)]
    return found


def code_files(project_dir: Path) -> list[str]:
    """The project's files to ship, as sorted relative POSIX paths (the rule in the module docstring)."""
    root = project_dir.resolve()
    found = []
    for rel in [*project_files(project_dir), *_package_data(project_dir)]:
        if is_test_path(rel):
            continue
        path = project_dir / rel
        if path.is_symlink() and not path.resolve().is_relative_to(root):
            print(f"ship-code: warning: {path} links outside the project; not shipped", file=sys.stderr)
            continue
        found.append(rel.as_posix())
    return sorted(found)


def parse_entry_points(items: list[str]) -> dict[str, str]:
    """name -> spec from --entry-point 'NAME = SPEC' items."""
    result = {}
    for item in items:
        if "=" not in item:
            raise UserError(f"--entry-point {item!r}: expected NAME = module:function or NAME = path/script.py")
        name, spec = item.split("=", 1)
        result[name.strip()] = spec.strip()
    return result


def owned_paths(prefix: Path) -> set[str]:
    """Every path installed by a conda package of prefix."""
    return set(conda_file_owners(prefix))


def check_entry_point(name: str, spec: str, shipped: list[str], owned: set[str]) -> str:
    """The kind of an entry point ('call', 'module', 'script'); raises if it is not usable."""
    if not NAME_RE.fullmatch(name) or name in RESERVED:
        raise UserError(
            f"entry point name {name!r} is not allowed: use letters, digits, '.', '_', '-', "
            f"and none of {', '.join(sorted(RESERVED))}"
        )
    if f"bin/{name}" in owned:
        raise UserError(f"entry point {name!r}: bin/{name} belongs to an installed package; choose another name")
    if FUNCTION_RE.fullmatch(spec):
        return "call"
    if spec.endswith(".py"):
        if spec not in shipped:
            hint = (
                "set ship_code: true so the project's code is shipped"
                if not shipped
                else f"shipped files: {', '.join(shipped[:10])}"
            )
            raise UserError(f"entry point {name!r}: {spec} is not among the shipped files; {hint}")
        return "script"
    if MODULE_RE.fullmatch(spec):
        return "module"
    raise UserError(f"entry point {name!r}: {spec!r} is neither module:function, module, nor path/script.py")


def module_found(prefix: Path, module: str, shipped: list[str]) -> bool:
    """Whether module's top-level name is shipped code or installed in prefix."""
    top = module.split(".")[0]
    if f"{top}.py" in shipped or any(p.startswith(f"{top}/") for p in shipped):
        return True
    python = prefix / "bin" / "python"
    if not python.exists():
        return True  # cannot check here (another platform's environment)
    try:
        probe = "import importlib.util, sys; sys.exit(importlib.util.find_spec(sys.argv[1]) is None)"
        proc = subprocess.run([str(python), "-I", "-c", probe, top], check=False, capture_output=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired):
        return True
    return proc.returncode == 0


def launcher_text(project: str, name: str, spec: str, kind: str) -> str:
    """The /bin/sh launcher bin/NAME for an entry point of the given kind."""
    if kind == "script":
        return LAUNCHER_SCRIPT.format(marker=MARKER, name=name, spec=spec, project=project)
    if kind == "call":
        module, attr = spec.split(":")
        code = PY_CALL.format(module=module, attr=attr)
    else:
        code = PY_MODULE.format(module=spec)
    return LAUNCHER_CALL.format(marker=MARKER, name=name, spec=spec, project=project, code=code)


def is_ours(path: Path) -> bool:
    """Whether path is a launcher portable-env wrote (its marker in the first bytes)."""
    try:
        with open(path, "rb") as f:
            return MARKER.encode() in f.read(512)
    except OSError:
        return False


def replace_dir(stage: Path, final: Path) -> None:
    """Move stage to final; a previous final (ours) is swapped out, then removed."""
    old = None
    if final.exists():
        old = final.with_name(f".{final.name}.old-{os.getpid()}")
        os.rename(final, old)
    os.rename(stage, final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def site_packages(prefix: Path) -> Path | None:
    """The environment's one lib/python3*/site-packages, if it has exactly one."""
    found = sorted(prefix.glob("lib/python3*/site-packages"))
    return found[0] if len(found) == 1 else None


def ship(
    project_dir: Path, prefix: Path, project: str, ship_code: bool, entry_points: dict[str, str]
) -> dict[str, Any]:
    """Ship the code and write the launchers; returns the record."""
    if not (prefix / "conda-meta").is_dir():
        raise UserError(f"{prefix} is not a conda environment (no conda-meta/); build it with make env")
    if project == "portable-env":
        raise UserError("the project name 'portable-env' is reserved (ENV/share/portable-env holds the manifest)")
    owned = owned_paths(prefix)
    code_dir = prefix / "share" / project
    clash = sorted(p for p in owned if p.startswith(f"share/{project}/"))
    if ship_code and clash:
        raise UserError(
            f"packages install files in share/{project}/ (e.g. {clash[0]}); the project's code "
            "cannot go there: rename the project"
        )
    shipped = code_files(project_dir) if ship_code else []
    if ship_code and not shipped:
        raise UserError(f"{project_dir} has no .py/.ipynb files or packages to ship")
    kinds = {name: check_entry_point(name, spec, shipped, owned) for name, spec in sorted(entry_points.items())}
    for name, kind in kinds.items():
        if kind in ("call", "module"):
            module = entry_points[name].split(":")[0]
            if not module_found(prefix, module, shipped):
                raise UserError(
                    f"entry point {name!r}: module {module!r} is neither in the project's shipped code "
                    "nor installed in the environment" + ("" if ship_code else "; set ship_code: true to ship it")
                )
    record_path = prefix / RECORD
    previous = json.loads(record_path.read_text()) if record_path.is_file() else {}
    for name in kinds:
        target = prefix / "bin" / name
        if target.exists() and not is_ours(target):
            raise UserError(f"{target} exists and is not a portable-env launcher; choose another entry point name")

    files = []
    if ship_code:
        (prefix / "share").mkdir(exist_ok=True)
        stage = Path(tempfile.mkdtemp(prefix=f".{project}.ship-", dir=prefix / "share"))
        try:
            for rel in shipped:
                dst = stage / rel
                dst.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(project_dir / rel, dst)
                os.chmod(dst, 0o755 if os.access(project_dir / rel, os.X_OK) else 0o644)
                files.append({"path": rel, "sha256": sha256_of(dst)})
            os.chmod(stage, 0o755)
            replace_dir(stage, code_dir)
        finally:
            shutil.rmtree(stage, ignore_errors=True)
    elif previous.get("dir") and code_dir.is_dir() and not clash:
        shutil.rmtree(code_dir)  # shipped by an earlier run, no longer wanted

    pth_name = f"portable-env-{project}.pth"
    site = site_packages(prefix)
    if site is not None:
        if ship_code:
            rel = os.path.relpath(code_dir, site)
            write_atomic(site / pth_name, rel + "\n", 0o644)
        else:
            (site / pth_name).unlink(missing_ok=True)

    (prefix / "bin").mkdir(exist_ok=True)
    for name in previous.get("entry_points") or {}:
        stale = prefix / "bin" / name
        if name not in kinds and is_ours(stale):
            stale.unlink()
    for name, kind in kinds.items():
        write_atomic(prefix / "bin" / name, launcher_text(project, name, entry_points[name], kind), 0o755)

    record = {
        "project": project,
        "dir": f"share/{project}" if ship_code else "",
        "files": files,
        "entry_points": dict(sorted(entry_points.items())),
    }
    if files or entry_points:
        record_path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(record_path, json.dumps(record, indent=2) + "\n", 0o644)
    else:
        record_path.unlink(missing_ok=True)
    return record


def plan(project_dir: Path, project: str, ship_code: bool, entry_points: dict[str, str]) -> dict[str, Any]:
    """What ship() would ship, from the project folder alone."""
    shipped = code_files(project_dir) if ship_code else []
    for name, spec in sorted(entry_points.items()):
        check_entry_point(name, spec, shipped, set())
    return {
        "project": project,
        "dir": f"share/{project}" if ship_code else "",
        "files": [{"path": rel, "sha256": sha256_of(project_dir / rel)} for rel in shipped],
        "entry_points": dict(sorted(entry_points.items())),
    }


CLI_DOC = """Ship a project's own code inside its environment, with launchers.

  ship-code --settings build/P/settings.json --prefix ENV [--code | --no-code]
            [--entry-point 'NAME = SPEC' ...]
  ship-code --plan --settings build/P/settings.json [--out FILE] ...
            print (or write to FILE) what would be shipped (JSON: files with their sha256,
            entry points) without touching an environment; its output
            changes exactly when a pack must ship something new
  ship-code --project-dir DIR [--project NAME] ...
            without settings: ship only what --code / --entry-point ask for

The settings give the project, its folder, ship_code and entry_points;
--code/--no-code override ship_code, --entry-point adds launchers:
  NAME = module:function      calls function() and exits with its value;
  NAME = module               runs `python -m module`;
  NAME = path/script.py       runs the shipped script (shipping required).
What is shipped (the project's .py/.ipynb files as portable_env.files lists
them, without tests, plus its packages' data files) goes to ENV/share/P/,
recorded in ENV/share/portable-env/code.json. The logic lives in
portable_env.ship.
"""


def main(argv: list[str] | None = None) -> int:
    """scripts/ship-code: see CLI_DOC."""
    ap = argparse.ArgumentParser(
        prog="ship-code", description=CLI_DOC, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--settings", type=Path, help="build/P/settings.json (project, ship_code, entry_points)")
    ap.add_argument("--project-dir", type=Path, help="projects/<name> (default: the settings' project folder)")
    ap.add_argument("--prefix", type=Path, help="the built environment (required unless --plan)")
    ap.add_argument("--project", help="project name (default: the settings' project, else the folder's name)")
    code = ap.add_mutually_exclusive_group()
    code.add_argument("--code", dest="ship_code", action="store_true", default=None, help="ship the code")
    code.add_argument("--no-code", dest="ship_code", action="store_false", help="do not ship the code")
    ap.add_argument(
        "--entry-point",
        action="append",
        default=[],
        metavar="'NAME = SPEC'",
        help="a launcher (repeatable; added to the settings' entry_points)",
    )
    ap.add_argument("--plan", action="store_true", help="print what would be shipped (JSON) and exit")
    ap.add_argument("--out", type=Path, help="with --plan: write the plan here (temp file + rename)")
    args = ap.parse_args(argv)
    if not args.plan and args.prefix is None:
        ap.error("--prefix is required (or use --plan)")
    if args.settings is None and args.project_dir is None:
        ap.error("give --settings build/P/settings.json or --project-dir DIR")
    name = args.project or (args.project_dir.resolve().name if args.project_dir else args.settings.parent.name)

    def go() -> int:
        s = load(args.settings) if args.settings else None
        project_dir: Path = args.project_dir or Path(s.project_dir if s else ".")
        project = args.project or (s.project if s else project_dir.resolve().name)
        if not project_dir.is_dir():
            raise UserError(f"{project_dir}: no such project folder")
        ship_code = args.ship_code if args.ship_code is not None else bool(s and s.ship_code)
        entry_points = {**(s.entry_points if s else {}), **parse_entry_points(args.entry_point)}
        if args.plan:
            text = json.dumps(plan(project_dir, project, ship_code, entry_points), indent=2) + "\n"
            if args.out:
                write_atomic(args.out, text)
            else:
                print(text, end="")
            return 0
        try:
            record = ship(project_dir, args.prefix, project, ship_code, entry_points)
        except OSError as exc:
            raise UserError(
                f"cannot write {exc.filename}: {exc.strerror}; free some space or make the environment writable"
            ) from None
        if record["files"] or record["entry_points"]:
            print(
                f"ship-code: {len(record['files'])} files -> {record['dir'] or '(none)'}; launchers: "
                f"{', '.join('bin/' + n for n in record['entry_points']) or '(none)'}",
                file=sys.stderr,
            )
        return 0

    return run(go, f"[{name}] ship-code")
