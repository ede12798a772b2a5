"""The application-code benchmark: real notebooks and scripts of public
data-science material (books, tutorials, courses) scored against the
packages their authors' environment files declare.

Sources: one line each in tests/data/corpus-sources.txt, ``owner/repo COMMIT
PATH`` (fetched from the stored GitHub copies of the search tool and cached
under build/corpus/owner/repo/PATH; never committed). Per repository:

- declared: the names in its environment*.yml / requirements*.txt;
- imported: top-level names of `import` / `from` lines and `%load_ext`
  magics in its code (a plain regular-expression reading, independent of
  the scan), minus its own modules;
- truth: the declared packages that the code imports (by name: the import
  name is the package name, or a known rename in RENAMES);
- installed: what the scan installs by default (required + on_demand).

recall = |installed ∩ truth| / |truth| (truth the scan lists as optional,
imported only under an ImportError guard with a fallback, is reported and
left out); precision = installed packages that
are declared or whose import really happens (its name is in `imported`)
over |installed|. Micro-averaged over the repositories.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from portable_env.errors import UserError
from portable_env.files import canon
from portable_env.scan import scan

# Same package under several names (PyPI, conda-forge, the import name).
SAME = [
    ("matplotlib", "matplotlib-base"),
    ("seaborn", "seaborn-base"),
    ("dask", "dask-core"),
    ("torch", "pytorch"),
    ("scikit-learn", "sklearn"),
    ("opencv", "opencv-python", "opencv-python-headless", "py-opencv", "cv2"),
    ("tables", "pytables"),
    ("msgpack", "msgpack-python"),
    ("graphviz", "python-graphviz"),
    ("pillow", "pil"),
    ("pyyaml", "yaml"),
    ("python-dateutil", "dateutil"),
    ("scikit-image", "skimage"),
    ("beautifulsoup4", "bs4"),
    ("ipython",),
    ("tensorflow", "tensorflow-cpu", "tensorflow-gpu", "tensorflow-base"),
    ("ipython-sql", "sql", "jupysql"),
    ("pymupdf", "fitz"),
    ("biopython", "bio"),
    ("redis", "redis-py"),
    ("gdal", "osgeo"),
    ("netcdf4", "netCDF4"),
    ("pyzmq", "zmq"),
    ("protobuf", "google-protobuf"),
    ("cython",),
    ("ray", "ray-core", "ray-default"),
]
ALIAS = {canon(n): canon(g[0]) for g in SAME for n in g}
IMPORT_RE = re.compile(r"^[ \t]*(?:from[ \t]+([A-Za-z_][\w.]*)[ \t]+import|import[ \t]+([A-Za-z_][\w., \t]*))", re.M)
LOAD_EXT_RE = re.compile(r"%(?:re)?load_ext[ \t]+([A-Za-z_]\w*)")
MPL_WIDGET_RE = re.compile(r"^[ \t]*%matplotlib[ \t]+(?:widget|ipympl)\b", re.M)  # the ipympl backend
WRITEFILE_RE = re.compile(r"%%(?:writefile|file)[ \t]+(?:-a[ \t]+)?(?:\S*/)?([A-Za-z_]\w*)\.py\b")
ENV_FILE_RE = re.compile(r"(^|/)(environment[^/]*\.ya?ml|requirements[^/]*\.txt)$")


def norm(name: str) -> str:
    """One name per package."""
    n = canon(name)
    return ALIAS.get(n, n)


@dataclass
class Repo:
    """One corpus repository: its cached files and its score."""

    name: str
    files: list[str] = field(default_factory=list)
    declared: set[str] = field(default_factory=set)
    imported: set[str] = field(default_factory=set)  # normalised import names
    truth: set[str] = field(default_factory=set)
    installed: set[str] = field(default_factory=set)
    missed: set[str] = field(default_factory=set)
    guarded: set[str] = field(default_factory=set)  # truth the scan found optional (an ImportError fallback)
    wrong: set[str] = field(default_factory=set)
    unparsed: int = 0  # files or cells the scan could not parse


def read_sources(path: Path) -> dict[str, list[tuple[str, str]]]:
    """repo -> [(commit, path)] of the source list."""
    out: dict[str, list[tuple[str, str]]] = {}
    for n, line in enumerate(path.read_text().splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split(None, 2)
        if len(parts) != 3 or "/" not in parts[0]:
            raise UserError(f"{path}:{n}: expected `owner/repo COMMIT PATH`, got {line!r}")
        out.setdefault(parts[0], []).append((parts[1], parts[2]))
    return out


def declared_names(path: Path) -> set[str]:
    """Package names an environment.yml or requirements.txt declares."""
    text = path.read_text(errors="replace")
    specs: list[str] = []
    if path.suffix in (".yml", ".yaml"):
        doc = yaml.safe_load(text) or {}
        for dep in doc.get("dependencies") or []:
            if isinstance(dep, dict):
                specs += [str(x) for x in dep.get("pip") or []]
            else:
                specs.append(str(dep).split("::")[-1])
    else:
        specs = [ln.split("#")[0].strip() for ln in text.splitlines()]
    names = set()
    for spec in specs:
        m = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", spec)
        if m and not spec.startswith(("-", "git+", "http")) and m.group(0).lower() != "python":
            names.add(norm(m.group(0)))
    return names


def imported_names(text: str) -> set[str]:
    """Top-level names the code imports (regular expressions on the text)."""
    if text.lstrip().startswith("{"):  # a notebook: only its code cells' sources
        try:
            cells = json.loads(text).get("cells", [])
            text = "\n".join(
                "".join(c.get("source", [])) for c in cells if isinstance(c, dict) and c.get("cell_type") == "code"
            )
        except ValueError:
            pass
    dotted = set()
    for m in IMPORT_RE.finditer(text):
        if m.group(1):
            dotted.add(m.group(1))
        else:
            dotted.update(p.split()[0] for p in m.group(2).split(",") if p.strip())
    out = {d.split(".")[0] for d in dotted}
    for d in dotted:  # namespace packages: azure.storage.blob is the distribution azure-storage-blob
        parts = d.split(".")
        out.update("-".join(parts[:i]) for i in range(2, len(parts) + 1))
    out.update(LOAD_EXT_RE.findall(text))
    if MPL_WIDGET_RE.search(text):
        out.add("ipympl")
    return out


def own_modules(root: Path) -> set[str]:
    """Names of the repository's own modules (x.py, packages x/__init__.py,
    folders of modules at the root, files its notebooks write with %%writefile)."""
    out = {p.stem for p in root.rglob("*.py")}
    out |= {p.parent.name for p in root.rglob("__init__.py")}
    out |= {p.parent.name for p in root.glob("*/*.py")}  # namespace folders at the root (run from there)
    for nb in root.rglob("*.ipynb"):
        out.update(WRITEFILE_RE.findall(nb.read_text(errors="replace")))
    return out


def score_repo(name: str, root: Path) -> Repo:
    """Scan one cached repository and score it."""
    r = Repo(name, [p.relative_to(root).as_posix() for p in sorted(root.rglob("*")) if p.is_file()])
    own = own_modules(root)
    for rel in r.files:
        p = root / rel
        if ENV_FILE_RE.search(rel):
            r.declared |= declared_names(p)
        elif p.suffix in (".py", ".ipynb"):
            r.imported |= {norm(n) for n in imported_names(p.read_text(errors="replace")) if n.split("-")[0] not in own}
    r.truth = {d for d in r.declared if d in r.imported}
    res = scan(root)
    r.unparsed = len(res.unparsed)
    r.installed = {norm(p) for p in res.required | res.on_demand}
    optional = {norm(p) for p in res.optional}
    r.guarded = (r.truth - r.installed) & optional
    r.missed = r.truth - r.installed - r.guarded
    r.wrong = {
        norm(p)
        for p in res.required | res.on_demand
        if norm(p) not in r.declared and not ({norm(k.split(".")[0]) for k in res.evidence.get(p, {})} & r.imported)
    }
    return r


def score(sources: Path, cache: Path) -> tuple[list[Repo], str]:
    """Score every repository of the source list; (repos, report text)."""
    repos = []
    lines = []
    for repo, entries in read_sources(sources).items():
        root = cache / repo
        missing = [p for _c, p in entries if not (root / p).is_file()]
        if missing:
            raise UserError(
                f"{root}: {len(missing)} source file(s) not cached (first: {missing[0]}); fetch them "
                f"from the stored copy of {repo} at the commit listed in {sources}"
            )
        r = score_repo(repo, root)
        repos.append(r)
        lines.append(
            f"{repo:45} truth={len(r.truth):3} installed={len(r.installed):3} "
            f"missed={','.join(sorted(r.missed)) or '-'} wrong={','.join(sorted(r.wrong)) or '-'}"
            + (f" guarded={','.join(sorted(r.guarded))}" if r.guarded else "")
            + (f" unparsed={r.unparsed}" if r.unparsed else "")
        )
    truth = sum(len(r.truth) - len(r.guarded) for r in repos)
    hit = truth - sum(len(r.missed) for r in repos)
    inst = sum(len(r.installed) for r in repos)
    ok = inst - sum(len(r.wrong) for r in repos)
    recall = hit / truth if truth else 1.0
    precision = ok / inst if inst else 1.0
    lines.append(
        f"RESULT installed_recall={recall:.3f} precision={precision:.3f} repos={len(repos)} "
        f"files={sum(len(r.files) for r in repos)} truth={truth}"
    )
    return repos, "\n".join(lines) + "\n"
