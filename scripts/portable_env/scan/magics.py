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
``%run -m X`` imports X. A shell line (``!cmd``, ``files = !cmd``), a
``%%bash`` cell and the ``%pip`` / ``%conda`` / ``%system`` magics become
IPython's own translation (``get_ipython().system("cmd")``,
``get_ipython().run_cell_magic("bash", "", body)``, ``run_line_magic``),
which the scanner reads as it reads ``subprocess`` and ``os.system`` calls:
a module run with ``python -m X`` (``!{sys.executable} -m X`` too) is
imported; the distributions an install command names (``!pip install X``,
``python -m pip install X``, ``uv pip install X``, ``conda install -c
conda-forge X``, mamba and micromamba too; not pip, setuptools or wheel,
the installer's own; not paths, URLs, archives or requirement files) are
needed on the target, where there may be no network to install them; and
so is the package of each program the command runs (``!kaggle ...``:
kaggle), from the generated table's ``commands:``.
``%%writefile x.py`` / ``%%file x.py`` cells are Python files the notebook
writes and runs: scanned as Python. Every other magic becomes ``pass`` (so
a block whose only body was a magic still parses). As in
IPython, only a line that starts a statement can be a magic: a line inside
open brackets, after a backslash or inside a triple-quoted string (`print(
"%d%%" \\n % x)`, a docstring line ending in `?`) is Python.
``get_ipython().run_line_magic("load_ext", "X")`` in exported scripts is read
by the scanner through ``magic_imports``.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Iterator

# Cell magics whose body is Python.
PY_CELL_MAGICS = {"time", "timeit", "capture", "prun", "debug", "pypy"}
# Cell magics whose body is shell commands.
SHELL_CELL_MAGICS = {"bash", "sh", "script", "system"}
# Cell magics whose body is a file the notebook writes (Python when *.py).
FILE_CELL_MAGICS = {"writefile", "file"}
ESCAPE_LINE = re.compile(r"^\s*(!|%|\?)|^\s*\w+\s*=\s*[!%]")  # %magic, !shell, ?help, x = !cmd
SYNTAX_CHARS = re.compile(r"[][(){}'\"#\\]")  # the characters that open or close something
LINE_MAGIC = re.compile(r"^\s*(?:[\w.]+\s*=\s*)?%+([A-Za-z_]\w*)\s*(.*)$")
SHELL_LINE = re.compile(r"^\s*([\w.]+\s*=\s*)?!+(.*)$")  # !cmd, !!cmd, files = !ls
# Line magics that run a shell command or an installer: kept as IPython's call, which the scanner reads.
SHELL_LINE_MAGICS = {"system", "sx", "pip", "conda", "mamba", "micromamba", "uv"}
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
# Words before a program that run it (`sudo pip ...`, `time python ...`, `env X=1 cmd`).
COMMAND_WRAPPERS = {"sudo", "time", "nohup", "exec", "env", "command", "nice"}
ASSIGNMENT_RE = re.compile(r"[A-Za-z_]\w*=.*")  # `X=1 cmd`
COMMAND_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]*")  # a program's name (no path)
# The programs whose `install` command installs packages (`pip3 install`, `uv pip install`, `conda install`).
INSTALLERS = re.compile(r"pip[\d.]*|conda|mamba|micromamba")
# Options of pip and conda install that take a value (`-r requirements.txt`, `-c conda-forge`).
INSTALL_VALUE_OPTIONS = {
    "-r", "--requirement", "-c", "--constraint", "-e", "--editable", "-i", "--index-url", "--extra-index-url",
    "-f", "--find-links", "-t", "--target", "--prefix", "--root", "--src", "--upgrade-strategy", "--platform",
    "--python-version", "--implementation", "--abi", "--only-binary", "--no-binary", "--progress-bar", "-C",
    "--config-settings", "--global-option", "--trusted-host", "--cache-dir", "--log", "--proxy", "--retries",
    "--timeout", "--exists-action", "--cert", "--client-cert", "--python", "--report", "--root-user-action",
    "--use-feature", "--use-deprecated", "--channel", "-n", "--name", "-p", "--file", "--solver",
    "--repodata-fn", "--index-strategy", "--group",
}  # fmt: skip
# The installer's own packages (`pip install -U pip setuptools wheel`): not what the code needs.
INSTALLER_OWN = {"pip", "setuptools", "wheel"}
# A path, URL, archive or shell expansion, not a requirement (`./pkg`, `git+https://...`, `x.whl`, `$PKG`).
NOT_A_REQUIREMENT_RE = re.compile(r"[/\\:$%{}~]|\.(?:whl|zip|tar\.gz|tgz|tar\.bz2|conda)$")
# A requirement: a distribution name, then nothing or extras / a version / a URL (`x[all]>=1`, `x==1.*=py_0`).
REQUIREMENT_RE = re.compile(r"([A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)(?:[\[=<>!~@, ;].*)?")


def _shell_words(line: str) -> list[list[str]]:
    """The words of each simple command of a shell line, quotes removed
    (`a 'b c'; d > f`: [a, b c], [d]); after a redirection, nothing."""
    lex = shlex.shlex(line, posix=True, punctuation_chars=True)
    lex.whitespace_split = True
    try:
        tokens = list(lex)
    except ValueError:  # an unclosed quote
        tokens = line.replace('"', " ").replace("'", " ").split()
    out: list[list[str]] = [[]]
    for t in tokens:
        if t and all(c in "();<>|&" for c in t):
            out.append([])
            if "<" in t or ">" in t:
                out.append(["<redirected>"])  # the file name after `>` is not a word of the command
        else:
            out[-1].append(t)
    return [ws for ws in out if ws and ws[0] != "<redirected>"]


def _simple_commands(command: str) -> Iterator[list[str]]:
    """The words of each simple command of a shell command (its lines, `\\` continuations joined)."""
    for line in command.replace("\\\n", " ").splitlines():
        yield from _shell_words(line)


def _installs(command: str) -> Iterator[list[str]]:
    """The arguments of each install command in a shell command (`pip install -q x`: [-q, x])."""
    if "install" not in command:
        return
    for words in _simple_commands(command):
        for i in range(1, len(words)):
            if words[i] == "install" and INSTALLERS.fullmatch(words[i - 1].lstrip("!").rsplit("/", 1)[-1]):
                yield words[i + 1 :]
                break


def runs_installer(command: str) -> bool:
    """Whether a shell command installs packages (`pip install ...`, `conda install ...`)."""
    return next(_installs(command), None) is not None


def install_names(command: str) -> list[str]:
    """Distributions the install commands in a shell command name (`pip install "x[all]>=1" y`:
    x, y): the code needs them installed. Not options and their values, paths, URLs, archives,
    shell variables or the installer's own packages."""
    out = []
    for args in _installs(command):
        skip = False
        for w in args:
            if skip:
                skip = False
            elif w.startswith("-"):
                skip = w in INSTALL_VALUE_OPTIONS
            else:
                name = w.rpartition("::")[2]  # conda-forge::numpy
                m = REQUIREMENT_RE.fullmatch(name)
                if m and not NOT_A_REQUIREMENT_RE.search(name) and m.group(1).lower() not in INSTALLER_OWN:
                    out.append(m.group(1))
    return out


def shell_commands(command: str) -> list[list[str]]:
    """The program each simple command of a shell command runs, as names to look up
    in order (`jupyter nbconvert x`: [jupyter-nbconvert, jupyter], as jupyter runs its
    subcommands; `sudo -E env X=1 gdown id`: [gdown]). Not a path (`./run.sh`)."""
    out = []
    for words in _simple_commands(command):
        i, n = 0, len(words)
        while i < n and (ASSIGNMENT_RE.fullmatch(words[i]) or words[i] in COMMAND_WRAPPERS):
            i += 1
            while i < n and words[i - 1] in COMMAND_WRAPPERS and words[i].startswith("-"):
                i += 1  # sudo -E, nice -n? (wrapper options without values)
        prog = words[i].lstrip("!") if i < n else ""
        if not COMMAND_RE.fullmatch(prog):
            continue
        sub = words[i + 1] if i + 1 < n else ""
        out.append(([f"{prog}-{sub}"] if re.fullmatch(r"[a-z][a-z0-9_-]*", sub) else []) + [prog])
    return out


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


def _statement(indent: str, modules: list[str], call: str = "") -> str:
    """One line of Python standing for a magic line: its imports, then `call`
    (IPython's own translation of a shell or install magic, which the scanner reads)."""
    parts = ([f"import {', '.join(modules)}"] if modules else []) + ([call] if call else [])
    return indent + ("; ".join(parts) or "pass")


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
            # %%bash: IPython's own translation, which the scanner reads; %%html, ...: not Python
            if magic in SHELL_CELL_MAGICS:
                return f"get_ipython().run_cell_magic({magic!r}, '', {chr(10).join(lines[1:])!r})"
            mods = CELL_MAGIC_IMPORTS.get(magic)
            return _statement("", mods) if mods else None
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
        if m:
            name, args = m.group(1), m.group(2)
            call = f"get_ipython().run_line_magic({name!r}, {args!r})" if name in SHELL_LINE_MAGICS else ""
            out.append(_statement(indent, magic_imports(name, args), call))
        elif sh := SHELL_LINE.match(ln):  # IPython's own translation, which the scanner reads
            target, command = sh.group(1) or "", sh.group(2).strip()
            call = f"{target}get_ipython().{'getoutput' if target else 'system'}({command!r})"
            out.append(indent + call if command else indent + "pass")
        else:
            out.append(indent + "pass")  # ?help
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
