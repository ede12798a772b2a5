"""Parsing: notebooks' code cells, the AST scanner of one module, and the
Use records (one per import found)."""

from __future__ import annotations

import ast
import bisect
import importlib
import re
import sys
from collections.abc import Collection
from dataclasses import dataclass, field, replace
from pathlib import Path

from portable_env.scan import engines
from portable_env.scan import guards as g
from portable_env.scan.evaluate import Evaluator
from portable_env.scan.magics import install_names, magic_imports, notebook_cells, run_modules, shell_commands

# Byte strings whose presence makes a file worth scanning for dynamic imports and commands
# (calls, so "available(" not "available": the word is common in docstrings;
# "_import(" not "_import", which every `from __future__ import absolute_import` has).
DYNAMIC = (
    b"import_module",
    b"__import__",
    b"find_spec",
    b"importorskip",
    b"available(",
    b"installed(",
    b"find_loader",
    b"_import(",
    b"import_optional",
    b"run_line_magic",
    b"get_ipython()",
    b"subprocess",
    b"system(",
    b"popen(",
    b"importlib.metadata",
    b"importlib_metadata",
    b"import metadata",
    b"pkg_resources",
    b"'-m",
    b'"-m',
    b" -m ",
    b"azy",
)
# Calls that load the module they are given on first use (LazyModule, LazyLoader, lazy_import).
# (Not lazy_gettext("Name"): a lazy translation.)
LAZY_CALL_RE = re.compile(r"lazy_?(?:module|import|loader)|(?:module|import)_?lazy", re.IGNORECASE)
PYTHON_RE = re.compile(r"(?:.*/)?python[\d.]*")
# Calls that look an installed distribution up by its name (importlib.metadata,
# pkg_resources): they fail when it is missing, unless the code catches that.
DIST_LOOKUPS = frozenset({"version", "distribution", "metadata", "requires", "files", "get_distribution", "require"})
DIST_MODULES = frozenset({"importlib.metadata", "importlib_metadata", "pkg_resources"})
DIST_NAME_RE = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?")
UNSAFE_TO_IMPORT = {
    "antigravity",
    "this",
    "idlelib",
    "tkinter",
    "turtle",
    "turtledemo",
    "__hello__",
    "__phello__",
    "pydoc_data",
    "lib2to3",
    "ensurepip",
}
# 'pkg.mod.Name' and 'pkg.mod:attr' (entry-point / ASGI app strings)
DOTTED_STR_RE = re.compile(rb"['\"]([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+)(?::[A-Za-z_][\w.]*)?['\"]")
# "name": "pkg.mod:Attr" entries of a dict: a registry of alternatives picked by name
# (kombu's TRANSPORT_ALIASES, uvicorn's HTTP_PROTOCOLS), when it has this many
REGISTRY_MIN = 2
REGISTRY_STR_RE = re.compile(
    rb"['\"]([\w.+-]+)['\"]\s*:\s*['\"]([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+)(?::[A-Za-z_][\w.]*)?['\"]"
)
REGISTRY_DEFAULTS = {b"auto", b"default"}  # the entry picked when no setting names one
MAIN_GUARD_RE = re.compile(rb"^if\s+__name__\s*==\s*['\"]__main__['\"]\s*:", re.MULTILINE)
RELATIVE_STR_RE = re.compile(rb"['\"](\.+[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)['\"]")
# Calls that load the modules of a folder given as __path__ / __file__
# (pkgutil.iter_modules(__path__), register_plugins(linter, dirname(__file__))),
# and folder listings that do so when the module also imports by computed name.
FOLDER_LOADERS = ("iter_modules", "walk_packages", "plugin", "register", "discover", "autoload")
FOLDER_LISTINGS = ("listdir", "scandir", "iterdir", "glob", "walk")
COMPUTED_IMPORTS = (b"import_module", b"__import__", b"spec_from_file_location", b"load_module", b"exec_module")
FOLDER_WORDS_RE = re.compile(
    rb"(?i)%s|\b(?:%s)\("
    % (b"|".join(w.encode() for w in FOLDER_LOADERS), b"|".join(w.encode() for w in FOLDER_LISTINGS))
)

# A relative import: (level, module, names, always run when the module loads)
Relative = tuple[int, str, list[str], bool]
# An engine-table call: (its libraries, its receiver's first name, the use of a module it loads)
Pending = tuple[tuple[str, ...], str, "Use"]


@dataclass
class Use:
    """One import found in the code."""

    name: str  # dotted module name
    where: str  # "relative/path.py:LINE" or "notebook.ipynb[CELL]:LINE"
    optional: bool
    in_function: bool = False
    guarded: bool = False  # the author anticipated its absence here
    signal: bool = False  # only an availability probe, not an import
    reachable: bool = True  # its module is loaded from an entry point
    library: bool = False  # written in a module inside a package (not a script)
    typing: bool = False  # under `if TYPE_CHECKING:` (annotations only)
    eager: bool = True  # its module loads whenever the package is imported
    key: str = ""  # the import name its package was mapped from (set by the scan)
    soft: bool = False  # under a branch on a setting, argument or env var (optional in packages only)
    package: bool = False  # in a module of a package (a folder with __init__.py), scripts too
    dist: bool = False  # a distribution looked up by name (version("x")), not an import
    command: bool = False  # a program run by a shell command (`!kaggle ...`), not an import
    install: bool = False  # a distribution an install command names (`!pip install x`; with dist)
    api: bool = False  # in a top-level package's __init__.py: its functions are the package's own API
    engine: bool = False  # loaded by a library for a call (`df.to_excel()`: openpyxl), not imported
    deep: bool = False  # its module is reached only from public modules deeper than pkg.mod (on demand)
    probes: tuple[str, ...] = ()  # guarded only because it runs where these guarded imports worked (IN_COLAB)

    @property
    def path(self) -> str:
        """The file it is in, relative to the project."""
        return self.where.split("[")[0].rsplit(":", 1)[0]


@dataclass
class Context:
    """What every Scanner of one scan shares."""

    ev: Evaluator
    stdlib: set[str]
    ns_tops: set[str] = field(default_factory=set)  # namespace packages' top names (google)
    commands: Collection[str] = frozenset()  # the programs a table knows the package of (kaggle)

    def __post_init__(self) -> None:
        alts = b"|".join(re.escape(n.encode()) for n in sorted(self.ns_tops))
        # quoted "namespace." prefixes: the file may name modules in strings
        self.ns_re = re.compile(rb"['\"](?:%s)\.[A-Za-z_]" % alts) if self.ns_tops else None


class Scanner:
    """Collects the imports of one module with their required/optional kind."""

    def __init__(self, where: str, ctx: Context, dynamic: bool) -> None:
        self.where = where
        self.ev = ctx.ev
        self.ctx = ctx
        self.dynamic = dynamic
        self.uses: list[Use] = []
        self.depth = 0  # function nesting
        self.guards = 0  # try/except ImportError or availability-check nesting
        self.tries = 0  # try blocks with a handler (any exception), and handlers: a lookup there may fail
        self.dist_names: set[str] = set()  # `from importlib.metadata import version`
        self.soft = 0  # branches on settings / arguments / environment / a named module
        self.typing = 0  # `if TYPE_CHECKING:` nesting
        self.importlib_names: set[str] = set()  # `from importlib import import_module`
        self.guarded_calls: dict[str, bool] = {}  # function name -> has a fallback
        # flag set by an ImportError guard -> (its value on success, the modules that guard tried)
        self.success_flags: dict[str, tuple[bool, tuple[str, ...]]] = {}
        self.strings: set[str] = set()  # namespace tops whose dotted strings count
        self.relative: list[Relative] = []
        self.typing_relative: list[Relative] = []  # under TYPE_CHECKING
        self.soft_relative: list[Relative] = []  # under settings branches (also in relative)
        self.dotted_strings: list[str] = []  # 'pkg.module.Name' literals (loaded by name)
        self.relative_strings: list[str] = []  # '.module' literals (import_module(x, __name__))
        self.call_lines: list[int] = []  # the lines that name a call of the engine table (sorted)
        self.aliases: dict[str, str] = {}  # local name -> the module (or module.name) imported as it
        self.pending: list[Pending] = []  # engine-table calls, kept if the file imports their host

    def run(self, tree: ast.Module, data: bytes) -> None:
        """Scan a parsed module."""
        if b"ImportError" in data or b"ModuleNotFoundError" in data:
            self.guarded_calls = g.calls_under_import_guard(tree)
        if self.ctx.ns_re is not None and self.ctx.ns_re.search(data):
            self.strings = self.ctx.ns_tops
        self.dotted_strings = [m.decode() for m in DOTTED_STR_RE.findall(data)]
        self.relative_strings = [m.decode() for m in RELATIVE_STR_RE.findall(data)]
        self.call_lines = engines.call_lines(data)
        self.body(tree.body, False)

    def _flag_guard(self, flag: str, start: int, setting: bool) -> None:
        """`if HAS_LXML:` / `if lxml_available:` / `if LXML:` guards the
        imports of its branch: mark them optional. `setting`: the flag is an
        attribute (`args.wandb`, `cfg.use_x`), an option the user sets."""
        for u in self.uses[start:]:
            if g.flag_guards(flag, u.name):
                if g.availability_flag(flag, u.name, setting):
                    u.optional = u.guarded = True
                else:  # `if use_cache:` / `if with_plots:`: a setting
                    u.soft = not u.optional

    def _named_guard(self, names: set[str], start: int) -> None:
        """Code run only when a test or hook names a module (`if
        is_running_trio():`, `if "gevent" in mode:`, `@register_lazy("numba")`)
        imports that module only where it is already in play: optional in a
        package (soft); a script or notebook runs that path when asked."""
        if names:
            for u in self.uses[start:]:
                if u.name.split(".")[0].lower() in names:
                    u.soft = not u.optional

    def add(
        self, name: str, line: int, optional: bool, signal: bool = False, dist: bool = False, late: bool = False
    ) -> None:
        """Record an import of `name` at `line` (dist: a distribution lookup, in import-style spelling;
        late: loaded on first use, as if in a function)."""
        if name and not name.startswith("."):
            self.uses.append(self._use(name, line, optional, signal, dist, late))
            for mod in engines.companions(name):  # tqdm.notebook loads ipywidgets
                self.uses.append(self._use(mod, line, optional))

    def _use(
        self, name: str, line: int, optional: bool, signal: bool = False, dist: bool = False, late: bool = False
    ) -> Use:
        """A Use of `name` at `line` in the scanner's current context."""
        return Use(
            name,
            f"{self.where}:{line}",
            optional,
            self.depth > 0 or late,
            optional or self.guards > 0,
            signal,
            typing=self.typing > 0,
            soft=self.soft > 0 and not optional,
            dist=dist,
        )

    # -- statements
    def body(self, stmts: list[ast.stmt], optional: bool) -> None:
        """Scan a block of statements."""
        for s in stmts:
            self.stmt(s, optional)

    def stmt(self, s: ast.stmt, optional: bool) -> None:
        """Scan one statement (`optional`: its imports are optional)."""
        if isinstance(s, ast.Import):
            for a in s.names:
                self.add(a.name, s.lineno, optional)
                self.aliases[a.asname or a.name.split(".")[0]] = a.name if a.asname else a.name.split(".")[0]
        elif isinstance(s, ast.ImportFrom):
            self._import_from(s, optional)
        elif isinstance(s, ast.If):
            self._if(s, optional)
        elif isinstance(s, g.TRY_TYPES):
            self._try(s, optional)  # type: ignore[arg-type]
        elif isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            self._def(s, optional)
        elif isinstance(s, (ast.For, ast.AsyncFor, ast.While)):
            self.exprs(s.iter if not isinstance(s, ast.While) else s.test, optional)
            self.body(s.body, optional)
            self.body(s.orelse, optional)
        elif isinstance(s, (ast.With, ast.AsyncWith)):
            for item in s.items:
                self.exprs(item.context_expr, optional)
            # `with try_import():` / `with suppress(ImportError):` guards its imports
            guard = any(g.import_guard(item.context_expr) for item in s.items)
            self.guards += guard
            self.body(s.body, optional or guard)
            self.guards -= guard
        elif isinstance(s, ast.Match):
            self.exprs(s.subject, optional)
            for case in s.cases:
                self.body(case.body, optional)
        else:
            self.exprs(s, optional)
            if isinstance(s, ast.Assign) and (loaded := g.loaded_probe(s.value)) is not None:
                # IN_COLAB = "google.colab" in sys.modules: a flag, as a guard sets one
                self.success_flags.update(dict.fromkeys(g.flag_targets(s), (not loaded[1], (loaded[0],))))

    def _import_from(self, s: ast.ImportFrom, optional: bool) -> None:
        if s.level:  # relative: local code, kept for the module graph
            eager = not (optional or self.depth or self.typing or self.soft)
            r = (s.level, s.module or "", [a.name for a in s.names], eager)
            (self.typing_relative if self.typing else self.relative).append(r)
            if self.soft and not self.typing:
                self.soft_relative.append(r)
            return
        if not s.module or s.module == "__future__":
            return
        if s.module == "importlib":
            self.importlib_names.update(a.asname or a.name for a in s.names)
        elif s.module in DIST_MODULES:
            self.dist_names.update(a.asname or a.name for a in s.names if a.name in DIST_LOOKUPS)
        for a in s.names:
            self.add(s.module if a.name == "*" else f"{s.module}.{a.name}", s.lineno, optional)
            if a.name != "*":
                self.aliases[a.asname or a.name] = f"{s.module}.{a.name}"

    def _if(self, s: ast.If, optional: bool) -> None:
        self.exprs(s.test, optional)
        t = self.ev.truth(s.test)
        nodes = list(ast.walk(s.test))  # walked once for the checks below
        check = g.availability_check(nodes)  # find_spec / is_x_available(): a real guard
        config = g.reads_environment(nodes)
        # settings, environment, is_x_enabled(): optional in packages only
        soft = config or (t is None and g.dispatch(s.test)) or (not check and g.enabled_check(nodes))
        flag, negated = g.flag_name(s.test)
        setting = g.flag_is_attribute(s.test)
        if t is False and g.names_type_checking(s.test):
            self.typing += 1  # recorded, never installed: the types the code uses
            self.body(s.body, True)
            self.typing -= 1
        # `if IN_COLAB:` after `try: import google.colab; IN_COLAB = True / except
        # ImportError: IN_COLAB = False`: the branch runs only where the guarded import
        # worked, as if written in that try: its imports are guarded like the try's
        value, probes = self.success_flags.get(flag or "", (None, ()))
        on_success = None if value is None else value != negated
        if (loaded := g.loaded_probe(s.test)) is not None:  # `if "google.colab" in sys.modules:`
            on_success, probes = not loaded[1], (loaded[0],)
        if t is not False:
            start = len(self.uses)
            self.soft += soft
            self.body(s.body, optional or check)
            self.soft -= soft
            if flag and not negated:
                self._flag_guard(flag, start, setting)
            self._named_guard(g.named_modules(nodes), start)
            if on_success is True:
                self._guard_branch(start, probes)
        if t is not True:
            start = len(self.uses)
            self.guards += check  # `if not available: ... else: import x`
            self.soft += config
            self.body(s.orelse, optional)
            self.soft -= config
            self.guards -= check
            if flag and negated:
                self._flag_guard(flag, start, setting)
            if on_success is False:
                self._guard_branch(start, probes)

    def _guard_branch(self, start: int, probes: tuple[str, ...]) -> None:
        """The imports recorded since `start` run only when the guarded imports
        `probes` worked: optional, guarded, unless the project installs a probe
        anyway (the scan undoes it then: see Use.probes)."""
        for u in self.uses[start:]:
            if not u.optional:
                u.optional = u.guarded = True
                u.probes = probes

    def _def(self, s: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef, optional: bool) -> None:
        if self.dynamic:
            for d in s.decorator_list:
                self.exprs(d, optional)
        func = not isinstance(s, ast.ClassDef)
        # a function that is called inside `try: ... except ImportError:`
        # is guarded like an import written there
        called = self.guarded_calls.get(s.name) if func else None
        self.depth += func
        self.guards += called is not None
        start = len(self.uses)
        self.body(s.body, optional or bool(called))
        self.guards -= called is not None
        self.depth -= func
        if func:
            self._named_guard(
                {t for d in s.decorator_list if isinstance(d, ast.Call) for a in d.args for t in g.string_modules(a)},
                start,
            )

    def _try(self, s: ast.Try, optional: bool) -> None:
        catching = [h for h in s.handlers if any(n in g.CATCHES_IMPORT for n in g.type_names(h.type))]
        fallback = any(not g.no_fallback(h) for h in catching)
        # a handler of any error that raises its own (`except Exception as e: raise
        # InvalidFileFormatError(e)`) anticipates no missing module, as one of ImportError does
        guard = fallback or any(n in g.IMPORT_ERRORS for h in catching for n in g.type_names(h.type))
        start = len(self.uses)
        self.guards += guard
        self.tries += bool(s.handlers)
        self.body(s.body, optional or fallback)
        self.tries -= bool(s.handlers)
        self.guards -= guard
        tried = self.uses[start:]
        # A try whose imports are all standard library reaches its
        # `except ImportError` fallback only on other Python versions
        # (tomllib/tomli style): the fallback's imports are then optional,
        # unless the stdlib name is known to be missing on the target.
        spare = bool(tried) and all(self._stdlib_ok(u.name) for u in tried)
        if fallback and tried and not spare:
            probes = tuple(dict.fromkeys(u.name for u in tried if not self._stdlib_ok(u.name)))
            self.success_flags.update({n: (v, probes) for n, v in g.success_flags(s, catching).items()})
        self.tries += 1  # a lookup in a handler is the fallback of one that failed
        for h in s.handlers:
            self.body(h.body, optional or (spare and h in catching))
        self.tries -= 1
        # `else:` runs only when the tried (optional) imports succeeded.
        self.body(s.orelse, optional or (fallback and not spare and any(u.optional for u in tried)))
        self.body(s.finalbody, optional)

    def _stdlib_ok(self, name: str) -> bool:
        """A standard-library import not known to fail on the target."""
        parts = name.split(".")
        if parts[0] not in self.ctx.stdlib:
            return False
        if len(parts) == 1 or sys.version_info[:2] < self.ev.version or parts[0] in UNSAFE_TO_IMPORT:
            return True  # the running Python cannot tell us more
        for i in range(len(parts), 0, -1):  # module path, then attribute
            try:
                mod = importlib.import_module(".".join(parts[:i]))
            except Exception:  # any failure: try the parent module
                continue
            obj = mod
            for attr in parts[i:]:
                if not hasattr(obj, attr):
                    return False  # the running (newer or same) Python lacks it
                obj = getattr(obj, attr)
            return True
        return False

    # -- expressions (dynamic imports and availability probes)
    def exprs(self, node: ast.AST, optional: bool) -> None:
        """Imports made by calls (`import_module("x")`) and module-name strings."""
        if self.strings:
            self._module_strings(node, optional)
        engine = bool(self.call_lines) and self._names_a_call(node)
        if not (self.dynamic or engine):
            return
        for n in ast.walk(node):  # one walk for both
            if engine and isinstance(n, ast.Call):
                self._engine_call(n, optional)
            if not self.dynamic:
                continue
            if isinstance(n, (ast.Call, ast.List, ast.Tuple)):
                for mod in self._run_modules(n):
                    self.add(mod, n.lineno, optional)  # [sys.executable, "-m", "x"]: x runs as a program
            if isinstance(n, ast.Call):
                self._shell(n, optional)
            if not isinstance(n, ast.Call) or not n.args:
                continue
            name = g.const_str(n.args[0])
            if not name:
                continue
            full = g.dotted(n.func)
            f = full.rsplit(".", 1)[-1]
            if f in ("run_line_magic", "magic") and full.startswith("get_ipython()"):
                line = g.const_str(n.args[1]) if f == "run_line_magic" and len(n.args) > 1 else None
                magic, _, rest = (name, "", line or "") if f == "run_line_magic" else name.lstrip("%").partition(" ")
                for mod in magic_imports(magic, rest):
                    self.add(mod, n.lineno, optional)  # get_ipython().run_line_magic("load_ext", "x")
                continue
            if self._dist_lookup(full, f):
                m = DIST_NAME_RE.match(name.strip())
                if m:  # version("pyflakes"): the distribution must be installed
                    self._add_dist(m.group(), n.lineno, optional or self.tries > 0)
                continue
            if not g.MODULE_RE.fullmatch(name):
                continue
            if (
                f == "__import__"
                or full == "importlib.import_module"
                or (f == "import_module" and full in self.importlib_names)
            ):
                self.add(name, n.lineno, optional)  # a real import
            elif f in ("importorskip", "find_spec", "find_loader", "import_module"):
                self.add(name, n.lineno, True)  # imported if present
            elif LAZY_CALL_RE.search(f):
                self.add(name, n.lineno, optional, late=True)  # tf = LazyModule("tensorflow"): loaded on first use
            elif g.PROBE_RE.search(f):
                self.add(name, n.lineno, True, signal=True)  # is_x_available("x")

    def _names_a_call(self, node: ast.AST) -> bool:
        """Whether a line of `node` names a call of the engine table."""
        first, last = getattr(node, "lineno", 0), getattr(node, "end_lineno", None) or 0
        if not first:
            return True
        i = bisect.bisect_left(self.call_lines, first)
        return i < len(self.call_lines) and self.call_lines[i] <= last

    def _engine_call(self, call: ast.Call, optional: bool) -> None:
        """A call that makes a library load a package by name (`pd.read_excel`:
        openpyxl; the table in portable_env.scan.engines): pending until the
        file is read, kept if it imports the call's library."""
        if found := engines.engine_of(call):
            eng, receiver = found
            for mod in engines.modules_of(eng, call):
                use = replace(self._use(mod, call.lineno, optional), engine=True)
                self.pending.append((eng.hosts, receiver, use))

    def _add_dist(self, dist: str, line: int, optional: bool, install: bool = False) -> None:
        """Record that the distribution `dist` must be installed (under its import-style name;
        install: an install command names it, rather than a lookup of its metadata)."""
        self.uses.append(
            replace(self._use(re.sub(r"[-_.]+", "_", dist).lower(), line, optional), dist=True, install=install)
        )

    @staticmethod
    def _run_modules(n: ast.Call | ast.List | ast.Tuple) -> list[str]:
        """Modules a command runs with `python -m`, given as words: `[sys.executable,
        "-m", "x"]` in a list or call (a command string: _shell)."""
        items = n.args if isinstance(n, ast.Call) else n.elts
        out = []
        for i, item in enumerate(items):
            text = g.const_str(item)
            if not text or not text.startswith("-m") or not i:
                continue
            mod = text[2:] or (g.const_str(items[i + 1]) or "" if i + 1 < len(items) else "")
            j = i - 1
            while j > 0 and (g.const_str(items[j]) or "").startswith("-"):
                j -= 1  # options before -m: [sys.executable, "-u", "-m", "x"]
            before = items[j]
            python = g.dotted(before) == "sys.executable" or PYTHON_RE.fullmatch(g.const_str(before) or "")
            if python and g.MODULE_RE.fullmatch(mod):
                out.append(mod)
        return out

    def _shell(self, n: ast.Call, optional: bool) -> None:
        """What a shell command the code runs needs (subprocess, os.system, IPython's
        `!` lines and %%bash cells): the modules it runs with `python -m`, the
        distributions an install command names (`!pip install x`) and the package of
        each program it runs that a table knows (`!kaggle datasets download ...`:
        kaggle; `jupyter nbconvert`: nbconvert)."""
        for text in g.command_texts(n):
            for mod in run_modules(text):
                self.add(mod, n.lineno, optional)  # os.system("python -m x"), !python -m x: x runs as a program
            for dist in install_names(text):
                self._add_dist(dist, n.lineno, optional, install=True)
            for names in shell_commands(text):
                cmd = next((c for c in names if c in self.ctx.commands), None)
                if cmd:
                    self.uses.append(replace(self._use(cmd, n.lineno, optional), command=True))

    def _dist_lookup(self, full: str, f: str) -> bool:
        """Whether a call `full(...)` looks a distribution up by name
        (importlib.metadata.version, pkg_resources.get_distribution, a name
        imported from them)."""
        owner = full.rpartition(".")[0]
        if not owner:
            return full in self.dist_names
        return f in DIST_LOOKUPS and (owner in DIST_MODULES or (owner == "metadata" and owner in self.importlib_names))

    def _module_strings(self, node: ast.AST, optional: bool) -> None:
        """'sphinxcontrib.jsmath' in a list or call: a module loaded by name
        (extension and plugin registries). Only dotted paths into a known
        namespace package count. Given to a lazy loader (`LazyModule("orbax.checkpoint")`,
        `lazy_import(...)`), it loads on first use, as an import in a function does.
        A collection that also holds strings no module is named (a distribution's
        `opentelemetry-instrumentation-tornado` beside `opentelemetry.instrumentation.flask`)
        is a table of names to compare with, not modules to load. A pair of a
        module path and the name of a class in it (`("azure.mgmt.storage",
        "StorageManagementClient")`, an entry of a table of clients) is a
        reference resolved when that entry is used: loaded on first use."""
        for n in ast.walk(node):
            late = False
            if isinstance(n, (ast.List, ast.Tuple, ast.Set)):
                items = n.elts
                texts = [t for t in map(g.const_str, items) if t is not None]
                if any(not g.MODULE_RE.fullmatch(t) for t in texts):
                    continue
                late = isinstance(n, ast.Tuple) and _module_and_class(items)
            elif isinstance(n, ast.Call):
                items = n.args
                late = bool(LAZY_CALL_RE.search(g.dotted(n.func).rsplit(".", 1)[-1]))
            else:
                continue
            for item in items:
                text = g.const_str(item)
                if text and "." in text and text.split(".")[0] in self.strings and g.MODULE_RE.fullmatch(text):
                    self.add(text, item.lineno, optional, late=late)


def _module_and_class(items: list[ast.expr]) -> bool:
    """`("pkg.mod", "ClassName")` or `("pkg.mod", None)`: a module path and
    the class looked up in it (None: the module itself)."""
    if len(items) != 2 or "." not in (g.const_str(items[0]) or ""):
        return False
    second = items[1]
    if isinstance(second, ast.Constant) and second.value is None:
        return True
    name = g.const_str(second) or ""
    return name[:1].isupper() and name.isidentifier()


# ---------------------------------------------------------------- files


def _syntax_message(e: BaseException) -> tuple[int, str]:
    line = getattr(e, "lineno", None) or 1
    msg = getattr(e, "msg", None) or str(e)
    if isinstance(e, UnicodeDecodeError):
        msg = f"cannot decode ({e.encoding}: {e.reason})"
    return line, " ".join(str(msg).split())


@dataclass
class Module:
    """One parsed .py file, as the reachability graph needs it."""

    uses: list[Use]
    relative: list[Relative]  # relative imports (with the PEP 562 TYPE_CHECKING ones)
    strings: list[str]  # module names written as strings ('pkg.mod.Name', '.mod')
    script: bool  # run as a program (`if __name__ == "__main__":`, __main__.py)
    soft_relative: list[Relative] = field(default_factory=list)  # relative imports under settings branches
    loads_folder: str = ""  # OWN_FOLDER / FOLDER_TREE: loads the modules it lists there (plugins)
    registry: list[str] = field(default_factory=list)  # strings of a registry of alternatives (in strings)


def registry_strings(data: bytes) -> list[str]:
    """The module names of a registry of alternatives in the module's text (a
    dict of REGISTRY_MIN or more "name": "pkg.mod:Class" entries), but the
    entry used when no setting names one ("auto", "default")."""
    entries = REGISTRY_STR_RE.findall(data)
    if len(entries) < REGISTRY_MIN:
        return []
    return [v.decode() for k, v in entries if k.lower() not in REGISTRY_DEFAULTS]


OWN_FOLDER, FOLDER_TREE = "own", "tree"  # what a module that lists its folder to load plugins loads


def _file_paths(tree: ast.Module) -> dict[str, bool]:
    """Names bound to a path computed from `__file__`/`__path__` (`module_path
    = join(dirname(__file__), _id)`, also as a class or `self.` attribute),
    each with whether the path goes below the module's folder (a join)."""
    out: dict[str, bool] = {}
    for n in ast.walk(tree):
        if isinstance(n, (ast.Assign, ast.AnnAssign)) and n.value is not None and _names_file(n.value):
            for t in n.targets if isinstance(n, ast.Assign) else [n.target]:
                name = t.id if isinstance(t, ast.Name) else t.attr if isinstance(t, ast.Attribute) else ""
                if name:
                    out[name] = out.get(name, False) or _joins(n.value)
    return out


def _names_file(node: ast.AST) -> bool:
    return any(isinstance(m, ast.Name) and m.id in ("__path__", "__file__") for m in ast.walk(node))


def _joins(node: ast.AST) -> bool:
    """A path expression that adds a part (`join(d, x)`, `d / x`, `joinpath`)."""
    for m in ast.walk(node):
        if isinstance(m, ast.BinOp) and isinstance(m.op, ast.Div):
            return True
        if isinstance(m, ast.Call) and g.dotted(m.func).rsplit(".", 1)[-1] in ("join", "joinpath") and len(m.args) > 1:
            return True
    return False


def loads_own_folder(tree: ast.Module, data: bytes) -> str:
    """Whether the module loads the modules of its own folder by computed
    names: `pkgutil.iter_modules(__path__)`, `register_plugins(linter,
    os.path.dirname(__file__))`, or a listing of `Path(__file__).parent` in
    a module that imports by computed name (import_module): OWN_FOLDER. A
    listing of a path joined below it (`os.listdir(self.module_path)` with
    `module_path = join(dirname(__file__), _id)`: apprise's plugin
    managers, the folder named in a subclass) loads its subfolders too:
    FOLDER_TREE."""
    if (b"__path__" not in data and b"__file__" not in data) or not FOLDER_WORDS_RE.search(data):
        return ""
    listing_ok = any(tok in data for tok in COMPUTED_IMPORTS)
    paths: dict[str, bool] | None = None
    for n in ast.walk(tree):
        if not isinstance(n, ast.Call):
            continue
        name = g.dotted(n.func).rsplit(".", 1)[-1].lower()
        listing = listing_ok and any(w in name for w in FOLDER_LISTINGS)
        if not (any(w in name for w in FOLDER_LOADERS) or listing):
            continue
        parts: list[ast.AST] = [*n.args, *(k.value for k in n.keywords)]
        if isinstance(n.func, ast.Attribute):
            parts.append(n.func.value)  # Path(__file__).parent.glob("*.py")
        if any(_names_file(a) for a in parts):
            return FOLDER_TREE if any(_joins(a) for a in parts) else OWN_FOLDER
        if not listing:
            continue
        if paths is None:
            paths = _file_paths(tree)
        for a in parts:
            for m in ast.walk(a):
                bound = m.id if isinstance(m, ast.Name) else m.attr if isinstance(m, ast.Attribute) else ""
                if bound in paths:
                    return FOLDER_TREE if paths[bound] or _joins(a) else OWN_FOLDER
    return ""


@dataclass
class Parsed:
    """Everything the parse of a project's sources gives."""

    uses: list[Use] = field(default_factory=list)
    modules: dict[str, Module] = field(default_factory=dict)  # .py file (posix, relative) -> module
    unparsed: list[str] = field(default_factory=list)  # "file:LINE: why"
    parsed: int = 0  # files (notebooks count once) that could be read
    written: set[str] = field(default_factory=set)  # modules notebooks write (%%writefile x.py)


def parse_sources(root: Path, sources: list[Path], ctx: Context) -> Parsed:
    """Scan every source file; unreadable files and cells go to `unparsed`."""
    out = Parsed()
    for p in sources:
        rel = p.relative_to(root).as_posix()
        try:
            data = p.read_bytes()
        except OSError as e:
            out.unparsed.append(f"{rel}:1: cannot read: {e.strerror}")
            continue
        dynamic = any(tok in data for tok in DYNAMIC)
        if p.suffix == ".ipynb":
            out.parsed += _parse_notebook(rel, data, ctx, dynamic, out)
            continue
        try:
            tree = ast.parse(data, filename=rel)
        except (SyntaxError, ValueError, UnicodeDecodeError, RecursionError, MemoryError) as e:
            line, msg = _syntax_message(e)
            if "print" in msg.lower() or re.search(rb"^\s*print\s+[\"'\w]", data, re.MULTILINE):
                msg += " (Python 2 code?)"
            out.unparsed.append(f"{rel}:{line}: {msg}")
            out.uses += salvaged_imports(rel, data.decode("utf-8", "replace"))
            continue
        sc = Scanner(rel, ctx, dynamic)
        try:
            sc.run(tree, data)
        except RecursionError:
            out.unparsed.append(f"{rel}:1: too deeply nested to scan")
            continue
        out.parsed += 1
        sc.uses += engine_uses(sc.pending, sc.aliases, sc.uses)
        relative, strings = sc.relative, sc.dotted_strings + sc.relative_strings
        if g.lazy_exports(tree):  # PEP 562: the TYPE_CHECKING imports name what it loads
            relative = relative + sc.typing_relative
            strings = strings + [u.name for u in sc.uses if u.typing]
        script = bool(MAIN_GUARD_RE.search(data)) or p.name == "__main__.py"
        out.modules[rel] = Module(
            sc.uses, relative, strings, script, sc.soft_relative, loads_own_folder(tree, data), registry_strings(data)
        )
        out.uses.extend(sc.uses)
    return out


def _parse_notebook(rel: str, data: bytes, ctx: Context, dynamic: bool, out: Parsed) -> bool:
    """Scan a notebook's code cells into `out`; False when none could be parsed."""
    try:
        cells = notebook_cells(data, out.written)
    except (ValueError, UnicodeDecodeError, AttributeError, TypeError) as e:
        line = getattr(e, "lineno", 1)
        out.unparsed.append(f"{rel}:{line}: not a readable notebook ({' '.join(str(e).split())[:120]})")
        return False
    ok = not cells
    start = len(out.uses)
    pending: list[Pending] = []
    aliases: dict[str, str] = {}
    for num, src in cells:
        sc = Scanner(f"{rel}[{num}]", ctx, dynamic or "get_ipython()" in src)  # !pip install x
        try:
            tree = ast.parse(src)
        except (SyntaxError, ValueError) as e:
            line, msg = _syntax_message(e)
            out.unparsed.append(f"{rel}[{num}]:{line}: {msg}")
            out.uses += salvaged_imports(f"{rel}[{num}]", src)
            continue
        try:
            sc.run(tree, src.encode())
        except RecursionError:
            out.unparsed.append(f"{rel}[{num}]:1: too deeply nested to scan")
            continue
        ok = True
        out.uses.extend(sc.uses)
        pending += sc.pending
        aliases.update(sc.aliases)
    out.uses += engine_uses(pending, aliases, out.uses[start:])  # the host may be imported in any cell
    return ok


def engine_uses(pending: list[Pending], aliases: dict[str, str], uses: list[Use]) -> list[Use]:
    """The engine-table calls of one file whose library the file imports."""
    imported = {u.name.split(".")[0] for u in uses if not (u.signal or u.dist or u.command)}
    return [u for hosts, receiver, u in pending if engines.belongs(hosts, receiver, aliases, imported)]


# A whole line that is an import statement (`import a, b as c`, `from x.y import z`), not relative.
IMPORT_LINE_RE = re.compile(
    r"^(?P<indent>[ \t]*)(?:import[ \t]+(?P<names>[A-Za-z_][\w.]*(?:[ \t]+as[ \t]+\w+)?"
    r"(?:[ \t]*,[ \t]*[A-Za-z_][\w.]*(?:[ \t]+as[ \t]+\w+)?)*)[ \t]*(?:#.*)?"
    r"|from[ \t]+(?P<module>[A-Za-z_][\w.]*)[ \t]+import[ \t]+[\w(*].*)$",
    re.MULTILINE,
)


def salvaged_imports(where: str, text: str) -> list[Use]:
    """The import lines of code that does not parse (Python 2, a syntax slip
    in one cell): each still names a package the code needs, so it is read
    line by line (indented: as in a function)."""
    out = []
    line, pos = 1, 0
    for m in IMPORT_LINE_RE.finditer(text):
        line += text.count("\n", pos, m.start())  # counted on from the last match, not from the top
        pos = m.start()
        names = [m["module"]] if m["module"] else [n.split()[0] for n in m["names"].split(",")]
        out += [Use(n, f"{where}:{line}", False, bool(m["indent"])) for n in names]
    return out
