"""The project's own modules: what is importable from inside the tree (local
index, so those imports are not dependencies), the dotted names of each file,
and which modules the entry points load (reachability)."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from portable_env.scan.parse import FOLDER_TREE, Module, Relative

# Public modules this deep (pkg.mod: 2) are entry points of a package: users
# import them directly (pkg.cli, pkg.aio, pkg.testing).
PUBLIC_DEPTH = 2
# Deeper public modules (pkg.sub.mod) are imported by users too (twisted.python.url,
# authlib.integrations.django_client): reached only from them, a module's
# imports are installed (on demand), never required of the package.
VENDOR_DIRS = {
    "_vendor",
    "vendor",
    "vendored",
    "_vendored",
    "extern",
    "_extern",
    "third_party",
    "_third_party",
    "thirdparty",
    "externals",
}

Dirs = dict[Path, list[str]]  # folder -> its file names (the walked tree)
NAMESPACE_INIT_BYTES = 4096  # the declaration opens the file
NAMESPACE_INIT_RE = re.compile(rb"\bextend_path\(\s*__path__|\bdeclare_namespace\(\s*__name__")


def is_vendored(path: str) -> bool:
    """The file (relative to the project) is in a vendored-code folder."""
    return any(part in VENDOR_DIRS for part in path.split("/")[:-1])


def module_name(filename: str) -> str | None:
    """Importable module name of a file, or None."""
    if filename.endswith((".py", ".pyi")):
        stem = filename.rsplit(".", 1)[0]
    elif filename.endswith((".so", ".pyd")):
        stem = filename.split(".", 1)[0]
    else:
        return None
    return stem if stem.isidentifier() else None


@dataclass
class LocalIndex:
    """Every module/package importable from inside the project tree."""

    modules: set[str] = field(default_factory=set)  # dotted, real modules/packages
    namespaces: set[str] = field(default_factory=set)  # dotted, folders w/o __init__
    siblings: dict[str, set[str]] = field(default_factory=dict)  # folder -> module names

    def is_local(self, dotted: str) -> bool:
        """True if `dotted` (or a parent package) lives in the project.

        A folder without __init__.py never hides an installed package of its
        name (Python prefers any module or package on sys.path to a
        namespace folder): `import numpy` beside a notebooks folder numpy/
        is numpy. Only modules inside such a folder are local
        (`from tools import plot` with tools/plot.py), and dotted namespace
        paths (`import core.numpy`)."""
        parts = dotted.split(".")
        for i in range(1, len(parts) + 1):
            if ".".join(parts[:i]) in self.modules:
                return True
        return "." in dotted and dotted in self.namespaces

    def is_sibling(self, top: str, path: str) -> bool:
        """`top` is a module beside the file `path` (a Python-2 style implicit
        relative import), not the file itself: a module named after what it
        imports (plugins/pycodestyle.py: `import pycodestyle`) wraps the
        installed package (it would import itself in Python 2 too)."""
        folder, _, name = path.rpartition("/")
        if name.rsplit(".", 1)[0] == top:
            return False
        return top in self.siblings.get(folder or ".", ())


def namespace_init(path: Path) -> bool:
    """The __init__.py declares an old-style namespace package
    (`__path__ = extend_path(__path__, __name__)`, `declare_namespace(__name__)`):
    its other submodules come from other distributions (dbt.adapters beside
    dbt-snowflake's dbt/adapters/snowflake/)."""
    try:
        with path.open("rb") as f:
            head = f.read(NAMESPACE_INIT_BYTES)
    except OSError:
        return False
    return NAMESPACE_INIT_RE.search(head) is not None


def without_namespace_inits(dirs: Dirs) -> Dirs:
    """The tree as Python sees its packages: a folder whose __init__.py only
    declares an old-style namespace (namespace_init) is a namespace folder,
    as one without __init__.py is (its own modules are the project's, the
    rest of the namespace is other distributions')."""
    out = dict(dirs)
    for d, files in dirs.items():
        if "__init__.py" in files and namespace_init(d / "__init__.py"):
            out[d] = [f for f in files if f != "__init__.py"]
    return out


def build_local_index(root: Path, dirs: Dirs, namespaces: Collection[str] = ()) -> LocalIndex:
    """Index modules reachable from each sys.path root found in the tree.

    Roots: the project folder, its src/, every folder of code that is not a
    package (scripts import their siblings), the parent of every top-level
    package, and vendored-code folders. A folder that holds no code of its
    own and mirrors a known namespace package (`namespaces`, dotted:
    llama_index/indices/managed/ above llama_cloud/) is that namespace, not a
    root: nothing runs from it.
    """
    idx = LocalIndex()
    has_init = {d for d, files in dirs.items() if "__init__.py" in files}
    roots = {root, root / "src"}

    def mirrors_namespace(d: Path) -> bool:
        files = dirs.get(d, ())
        if any(f.endswith(".ipynb") or module_name(f) not in (None, "__init__") for f in files):
            return False  # scripts or notebooks beside it run from here
        return any(
            d != base and d.is_relative_to(base) and ".".join(d.relative_to(base).parts) in namespaces
            for base in (root, root / "src")
        )

    for d in dirs:
        if d not in has_init:
            if not mirrors_namespace(d):
                roots.add(d)
        elif d.parent not in has_init and not mirrors_namespace(d.parent):
            roots.add(d.parent)
        if d.name in VENDOR_DIRS:
            roots.add(d)
        rel = d.relative_to(root).as_posix()
        idx.siblings[rel] = {n for n in map(module_name, dirs[d]) if n}
        if d != root and d.name.isidentifier() and d in has_init:  # a folder w/o __init__ hides nothing
            parent = d.parent.relative_to(root).as_posix()
            idx.siblings.setdefault(parent, set()).add(d.name)
    children: dict[Path, list[Path]] = defaultdict(list)
    for d in dirs:
        if d != root:
            children[d.parent].append(d)

    def add(folder: Path, prefix: str, depth: int) -> None:
        for f in dirs.get(folder, []):
            n = module_name(f)
            if n and n != "__init__":
                idx.modules.add(prefix + n)
        for sub in children.get(folder, []):
            if not sub.name.isidentifier():
                continue
            dotted = prefix + sub.name
            if sub in has_init:
                idx.modules.add(dotted)
            else:
                idx.namespaces.add(dotted)
                if depth < 8:
                    add(sub, dotted + ".", depth + 1)

    for r in roots:
        if r in dirs or r == root:
            add(r, "", 0)
    return idx


def module_names(root: Path, dirs: Dirs, rel: str) -> list[str]:
    """Dotted names a file is importable as: its package path first (up to
    the nearest folder without __init__.py), then longer names through
    namespace folders up to the scanned folder."""
    parts = rel.split("/")
    stem = parts[-1].rsplit(".", 1)[0]
    names: list[str] = []
    chain = [] if stem == "__init__" else [stem]
    d = root.joinpath(*parts[:-1]) if len(parts) > 1 else root
    i = len(parts) - 1
    while i > 0 and "__init__.py" in dirs.get(d, ()):
        chain.insert(0, parts[i - 1])
        d, i = d.parent, i - 1
    if chain:
        names.append(".".join(chain))
    while i > 0 and parts[i - 1].isidentifier():
        chain.insert(0, parts[i - 1])
        names.append(".".join(chain))
        i -= 1
    return names


def _private(name: str) -> bool:
    return any(p.startswith("_") for p in name.split("."))


def mark_reachability(root: Path, dirs: Dirs, graph: dict[str, Module]) -> None:
    """Mark the uses of modules that no entry point loads, of modules inside
    packages (library) and of modules loaded whenever the package is imported
    (eager).

    Entry points: top-level modules and packages (files in folders of code
    that are not packages: scripts, a flat project; a package's
    __init__.py), public modules PUBLIC_DEPTH deep (pkg.cli), __main__.py
    files and public modules run as programs. From them, follow the
    project's own imports (absolute and relative, in function bodies too),
    'pkg.mod.Name' string literals (plugins named in settings) and the
    modules of a folder a module of it loads by listing it; a package that
    reaches none of its own modules is loaded by name (a plugin or theme
    named in its metadata's entry points): all of it. Public modules
    deeper than pkg.mod that none of these reach (backends loaded by
    computed names, pkg.sub.mod that users import themselves) and what only
    they reach are `deep`: their imports are on demand. Private modules
    never reached (developer scripts inside a package) only matter when a
    user picks them: their imports are optional. Eager: module-level imports from the top-level
    modules and packages, not under settings branches (a backend loaded
    only when a setting picks it).
    """
    g = _Graph(graph)
    for rel in graph:
        names = module_names(root, dirs, rel)
        if not names:
            continue
        g.canonical[rel] = names[0]
        for n in names:
            g.by_name.setdefault(n, rel)
    canonical = g.canonical
    todo = [
        rel
        for rel, name in canonical.items()
        if (name.count(".") < PUBLIC_DEPTH and not _private(name)) or "." not in name or name.endswith(".__main__")
    ]
    todo += [rel for rel in graph if rel not in canonical]
    # public modules run as programs (`python -m pkg.tool`, console scripts)
    todo += [rel for rel, m in graph.items() if m.script and rel in canonical and not _private(canonical[rel])]
    seen = g.closure(todo, eager=False)
    # a package that reaches none of its own modules is loaded by name only (a plugin or
    # theme that a host tool loads through the entry points of its metadata): all of it
    plugins = g.unreached_packages(seen)
    if plugins:
        todo += plugins
        seen |= g.closure(plugins, eager=False)
    deep = g.closure([rel for rel, name in canonical.items() if not _private(name)], eager=False) - seen
    # modules reached only through settings branches (`if backend() == "jax": from .jax import *`)
    picked = seen - g.closure(todo, eager=False, soft=False)
    eager = g.closure([rel for rel in graph if "." not in canonical.get(rel, "")], eager=True)
    # modules that load only when a function imports them (`def add_borders(): from ._geo import x`)
    late = seen - g.closure(todo, eager=True, strings=True)
    # a package module with a `__main__` block that the package's other modules import is library code too
    imported = {hit for rel in seen for hit in g.targets(rel, eager=False) if hit != rel}
    for rel, m in graph.items():
        package = "__init__.py" in dirs.get((root / rel).parent, ())
        for u in m.uses:
            u.reachable = rel in seen or rel in deep
            u.deep = rel in deep
            u.eager = rel in eager
            u.library = u.library or (package and (not m.script or rel in imported))
            u.package = package
            u.api = package and rel.endswith("__init__.py") and "." not in canonical.get(rel, ".")
            if rel in picked and not u.optional:
                u.soft = True  # a backend module: its imports matter only when a setting picks it
            if rel in late and u.library and u.guarded:
                # a guarded import (a friendly ImportError) of a module that loads only when a
                # function imports it: the optional dependency of that function, not of the package
                u.in_function = True


@dataclass
class _Graph:
    """The project's modules (file -> Module), each file's dotted name, and
    the file of every name a file is importable as."""

    modules: dict[str, Module]
    canonical: dict[str, str] = field(default_factory=dict)  # file -> its dotted name
    by_name: dict[str, str] = field(default_factory=dict)  # dotted name -> file
    _folders: dict[str, list[str]] | None = None  # folder -> its modules and subpackages (in_folder)

    def closure(self, todo: list[str], eager: bool, soft: bool = True, strings: bool = False) -> set[str]:
        """Files reached from `todo` through the project's own imports (only
        module-level ones that always run if `eager`, and module names in
        strings too if `strings`; not through imports under settings branches
        unless `soft`)."""
        todo = list(todo)
        seen = set(todo)
        while todo:
            for hit in self.targets(todo.pop(), eager, soft, strings):
                if hit not in seen:
                    seen.add(hit)
                    todo.append(hit)
        return seen

    def targets(self, rel: str, eager: bool, soft: bool = True, strings: bool = False) -> Iterator[str]:
        """The project's files that module `rel` imports (see closure); a
        dotted import also loads its parent packages."""
        m = self.modules[rel]
        relative = m.relative
        name = self.canonical.get(rel, "")
        pkg = name.split(".") if rel.endswith("__init__.py") else name.split(".")[:-1]
        # modules loaded by name: 'pkg.mod:Class' and '.mod' (import_module(".mod", __name__)) strings
        named = [t for t in m.strings if not t.startswith(".")]
        named_relative: list[Relative] = [
            (len(t) - len(t.lstrip(".")), t.lstrip("."), [], False) for t in m.strings if t.startswith(".")
        ]
        if eager:
            # a module loaded under a settings branch (`if backend() == "jax":`) loads only when picked
            targets = [u.name for u in m.uses if not (u.typing or u.optional or u.in_function or u.soft or u.command)]
            relative = [r for r in relative if r[3]]
            if strings:
                targets += named
                relative = relative + named_relative
        else:
            targets = [t for t in named if soft or t not in m.registry]
            targets += [u.name for u in m.uses if not (u.typing or u.command) and (soft or not u.soft)]
            if not soft:
                relative = [r for r in relative if r not in m.soft_relative]
            relative = relative + named_relative
        for level, mod, names, _eager in relative:
            base = pkg[: len(pkg) - (level - 1)] if level - 1 <= len(pkg) else []
            if mod:
                base = base + mod.split(".")
            targets.append(".".join(base))
            targets.extend(".".join([*base, n]) for n in names if n != "*")
        for t in targets:
            parts = t.split(".")
            for i in range(1, len(parts) + 1):
                hit = self.by_name.get(".".join(parts[:i]))
                if hit:
                    yield hit
        if m.loads_folder and not eager:  # plugins found by listing the folder: its modules and packages
            folder = rel.rpartition("/")[0]
            if m.loads_folder == FOLDER_TREE:  # and every module below it
                yield from (f for f in self.modules if f.startswith(f"{folder}/" if folder else ""))
            else:
                yield from self.in_folder(folder)

    def unreached_packages(self, seen: set[str]) -> list[str]:
        """The modules of every top-level package none of whose modules (but
        its __init__.py files) `seen` holds."""
        inside: dict[str, list[str]] = defaultdict(list)
        for rel, name in self.canonical.items():
            if "." in name:
                inside[name.split(".")[0]].append(rel)
        out = []
        for top, rels in inside.items():
            own = [r for r in rels if not r.endswith("__init__.py")]
            if top in self.by_name and own and not any(r in seen for r in own):
                out += rels
        return out

    def in_folder(self, folder: str) -> list[str]:
        """The modules of a folder and the __init__.py of its subpackages."""
        if self._folders is None:
            self._folders = defaultdict(list)
            for f in self.modules:
                d, _, name = f.rpartition("/")
                self._folders[d].append(f)
                if name == "__init__.py":
                    self._folders[d.rpartition("/")[0]].append(f)
        return self._folders.get(folder, [])
