"""The scan: the conda packages a folder of Python code (.py, .ipynb) imports.

Offline and deterministic. ``scan(root, ...)`` returns a Result with
`required`, `optional`, `on_demand`, `unresolved`, the evidence (package ->
import name -> ["file:LINE", ...]) and `unparsed`; ``render`` writes it as
YAML (build/<project>/deps.yml). Import names are mapped to conda packages
in this order: settings `imports:` > templates/import-map.yml (--mapping) >
templates/import-map.generated.yml (scripts/gen-import-map, from
depfinder's pinned conda-forge table) > the import name as a PyPI name
that the generated map's PyPI -> conda table renames (torch: pytorch) >
the import name itself, which is then listed under `unresolved` and
warned about. A private top-level
module no layer knows is the package of its public name when a layer
knows that (`_pytest` -> pytest, `_yaml` -> pyyaml), else of its first
word (`_plotly_utils` -> plotly); never a name with a leading dash.

Modules: sources (which files; the test-code rule), magics (notebook cells
as Python, the magics that import a package), parse (the AST scanner, Use
records), engines (calls that make a library load a package), evaluate
(platform/version tests), guards (optional / on-demand /
TYPE_CHECKING / flags), reach (local modules and reachability from entry
points), mapping (layers, standard library), output (Result, YAML); corpus
is the application-code benchmark (scripts/score-corpus).

Rules:
- not dependencies: modules of the project tree itself (packages, sibling
  modules, src/ layouts, relative imports, modules a notebook writes with
  `%%writefile x.py`; a folder without __init__.py never hides the
  installed package it is named after: `import numpy` beside a notebooks
  folder numpy/ is numpy, as in Python; but a name no package is known by
  that is such a folder is the project's own namespace package:
  `from madewithml import models` with madewithml/ and no
  madewithml/models.py cached; a folder whose __init__.py only declares an
  old-style namespace, `extend_path`/`declare_namespace`, is such a folder
  too: dbt.adapters beside dbt/adapters/snowflake/ is dbt-adapters; a folder
  with no code of its own that mirrors a known namespace,
  llama_index/indices/managed/, is no sys.path root: its llama_cloud/ does
  not hide llama-cloud), the standard library of the
  target Python (any newer one's too, Python 2's), `if TYPE_CHECKING:`
  blocks, examples/ and docs/ folders shipped inside a package, branches
  for other platforms or Python versions, Windows/macOS-only modules and
  files (_windows.py), setup.py/noxfile.py;
- optional everywhere (an explicit ImportError-style guard with a
  fallback): imports in a `try:` whose `except ImportError` has a fallback
  (not one that re-raises, nor one that only keeps the error to raise it
  later: `except ImportError as e: invoke_error = e`)
  (also in a function called from such a `try:`), under `with try_import():`
  / `with suppress(ImportError):`, under `if HAS_X:` / `if x_available:` /
  `if find_spec("x")` tests, find_spec/importorskip literals, and in the
  `else:` of such a `try:` (runs only when the optional import worked);
- optional in modules of a package only (the project's own library code;
  scripts, notebooks and top-level modules run every path their user picks,
  so there these imports are required): imports inside function bodies of
  a package that the code guards as above somewhere else (guarded once is
  not demoted where other code imports it unguarded; a guard in vendored
  code, vendor/pympler guarding numpy, says nothing of the host's
  imports, nor does a guard of a name in a module that also imports the
  package unguarded (`from yaml import CSafeLoader` guards libyaml's loader,
  not PyYAML: its lazy imports are on demand); a module the package imports only inside functions counts as
  such a body for its guarded imports: `def add_borders(): from ._geo
  import x`, whose `import cartopy` raises a friendly ImportError); under `if
  is_x_enabled()`, `if os.environ...`, `if use_x:` / `if with_x:` settings
  tests, under `if setting == "name":` branches
  (a backend picked at run time; not `__name__`), and in modules reached
  only through a registry of alternatives (a dict of two or more
  `"name": "pkg.mod:Class"` entries, its "auto"/"default" entry aside); under a test or in a
  function hooked by a decorator that names the module (`if
  is_running_trio():`, `if "gevent" in mode:`, `@register_lazy("numba")`:
  runs only when that module is already in play; a bare `if yaml is None:`
  cache does not count); in modules that no entry
  point loads (entry points: scripts and top-level modules, package
  __init__.py, __main__.py, public `pkg.mod` modules and public modules run
  as programs (`if __name__ == "__main__":`); followed through the
  project's own imports, also in functions, '.module' strings
  (import_module(".mod", __name__) lazy exports), the TYPE_CHECKING imports
  of a module with a module-level __getattr__ (PEP 562 lazy exports),
  'pkg.mod.Name' / 'pkg.mod:attr' strings and every module of a folder
  that its own module loads by listing it (`pkgutil.iter_modules(__path__)`,
  `register_plugins(linter, dirname(__file__))`); a package that reaches
  none of its own modules is a plugin or theme a host tool loads by name,
  and all of it loads): backends and plugins loaded by name, developer
  scripts;
- on demand (not needed to load the code, installed unless
  `install_on_demand: false`): imports only inside function bodies of a
  package's inner modules (a module in a folder with __init__.py; one
  with a `__main__` block only when the package's other modules import it:
  `def to_hdf5(): import h5py`; not the top-level package's __init__.py,
  whose functions are its own API: `def setup(app)`, nor a package imported
  so in two or more modules and never guarded: imported late to load faster) and imports in a package module named after
  what it imports (backends/jinja2.py, storages/_redis.py: an integration)
  that the package does not load when it is imported (utils/_dill.py,
  imported by the package's modules at load time, is a wrapper: required),
  and imports under an ImportError guard without a fallback (`raise
  ImportError("install jinja2")`, `raise DidNotEnable(...)`) in a package
  module that the package does not load when it is imported (an
  integration named in a string registry, starlette/templating.py);
- required: every other import, also inside function bodies of scripts,
  notebooks and top-level modules (a lazy import is still needed when
  that function runs); `importlib.import_module("x")` /
  `__import__("x")` count, and so do lazy loaders (`LazyModule("x")`,
  `_LazyImport("x")`: as an import in a function, on demand in a package's
  inner module), and so do distribution lookups by name
  (`importlib.metadata.version("x")`, `pkg_resources.require("x")`: they
  fail without x, also in functions of a package's modules: no lazy import;
  optional under a try or in its handler, a fallback; the project's own
  distribution, `version("python-keycloak")` in keycloak/, is none), and so do dotted module paths into namespace
  packages written as strings ('sphinxcontrib.jsmath' in an extension list;
  not in a list that also holds strings no module is named, a table of names
  to compare with),
  and the magics that import a package (`%load_ext x`, `%matplotlib widget`,
  `%%cython`: the table in portable_env.scan.magics), and calls that make
  a library load a package by name, in a file that imports that library
  (`pd.read_excel("x.xlsx")`: openpyxl, `.xls`: xlrd, `engine="calamine"`:
  python-calamine; `df.to_parquet`: pyarrow; `xr.open_dataset`: netCDF4;
  `fig.write_image`: kaleido; `nx.draw`: matplotlib; `from tqdm.notebook
  import tqdm`: ipywidgets; a storage URL, `pd.read_csv("s3://b/x.csv")`:
  s3fs, a database URL, `create_engine("postgresql://...")`: psycopg2; the
  table in portable_env.scan.engines; in a package's functions on demand),
  and modules run as
  programs (`!python -m x`, `%run -m x`, `[sys.executable, "-m", "x"]`,
  `os.system("python -m x")`); a dotted import whose
  key is a submodule shipped by another conda package (`dask.distributed` ->
  distributed) needs its parent's package too (dask-core);
- test code (tests/, test/, testing/, _tests/, benchmarks/ folders,
  test_*.py, *_test.py, tests.py, conftest.py, pytest_*.py: not inside a
  pytest plugin package, pytest_x/pytest_x.py is the plugin) is skipped unless
  --include-tests / `include_tests: true`, or unless the folder holds nothing
  else (a test suite to run, a pytest plugin module: scanned, with a note).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path

from portable_env.errors import UserError
from portable_env.files import canon, spec_name
from portable_env.scan.evaluate import Evaluator
from portable_env.scan.guards import classify
from portable_env.scan.mapping import (
    DEFAULT_MAPPING,
    DEFAULT_PYTHON,
    Resolver,
    load_mapping,
    never_a_package,
    newer_stdlib,
    parse_python,
    removed_from_stdlib,
    stdlib_names,
)
from portable_env.scan.output import Result, render
from portable_env.scan.parse import Context, Use
from portable_env.scan.pool import parse_all
from portable_env.scan.reach import (
    LocalIndex,
    build_local_index,
    is_vendored,
    mark_reachability,
    without_namespace_inits,
)
from portable_env.scan.sources import is_test_path, select_sources

__all__ = [
    "DEFAULT_MAPPING",
    "DEFAULT_PYTHON",
    "MAX_EVIDENCE",
    "Result",
    "is_test_path",
    "parse_python",
    "render",
    "scan",
]

MAX_EVIDENCE = 5  # locations kept per import name
MAX_LAZY_SHOWN = 8  # on-demand packages named in the note


def scan(
    root: Path,
    *,
    python: tuple[int, int] = DEFAULT_PYTHON,
    imports: dict[str, str] | None = None,
    exclude: Iterable[str] = (),
    include_tests: bool = False,
    mapping: Path = DEFAULT_MAPPING,
    mapping_given: bool = False,
    max_evidence: int = MAX_EVIDENCE,
    settings_file: Path | str | None = None,
) -> Result:
    """Scan `root` and return the classified, mapped dependencies.

    imports / exclude / include_tests are the project's settings; python the
    target (major, minor) (see parse_python); mapping the repository import
    map (an error when missing only if `mapping_given`); settings_file the
    file the warnings tell the user to edit (default root/project.yml).
    Warnings are collected in Result.warnings.
    """
    if not root.is_dir():
        raise UserError(f"{root}: not a folder; pass the folder of your Python files")
    sources, dirs, skipped_tests = select_sources(root, include_tests)
    only_tests = not sources and skipped_tests > 0
    if only_tests:  # nothing but test code (a test suite, a pytest plugin module): that is what runs
        sources, dirs, _ = select_sources(root, True)
    if not sources:
        raise UserError(
            f"{root}: no .py or .ipynb files found; put the project's Python files (or notebooks) in this folder"
        )
    dirs = without_namespace_inits(dirs)
    maps = load_mapping(imports or {}, mapping, mapping_given)
    local = build_local_index(root, dirs, maps.namespaces)
    stdlib = stdlib_names(python)
    ctx = Context(
        Evaluator(python), stdlib, {n.split(".")[0] for n in maps.namespaces}, frozenset(maps.generated.commands)
    )
    parsed = parse_all(root, sources, ctx)
    res = Result(unparsed=parsed.unparsed)
    if only_tests:
        res.warn(
            f"{root}: all {len(sources)} Python file(s) are test code (tests/, test_*.py, pytest_*.py, ...); "
            f"scanned them as the project's code",
            "note",
        )
    if parsed.parsed == 0:
        raise UserError(
            f"{root}: none of the {len(sources)} Python files could be parsed "
            f"(first: {res.unparsed[0]}); fix them or convert them to Python 3"
        )
    mark_reachability(root, dirs, parsed.modules)

    excluded = {canon(spec_name(x)) for x in exclude if str(x).strip()}
    newer = newer_stdlib(python)
    resolver = maps.resolver({n for n in local.namespaces if "." in n})
    own = own_distributions(local, resolver)
    guard_sites: set[tuple[str, str]] = set()  # (package, file): its absence anticipated there
    whole_guards: set[tuple[str, str]] = set()  # (package, file): the package itself guarded there
    plain_sites: set[tuple[str, str]] = set()  # (package, file): imported unguarded there
    unguard_installed_probes(parsed.uses, resolver, local)
    origin: dict[str, str] = {}  # package -> layer
    ambiguous_used: dict[str, tuple[str, list[str], str]] = {}
    for u in parsed.uses:
        top = u.name.split(".")[0]
        if not u.command and (never_a_package(top, stdlib, newer) or local.is_local(u.name) or top in parsed.written):
            continue
        pkg, key, layer = resolve_use(resolver, u)
        if (
            layer == "identity"
            and key == top
            and not u.dist
            and (local.is_sibling(top, u.path) or top in local.namespaces)
        ):
            continue  # a sibling module imported Python-2 style, or the project's own namespace folder
        if (u.dist or u.command) and canon(pkg) in own:
            continue  # the project asks for its own version by its distribution name, or runs its own program
        if not pkg or canon(pkg) in excluded or u.typing:
            continue  # ignored by a mapping (""), excluded, or annotations only
        if (u.guarded or (u.soft and u.package)) and not is_vendored(u.path):
            guard_sites.add((pkg, u.path))  # a vendored copy's guard is its authors' choice, not the host's
            if u.guarded and u.name == key:  # `import torch` guarded, not `from yaml import CSafeLoader`
                whole_guards.add((pkg, u.path))  # (nor a branch on a setting, beside a plain import)
        elif not (u.optional or u.soft or u.signal):
            plain_sites.add((pkg, u.path))
        if u.signal:
            continue
        if layer == "generated" and key in maps.generated.ambiguous:
            ambiguous_used.setdefault(key, (pkg, maps.generated.ambiguous[key], u.where))
        u.key = key
        _add(res, origin, pkg, layer, u)
        up = resolver.parent(key) if "." in key and layer != "identity" and not (u.dist or u.command) else None
        if up and up[0] and up[0] != pkg and canon(up[0]) not in excluded:
            _add(res, origin, up[0], up[2], replace(u, key=up[1]))  # the parent package loads first
    # a guard of a name or submodule in a module that also imports the package
    # unguarded guards a feature of it (`from yaml import CSafeLoader` under a guard,
    # `import yaml` elsewhere), not the package: its lazy imports are not demoted to
    # optional (though any guard still keeps the package from counting as a core
    # dependency imported late); a guard of the package itself always demotes
    guarded = {pkg for pkg, _ in guard_sites}
    demoting = {site[0] for site in guard_sites if site not in plain_sites or site in whole_guards}
    lazy = classify(res, guarded, demoting, max_evidence)
    res.unresolved = {p for p, o in origin.items() if o == "identity"}
    _warn(res, lazy, ambiguous_used, python, settings_file or root / "project.yml")
    return res


def resolve_use(resolver: Resolver, u: Use) -> tuple[str, str, str]:
    """(package or "", key, layer) of a use: an import, a distribution looked up
    (dist:x) or installed (install:x) by name, or a program run by a shell command (bin/x)."""
    if u.command:
        return resolver.resolve_command(u.name)
    return resolver.resolve_dist(u.name, "install" if u.install else "dist") if u.dist else resolver.resolve(u.name)


def unguard_installed_probes(uses: list[Use], resolver: Resolver, local: LocalIndex) -> None:
    """A branch on a flag an ImportError guard set (`if IN_COLAB:`) is guarded
    like that try, unless the guarded import always works on the target: the
    project's own module, or a package the project imports unguarded elsewhere
    (installed, so the branch runs there): its imports are needed then."""
    flagged = [u for u in uses if u.probes]
    if not flagged:
        return
    plain = {resolve_use(resolver, u)[0] for u in uses if not (u.optional or u.soft or u.signal or u.typing)}
    plain.discard("")
    for u in flagged:
        if any(local.is_local(p) or resolver.resolve(p)[0] in plain for p in u.probes):
            u.optional = u.guarded = False


def own_distributions(local: LocalIndex, resolver: Resolver) -> set[str]:
    """Canonical names of the distributions the project's own top-level
    packages ship as: the package names themselves (sentry_sdk: sentry-sdk)
    and what the table maps them to (keycloak: python-keycloak, material:
    mkdocs-material). A package reads its own version so
    (`metadata.version("python-keycloak")` in keycloak/_version.py)."""
    own: set[str] = set()
    for name in local.modules:
        if "." in name:
            continue
        own.add(canon(name))
        pkg, _, layer = resolver.resolve(name)
        if pkg and layer != "identity":
            own.add(canon(pkg))
    return own


def _add(res: Result, origin: dict[str, str], pkg: str, layer: str, u: Use) -> None:
    """Record a use of `pkg` mapped through `layer`."""
    if layer == "identity":
        origin.setdefault(pkg, "identity")
    else:
        origin[pkg] = layer
    res.uses.setdefault(pkg, []).append(u)


def _warn(
    res: Result,
    lazy: dict[str, str],
    ambiguous_used: dict[str, tuple[str, list[str], str]],
    python: tuple[int, int],
    settings_file: Path | str,
) -> None:
    """The warnings and notes of a scan, in a stable order."""
    removed = removed_from_stdlib(python)
    for pkg, by_import in sorted(res.evidence.items()):
        for imp, locs in sorted(by_import.items()):
            if imp in removed:
                known = "" if pkg in res.unresolved else f"; the package '{pkg}' provides it"
                res.warn(
                    f"import '{imp}' (in {locs[0]}) was removed from the standard "
                    f"library in Python {removed[imp][0]}.{removed[imp][1]}{known}"
                )
    for pkg in sorted(res.unresolved):
        for imp, locs in sorted(res.evidence[pkg].items()):
            what = f"'{imp}'" if imp.startswith(("dist:", "install:", "bin/")) else f"import '{imp}'"  # not imports
            res.warn(
                f"{what} (in {locs[0]}) has no known conda package; assumed "
                f"'{pkg}'. If that's wrong add `imports: {{{imp}: <package>}}` to {settings_file}"
            )
    for key, (pkg, cands, where) in sorted(ambiguous_used.items()):
        res.warn(
            f"import '{key}' (in {where}) matches several conda packages "
            f"({', '.join(cands)}); chose '{pkg}'. To choose another add "
            f"`imports: {{{key}: <package>}}` to {settings_file}"
        )
    if lazy:
        shown = ", ".join(f"{pkg} ({loc})" for pkg, loc in sorted(lazy.items())[:MAX_LAZY_SHOWN])
        more = f" and {len(lazy) - MAX_LAZY_SHOWN} more" if len(lazy) > MAX_LAZY_SHOWN else ""
        res.warn(
            f"{len(lazy)} package(s) are imported only on demand (inside functions of "
            f"package modules, by an integration module named after them, or under an ImportError "
            f"guard in a module the package does not load): {shown}{more}. "
            f"They are listed under on_demand: and installed unless "
            f"`install_on_demand: false` is set in {settings_file}",
            "note",
        )
    if res.unparsed:
        res.warn(
            f"{len(res.unparsed)} file(s) or cell(s) could not be parsed and were skipped "
            f"(only their whole-line import statements were read):\n  " + "\n  ".join(res.unparsed)
        )
