"""Notebook cells as Python: IPython magics and shell lines become Python
statements of the same line count, and the magics that need a package
become imports of it.

The magic table (MAGIC_IMPORTS, LOAD_EXT_BUILTIN, CELL_MAGIC_IMPORTS) names
the module each magic imports when it runs:
- ``%load_ext X`` / ``%reload_ext X``: X (IPython's own autoreload and
  storemagic: IPython);
- ``%matplotlib [backend]``: matplotlib; ``widget`` / ``ipympl``: ipympl too;
- ``%lprun``: line_profiler; ``%mprun`` / ``%memit``: memory_profiler;
  ``%tensorboard``: tensorboard;
- cell magics ``%%cython``: Cython; ``%%R``: rpy2; ``%%sql``: sql
  (ipython-sql); ``%%ipytest``: ipytest.
A shell line or ``%%bash`` cell that runs ``python -m X`` (``!{sys.executable}
-m X`` too) and ``%run -m X`` import X.
``%%writefile x.py`` / ``%%file x.py`` cells are Python files the notebook
writes and runs: scanned as Python. Every other magic or shell line becomes
``pass`` (so a block whose only body was a magic still parses). As in
IPython, only a line that starts a statement can be a magic: a line inside
open brackets, after a backslash or inside a triple-quoted string (`print(
"%d%%" \\n % x)`, a docstring line ending in `?`) is Python.
``get_ipython().run_line_magic("load_ext", "X")`` in exported scripts is read
by the scanner through ``magic_imports``.
"""

from __future__ import annotations

import json
import re

# Cell magics whose body is Python.
PY_CELL_MAGICS = {"time", "timeit", "capture", "prun", "debug", "pypy"}
# Cell magics whose body is shell commands.
SHELL_CELL_MAGICS = {"bash", "sh", "script", "system"}
# Cell magics whose body is a file the notebook writes (Python when *.py).
FILE_CELL_MAGICS = {"writefile", "file"}
ESCAPE_LINE = re.compile(r"^\s*(!|%|\?)|^\s*\w+\s*=\s*[!%]")  # %magic, !shell, ?help, x = !cmd
SYNTAX_CHARS = re.compile(r"[][(){}'\"#\\]")  # the characters that open or close something
LINE_MAGIC = re.compile(r"^\s*(?:[\w.]+\s*=\s*)?%+([A-Za-z_]\w*)\s*(.*)$")
# Extensions IPython ships itself (%load_ext autoreload).
LOAD_EXT_BUILTIN = {"autoreload": "IPython", "storemagic": "IPython"}
# Line magics -> modules they import (besides %load_ext and %matplotlib).
MAGIC_IMPORTS = {
    "lprun": ["line_profiler"],
    "mprun": ["memory_profiler"],
    "memit": ["memory_profiler"],
    "tensorboard": ["tensorboard"],
}
# Cell magics that are not Python but need a package.
CELL_MAGIC_IMPORTS = {"cython": ["Cython"], "R": ["rpy2"], "sql": ["sql"], "ipytest": ["ipytest"]}
MODULE_RE = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*")
# A python run with -m in a shell command: `python -m x`, `python3.11 -u -m x`,
# `{sys.executable} -m x` (notebooks), `$PYTHON -m x`.
RUN_MODULE_RE = re.compile(
    r"(?:^|[\s;&|(`'\"!])(?:\{sys\.executable\}|\$\{?PYTHON\}?|[\w./-]*python[\d.]*)\s+(?:-[A-Za-z]+\s+)*-m\s*"
    r"([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)"
)


def run_modules(command: str) -> list[str]:
    """Modules a shell command runs as programs (`python -m x`): they must be installed."""
    return RUN_MODULE_RE.findall(command)


def magic_imports(name: str, args: str) -> list[str]:
    """Modules a line magic `%name args` imports when it runs."""
    words = args.split()
    if name in ("load_ext", "reload_ext"):
        mods = [w for w in words if MODULE_RE.fullmatch(w)]
        return [LOAD_EXT_BUILTIN.get(m, m) for m in mods[:1]]
    if name == "run" and len(words) > 1 and words[0] == "-m" and MODULE_RE.fullmatch(words[1]):
        return [words[1]]  # %run -m x
    if name == "matplotlib":
        backend = next((w for w in words if not w.startswith("-")), "")
        return ["matplotlib", "ipympl"] if backend in ("widget", "ipympl") else ["matplotlib"]
    return list(MAGIC_IMPORTS.get(name, CELL_MAGIC_IMPORTS.get(name, [])))


def _open_after(line: str, state: tuple[int, str]) -> tuple[int, str]:
    """(bracket depth, open triple quote or "\\" for a backslash continuation)
    after `line`, given the state before it."""
    depth, quote = state
    if quote == "\\":
        quote = ""
    if not SYNTAX_CHARS.search(line):
        return depth, quote
    i, n = 0, len(line)
    comment = False
    while i < n:
        if quote:  # inside a triple-quoted string
            if line[i] == "\\":
                i += 2
                continue
            if line.startswith(quote, i):
                i += 3
                quote = ""
                continue
            i += 1
            continue
        c = line[i]
        if c == "#":
            comment = True
            break
        if c in "\"'":
            if line.startswith(c * 3, i):
                quote = c * 3
                i += 3
                continue
            j = i + 1  # a one-line string: to its closing quote (or the end of the line)
            while j < n and line[j] != c:
                j += 2 if line[j] == "\\" else 1
            i = j + 1
            continue
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth = max(depth - 1, 0)
        i += 1
    if not quote and not comment and line.rstrip().endswith("\\"):
        quote = "\\"
    return depth, quote


def _statement(indent: str, modules: list[str]) -> str:
    """One line of Python standing for a magic line."""
    return f"{indent}import {', '.join(modules)}" if modules else f"{indent}pass"


def cell_source(text: str, written: set[str] | None = None) -> str | None:
    """A code cell's Python (same line numbers), or None when it is not Python.
    The module names of the .py files `%%writefile` cells write go to `written`
    (the notebook imports them as local code)."""
    lines = text.splitlines()
    if lines and lines[0].lstrip().startswith("%%"):
        words = lines[0].lstrip()[2:].split()
        magic = words[0] if words else ""
        if magic in FILE_CELL_MAGICS:
            target = next((w for w in words[1:] if not w.startswith("-")), "")
            if not target.endswith(".py"):
                return None
            stem = target.rsplit("/", 1)[-1][:-3]
            if written is not None and stem.isidentifier():
                written.add(stem)
        elif magic not in PY_CELL_MAGICS:
            mods = CELL_MAGIC_IMPORTS.get(magic) or (
                run_modules("\n".join(lines[1:])) if magic in SHELL_CELL_MAGICS else []
            )
            return _statement("", mods) if mods else None  # %%bash, %%html, ...: not Python
        lines[0] = ""
    if not any(ESCAPE_LINE.match(ln) or ln.rstrip().endswith("?") for ln in lines):
        return "\n".join(lines)  # plain Python (most cells): nothing to track
    out = []
    state = (0, "")
    for ln in lines:
        after = _open_after(ln, state)
        escaped = bool(ESCAPE_LINE.match(ln) or (ln.rstrip().endswith("?") and after == (0, "")))  # `s = """why?`: text
        if state != (0, "") or not escaped or ln.lstrip().startswith("#"):
            out.append(ln)
            state = after
            continue
        indent = ln[: len(ln) - len(ln.lstrip())]
        m = LINE_MAGIC.match(ln)
        out.append(_statement(indent, magic_imports(m.group(1), m.group(2)) if m else run_modules(ln)))
    return "\n".join(out)


def notebook_cells(data: bytes, written: set[str] | None = None) -> list[tuple[int, str]]:
    """(cell number, python source) of a notebook's code cells, magics replaced
    (`written`: see cell_source)."""
    nb = json.loads(data)
    cells = nb.get("cells")
    if cells is None and isinstance(nb.get("worksheets"), list):  # nbformat 3
        cells = [c for w in nb["worksheets"] for c in w.get("cells", [])]
    if not isinstance(cells, list):
        raise TypeError("no cells")
    out = []
    for i, cell in enumerate(cells, 1):
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        src = cell.get("source", cell.get("input", ""))
        code = cell_source("".join(src) if isinstance(src, list) else str(src), written)
        if code is not None:
            out.append((i, code))
    return out
