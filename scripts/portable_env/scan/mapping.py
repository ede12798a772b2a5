"""Import name -> conda package: the mapping layers, standard-library names,
and the target Python version.

Layers, first match wins: settings ``imports:`` > templates/import-map.yml
(``--mapping``) > templates/import-map.generated.yml (scripts/gen-import-map)
> the import name itself ('identity', reported as unresolved).
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from portable_env.errors import UserError
from portable_env.files import canon
from portable_env.scan.output import warn

REPO = Path(__file__).resolve().parents[3]
DEFAULT_MAPPING = REPO / "templates" / "import-map.yml"
GENERATED_MAPPING = REPO / "templates" / "import-map.generated.yml"
DEFAULT_PYTHON = (3, 12)
SUPPORTED = [(3, m) for m in range(8, 15)]

# Standard-library changes per version, relative to the version before it
# (top-level names only). Applied to sys.stdlib_module_names of the running
# Python to get the target version's list.
STDLIB_ADDED = {
    (3, 9): {"graphlib", "zoneinfo", "_zoneinfo"},
    (3, 11): {"tomllib", "_tokenize", "_typing"},
    (3, 12): {"_pydatetime", "_pylong", "_wmi"},
    (3, 13): {
        "_interpchannels",
        "_interpqueues",
        "_interpreters",
        "_suggestions",
        "_sysconfig",
        "_colorize",
        "_pyrepl",
        "_opcode_metadata",
        "_ios_support",
    },
    (3, 14): {"annotationlib", "compression", "_zstd", "_remote_debugging", "_hmac", "_types"},
}
STDLIB_REMOVED: dict[tuple[int, int], set[str]] = {
    (3, 9): {"_dummy_thread", "dummy_threading"},
    (3, 10): {"formatter", "parser", "symbol", "_peg_parser"},
    (3, 11): {"binhex"},
    (3, 12): {"asynchat", "asyncore", "distutils", "imp", "smtpd"},
    (3, 13): {
        "aifc",
        "audioop",
        "cgi",
        "cgitb",
        "chunk",
        "crypt",
        "imghdr",
        "mailcap",
        "msilib",
        "nis",
        "nntplib",
        "ossaudiodev",
        "pipes",
        "sndhdr",
        "spwd",
        "sunau",
        "telnetlib",
        "uu",
        "xdrlib",
        "lib2to3",
        "_crypt",
        "_msi",
    },
    (3, 14): set(),
}
# Python 2 standard-library names: never a conda package (old fallbacks).
PY2_STDLIB = {
    "__builtin__",
    "_winreg",
    "anydbm",
    "BaseHTTPServer",
    "CGIHTTPServer",
    "ConfigParser",
    "Cookie",
    "cPickle",
    "cStringIO",
    "commands",
    "cookielib",
    "copy_reg",
    "dbhash",
    "Dialog",
    "DocXMLRPCServer",
    "dummy_thread",
    "dumbdbm",
    "exceptions",
    "FileDialog",
    "fpformat",
    "gdbm",
    "htmlentitydefs",
    "htmllib",
    "HTMLParser",
    "httplib",
    "imputil",
    "markupbase",
    "md5",
    "mimetools",
    "MimeWriter",
    "mimify",
    "multifile",
    "mutex",
    "new",
    "popen2",
    "posixfile",
    "Queue",
    "repr",
    "rfc822",
    "robotparser",
    "ScrolledText",
    "sets",
    "sgmllib",
    "sha",
    "SimpleHTTPServer",
    "SimpleXMLRPCServer",
    "SocketServer",
    "statvfs",
    "StringIO",
    "thread",
    "Tix",
    "Tkinter",
    "tkColorChooser",
    "tkCommonDialog",
    "tkFileDialog",
    "tkFont",
    "tkMessageBox",
    "tkSimpleDialog",
    "ttk",
    "urllib2",
    "urlparse",
    "UserDict",
    "UserList",
    "UserString",
    "whichdb",
    "xmlrpclib",
    "Carbon",
    "MacOS",
    "compiler",
    "dircache",
    "user",
    "future_builtins",
}
# Modules that exist only on Windows or macOS: not installable for a Linux env.
PLATFORM_ONLY = {
    "pywintypes",
    "pythoncom",
    "pythonwin",
    "winerror",
    "winxpgui",
    "ntsecuritycon",
    "winreg",
    "_winreg",
    "msvcrt",
    "_winapi",
    "winsound",
    "_overlapped",
    "nt",
    "_msi",
    "msilib",
    "_wmi",
    "wmi",
    "comtypes",
    "winshell",
    "pywinauto",
    "winrt",
    "winsdk",
    "wexpect",
    "pythonnet",
    "clr",
    "dbghelp",
    "servicemanager",
    "perfmon",
    "odbc",
    "AppKit",
    "Foundation",
    "Quartz",
    "objc",
    "CoreFoundation",
    "Cocoa",
    "PyObjCTools",
    "CoreServices",
    "ScriptingBridge",
    "LaunchServices",
    "SystemConfiguration",
    "_scproxy",
    "appscript",
    "Carbon",
    "MacOS",
    "AVFoundation",
    "WebKit",
    "UIKit",
    "java",
    "javax",
    "jnius",
    "android",
    "pyodide",
    "js",
    "_pyodide",
    "micropython",
    "machine",
    "utime",
    "uasyncio",
}
# The API version of a generated client module in a namespace package
# (google.cloud.vision_v1, language_v1beta2, vision_v1p3beta1): the
# distribution is named without it (google-cloud-vision).
API_VERSION_RE = re.compile(r"_v\d+(?:p\d+)?(?:(?:alpha|beta)\d*)?$")
PLATFORM_ONLY_RE = re.compile(r"^_?(win32|pywin32|winxp|_win32)")


# ---------------------------------------------------------------- python version


def parse_python(value: object, origin: str) -> tuple[int, int]:
    """'3.12' / 3.12 / '>=3.11' / '3.11.*' -> (3, 12); outside SUPPORTED: the nearest."""
    if isinstance(value, float):
        text = repr(value)
        if text == "3.1":
            warn(f'{origin}: python: 3.1 read as 3.10; quote versions ("3.10")')
            text = "3.10"
    else:
        text = str(value)
    m = re.search(r"(\d+)\.(\d+)", text)
    if not m:
        raise UserError(f"{origin}: cannot read python version {value!r}; use a version like 3.12")
    ver = (int(m.group(1)), int(m.group(2)))
    if ver < SUPPORTED[0] or ver > SUPPORTED[-1]:
        near = min(max(ver, SUPPORTED[0]), SUPPORTED[-1])
        warn(f"{origin}: python {ver[0]}.{ver[1]} unknown here; using the standard library list of {near[0]}.{near[1]}")
        ver = near
    return ver


# ---------------------------------------------------------------- stdlib


def stdlib_names(target: tuple[int, int]) -> set[str]:
    """Top-level standard-library module names of the target Python version."""
    host = sys.version_info[:2]
    names = set(sys.stdlib_module_names) | set(sys.builtin_module_names)
    names.add("__future__")
    if target > host:
        for v in sorted(k for k in SUPPORTED if host < k <= target):
            names |= STDLIB_ADDED.get(v, set())
            names -= STDLIB_REMOVED.get(v, set())
    elif target < host:
        for v in sorted((k for k in SUPPORTED if target < k <= host), reverse=True):
            names -= STDLIB_ADDED.get(v, set())
            names |= STDLIB_REMOVED.get(v, set())
    return names


def newer_stdlib(target: tuple[int, int]) -> set[str]:
    """Standard-library names added after the target version (never a package)."""
    return set().union(*(v for k, v in STDLIB_ADDED.items() if k > target))


def removed_from_stdlib(target: tuple[int, int]) -> dict[str, tuple[int, int]]:
    """Names removed from the standard library up to the target -> the version."""
    return {n: v for v, names in STDLIB_REMOVED.items() if v <= target for n in names}


def never_a_package(top: str, stdlib: set[str], newer: set[str]) -> bool:
    """A top-level name that is no conda package: standard library (of the target,
    a newer Python or Python 2), dunder modules, Windows/macOS-only modules."""
    return (
        top in stdlib
        or top in PY2_STDLIB
        or top.startswith("__")
        or top in newer
        or top in PLATFORM_ONLY
        or PLATFORM_ONLY_RE.match(top) is not None
    )


# ---------------------------------------------------------------- layers


def load_yaml(path: Path) -> object:
    """Parse a YAML file (C loader when available)."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        with open(path, "rb") as fh:
            return yaml.load(fh, Loader=loader)
    except (OSError, yaml.YAMLError) as e:
        raise UserError(f"{path}: cannot read: {e}; fix or remove the file") from e


@dataclass
class Layer:
    """One import -> package table."""

    name: str
    table: dict[str, str]
    ambiguous: dict[str, list[str]] = field(default_factory=dict)
    namespaces: set[str] = field(default_factory=set)  # generated table only
    renames: dict[str, str] = field(default_factory=dict)  # PyPI -> conda names
    commands: dict[str, str] = field(default_factory=dict)  # program -> conda package (generated only)

    def lookup(self, dotted: str) -> tuple[str, str] | None:
        """Longest dotted prefix of `dotted` in this table: (key, package)."""
        parts = dotted.split(".")
        for i in range(len(parts), 0, -1):
            key = ".".join(parts[:i])
            if key in self.table:
                return key, self.table[key]
        return None


def _table(doc: dict) -> dict[str, str]:
    return {str(k): ("" if v is None else str(v)) for k, v in doc.items()}


def load_layer(path: Path, name: str, required: bool) -> Layer:
    """Read a mapping file: plain `import: package` or generated format."""
    if not path.is_file():
        if required:
            raise UserError(f"{path}: mapping file not found; pass an existing --mapping file")
        return Layer(name, {})
    doc = load_yaml(path) or {}
    if not isinstance(doc, dict):
        raise UserError(f"{path}: expected `import_name: conda-package` lines")
    if "imports" in doc and isinstance(doc["imports"], dict):
        amb = doc.get("ambiguous") or {}
        layer = Layer(name, _table(doc["imports"]), {str(k): [str(x) for x in v] for k, v in amb.items()})
        layer.namespaces = set(doc.get("namespaces") or [])
        layer.renames = {str(k): str(v) for k, v in (doc.get("pypi_renames") or {}).items()}
        layer.commands = {str(k): str(v) for k, v in (doc.get("commands") or {}).items()}
        return layer
    return Layer(name, _table(doc))


class Resolver:
    """Maps dotted import names to conda packages through the layers."""

    def __init__(
        self, layers: list[Layer], namespaces: set[str], renames: dict[str, str], commands: dict[str, str] | None = None
    ) -> None:
        self.layers = layers
        self.namespaces = namespaces
        self.renames = renames
        self.commands = commands or {}
        self._cache: dict[str, tuple[str, str, str]] = {}
        self._packages: dict[str, str] | None = None  # package a table names -> the first such table

    def resolve(self, dotted: str) -> tuple[str, str, str]:
        """(package or "" to ignore, import key, layer name or 'identity')."""
        hit = self._cache.get(dotted)
        if hit is None:
            hit = self._cache[dotted] = self._resolve(dotted)
        return hit

    def _setting(self, key: str) -> str | None:
        """The project's own `imports:` entry for a key (`bin/kaggle`, `dist:scikit-learn`)."""
        return self.layers[0].table.get(key) if self.layers and self.layers[0].name == "settings" else None

    def resolve_dist(self, name: str, kind: str = "dist") -> tuple[str, str, str]:
        """resolve() for a PyPI distribution, named in import style (`version("scikit-learn")`,
        `pip install torch`: scikit_learn, torch), keyed `<kind>:<name>` (dist: looked up,
        install: named by an install command): the project's `imports: {<key>: ...}`, its
        conda name from the rename table (opencv-python: opencv), else as the tables map an
        import so spelled (torch: pytorch, kaleido: python-kaleido), else a package some
        table names so (scikit-learn)."""
        pypi = canon(name)
        key = f"{kind}:{pypi}"
        if (own := self._setting(key)) is not None:
            return own, key, "settings"
        if pypi in self.renames:
            return self.renames[pypi], key, "renames"
        pkg, _, layer = self.resolve(name)
        known = self.known_packages().get(pypi)
        return (pypi, key, known) if layer == "identity" and known else (pkg, key, layer)

    def resolve_command(self, program: str) -> tuple[str, str, str]:
        """resolve() for a program a shell command runs (`kaggle`), keyed `bin/<program>`:
        the project's `imports: {bin/<program>: ...}`, else the package the generated
        table names for it (the scanner looked it up there)."""
        key = f"bin/{program}"
        if (own := self._setting(key)) is not None:
            return own, key, "settings"
        return self.commands.get(program, ""), key, "generated"

    def parent(self, key: str) -> tuple[str, str, str] | None:
        """The package of the nearest parent of a dotted table key that is a
        package itself (`dask.distributed` -> dask-core): importing
        `dask.distributed` loads `dask` first, so both are needed. Namespace
        parents (google, azure.mgmt) hold no package."""
        parts = key.split(".")
        for i in range(len(parts) - 1, 0, -1):
            prefix = ".".join(parts[:i])
            if prefix in self.namespaces:
                continue
            for layer in self.layers:
                if prefix in layer.table:
                    return layer.table[prefix], prefix, layer.name
        return None

    def known_packages(self) -> dict[str, str]:
        """Every package name the tables map some import to -> the first table naming it."""
        if self._packages is None:
            self._packages = {}
            for layer in self.layers:
                for pkg in layer.table.values():
                    self._packages.setdefault(pkg, layer.name)
        return self._packages

    def _resolve(self, dotted: str) -> tuple[str, str, str]:
        # the project's settings win outright; between the other tables the longest key wins, the
        # earlier table on a tie (the repository map's `opentelemetry` does not hide the generated
        # `opentelemetry.instrumentation.requests`)
        best: tuple[str, str, str] | None = None
        for n, layer in enumerate(self.layers):
            hit = layer.lookup(dotted)
            if hit and (best is None or hit[0].count(".") > best[1].count(".")):
                best = hit[1], hit[0], layer.name
            if best and n == 0:  # layers[0]: the settings
                return best
        if best:
            return best
        public = dotted.lstrip("_")
        if public != dotted and not dotted.startswith("__") and public:
            # a private top-level module ships with its public package (_pytest: pytest, _billiard: billiard)
            # (only when the public name is a known package: a guess would be one too)
            prefix = "_" * (len(dotted) - len(public))
            pkg, key, layer_name = self._resolve(public)
            if layer_name != "identity":
                return pkg, prefix + key, layer_name
            top = public.split(".")[0]
            word = top.split("_")[0]  # or of its first word's (_plotly_utils: plotly)
            if word and word != top:
                pkg, _key, layer_name = self._resolve(word)
                if layer_name != "identity":
                    return pkg, dotted.split(".")[0], layer_name
        parts = dotted.split(".")
        key = parts[0]
        for i in range(1, len(parts)):
            if ".".join(parts[:i]) in self.namespaces:
                key = ".".join(parts[: i + 1])
            else:
                break
        unversioned = API_VERSION_RE.sub("", key) if "." in key else key
        if unversioned != key and not unversioned.endswith("."):
            pkg, _key, layer_name = self._resolve(unversioned)  # google.cloud.vision_v1: google-cloud-vision
            return pkg, key, layer_name
        known = self.known_packages().get(key)
        if known and key != canon(key):  # the import's very spelling is a package a table names (nb_black)
            return key, key, known
        guess = canon(key.lstrip("_")) or canon(key)  # never "-plotly-utils": no channel has such a name
        if guess in self.renames:  # a PyPI name whose conda name the rename table knows (torch: pytorch)
            return self.renames[guess], key, "renames"
        return guess, key, "identity"


@dataclass
class Mapping:
    """The layers in order, the generated one, and every known namespace package."""

    layers: list[Layer]
    generated: Layer
    namespaces: set[str]  # dotted parents of mapped names (google, google.cloud)

    def resolver(self, local_namespaces: set[str]) -> Resolver:
        """A Resolver that also treats the project's namespace folders as namespaces."""
        return Resolver(
            self.layers, self.namespaces | local_namespaces, self.generated.renames, self.generated.commands
        )


def load_mapping(
    imports: dict[str, str], mapping: Path, mapping_given: bool, generated: Path = GENERATED_MAPPING
) -> Mapping:
    """settings imports > mapping file > generated table."""
    gen = load_layer(generated, "generated", required=False)
    layers = [Layer("settings", dict(imports)), load_layer(mapping, "import-map", required=mapping_given), gen]
    namespaces = set(gen.namespaces)
    keys = {key for layer in layers for key in layer.table}
    for key in keys:
        parts = key.split(".")
        # parents of dotted keys, unless a package themselves (dask of dask.distributed)
        namespaces.update(p for p in (".".join(parts[:i]) for i in range(1, len(parts))) if p not in keys)
    return Mapping(layers, gen, namespaces)
