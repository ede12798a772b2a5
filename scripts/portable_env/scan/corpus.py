"""The application-code benchmark: real notebooks and scripts of public
data-science material (books, tutorials, courses, library galleries) scored
against the packages their authors' environment files declare.

Sources: lines of tests/data/corpus-sources.txt, two kinds:

- ``owner/repo COMMIT PATH``: one file of a GitHub repository (fetched by
  hand from the stored copies of the search tool, cached under
  build/corpus/owner/repo/PATH);
- ``pypi:NAME==VERSION SHA256 GLOB``: the files of a PyPI sdist that GLOB
  matches (relative to the sdist's top folder; ``*`` stays within a folder,
  ``**/`` spans folders), one line per glob: its tutorial or gallery
  folders and the environment files written for them. ``--fetch``
  downloads the sdist into build/corpus/pypi/ (checked against SHA256) and
  extracts only the matched files into build/corpus/pypi/NAME-VERSION/, so
  the library's own package source is never taken for local code.

Nothing under build/corpus/ is committed. Per source:

- declared: the names in its environment*.yml / env*.yml / requirements*.txt (of an
  sdist: every listed non-code file; a ``.txt`` is read as requirements, a
  ``.yml`` as a conda environment, a ``pyproject.toml`` gives
  ``[project] dependencies``, every ``optional-dependencies`` group and
  every ``[dependency-groups]`` group), plus, for an sdist, the distribution
  itself (the examples of library X need X);
- imported: top-level names of `import` / `from` lines and `%load_ext`
  magics at the start of a line in its code (a plain regular-expression
  reading, independent of the scan, of the text with string literals
  blanked out: an import in a docstring or a string is not an import),
  minus its own modules; test code (conftest.py, tests/) is left out, as
  the scan leaves it out by default;
- truth: the declared packages that the code imports (by name: the import
  name is the package name, a known rename in SAME or the generated import
  map's PyPI -> conda table (arch is arch-py), or a dash-separated
  prefix or suffix of a declared name that is not declared itself, see
  renamed_imports; a dotted import `a.b` is the namespace distribution
  a-b unless `a` is itself declared (pydicom.data is pydicom's subpackage,
  not pydicom-data); a package the scan installs for such an import under
  another name counts as wrong);
- installed: what the scan installs by default (required + on_demand);
  guessed (reported, not scored): installed packages not declared that no
  mapping layer knows, named after their import (the scan warns of each:
  whether a conda package of that name exists is not checked offline).

recall = |installed ∩ truth| / |truth| (truth the scan lists as optional,
imported only under an ImportError guard with a fallback, is reported and
left out); precision = installed packages that
are declared or whose import really happens (its name is in `imported`)
over |installed|. Micro-averaged over the sources. A wrong package that the
scan installs only for what a call makes a library load (`pd.read_excel`:
openpyxl; the engine table, portable_env.scan.engines) is also reported as
`loaded=`, and `precision_with_loaded` counts those as right: the regular
expression sees no import of them, so that is the scan's table checking
itself, not an independent truth.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import re
import shutil
import sys
import tarfile
import tokenize
import tomllib
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import yaml

from portable_env.errors import UserError
from portable_env.files import canon, is_test_path
from portable_env.scan import engines, scan
from portable_env.scan.mapping import GENERATED_MAPPING, Layer, load_layer, stdlib_names

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
    ("imbalanced-learn", "imblearn"),
    ("geoviews", "geoviews-core"),
    ("duckdb", "python-duckdb"),
    ("pvlib", "pvlib-python"),
]
ALIAS = {canon(n): canon(g[0]) for g in SAME for n in g}
IMPORT_RE = re.compile(r"^[ \t]*(?:from[ \t]+([A-Za-z_][\w.]*)[ \t]+import|import[ \t]+([A-Za-z_][\w., \t]*))", re.M)
LOAD_EXT_RE = re.compile(r"^[ \t]*%(?:re)?load_ext[ \t]+([A-Za-z_]\w*)", re.M)  # not `# %load_ext` comments
RUN_LOAD_EXT_RE = re.compile(r"run_line_magic\(\s*['\"](?:re)?load_ext['\"]\s*,\s*['\"]([A-Za-z_]\w*)")
MPL_WIDGET_RE = re.compile(r"^[ \t]*%matplotlib[ \t]+(?:widget|ipympl)\b", re.M)  # the ipympl backend
WRITEFILE_RE = re.compile(r"%%(?:writefile|file)[ \t]+(?:-a[ \t]+)?(?:\S*/)?([A-Za-z_]\w*)\.py\b")
ENV_FILE_RE = re.compile(r"(^|/)((?:environment|env)(?:[-_.][^/]*)?\.ya?ml|requirements[^/]*\.txt)$")
SDIST_RE = re.compile(r"pypi:([A-Za-z0-9][A-Za-z0-9._-]*)==([A-Za-z0-9][A-Za-z0-9.+!_-]*)$")
PYPI_JSON = "https://pypi.org/pypi/{name}/json"


@functools.cache
def generated() -> Layer:
    """The generated import map, read once."""
    return load_layer(GENERATED_MAPPING, "generated", False)


@functools.cache
def pypi_renames() -> dict[str, str]:
    """PyPI name -> conda name: the generated map's table (whl2conda's), the one
    the scan's own fallback uses (arch -> arch-py, pyqt5 -> pyqt)."""
    return {canon(k): canon(v) for k, v in generated().renames.items()}


def norm(name: str) -> str:
    """One name per package: a PyPI name is taken as its conda name, then SAME."""
    n = canon(name)
    n = pypi_renames().get(n, n)
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
    renamed: dict[str, str] = field(default_factory=dict)  # import name -> the declared package of another name
    unparsed: int = 0  # files or cells the scan could not parse
    guessed: set[str] = field(default_factory=set)  # installed under the import's own name, no layer knows it
    loaded: set[str] = field(default_factory=set)  # wrong, but what a call of the engine table loads (read_excel)


@dataclass
class Sdist:
    """A PyPI sdist source: the pinned file and the globs of its files to use."""

    name: str
    version: str
    sha256: str
    globs: list[str] = field(default_factory=list)

    @property
    def key(self) -> str:
        """Its name in reports and in the cache (NAME-VERSION)."""
        return f"{canon(self.name)}-{self.version}"


@dataclass
class Sources:
    """The source list: GitHub files per repository, and sdists."""

    github: dict[str, list[tuple[str, str]]] = field(default_factory=dict)  # repo -> [(commit, path)]
    sdists: dict[str, Sdist] = field(default_factory=dict)  # key -> sdist


def read_sources(path: Path) -> Sources:
    """Parse the source list (both line kinds, see the module docstring)."""
    out = Sources()
    for n, line in enumerate(path.read_text().splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split(None, 2)
        if parts[0].startswith("pypi:"):
            m = SDIST_RE.match(parts[0])
            if len(parts) != 3 or not m or not re.fullmatch(r"[0-9a-f]{64}", parts[1]):
                raise UserError(f"{path}:{n}: expected `pypi:NAME==VERSION SHA256 GLOB`, got {line!r}")
            sd = out.sdists.setdefault(f"{canon(m[1])}-{m[2]}", Sdist(m[1], m[2], parts[1]))
            if sd.sha256 != parts[1]:
                raise UserError(f"{path}:{n}: {parts[0]} is listed with two sha256 values; use one")
            sd.globs.append(parts[2])
            continue
        if len(parts) != 3 or "/" not in parts[0]:
            raise UserError(
                f"{path}:{n}: expected `owner/repo COMMIT PATH` or `pypi:NAME==VERSION SHA256 GLOB`, got {line!r}"
            )
        out.github.setdefault(parts[0], []).append((parts[1], parts[2]))
    return out


def glob_re(pattern: str) -> re.Pattern[str]:
    """A path glob as a regular expression: `*` and `?` within one folder, `**/` any folders."""
    out = ""
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out += "(?:[^/]+/)*"
            i += 3
        elif pattern[i] == "*":
            out += "[^/]*"
            i += 1
        elif pattern[i] == "?":
            out += "[^/]"
            i += 1
        else:
            out += re.escape(pattern[i])
            i += 1
    return re.compile(out + r"\Z")


def _members(archive: Path) -> Iterator[tuple[str, Callable[[], bytes]]]:
    """(path without the sdist's top folder, reader) of the regular files of a .tar.gz or .zip."""
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as z:
            for zi in z.infolist():
                if not zi.is_dir():
                    yield zi.filename.split("/", 1)[-1], lambda zi=zi: z.read(zi)  # type: ignore[misc]
        return
    with tarfile.open(archive) as t:
        for ti in t:
            if ti.isreg():
                yield ti.name.split("/", 1)[-1], lambda ti=ti: t.extractfile(ti).read()  # type: ignore[misc,union-attr]


def sdist_files(archive: Path, globs: list[str]) -> dict[str, bytes]:
    """The files of the sdist that the globs match (relative path -> bytes); each glob must match."""
    pats = [(g, glob_re(g)) for g in globs]
    used: set[str] = set()
    out: dict[str, bytes] = {}
    try:
        for rel, read in _members(archive):
            if not rel or rel.startswith("/") or ".." in PurePosixPath(rel).parts:
                continue
            hits = [g for g, pat in pats if pat.match(rel)]
            if hits:
                out[rel] = read()
                used.update(hits)
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError) as exc:
        raise UserError(f"{archive}: not a readable sdist ({exc}); delete it and run with --fetch") from exc
    unused = [g for g, _ in pats if g not in used]
    if unused:
        raise UserError(f"{archive}: no file matches {unused[0]!r}; fix the glob in the source list")
    return out


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def find_archive(sd: Sdist, folder: Path) -> Path | None:
    """The cached sdist file of `sd` in `folder` (any name NAME-VERSION.tar.gz / .zip), if there."""
    if not folder.is_dir():
        return None
    for p in sorted(folder.iterdir()):
        m = re.match(r"(.+)-" + re.escape(sd.version) + r"\.(tar\.gz|zip)$", p.name)
        if p.is_file() and m and canon(m[1]) == canon(sd.name):
            return p
    return None


def download(sd: Sdist, folder: Path) -> Path:
    """Download the sdist of `sd` from PyPI into `folder`, checked against its sha256."""
    url = PYPI_JSON.format(name=sd.name)
    try:
        with urllib.request.urlopen(url, timeout=60) as r:
            doc = json.load(r)
        files = [*(doc.get("releases") or {}).get(sd.version, []), *doc.get("urls", [])]
        f = next((f for f in files if f.get("digests", {}).get("sha256") == sd.sha256), None)
        if f is None:
            raise UserError(f"{url}: no file of {sd.name}=={sd.version} has sha256 {sd.sha256}; fix the source list")
        folder.mkdir(parents=True, exist_ok=True)
        dest = folder / Path(f["filename"]).name
        tmp = dest.with_name(dest.name + ".tmp")
        with urllib.request.urlopen(urllib.parse.urljoin(url, f["url"]), timeout=300) as r, tmp.open("wb") as out:
            shutil.copyfileobj(r, out)
    except (urllib.error.URLError, OSError) as exc:
        raise UserError(
            f"{url}: cannot download {sd.name}=={sd.version} ({exc}); run with network, or copy its sdist "
            f"into {folder}/"
        ) from exc
    if sha256_file(tmp) != sd.sha256:
        tmp.unlink()
        raise UserError(f"{dest}: downloaded file does not have sha256 {sd.sha256}; fix the source list")
    tmp.replace(dest)
    return dest


def extract_sdist(sd: Sdist, cache: Path, fetch: bool) -> Path:
    """The folder of the sdist's selected files (cache/pypi/NAME-VERSION), extracting
    (and with `fetch` downloading) what is missing; a stamp records sha256 and globs."""
    folder = cache / "pypi"
    root = folder / sd.key
    stamp = folder / f"{sd.key}.json"
    want = {"sha256": sd.sha256, "globs": sorted(sd.globs)}
    if root.is_dir() and stamp.is_file() and json.loads(stamp.read_text()) == want:
        return root
    archive = find_archive(sd, folder)
    if archive is None:
        if not fetch:
            raise UserError(
                f"{folder}: the sdist of {sd.name}=={sd.version} is not cached; run `scripts/score-corpus --fetch` "
                f"(needs PyPI) or copy the sdist into {folder}/"
            )
        archive = download(sd, folder)
    elif sha256_file(archive) != sd.sha256:
        raise UserError(f"{archive}: sha256 is not {sd.sha256} (the source list's); delete it and run with --fetch")
    files = sdist_files(archive, sd.globs)
    if root.exists():
        shutil.rmtree(root)
    for rel, data in files.items():
        dest = root / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(data)
    stamp.write_text(json.dumps(want))
    return root


def declared_names(path: Path) -> set[str]:
    """Package names an environment.yml, requirements.txt or pyproject.toml declares."""
    text = path.read_text(errors="replace")
    specs: list[str] = []
    if path.name == "pyproject.toml":
        try:
            doc = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise UserError(f"{path}: not valid TOML ({exc}); fix or drop it from the source list") from exc
        project = doc.get("project") or {}
        specs += [str(x) for x in project.get("dependencies") or []]
        for group in [
            *(project.get("optional-dependencies") or {}).values(),
            *(doc.get("dependency-groups") or {}).values(),
        ]:
            specs += [x for x in group if isinstance(x, str)]  # {include-group = ...} tables are other groups
    elif path.suffix in (".yml", ".yaml"):
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


def code_text(text: str) -> str:
    """The code of a script or notebook (notebook: its code cells), with string
    literals blanked out (docstrings and strings are not imports)."""
    if text.lstrip().startswith("{"):  # a notebook: only its code cells' sources
        try:
            cells = json.loads(text).get("cells", [])
            return "\n".join(
                blank_strings("".join(c.get("source", [])))
                for c in cells
                if isinstance(c, dict) and c.get("cell_type") == "code"
            )
        except ValueError:
            pass
    return blank_strings(text)


def blank_strings(text: str) -> str:
    """`text` with every string token replaced by its newlines (the text as it
    is when it does not tokenize, e.g. an unterminated string)."""
    lines = text.splitlines(keepends=True)
    offsets = [0]
    for ln in lines:
        offsets.append(offsets[-1] + len(ln))
    spans = []
    try:
        for tok in tokenize.generate_tokens(io.StringIO(text).readline):
            if tok.type == tokenize.STRING:
                spans.append((offsets[tok.start[0] - 1] + tok.start[1], offsets[tok.end[0] - 1] + tok.end[1]))
    except (tokenize.TokenError, SyntaxError, IndexError):
        return text
    out = []
    last = 0
    for a, b in spans:
        out += [text[last:a], "\n" * text.count("\n", a, b)]
        last = b
    out.append(text[last:])
    return "".join(out)


def imported_names(text: str) -> set[str]:
    """Top-level names the code imports (regular expressions on the code text)."""
    exported = set(RUN_LOAD_EXT_RE.findall(text))  # get_ipython().run_line_magic("load_ext", "x")
    text = code_text(text)
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
    out.update(LOAD_EXT_RE.findall(text), exported)
    if MPL_WIDGET_RE.search(text):
        out.add("ipympl")
    return out


@functools.cache
def own_name_packages() -> frozenset[str]:
    """Import names that the generated map gives a package of their very name
    (arviz -> arviz): a package of that name exists."""
    return frozenset(canon(k) for k, v in generated().table.items() if "." not in k and canon(k) == canon(v))


def renamed_imports(declared: set[str], imported: set[str]) -> dict[str, str]:
    """Import names that are a declared package of a longer name: a
    dash-separated prefix or suffix of it (ibis -> ibis-framework, trx ->
    trx-python, dateutil -> python-dateutil) that is not declared itself,
    nor a standard-library module (typing is not typing-extensions), nor a
    package of its own name in the import map (`import arviz` needs arviz,
    not the declared arviz-plots)."""
    out: dict[str, str] = {}
    std = {canon(n) for n in stdlib_names(sys.version_info[:2])}
    for d in sorted(declared - imported):
        for i in sorted(imported - declared - std - own_name_packages()):
            if "-" not in i and (d.startswith(i + "-") or d.endswith("-" + i)):
                out.setdefault(i, d)
    return out


def own_modules(root: Path) -> set[str]:
    """Names of the source's own modules (x.py, packages x/__init__.py,
    folders of modules at the root, files its notebooks write with %%writefile)."""
    out = {p.stem for p in root.rglob("*.py")}
    out |= {p.parent.name for p in root.rglob("__init__.py")}
    out |= {p.parent.name for p in root.glob("*/*.py")}  # namespace folders at the root (run from there)
    for nb in root.rglob("*.ipynb"):
        out.update(WRITEFILE_RE.findall(nb.read_text(errors="replace")))
    return out


def is_env_file(rel: str, sdist: bool) -> bool:
    """A file read for declared names: environment*.yml / requirements*.txt, and
    in an sdist every listed file that is not code (requirements/docs.txt, pyproject.toml)."""
    return bool(ENV_FILE_RE.search(rel)) or (sdist and not rel.endswith((".py", ".ipynb")))


def score_repo(name: str, root: Path, dist: str | None = None) -> Repo:
    """Scan one cached source and score it; `dist` is the distribution an sdist's examples use."""
    r = Repo(name, [p.relative_to(root).as_posix() for p in sorted(root.rglob("*")) if p.is_file()])
    own = own_modules(root)
    raw: set[str] = set()  # imported_names of every code file
    if dist:
        r.declared.add(norm(dist))
    for rel in r.files:
        p = root / rel
        if is_env_file(rel, dist is not None):
            r.declared |= declared_names(p)
        elif p.suffix in (".py", ".ipynb") and not is_test_path(Path(rel)):  # not scanned by default either
            raw |= {n for n in imported_names(p.read_text(errors="replace")) if n.split("-")[0] not in own}
    # a dotted import into a declared distribution is its subpackage (pydicom.data is pydicom's), not
    # the namespace distribution of that name (pydicom-data); only names from dotted imports have a dash
    r.imported = {norm(n) for n in raw if "-" not in n or norm(n.split("-")[0]) not in r.declared}
    r.renamed = renamed_imports(r.declared, r.imported)
    r.truth = {d for d in r.declared if d in r.imported} | set(r.renamed.values())
    res = scan(root)
    r.unparsed = len(res.unparsed)
    r.installed = {norm(p) for p in res.required | res.on_demand}
    optional = {norm(p) for p in res.optional}
    r.guarded = (r.truth - r.installed) & optional
    r.missed = r.truth - r.installed - r.guarded
    r.wrong = set()
    # right when its import happens, but whether a package of that name exists is not checked
    r.guessed = {norm(p) for p in res.unresolved & (res.required | res.on_demand)} - r.declared
    for pkg in res.required | res.on_demand:
        tops = {norm(k.split(".")[0]) for k in res.evidence.get(pkg, {})}
        if norm(pkg) in r.declared:
            continue
        if not tops & r.imported or (tops and all(t in r.renamed for t in tops)):
            r.wrong.add(norm(pkg))  # no import of it happens, or its imports are a declared package's (renamed)
            if set(res.evidence.get(pkg, {})) <= engines.LOADED:
                r.loaded.add(norm(pkg))  # no import line names it: a library loads it for a call (engines)
    return r


def score(sources: Path, cache: Path, fetch: bool = False) -> tuple[list[Repo], str]:
    """Score every source of the list; (scores, report text). With `fetch`,
    missing sdists are downloaded; missing GitHub files are always an error."""
    src = read_sources(sources)
    todo: list[tuple[str, Path, str | None]] = []
    for repo, entries in src.github.items():
        root = cache / repo
        missing = [p for _c, p in entries if not (root / p).is_file()]
        if missing:
            raise UserError(
                f"{root}: {len(missing)} source file(s) not cached (first: {missing[0]}); fetch them "
                f"from the stored copy of {repo} at the commit listed in {sources}"
            )
        todo.append((repo, root, None))
    for key, sd in src.sdists.items():
        todo.append((f"pypi:{key}", extract_sdist(sd, cache, fetch), sd.name))
    repos = []
    lines = []
    for name, root, dist in todo:
        r = score_repo(name, root, dist)
        repos.append(r)
        lines.append(
            f"{name:45} files={len(r.files):4} truth={len(r.truth):3} installed={len(r.installed):3} "
            f"missed={','.join(sorted(r.missed)) or '-'} wrong={','.join(sorted(r.wrong)) or '-'}"
            + (f" guarded={','.join(sorted(r.guarded))}" if r.guarded else "")
            + (f" unparsed={r.unparsed}" if r.unparsed else "")
            + (f" guessed={','.join(sorted(r.guessed))}" if r.guessed else "")
            + (f" loaded={','.join(sorted(r.loaded))}" if r.loaded else "")
        )
    truth = sum(len(r.truth) - len(r.guarded) for r in repos)
    hit = truth - sum(len(r.missed) for r in repos)
    inst = sum(len(r.installed) for r in repos)
    ok = inst - sum(len(r.wrong) for r in repos)
    loaded = sum(len(r.loaded) for r in repos)
    recall = hit / truth if truth else 1.0
    precision = ok / inst if inst else 1.0
    lines.append(
        f"RESULT installed_recall={recall:.3f} precision={precision:.3f} sources={len(repos)} "
        f"sdists={len(src.sdists)} files={sum(len(r.files) for r in repos)} truth={truth} "
        f"guessed={sum(len(r.guessed) for r in repos)} loaded={loaded} "
        f"precision_with_loaded={(ok + loaded) / inst if inst else 1.0:.3f}"
    )
    return repos, "\n".join(lines) + "\n"
