"""THE settings model: every key of projects/<name>/project.yml, its type,
default and meaning, validated once per build.

``scripts/settings`` (the first step of every project build) reads
project.yml with this module, applies the command-line overrides
(``CHANNELS``, ``PYTHON``, ``FORMAT``), and writes ``build/<P>/settings.json``
(what every step reads, through ``load``) and ``build/<P>/settings.mk`` (the
two values Make needs: the build key and the archive format). Nothing else
parses project.yml. A value YAML accepts is either honoured or refused with
the file, the key and the valid form; never silently ignored.

``templates/project.yml`` documents every key (as a commented-out
``# key: default`` line); a test checks it against ``FIELDS``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from portable_env import formats
from portable_env.errors import UserError, run
from portable_env.files import canon, write_atomic, write_if_changed
from portable_env.projects import name_problem

ROOT = Path(__file__).resolve().parent.parent.parent
TEMPLATE = Path("templates") / "project.yml"
ENV_TEMPLATE = Path("templates") / "environment.yml"
SCHEMA_VERSION = 1

# ---------------------------------------------------------------- value forms
NAME_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]*")
# An `imports:` key: an import name, or what the scan names besides imports: a distribution looked up
# (`dist:scikit-learn`) or installed (`install:scikit-learn`) by name, a program a shell command runs
# (`bin/kaggle`).
IMPORT_RE = re.compile(
    r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*|(dist|install):[a-z0-9]+(-[a-z0-9]+)*|bin/[A-Za-z0-9][A-Za-z0-9._+-]*"
)
VERSION_PART = r"\d+(?:\.(?:\d+|\*)){1,2}"
PYTHON_RE = re.compile(rf"(?:(?:[<>]=?|==?|!=|~=)?{VERSION_PART})(?:,(?:[<>]=?|==?|!=|~=){VERSION_PART})*")
CHANNEL_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*(/[A-Za-z0-9_.-]+)*")
CHANNEL_URL_RE = re.compile(r"(https?|file)://[A-Za-z0-9._~:/@%+=,-]+")
SPEC_RE = re.compile(r"(?:[A-Za-z0-9_.-]+::)?[A-Za-z0-9_][A-Za-z0-9._-]*(?:[ =<>!~][A-Za-z0-9.*+_!,|<>=~ -]*)?")
# Launchers (entry_points): a file name in bin/ and "module:function",
# "module" or "path/script.py"; ship-code uses these same rules.
LAUNCHER_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
RESERVED_LAUNCHERS = frozenset({"activate", "deactivate", "conda-unpack", "python", "python3"})
DOTTED = r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*"
FUNCTION_RE = re.compile(rf"({DOTTED}):({DOTTED})")
MODULE_RE = re.compile(DOTTED)
SCRIPT_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_./-]*\.py")

PYTHON_FORM = 'a quoted version like "3.12" (or a spec like ">=3.11,<3.13")'
CHANNEL_FORM = "a channel name (conda-forge) or a URL (https://..., file:///abs/path) without spaces or quotes"
SPEC_FORM = 'a conda match spec like "numpy", "numpy>=1.26" or "numpy 1.26.*"'
# PyPI: PEP 508 requirements (pypi:), "pypi:<project>" import targets, the index.
PYPI_PREFIX = "pypi:"
PYPI_NAME_RE = re.compile(r"[A-Za-z0-9]|[A-Za-z0-9][A-Za-z0-9._-]*[A-Za-z0-9]")
PYPI_FORM = (
    'a PEP 508 requirement like "tinylib", "tinylib>=1.2", "tinylib[extra]==1.2; python_version>=\'3.10\'" '
    'or "tinylib @ https://host/tinylib-1.2-py3-none-any.whl" (direct references: https:// or file:// only)'
)
PYPI_INDEX_FORM = (
    "a package index URL (https://host/simple, PEP 503) or a local folder of wheels (file:///abs/path), "
    "without spaces or quotes"
)
PYPI_INDEX_DEFAULT = "https://pypi.org/simple"
PYPI_INDEX_RE = re.compile(r"(https://[A-Za-z0-9._~:/@%+=,-]+|file:///[A-Za-z0-9._~/@%+=,-]*)")
# Characters no requirement needs that a shell or a requirements file reads
# as code or options: rejected before parsing.
PYPI_JUNK = re.compile(r"[`$\\|&\n\r\t\0#{}]|^\s*-")


def _is_python(v: object) -> bool:
    return isinstance(v, str) and bool(PYTHON_RE.fullmatch(v.replace(" ", "")))


def _is_channel(v: object) -> bool:
    return isinstance(v, str) and bool(CHANNEL_URL_RE.fullmatch(v) or CHANNEL_NAME_RE.fullmatch(v))


def _is_spec(v: object) -> bool:
    return isinstance(v, str) and bool(SPEC_RE.fullmatch(v.strip())) and v.strip() == v


def _is_name(v: object) -> bool:
    return isinstance(v, str) and bool(NAME_RE.fullmatch(v))


def _is_launcher(v: object) -> bool:
    if not isinstance(v, str):
        return False
    if SCRIPT_RE.fullmatch(v):
        return ".." not in v.split("/")
    return bool(FUNCTION_RE.fullmatch(v) or MODULE_RE.fullmatch(v))


def _is_launcher_name(v: object) -> bool:
    return isinstance(v, str) and bool(LAUNCHER_NAME_RE.fullmatch(v)) and v not in RESERVED_LAUNCHERS


# ---------------------------------------------------------------- the schema
@dataclass(frozen=True)
class Field:
    """One key of project.yml: its default, the check of a value, the form
    named in the error, and what it means (the template's comment)."""

    name: str
    default: Any
    check: Callable[[Any], str | None]
    form: str


def _bool(key: str) -> Callable[[Any], str | None]:
    def check(v: Any) -> str | None:
        return None if isinstance(v, bool) else f"'{key}' must be true or false, not {v!r}"

    return check


def _list_of(key: str, ok: Callable[[object], bool], form: str) -> Callable[[Any], str | None]:
    def check(v: Any) -> str | None:
        if not isinstance(v, list):
            return f"'{key}' must be a list, e.g. {key}: [a, b]; each item {form}"
        bad = [x for x in v if not ok(x)]
        return f"'{key}': {', '.join(repr(x) for x in bad)} is not {form}" if bad else None

    return check


def _check_python(v: Any) -> str | None:
    if isinstance(v, (bool, int, float)):
        return (
            f"'python' is read as the number {v}; quote the version, e.g. python: \"3.12\""
            " (unquoted, YAML reads 3.10 as 3.1)"
        )
    return None if _is_python(v) else f"'python' must be {PYTHON_FORM}, not {v!r}"


def _is_import_target(p: object) -> bool:
    """A conda package name, "" / null (ignored), or "pypi:<project>" (a PyPI project)."""
    if p is None or p == "":
        return True
    if isinstance(p, str) and p.startswith(PYPI_PREFIX):
        return bool(PYPI_NAME_RE.fullmatch(p[len(PYPI_PREFIX) :]))
    return _is_name(p)


def _check_imports(v: Any) -> str | None:
    form = (
        "import names (or dist:<distribution>, bin/<program>, as deps.yml names them) mapped to conda package "
        'names ("" ignores the import, "pypi:<project>" installs a PyPI project), e.g. imports: {cv2: opencv, '
        'tinylib: "pypi:tinylib", bin/convert: ""}'
    )
    if not isinstance(v, dict):
        return f"'imports' must map {form}"
    bad = [
        f"{k!r}: {p!r}"
        for k, p in v.items()
        if not (isinstance(k, str) and IMPORT_RE.fullmatch(k)) or not _is_import_target(p)
    ]
    return f"'imports': {', '.join(bad)} is not valid; it must map {form}" if bad else None


def pypi_problem(v: object) -> str | None:
    """Why a pypi: entry is not a valid requirement, or None (PYPI_FORM is the valid form)."""
    if not isinstance(v, str) or not v.strip():
        return f"{v!r} is not a requirement"
    if PYPI_JUNK.search(v):
        return f"{v!r} holds characters no requirement has (an option, shell or comment syntax)"
    from packaging.requirements import InvalidRequirement, Requirement

    try:
        req = Requirement(v)
    except InvalidRequirement as exc:
        return f"{v!r} is not a valid requirement ({' '.join(str(exc).split())})"
    if req.url is not None and not req.url.startswith(("https://", "file://")):
        return f"{v!r} is a direct reference to {req.url!r}, not to an https:// or file:// URL"
    return None


def _check_pypi(v: Any) -> str | None:
    if not isinstance(v, list):
        return f"'pypi' must be a list, e.g. pypi: [\"tinylib>=1.2\"]; each item {PYPI_FORM}"
    bad = [why for x in v if (why := pypi_problem(x)) is not None]
    return f"'pypi': {'; '.join(bad)}; each item must be {PYPI_FORM}" if bad else None


def _check_pypi_index(v: Any) -> str | None:
    if isinstance(v, str) and PYPI_INDEX_RE.fullmatch(v):
        return None
    return f"'pypi_index' must be {PYPI_INDEX_FORM}, not {v!r}"


def _check_format(v: Any) -> str | None:
    return None if v in formats.FORMATS else f"'format' must be one of {', '.join(formats.names())}, not {v!r}"


def _check_level(v: Any) -> str | None:
    if isinstance(v, bool) or not isinstance(v, int):
        return f"'compression_level' must be a whole number (gzip 1-9, zstd 1-19), not {v!r}"
    return None  # the range depends on the format: checked in resolve()


def _check_launchers(v: Any) -> str | None:
    form = (
        'launcher names (letters, digits, ".", "_", "-"; not '
        + ", ".join(sorted(RESERVED_LAUNCHERS))
        + ') mapped to "module:function", "module" or "path/script.py" (inside the project), '
        'e.g. entry_points: {mytool: "mypkg.cli:main"}'
    )
    if not isinstance(v, dict):
        return f"'entry_points' must map {form}"
    bad = [f"{k!r}: {s!r}" for k, s in v.items() if not (_is_launcher_name(k) and _is_launcher(s))]
    return f"'entry_points': {', '.join(bad)} is not valid; it must map {form}" if bad else None


def _check_command(v: Any) -> str | None:
    if not isinstance(v, str) or not v.strip():
        return f"'smoke_test' must be a command in quotes, e.g. smoke_test: \"mytool --help\", not {v!r}"
    return None


# The machine the archive must run on. glibc 2.17 (RHEL/CentOS 7) is the
# baseline conda-forge builds linux-64 packages for (its default
# c_stdlib_version): nearly every record depends on __glibc >=2.17 only.
TARGET_DEFAULTS: dict[str, str | None] = {"glibc": "2.17", "cpu": "x86_64", "cuda": None}
CPU_LEVELS = ("x86_64", "x86_64_v2", "x86_64_v3", "x86_64_v4")
GLIBC_RE = re.compile(r"2\.\d{1,2}")
CUDA_RE = re.compile(r"\d{1,2}\.\d{1,2}")
TARGET_FORM = (
    'a mapping like target: {glibc: "2.17", cpu: x86_64, cuda: "12.4"} (glibc "2.X", cpu one of '
    + ", ".join(CPU_LEVELS)
    + ', cuda "X.Y" or null for none)'
)


def target_problem(key: str, value: object, origin: str = "target") -> str | None:
    """Why a target value is invalid (the form named), or None."""
    if key == "glibc" and not (isinstance(value, str) and GLIBC_RE.fullmatch(value)):
        return f'{origin} glibc {value!r} is not a quoted glibc version like "2.17"'
    if key == "cpu" and value not in CPU_LEVELS:
        return f"{origin} cpu {value!r} is not one of {', '.join(CPU_LEVELS)}"
    if key == "cuda" and value is not None and not (isinstance(value, str) and CUDA_RE.fullmatch(value)):
        return f'{origin} cuda {value!r} is not a quoted CUDA version like "12.4" (or null: no CUDA)'
    return None


def _check_target(v: Any) -> str | None:
    if not isinstance(v, dict):
        return f"'target' must be {TARGET_FORM}"
    unknown = [k for k in v if k not in TARGET_DEFAULTS]
    if unknown:
        return f"'target': unknown key {unknown[0]!r}; it must be {TARGET_FORM}"
    bad = [m for k, x in v.items() if (m := target_problem(k, x, "'target':")) is not None]
    return "; ".join(bad) if bad else None


ADOPT_FORMS = ("needed", "all")


def _check_adopt(v: Any) -> str | None:
    if isinstance(v, bool):
        return (
            f"'adopt' is read as the boolean {str(v).lower()}; write adopt: all (keep every package of the "
            "environment) or adopt: needed (only what the project needs, the default)"
        )
    return None if v in ADOPT_FORMS else f"'adopt' must be one of {', '.join(ADOPT_FORMS)}, not {v!r}"


FIELDS: dict[str, Field] = {
    f.name: f
    for f in (
        Field("python", None, _check_python, PYTHON_FORM),
        Field("channels", None, _list_of("channels", _is_channel, CHANNEL_FORM), CHANNEL_FORM),
        Field("packages", [], _list_of("packages", _is_spec, SPEC_FORM), SPEC_FORM),
        Field("exclude", [], _list_of("exclude", _is_name, "a package name"), "a package name"),
        Field("imports", {}, _check_imports, "import: package"),
        Field("pypi", [], _check_pypi, PYPI_FORM),
        Field("pypi_sdists", False, _bool("pypi_sdists"), "true or false"),
        Field("pypi_index", PYPI_INDEX_DEFAULT, _check_pypi_index, PYPI_INDEX_FORM),
        Field("include_tests", False, _bool("include_tests"), "true or false"),
        Field("install_optional", False, _bool("install_optional"), "true or false"),
        Field("install_on_demand", True, _bool("install_on_demand"), "true or false"),
        Field("format", formats.DEFAULT, _check_format, " | ".join(formats.names())),
        Field("compression_level", None, _check_level, "a whole number"),
        Field("pip", True, _bool("pip"), "true or false"),
        Field("slim", False, _bool("slim"), "true or false"),
        Field("compile", False, _bool("compile"), "true or false"),
        Field("ship_code", False, _bool("ship_code"), "true or false"),
        Field("entry_points", {}, _check_launchers, "name: spec"),
        Field("smoke_test", None, _check_command, "a command"),
        Field("target", {}, _check_target, "glibc/cpu/cuda"),
        Field("adopt", "needed", _check_adopt, " | ".join(ADOPT_FORMS)),
    )
}


# ---------------------------------------------------------------- the model
@dataclass(frozen=True)
class Settings:
    """A project's validated settings, overrides applied (what every step reads)."""

    project: str
    project_dir: str
    settings_file: str
    platform: str
    key: str
    python: str
    channels: list[str]
    packages: list[str] = field(default_factory=list)
    exclude: list[str] = field(default_factory=list)
    imports: dict[str, str] = field(default_factory=dict)
    pypi: list[str] = field(default_factory=list)
    pypi_sdists: bool = False
    pypi_index: str = PYPI_INDEX_DEFAULT
    include_tests: bool = False
    install_optional: bool = False
    install_on_demand: bool = True
    format: str = formats.DEFAULT
    compression_level: int = 4
    pip: bool = True
    slim: bool = False
    compile: bool = False
    ship_code: bool = False
    entry_points: dict[str, str] = field(default_factory=dict)
    smoke_test: str | None = None
    target: dict[str, str | None] = field(default_factory=lambda: dict(TARGET_DEFAULTS))
    adopt: str = "needed"
    overrides: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> str:
        """Canonical JSON (sorted keys): equal settings give equal bytes."""
        return json.dumps({"schema": SCHEMA_VERSION, **asdict(self)}, indent=1, sort_keys=True) + "\n"


def load(path: Path | str) -> Settings:
    """Read build/<P>/settings.json (written by the settings step)."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise UserError(
            f"{path}: cannot read the settings ({exc}); run make again (the settings step writes it)"
        ) from None
    if data.pop("schema", None) != SCHEMA_VERSION:
        raise UserError(f"{path}: written by another version of portable-env; run make again")
    return Settings(**data)


@dataclass(frozen=True)
class Overrides:
    """Per-invocation overrides from the command line (make CHANNELS=... PYTHON=... FORMAT=...)."""

    channels: str = ""
    python: str = ""
    format: str = ""
    target_glibc: str = ""

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Overrides:
        """The overrides Make passes as environment variables (data, never code)."""
        env = os.environ if environ is None else environ
        return cls(env.get("CHANNELS", ""), env.get("PYTHON", ""), env.get("FORMAT", ""), env.get("TARGET_GLIBC", ""))

    def problems(self) -> list[str]:
        """What is wrong with the overrides, with the valid form."""
        found = []
        for ch in self.channels.split():
            if not _is_channel(ch):
                found.append(f"CHANNELS: {ch!r} is not {CHANNEL_FORM}; separate channels with spaces")
        if self.python.strip() and not _is_python(self.python.strip()):
            found.append(f"PYTHON: {self.python!r} is not a version like 3.12")
        if self.target_glibc.strip() and (why := target_problem("glibc", self.target_glibc.strip(), "TARGET_GLIBC:")):
            found.append(why)
        if self.format.strip() and self.format.strip() not in formats.FORMATS:
            found.append(f"FORMAT: {self.format!r} is not one of {', '.join(formats.names())}")
        return found

    def args(self) -> str:
        """The normalised overrides, as Make writes them (settings.mk's S_ARGS)."""
        return (
            f"{' '.join(self.channels.split())}|{self.python.strip()}|{self.format.strip()}|{self.target_glibc.strip()}"
        )


def read_yaml(path: Path) -> Any:
    """Parse a YAML file; a syntax error is a UserError naming the file."""
    import yaml  # here: the steps that only load settings.json never need it

    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise UserError(
            f"{path}: not valid YAML: {' '.join(str(exc).split())}\n  fix the file, or compare it with {TEMPLATE}"
        ) from None


def problems(doc: Any) -> list[str]:
    """Every problem in a parsed project.yml (empty when it is fine)."""
    if doc is None:
        return []
    if not isinstance(doc, dict):
        return [f"the file must be a mapping of settings (key: value), not a {type(doc).__name__}"]
    found = []
    for key, value in doc.items():
        fld = FIELDS.get(key) if isinstance(key, str) else None
        if fld is None:
            found.append(f"unknown key {key!r}; valid keys: {', '.join(FIELDS)}")
        elif value is None:
            found.append(f"'{key}' has no value; give one ({fld.form}) or remove the line")
        elif (msg := fld.check(value)) is not None:
            found.append(msg)
    return found


def template_defaults(root: Path) -> tuple[str, list[str]]:
    """python and channels of templates/environment.yml (the defaults)."""
    doc = read_yaml(root / ENV_TEMPLATE) or {}
    deps = [str(d) for d in doc.get("dependencies") or []]
    python = next((d.split("=", 1)[1].lstrip("=") for d in deps if re.match(r"python\s*=", d)), "3.12")
    return python, [str(c) for c in doc.get("channels") or ["conda-forge"]]


def build_key(channels: str, python: str, glibc: str = "") -> str:
    """'default', or 'override-<hash>' of the CHANNELS/PYTHON/TARGET_GLIBC
    overrides: a build with overrides never touches the project's committed lock."""
    parts = (("channels", channels), ("python", python), ("glibc", glibc))
    text = " ".join(f"{k}={v}" for k, v in parts if v)
    return "default" if not text else "override-" + hashlib.sha256(text.encode()).hexdigest()[:10]


def resolve(
    project_dir: Path, platform: str = "linux-64", overrides: Overrides | None = None, root: Path | None = None
) -> Settings:
    """Read and validate project_dir/project.yml, apply the overrides.

    Raises UserError naming every problem (file, key, valid form).
    """
    root = ROOT if root is None else root
    ov = overrides or Overrides()
    project = project_dir.name
    if (why := name_problem(project)) is not None:
        raise UserError(why)
    path = project_dir / "project.yml"
    doc = read_yaml(path) if path.is_file() else None
    shown = _shown(path, root)
    found = [f"{shown}: {p}" for p in problems(doc)] + ov.problems()
    values: dict[str, Any] = {k: f.default for k, f in FIELDS.items()}
    if not found and isinstance(doc, dict):
        values.update(doc)
    if not found:
        fmt = ov.format.strip() or values["format"]
        lo_hi = formats.FORMATS[fmt].levels
        level = values["compression_level"]
        if level is None:
            level = formats.FORMATS[fmt].default_level or 0
        elif lo_hi is None or not lo_hi[0] <= level <= lo_hi[1]:
            valid = "none (leave it out)" if lo_hi is None else f"{lo_hi[0]}-{lo_hi[1]}"
            found.append(f"{shown}: 'compression_level' {level} does not fit format {fmt}: valid levels {valid}")
        values["format"], values["compression_level"] = fmt, level
    if found:
        raise UserError("\n".join(found))
    default_python, default_channels = template_defaults(root)
    channels = ov.channels.split() or values["channels"] or default_channels
    python = ov.python.strip() or values["python"] or default_python
    imports = {k: _import_target(v) for k, v in values["imports"].items()}
    ovs = {
        k: v
        for k, v in (
            ("channels", " ".join(ov.channels.split())),
            ("python", ov.python.strip()),
            ("format", ov.format.strip()),
            ("target_glibc", ov.target_glibc.strip()),
        )
        if v
    }
    target = {**TARGET_DEFAULTS, **values["target"]}
    if ov.target_glibc.strip():
        target["glibc"] = ov.target_glibc.strip()
    rest = {k: values[k] for k in FIELDS if k not in ("python", "channels", "imports", "target")}
    return Settings(
        project=project,
        project_dir=_shown(project_dir, root),
        settings_file=shown,
        platform=platform,
        key=build_key(ovs.get("channels", ""), ovs.get("python", ""), ovs.get("target_glibc", "")),
        python=python,
        channels=list(channels),
        imports=imports,
        target=target,
        overrides=ovs,
        **rest,
    )


def canonical_pypi(name: str) -> str:
    """A PyPI project name in its PEP 503 normal form (lowercase, runs of -_. as '-'): files.canon."""
    return canon(name)


def _import_target(v: str | None) -> str:
    """An imports: value as the scan uses it: "" to ignore, "pypi:<normalised name>", or the conda name."""
    if v is None:
        return ""
    if v.startswith(PYPI_PREFIX):
        return PYPI_PREFIX + canonical_pypi(v[len(PYPI_PREFIX) :])
    return v


def settings_for_step(path: Path | None, folder: Path) -> Settings | None:
    """A step's settings: its --settings file (settings.json), else folder/project.yml
    read through the model, else None (the defaults)."""
    if path is None:
        return resolve(folder) if (folder / "project.yml").is_file() else None
    if not path.is_file():
        raise UserError(
            f"{path}: settings file not found; pass the build/<project>/<key>/settings.json "
            "that scripts/settings writes"
        )
    if path.suffix in (".yml", ".yaml"):
        raise UserError(
            f"{path}: --settings takes the settings.json that scripts/settings writes, not "
            "project.yml; leave --settings out to read DIR/project.yml"
        )
    return load(path)


def _shown(path: Path, root: Path) -> str:
    """path relative to the repository root when inside it (for messages)."""
    try:
        return str(path.resolve().relative_to(root.resolve()))
    except ValueError:
        return str(path)


def make_fragment(s: Settings, ov: Overrides, has_file: bool) -> str:
    """settings.mk: the values Make needs. Only validated values reach it
    (names, a format from the table), so no text here is code to Make.
    S_ARGS is what it was made for (the overrides, whether project.yml
    existed): the Makefile remakes it when they differ."""
    return (
        f"# Written by scripts/settings from {s.settings_file}; do not edit.\n"
        f"S_ARGS := {ov.args()}|{int(has_file)}\nS_KEY := {s.key}\nS_FORMAT := {s.format}\n"
    )


def main(argv: list[str] | None = None) -> int:
    """scripts/settings: validate project.yml + overrides, write settings.json and settings.mk."""
    ap = argparse.ArgumentParser(
        prog="settings", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("project_dir", type=Path, help="projects/<name>")
    ap.add_argument("--platform", default="linux-64", help="the conda platform being built for")
    ap.add_argument(
        "--json",
        type=Path,
        help="write the settings to DIR/<key>/settings.json (only when their content changed)",
        metavar="DIR",
    )
    ap.add_argument("--mk", type=Path, help="write the Make fragment here")
    ap.add_argument("--check", action="store_true", help="only validate; print nothing when fine")
    args = ap.parse_args(argv)

    def go() -> int:
        if not args.project_dir.is_dir():
            raise UserError(f"{args.project_dir}: no such project folder")
        ov = Overrides.from_env()
        s = resolve(args.project_dir, args.platform, ov)
        if args.json:
            write_if_changed(args.json / s.key / "settings.json", s.to_json())
            write_if_changed(args.json / "key.txt", s.key + "\n")
        if args.mk:
            write_atomic(args.mk, make_fragment(s, ov, (args.project_dir / "project.yml").is_file()))
        if not (args.json or args.mk or args.check):
            print(s.to_json(), end="")
        return 0

    return run(go)
