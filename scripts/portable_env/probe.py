"""THE import probe: does an unpacked environment work where it now lies?

verify-pack and the installer both run this file's source with the
unpacked environment's own python (``bin/python -c SOURCE ROOT NAME...``;
make-installer embeds it into the installer), so they check the same way:
every NAME imports (a ``bin/<program>`` NAME is an executable in ROOT/bin/, a
``dist:<name>`` NAME an installed distribution: what deps.yml names besides
imports), and ``sys.prefix`` is ROOT (the environment relocated).

It prints one problem a line and exits 1 when there are any (``--json``: one
JSON object ``{"prefix", "relocated", "failed"}``, exit 0). Standard library
only, and syntax any Python 3 conda-pack supports runs: it runs under the
packed python, whichever version that is.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import traceback
from pathlib import Path
from typing import Any


def source() -> str:
    """This file's source, to run with another python (``-c``) or embed."""
    return Path(__file__).read_text()


def check(root: str, name: str) -> None:
    """Raise unless `name` works here: an import name imports; `bin/<program>` (a
    program the code runs) is an executable file in root's bin/; `dist:<name>` (a
    distribution the code looks up by name) is installed; `install:<name>` (one an
    install command names: conda's package of it may carry another distribution
    name, py-opencv for opencv-python) needs nothing more."""
    if name.startswith("bin/"):
        program = name[4:]
        path = os.path.join(root, "bin", program)
        if "/" in program or program in ("", ".", "..") or not (os.path.isfile(path) and os.access(path, os.X_OK)):
            raise FileNotFoundError(f"no program {program} in {os.path.join(root, 'bin')}")
    elif name.startswith("install:"):
        pass  # an install command named it: the package it maps to is there; its imports are checked
    elif name.startswith("dist:"):
        try:
            from importlib.metadata import distribution
        except ImportError:  # Python < 3.8
            from pkg_resources import get_distribution as distribution  # type: ignore[no-redef]
        distribution(name[5:])
    else:
        importlib.import_module(name)


def probe(root: str, names: list[str]) -> dict[str, Any]:
    """Check every name (check); whether sys.prefix is root; the errors by name."""
    failed = {}
    for name in names:
        try:
            check(root, name)
        except BaseException as exc:  # anything an import raises is its failure
            failed[name] = traceback.format_exception_only(type(exc), exc)[-1].strip()
    relocated = os.path.realpath(sys.prefix) == os.path.realpath(root)
    return {"prefix": sys.prefix, "relocated": relocated, "failed": failed}


def problems(result: dict[str, Any], root: str) -> list[str]:
    """A probe result as one indented line per problem (none: it works)."""
    lines = [
        f"  {name if name.startswith(('bin/', 'dist:', 'install:')) else 'import ' + name}: {error}"
        for name, error in result["failed"].items()
    ]
    if not result["relocated"]:
        lines.append(f"  sys.prefix is {result['prefix']}, not {root}: not relocated")
    return lines


def main(argv: list[str]) -> int:
    """probe [--json] ROOT NAME..."""
    as_json = argv[:1] == ["--json"]
    args = argv[1:] if as_json else argv
    if not args:
        print("usage: python -c SOURCE [--json] ROOT NAME...", file=sys.stderr)
        return 2
    result = probe(args[0], args[1:])
    if as_json:
        print(json.dumps(result))
        return 0
    found = problems(result, args[0])
    if found:
        print("\n".join(found))
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
