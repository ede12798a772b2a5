"""Guard classification: which imports are optional, on demand or only for
type checking, read from the tests and handlers around them.

The AST predicates here are used by the Scanner (portable_env.scan.parse)
while it walks a module; ``classify`` sorts each package's uses into
required / optional / on_demand once reachability is known.
"""

from __future__ import annotations

import ast
import re
import shlex
from collections import defaultdict
from collections.abc import Iterator
from typing import TYPE_CHECKING

from portable_env.scan.magics import SHELL_CELL_MAGICS, SHELL_LINE_MAGICS, runs_installer
from portable_env.scan.output import first, loc_key

if TYPE_CHECKING:
    from portable_env.scan.output import Result
    from portable_env.scan.parse import Use

IMPORT_ERRORS = {"ImportError", "ModuleNotFoundError"}
CATCHES_IMPORT = IMPORT_ERRORS | {"Exception", "BaseException"}
FLAG_RE = re.compile(
    r"(^|_)(has|have|use|uses|using|with|enable|enabled|available|installed|"
    r"supported|support|supports|can|import|imported|ok)(_|$)",
    re.IGNORECASE,
)
MODULE_RE = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*")
# Flags that say a module is installed (`HAS_X`, `x_available`), not that
# a setting asks for it (`use_x`, `with_x`, `enable_x`).
AVAILABLE_FLAG_RE = re.compile(
    r"(^|_)(has|have|available|installed|supported|support|supports|import|imported|ok|found)(_|$)",
    re.IGNORECASE,
)
# Calls that test whether a module is installed.
PROBE_RE = re.compile(
    r"find_spec|find_loader|importorskip|available|installed|enabled|"
    r"^(import_optional|optional_import|try_import|soft_import)",
    re.IGNORECASE,
)
ENABLED_RE = re.compile(r"enabled", re.IGNORECASE)
# Calls that run a shell command (`os.system("python -m x")`, `subprocess.run([...])`,
# IPython's `get_ipython().system("pip install x")`).
SHELL_CALL_RE = re.compile(
    r"(?:^|\.)(?:system|popen|run|call|check_call|check_output|Popen|getoutput|getstatusoutput)$"
)
TRY_TYPES: tuple[type, ...] = (ast.Try, ast.TryStar)


# ---------------------------------------------------------------- AST helpers


def type_names(node: ast.expr | None) -> list[str]:
    """Exception class names an `except` clause catches (bare: BaseException)."""
    if node is None:
        return ["BaseException"]
    if isinstance(node, ast.Tuple):
        return [n for elt in node.elts for n in type_names(elt)]
    if isinstance(node, ast.Name):
        return [node.id]
    if isinstance(node, ast.Attribute):
        return [node.attr]
    return []


def ends_in_raise(body: list[ast.stmt]) -> bool:
    """A handler that re-raises: no fallback."""
    return bool(body) and isinstance(body[-1], ast.Raise)


def command_text(node: ast.expr) -> str | None:
    """A command string: a literal, or an f-string with `{sys.executable}`
    kept as written (run_modules reads it)."""
    if not isinstance(node, ast.JoinedStr):
        return const_str(node)
    parts = []
    for v in node.values:
        if isinstance(v, ast.Constant) and isinstance(v.value, str):
            parts.append(v.value)
        elif isinstance(v, ast.FormattedValue):
            parts.append("{" + (dotted(v.value) or "?") + "}")
    return "".join(parts)


def command_texts(call: ast.Call) -> Iterator[str]:
    """The shell commands a call that runs commands is given (subprocess, os.system,
    IPython's `get_ipython().system(...)`, %%bash cells and shell magics; not a message
    that says `pip install x`): strings, and lists of words (`[sys.executable, "-m",
    "pip", "install", name]`: what is not a literal reads as a placeholder word)."""
    func = dotted(call.func)
    first = const_str(call.args[0]) if call.args else None
    if func.endswith("run_line_magic"):
        if first in SHELL_LINE_MAGICS and len(call.args) > 1:
            yield f"{'' if first in ('system', 'sx') else first} {const_str(call.args[1]) or ''}"  # %pip install x
        return
    if func.endswith("run_cell_magic"):
        if first in SHELL_CELL_MAGICS and len(call.args) > 2 and (body := const_str(call.args[2])):
            yield body  # %%bash
        return
    if not SHELL_CALL_RE.search(func):
        return
    for a in call.args:
        if isinstance(a, (ast.List, ast.Tuple)):
            yield " ".join(shlex.quote(t) if (t := const_str(e)) is not None else "_" for e in a.elts)
        elif (t := command_text(a)) is not None:
            yield t


def installs(body: list[ast.stmt]) -> bool:
    """Whether a block runs an installer (`!pip install x`, `%pip install x`,
    `subprocess.check_call([sys.executable, "-m", "pip", "install", name])`)."""
    return any(
        isinstance(n, ast.Call) and any(runs_installer(t) for t in command_texts(n))
        for st in body
        for n in ast.walk(st)
    )


def no_fallback(h: ast.ExceptHandler) -> bool:
    """A handler that re-raises, keeps the error to raise it later (`except
    ImportError as e: invoke_import_error = e`) or installs what was missing
    (`except ImportError: !pip install x`, then on as if it had been there): the
    code needs the module."""
    if ends_in_raise(h.body) or installs(h.body):
        return True
    kept = [st for st in h.body if not (isinstance(st, ast.Expr) and const_str(st.value) is not None)]
    return (
        bool(h.name)
        and bool(kept)
        and all(isinstance(st, ast.Assign) and isinstance(st.value, ast.Name) and st.value.id == h.name for st in kept)
    )


def const_str(node: ast.AST) -> str | None:
    """The value of a string literal, else None."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return None


def dotted(node: ast.AST) -> str:
    """`a.b.c` / `a.b()` as text, "" for anything else."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        inner = dotted(node.value)
        return f"{inner}.{node.attr}" if inner else ""
    if isinstance(node, ast.Call):
        inner = dotted(node.func)
        return f"{inner}()" if inner else ""
    return ""


# ---------------------------------------------------------------- guards


def _nodes(test: ast.AST | list[ast.AST]) -> list[ast.AST]:
    """The nodes of a test (walked once by the caller and passed as a list)."""
    return test if isinstance(test, list) else list(ast.walk(test))


def _probes(test: ast.AST | list[ast.AST]) -> Iterator[str]:
    """The last names of the calls in a test."""
    for n in _nodes(test):
        if isinstance(n, ast.Call):
            yield dotted(n.func).rsplit(".", 1)[-1]


def availability_check(test: ast.AST | list[ast.AST]) -> bool:
    """`if find_spec("x")` / `if is_x_available()` style guards: is it installed?"""
    return any(PROBE_RE.search(f) is not None and not ENABLED_RE.search(f) for f in _probes(test))


def enabled_check(test: ast.AST | list[ast.AST]) -> bool:
    """`if is_x_enabled()`: a setting (optional in a package, run in a script)."""
    return any(ENABLED_RE.search(f) is not None for f in _probes(test))


def import_guard(expr: ast.expr) -> bool:
    """A context manager that swallows a failed import: `try_import()`,
    `optional_import()`, `suppress(ImportError)`."""
    if not isinstance(expr, ast.Call):
        return False
    name = dotted(expr.func).rsplit(".", 1)[-1]
    if name == "suppress":
        return any(n in ("ImportError", "ModuleNotFoundError") for arg in expr.args for n in type_names(arg))
    return PROBE_RE.search(name) is not None


def lazy_exports(tree: ast.Module) -> bool:
    """A module-level `def __getattr__` (PEP 562: attributes loaded on first use)."""
    for st in tree.body:
        for node in [st] + (st.body + st.orelse if isinstance(st, ast.If) else []):
            if isinstance(node, ast.FunctionDef) and node.name == "__getattr__":
                return True
    return False


def names_type_checking(test: ast.expr) -> bool:
    """`if TYPE_CHECKING:` / `if typing.TYPE_CHECKING:`."""
    return dotted(test).rsplit(".", 1)[-1] == "TYPE_CHECKING"


def flag_name(test: ast.expr) -> tuple[str | None, bool]:
    """(identifier, negated) when the test is a bare flag like `HAS_X` or `not x_ok`."""
    negated = False
    if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
        test, negated = test.operand, True
    if (
        isinstance(test, ast.Compare)
        and len(test.ops) == 1
        and isinstance(test.comparators[0], ast.Constant)
        and any(test.comparators[0].value is v for v in (True, False, None))
    ):
        # `HAS_X is True`, `X == False`, `x is not None`, `X is None`
        truthy = test.comparators[0].value is True
        if isinstance(test.ops[0], (ast.Is, ast.Eq)):
            negated ^= not truthy
        elif isinstance(test.ops[0], (ast.IsNot, ast.NotEq)):
            negated ^= truthy
        else:
            return None, False
        test = test.left
    if isinstance(test, ast.Name):
        return test.id, negated
    if isinstance(test, ast.Attribute):
        return test.attr, negated
    return None, False


def flag_targets(st: ast.Assign) -> list[str]:
    """The names an assignment sets, as flag_name reads a test of them (`x = ...`: x, `self.x = ...`: x)."""
    return [t.id if isinstance(t, ast.Name) else t.attr for t in st.targets if isinstance(t, (ast.Name, ast.Attribute))]


def success_flags(s: ast.Try, catching: list[ast.ExceptHandler]) -> dict[str, bool]:
    """Flags a try/except ImportError sets to a constant on success (its body
    or `else:`) and to the opposite in a handler (`IN_COLAB = True` /
    `except ImportError: IN_COLAB = False`): name -> its value on success."""

    def consts(stmts: list[ast.stmt]) -> dict[str, bool]:
        out: dict[str, bool] = {}
        for st in stmts:
            if isinstance(st, ast.Assign) and isinstance(st.value, ast.Constant) and isinstance(st.value.value, bool):
                out.update(dict.fromkeys(flag_targets(st), st.value.value))
        return out

    ok = consts(s.body) | consts(s.orelse)
    failed: dict[str, bool] = {}
    for h in catching:
        failed |= consts(h.body)
    return {name: value for name, value in ok.items() if failed.get(name) is (not value)}


def loaded_probe(test: ast.expr) -> tuple[str, bool] | None:
    """(module, negated) of a test that a module is loaded: `"google.colab" in
    sys.modules`, `"google.colab" in str(get_ipython())`, `"x" not in sys.modules`."""
    negated = False
    if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
        test, negated = test.operand, True
    if not (isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.ops[0], (ast.In, ast.NotIn))):
        return None
    name, where = const_str(test.left), test.comparators[0]
    if not name or not MODULE_RE.fullmatch(name):
        return None
    ipython = any(isinstance(n, ast.Call) and dotted(n.func) == "get_ipython" for n in ast.walk(where))
    if dotted(where) != "sys.modules" and not ipython:
        return None
    return name, negated ^ isinstance(test.ops[0], ast.NotIn)


def flag_guards(flag: str, name: str) -> bool:
    """Does `if <flag>:` guard an import of `name`? (`HAS_LXML`, `lxml_available`,
    `LXML`: the flag names the module; `HAS_DEPS`, `use_fast`: generic)."""
    key = re.sub(r"[^a-z0-9]", "", flag.lower())
    top = re.sub(r"[^a-z0-9]", "", name.split(".")[0].lower())
    return FLAG_RE.search(flag) is not None or bool(top and top in key)


def availability_flag(flag: str, name: str, attribute: bool = False) -> bool:
    """A flag saying the module is there (`HAS_LXML`, `lxml_ok`, `LXML`), not a
    setting (`use_lxml`, `with_cache`, `args.wandb`: an attribute named
    after the module is an option)."""
    key = re.sub(r"[^a-z0-9]", "", flag.lower())
    top = re.sub(r"[^a-z0-9]", "", name.split(".")[0].lower())
    return AVAILABLE_FLAG_RE.search(flag) is not None or (key == top and not attribute)


def flag_is_attribute(test: ast.expr) -> bool:
    """The flag of `if x.flag:` / `if not x.flag:` / `if x.flag is None:` is an attribute."""
    if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
        test = test.operand
    if isinstance(test, ast.Compare):
        test = test.left
    return isinstance(test, ast.Attribute)


def string_modules(node: ast.AST | list[ast.AST]) -> set[str]:
    """Lowercase top-level module names written as string literals in `node`."""
    out = set()
    for n in _nodes(node):
        text = const_str(n)
        if text and MODULE_RE.fullmatch(text):
            out.add(text.split(".")[0].lower())
    return out


def named_modules(test: ast.AST | list[ast.AST]) -> set[str]:
    """Module names an `if` test mentions: string literals ('gevent' in mode,
    array_type("cupy")) and words of compound identifiers (is_running_trio,
    array_type_cupy). A bare name (`if yaml is None: import yaml`, a lazy
    import cache) does not count."""
    nodes = _nodes(test)
    out = string_modules(nodes)
    for n in nodes:
        ident = n.id if isinstance(n, ast.Name) else n.attr if isinstance(n, ast.Attribute) else ""
        words = [w for w in ident.lower().split("_") if w]
        if len(words) > 1:
            out.update(words)
    return out


def dispatch(test: ast.expr) -> bool:
    """`if backend() == "torch":` / `elif name in ("a", "b"):`: a branch picked
    by a run-time setting, one of several alternatives (not `__name__`)."""
    if isinstance(test, ast.BoolOp):
        return all(dispatch(v) for v in test.values)
    if not (isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.ops[0], (ast.Eq, ast.In))):
        return False
    if dotted(test.left).endswith("__name__"):
        return False
    right = test.comparators[0]
    opts = right.elts if isinstance(right, (ast.Tuple, ast.List, ast.Set)) else [right]
    return bool(opts) and all(const_str(o) is not None for o in opts)


def reads_environment(test: ast.AST | list[ast.AST]) -> bool:
    """A test on an environment variable (configuration, not code)."""
    for n in _nodes(test):
        d = dotted(n) if isinstance(n, (ast.Attribute, ast.Name)) else ""
        if d.endswith(("environ", "getenv")):
            return True
    return False


_COMPOUND = (
    ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.If, ast.For, ast.AsyncFor, ast.While,
    ast.With, ast.AsyncWith, ast.Match, *TRY_TYPES,
)  # fmt: skip


def _statements(stmts: list[ast.stmt]) -> Iterator[ast.stmt]:
    """Every statement, nested ones included, without walking expressions
    (a try can only be a statement: much cheaper than ast.walk)."""
    stack = list(stmts)
    while stack:
        st = stack.pop()
        yield st
        if not isinstance(st, _COMPOUND):
            continue
        for name in ("body", "orelse", "finalbody"):
            stack.extend(getattr(st, name, None) or ())
        for handler in getattr(st, "handlers", None) or ():
            stack.extend(handler.body)
        for case in getattr(st, "cases", None) or ():
            stack.extend(case.body)


def calls_under_import_guard(tree: ast.Module) -> dict[str, bool]:
    """Names of functions called in the body of a try whose handlers catch
    ImportError -> whether some handler provides a fallback."""
    out: dict[str, bool] = {}
    for node in _statements(tree.body):
        if not isinstance(node, TRY_TYPES):
            continue
        catching = [
            h
            for h in node.handlers  # type: ignore[attr-defined]
            if any(n in ("ImportError", "ModuleNotFoundError") for n in type_names(h.type))
        ]
        if not catching:
            continue
        fallback = any(not no_fallback(h) for h in catching)
        for stmt in node.body:  # type: ignore[attr-defined]
            for n in ast.walk(stmt):
                if isinstance(n, ast.Call):
                    name = dotted(n.func).rsplit(".", 1)[-1]
                    if name and not name.endswith("()"):
                        out[name] = out.get(name, False) or fallback
    return out


# ---------------------------------------------------------------- classes


def is_integration(u: Use, pkg: str) -> bool:
    """An import in a package module named after what it imports and
    loaded only on demand (django/template/backends/jinja2.py,
    optuna/storages/_redis.py, keras/src/backend/jax/core.py: also a folder
    named after it): the integration with an optional package,
    used only by who has it. (A wrapper the package imports when it loads,
    like utils/_dill.py, is not one.)"""
    path = u.path
    if "/" not in path or not u.library or u.eager:
        return False
    parts = path.split("/")
    names = [*parts[1:-1], parts[-1].rsplit(".", 1)[0]]  # inner folders and the stem
    wanted = {re.sub(r"[^a-z0-9]", "", n.lower()) for n in (u.key.split(".")[0], pkg)}
    return any(re.sub(r"[^a-z0-9]", "", n.lower()) in wanted for n in names)


# A package imported inside functions of this many modules of a package, and
# never under an ImportError guard, is one the package needs (imported late
# so that the package loads faster), not an optional extra imported on demand.
LATE_MODULES = 2


def classify(res: Result, guarded: set[str], demoting: set[str], max_evidence: int) -> dict[str, str]:
    """Sort res.uses into required / optional / on_demand and fill the evidence;
    returns on-demand package -> first location.

    Required: an unguarded import run when its module loads, or in a
    function of a script or top-level module. Optional: guarded imports
    (try/except ImportError with a fallback, availability checks), imports
    of modules no entry point loads, and, in modules of a package only,
    imports under settings branches (`soft`) and imports only in function
    bodies (lazy) of a package the code guards elsewhere (`demoting`: the
    packages of `guarded` guarded in a module that does not also import them
    unguarded). On demand:
    imports only in function bodies of a package's inner modules (`to_hdf5()`
    imports h5py; required when it is imported so in LATE_MODULES modules and
    never guarded, a deep module's import counting as one if a module that
    is not deep imports it too) or in an integration module named after the package
    (backends/jinja2.py, storages/_redis.py), and imports under an ImportError
    guard without a fallback (`raise ImportError("install jinja2")`) in a
    package module the package does not load when it is imported (an
    integration loaded by name, starlette/templating.py): not needed to load
    the code, installed by default all the same (install_on_demand).
    """
    lazy: dict[str, str] = {}
    for pkg, pkg_uses in res.uses.items():
        loaded = [
            u
            for u in pkg_uses
            if not (u.optional or (u.soft and u.package))
            and u.reachable
            and not (u.in_function and u.package and pkg in demoting)
        ]
        # imported late in functions of several modules, never guarded: a dependency
        # the package imports late to load faster, not an extra (httpx's httpcore);
        # a deep module that imports it counts as one more such module, as long as
        # some module that is not deep imports it too (one backend alone is no core)
        # (a call that makes a library load it, `df.to_hdf()`, is no such import: on demand)
        late = {
            u.path
            for u in loaded
            if (u.in_function or u.deep) and u.library and not u.engine and not is_integration(u, pkg)
        }
        core = len(late) >= LATE_MODULES and pkg not in guarded and not all(u.deep for u in loaded)
        # a lookup by name (version("x")) is no lazy import: it fails without x wherever it runs
        needed = [
            u
            for u in loaded
            if not (u.in_function and u.library and not u.api and not core and not u.dist)
            and not is_integration(u, pkg)
            and not (u.guarded and u.library and not u.eager)
            and not u.deep
        ]
        if needed:
            res.required.add(pkg)
        elif loaded:
            res.on_demand.add(pkg)
            lazy[pkg] = min((u.where for u in loaded), key=loc_key)
        else:
            res.optional.add(pkg)
        by_import: dict[str, list[str]] = defaultdict(list)
        for u in needed or pkg_uses:
            by_import[u.key].append(u.where)
        res.evidence[pkg] = {k: first(v, max_evidence) for k, v in sorted(by_import.items())}
    return lazy
