"""The generated import-name -> conda-package table (templates/import-map.generated.yml).

The table is built offline from data that installs with the pinned tools
(requirements.txt), so it changes only when a pin changes:

1. depfinder's bundled conda-forge table ``pkg_data/name_mapping.yml``
   (~4.7k rows of import_name / conda_name / pypi_name) and its small static
   tables in ``pkg_data/pkg_data.yml``;
2. whl2conda's bundled PyPI -> conda-forge rename table (``stdrename.json``),
   to name the conda package of a PyPI project (used for 3. and, at run time,
   for import names that fall through to identity: torch -> pytorch);
3. the metadata of the distributions pinned in requirements.txt, as installed
   in the running (tools) environment: the top-level modules each one ships
   (top_level.txt or RECORD);
4. for import names none of those know, the committed snapshot of what the
   wheels of the most downloaded PyPI projects install
   (templates/pypi-top-levels.txt, portable_env.toplevels): the project of the
   import's very name if one ships it, else the most downloaded one that does
   (``upath``: universal-pathlib, ``grpc_health``: grpcio-health-checking);
   never a dotted name under a package the other sources know outside their
   namespaces (unless its project is named after the path, as namespace
   distributions are: apache-airflow-providers-ftp, airflow.providers.ftp),
   nor the names of a project that installs more than MAX_PROJECT_NAMES of them.

5. the committed snapshot of the commands those wheels install in bin/
   (templates/pypi-commands.txt, their console_scripts and gui_scripts entry
   points): ``commands:``, program -> conda package, for the programs a
   notebook or script runs (``!kaggle datasets download``: kaggle). The
   project named like a program, else the most downloaded project that
   installs it, is its package; programs the
   base system has (ls, git, make, cmake, python: SYSTEM_COMMANDS), generic
   words (GENERIC: build, main) and the programs of the installer's own
   projects (pip, setuptools, wheel) are left out.

Cleaning rules (kinds, not single packages):

- rows whose import name is a generic folder name (tests, docs, utils, ...)
  are junk from packages that ship such folders, and are dropped;
- an import name with a row naming a package of the same name keeps only that
  one (e.g. ``numpy`` -> numpy, not the packages that also ship a ``numpy`` dir);
- a name with dotted children named after their path (google ->
  google.cloud.storage: google-cloud-storage) is a namespace: its own rows are
  dropped (unless a package of its very name exists) and it is listed under
  ``namespaces:`` so that the scan can name the sub-package; a dotted row
  naming an unrelated package (dns.rdtypes -> dnspython) maps its top level
  instead; a package sources 1-3 know keeps its row when only the snapshot's
  namespace distributions extend it (fluent: fluent-logger, beside
  fluent-syntax's fluent.syntax), unless several snapshot projects ship that
  very name (databricks: a namespace shared through old-style __init__.py);
- ... unless the snapshot's most downloaded projects ship the name and
  that package is not one of them while another candidate is (``slugify``:
  python-slugify, not the abandoned slugify; listed under ``ambiguous:``);
- several candidates and none named like the import: the most downloaded
  (by the snapshot: Crypto is pycryptodome, not the dead pycrypto), else the
  first of python-X / pyX / X-python / shortest / alphabetical is chosen and
  all of them are listed under ``ambiguous:`` (the scan warns when one is used).
"""

from __future__ import annotations

import importlib.metadata as md
import importlib.util
import json
import re
import sys
from collections import defaultdict
from collections.abc import Collection
from pathlib import Path
from typing import Any

import yaml

from portable_env import toplevels
from portable_env.errors import UserError
from portable_env.files import canon
from portable_env.scan.magics import INSTALLER_OWN

PROG = "gen-import-map"
GENERIC = {
    "bench", "benchmark", "benchmarks", "bin", "build", "common", "conftest",
    "data", "demo", "demos", "doc", "docs", "example", "examples", "lib",
    "sample", "samples", "script", "scripts", "setup", "src", "test", "tests",
    "testing", "tools", "util", "utils", "main", "app", "core", "config",
}  # fmt: skip
# Programs the base system (POSIX, GNU userland, the usual build and network tools) or the
# environment itself (python, conda) provides: a shell line running them needs no Python package,
# whichever PyPI project also installs a program of that name.
SYSTEM_COMMANDS = frozenset({
    "alias", "apt", "apt-get", "ar", "awk", "basename", "bash", "bc", "brew", "bunzip2", "bzip2", "cal", "cat",
    "cc", "cd", "chgrp", "chmod", "chown", "clang", "clear", "cmake", "cmp", "comm", "conda", "cp", "crontab",
    "csplit", "curl", "cut", "date", "dd", "df", "diff", "dirname", "dnf", "docker", "du", "echo", "ed", "env",
    "ex", "expand", "expr", "false", "file", "find", "fold", "free", "g++", "gcc", "getconf", "git", "grep",
    "groups", "gunzip", "gzip", "head", "hostname", "htop", "iconv", "id", "java", "javac", "jobs", "join", "kill",
    "kubectl", "less", "ln", "locale", "ls", "lscpu", "make", "man", "mamba", "md5sum", "micromamba", "mkdir",
    "mkfifo", "more", "mount", "mv", "nano", "nice", "ninja", "nl", "nm", "node", "nohup", "npm", "npx", "nvcc",
    "nvidia-smi", "od", "paste", "patch", "pip", "pip3", "printf", "ps", "pwd", "python", "python3", "rm", "rmdir",
    "rsync", "scp", "sed", "seq", "sh", "sha256sum", "sleep", "sort", "source", "split", "ssh", "stat", "strings",
    "strip", "su", "sudo", "tail", "tar", "tee", "test", "time", "top", "touch", "tr", "tree", "true", "tty",
    "type", "umask", "uname", "uniq", "unlink", "unzip", "uptime", "vi", "vim", "wait", "watch", "wc", "wget",
    "which", "who", "whoami", "xargs", "xz", "yes", "yum", "zcat", "zip", "zsh",
})  # fmt: skip
HEADER = (
    "# GENERATED by scripts/gen-import-map from pinned data; do not edit.\n"
    "# Import name -> conda package, used by scripts/find-deps below\n"
    "# projects/*/project.yml `imports:` and templates/import-map.yml.\n"
    "# Regenerate after changing requirements.txt:\n"
    "#   .venv/bin/python scripts/gen-import-map -o templates/import-map.generated.yml\n"
)
Candidates = dict[str, set[str]]


def package_dir(name: str) -> Path | None:
    """Folder of an installed package, without importing it."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def depfinder_data() -> tuple[Path, str]:
    """Folder of depfinder's pkg_data and its version, without importing it
    (importing depfinder prints a traceback about conda_forge_metadata)."""
    folder = package_dir("depfinder")
    if folder is None:
        raise UserError(
            f"depfinder is not installed for {sys.executable}; run it with the tools venv "
            "(.venv/bin/python scripts/gen-import-map, after pip install -r requirements.txt)"
        )
    return folder / "pkg_data", md.version("depfinder")


def whl2conda_renames() -> dict[str, str]:
    """PyPI name -> conda package from whl2conda's bundled stdrename.json.

    Names that differ only in spelling are left out; "-split" targets are
    recipe names, not packages.
    """
    folder = package_dir("whl2conda")
    path = folder / "api" / "stdrename.json" if folder else None
    if path is None or not path.is_file():
        return {}
    data = json.loads(path.read_text())
    return {
        canon(k): v
        for k, v in sorted(data.items())
        if not k.startswith("$")
        and canon(k) != canon(v)
        and not v.endswith("-split")
        and re.fullmatch(r"[a-z0-9][a-z0-9._-]*", k.lower())
        and not re.fullmatch(r"[0-9a-f]{32,}", k)
    }


def pinned_names(requirements: Path) -> set[str]:
    """Canonical names pinned in requirements.txt."""
    try:
        text = requirements.read_text()
    except OSError as e:
        raise UserError(f"cannot read {requirements}: {e.strerror}; pass --requirements FILE") from None
    names = set()
    for line in text.splitlines():
        m = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", line.split("#", 1)[0].strip())
        if m:
            names.add(canon(m.group()))
    return names


def depfinder_candidates(pkg_data: Path) -> tuple[Candidates, dict[str, str]]:
    """(import name -> candidate conda packages, PyPI name -> conda package) from depfinder's tables."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    rows = yaml.load((pkg_data / "name_mapping.yml").read_text(), Loader=loader)
    static = yaml.load((pkg_data / "pkg_data.yml").read_text(), Loader=loader)
    cands: Candidates = defaultdict(set)
    pinned: Candidates = defaultdict(set)  # depfinder's 'static' rows
    pypi_to_conda: dict[str, str] = {}
    for r in rows:
        imp, conda = str(r["import_name"]), str(r["conda_name"])
        pypi_to_conda.setdefault(canon(str(r.get("pypi_name") or conda)), conda)
        cands[imp].add(conda)
        if r.get("mapping_source") == "static":
            pinned[imp].add(conda)
    cands.update(pinned)
    for imp, conda in (static.get("_PACKAGE_MAPPING") or {}).items():
        cands[imp] = {conda}  # depfinder's curated renames win
    for imp, conda in (static.get("_NAMEDSPACE_MAPPING") or {}).items():
        cands[imp] = {conda}
    for conda, imports in (static.get("_FAKE_PACKAGES") or {}).items():
        for imp in imports:  # modules shipped inside another package
            cands[imp] = {pypi_to_conda.get(canon(conda), conda)}
    return cands, pypi_to_conda


def add_installed(cands: Candidates, wanted: set[str], pypi_to_conda: dict[str, str]) -> list[str]:
    """Fill the gaps with the installed distributions pinned in requirements.txt;
    the `name==version` of those used."""
    venv: Candidates = defaultdict(set)
    used: list[str] = []
    for dist in md.distributions():
        name = dist.metadata["Name"]
        if not name or canon(name) not in wanted:
            continue
        used.append(f"{name}=={dist.version}")
        conda = pypi_to_conda.get(canon(name), canon(name))
        for imp in toplevels.installed_names(dist):
            venv[imp].add(conda)
    for imp, condas in venv.items():
        if imp not in cands:
            cands[imp] = condas
    missing = wanted - {canon(u.split("==")[0]) for u in used}
    if missing:
        print(
            f"{PROG}: warning: pinned but not installed here (skipped): "
            f"{', '.join(sorted(missing))}; run it with the tools venv",
            file=sys.stderr,
        )
    return used


# A project whose wheel installs more import names than this sprays its
# modules over site-packages (stub bundles, vendored trees, a CLI's services):
# its names say nothing about what an import needs.
MAX_PROJECT_NAMES = 30
# PyPI-only builds of a package (cupy-cuda12x, tf-keras-nightly, psycopg2-binary):
# the conda package is the package's own name, one build for every variant.
VARIANT_RE = re.compile(r"-(binary|headless|cpu|gpu|cuda\d*x?|cu\d+|rocm[\d.]*|nightly)$")


def shipped_by(rows: list[tuple[str, list[str]]]) -> dict[str, list[str]]:
    """Import name -> the snapshot's projects that ship it, in rank order (the
    most downloaded first). A namespace folder named after its project
    (langgraph/ of langgraph, beside langgraph/checkpoint/) is that project's
    name too; a project that installs more than MAX_PROJECT_NAMES names ships none."""
    shipped: dict[str, list[str]] = defaultdict(list)
    for project, imps in rows:
        if len(imps) > MAX_PROJECT_NAMES:
            continue
        tops = {i.split(".")[0] for i in imps if "." in i}
        own = [t for t in tops if canon(t) == canon(project) and t not in imps]
        for imp in [*imps, *own]:
            shipped[imp].append(project)
    return shipped


def add_top_levels(cands: Candidates, rows: list[tuple[str, list[str]]], pypi_to_conda: dict[str, str]) -> int:
    """Fill the gaps left from the PyPI snapshot (rows in rank order): for an
    import name no other source knows, the project of its very name if one
    ships it (or a PyPI-only build of it: cupy-cuda12x is cupy), else the most
    downloaded one. A namespace folder named after its
    project (langgraph/ of langgraph, beside langgraph-checkpoint's
    langgraph/checkpoint/) holds that project's own modules: it is that
    project's name too. A dotted name below a package the other sources know,
    other than through one of their namespaces, is left out (an add-on
    shipping azure/core/tracing/ext/x/ does not make azure.core, which is
    azure-core, a namespace), unless a project named after that path ships
    it (apache-airflow-providers-ftp: airflow.providers.ftp, below airflow).
    Returns the number of names added."""
    known = set(cands) | {k.split(".")[0] for k in cands}
    spaces = find_namespaces(dict(cands))
    added = 0
    for imp, projects in shipped_by(rows).items():
        parts = imp.split(".")
        prefixes = (".".join(parts[:i]) for i in range(1, len(parts)))
        if imp in cands:
            continue
        if any(p in known and p not in spaces for p in prefixes) and not any(named_after(p, imp) for p in projects):
            continue
        same = [p for p in projects if canon(p) == canon(imp) or VARIANT_RE.sub("", canon(p)) == canon(imp)]
        project = VARIANT_RE.sub("", canon((same or projects)[0]))
        cands[imp] = {pypi_to_conda.get(project, project)}
        added += 1
    return added


def named_after(project: str, dotted: str) -> bool:
    """The project's name ends with the dotted import path (apache-airflow-providers-ftp
    ships airflow.providers.ftp, llama-index-core llama_index.core): a namespace
    distribution, named after where it installs, as such distributions are."""
    return "." in dotted and canon(project).endswith(canon(dotted))


def shared_names(rows: list[tuple[str, list[str]]]) -> set[str]:
    """Import names that two or more projects of the snapshot ship (each its own
    subpackage below an old-style namespace __init__.py)."""
    count: dict[str, int] = defaultdict(int)
    for _project, imps in rows:
        if len(imps) <= MAX_PROJECT_NAMES:
            for imp in set(imps):
                count[imp] += 1
    return {imp for imp, n in count.items() if n > 1}


def find_namespaces(cands: Candidates) -> set[str]:
    """Prefixes with a child row whose package is named after the dotted path
    (google.cloud.storage -> google-cloud-storage). A child row naming an
    unrelated package (dns.rdtypes -> dnspython) maps the prefix to it (added
    to cands)."""
    namespaces: set[str] = set()
    inside: Candidates = defaultdict(set)
    for k in [k for k in cands if "." in k]:
        parts = k.split(".")
        for i in range(1, len(parts)):
            prefix, child = ".".join(parts[:i]), ".".join(parts[: i + 1])
            for conda in cands[k]:
                if canon(conda).startswith(canon(child)):
                    namespaces.add(prefix)
                elif i == 1:
                    inside[prefix].add(conda)
    for prefix, condas in inside.items():
        if prefix not in namespaces and prefix not in cands and len(condas) == 1:
            cands[prefix] = set(condas)
    return namespaces


def choose(
    cands: Candidates,
    namespaces: set[str],
    keep: Collection[str] = (),
    popular: dict[str, list[str]] | None = None,
) -> tuple[dict[str, str], dict[str, list[str]]]:
    """(import -> the chosen package, import -> every candidate where several were possible).
    `keep`: names whose rows stay even if they are namespaces now (a package the other
    sources know, that namespace distributions from the snapshot extend: fluent of
    fluent-logger, beside fluent-syntax's fluent.syntax). `popular`: import -> the
    conda packages of the snapshot's projects that ship it, most downloaded first."""
    imports: dict[str, str] = {}
    ambiguous: dict[str, list[str]] = {}
    for imp, condas in cands.items():
        if imp.split(".")[0].lower() in GENERIC:
            continue
        same = [c for c in condas if canon(c) == canon(imp)]
        # a namespace maps only to a real package of its own name
        if imp in namespaces and imp not in keep and (not same or any(c.endswith("-nspkg") for c in condas)):
            continue
        # the package of its very name, unless no much-downloaded project is it and another
        # candidate is (slugify: python-slugify, progressbar: progressbar2, crontab: python-crontab)
        ranked = [c for c in (popular or {}).get(imp, []) if c in condas and not c.endswith("-nspkg")]
        if same and ranked and not set(same) & set(ranked):
            same = []
        if same:
            condas = {min(same)}
        if len(condas) == 1:
            imports[imp] = next(iter(condas))
            continue
        low = canon(imp)
        pref = {f"python-{low}", f"py{low}", f"{low}-python", f"py-{low}"}
        # the most downloaded first (Crypto: pycryptodome, not the dead pycrypto), then by form
        rank = {c: ranked.index(c) for c in ranked}
        ordered = sorted(condas, key=lambda c: (rank.get(c, len(ranked)), canon(c) not in pref, len(c), c))
        imports[imp] = ordered[0]
        ambiguous[imp] = sorted(condas)
    return imports, ambiguous


def command_packages(rows: list[tuple[str, list[str]]], pypi_to_conda: dict[str, str]) -> dict[str, str]:
    """Program -> the conda package of the project named like it, else of the most
    downloaded project that installs it (tensorboard: tensorboard, not the nightly
    builds ranked above it); not the base system's programs, the installer's own, nor
    generic words (`build`, `main`: junk, as such import names are)."""
    projects: dict[str, list[str]] = defaultdict(list)
    left_out = SYSTEM_COMMANDS | GENERIC
    for project, commands in rows:
        if canon(project) in INSTALLER_OWN:  # their programs install; the env has them
            continue
        for c in commands:
            if c not in left_out and not re.fullmatch(r"python[\d.]*|pip[\d.]*", c):
                projects[c].append(canon(project))
    out = {}
    for c, ps in projects.items():
        chosen = canon(c) if canon(c) in ps else ps[0]
        out[c] = pypi_to_conda.get(chosen, chosen)
    return out


def build(requirements: Path, top_levels: Path, commands: Path | None = None) -> dict[str, Any]:
    """Collect, clean and resolve all rows into the document to write."""
    wanted = pinned_names(requirements)
    pkg_data, version = depfinder_data()
    cands, pypi_to_conda = depfinder_candidates(pkg_data)
    renames = whl2conda_renames()
    pypi_to_conda.update(renames)
    used = add_installed(cands, wanted, pypi_to_conda)
    snapshot = toplevels.read(top_levels)
    # what the other sources know as packages, unless several projects ship that very name
    # (databricks of databricks-sdk, -connect, koalas ...: a namespace shared in practice)
    packages = set(cands) - find_namespaces(dict(cands)) - shared_names(snapshot)
    add_top_levels(cands, snapshot, pypi_to_conda)
    namespaces = find_namespaces(cands)
    popular = {
        imp: [pypi_to_conda.get(canon(p), canon(p)) for p in projects] for imp, projects in shipped_by(snapshot).items()
    }
    imports, ambiguous = choose(cands, namespaces, keep=packages, popular=popular)
    programs = toplevels.read(commands) if commands else []
    return {
        "sources": {
            "depfinder": version,
            "whl2conda": md.version("whl2conda") if renames else None,
            "tools-venv": sorted(used, key=str.lower),
            "pypi-top-levels": f"{top_levels.name}: {len(snapshot)} projects",
            "pypi-commands": f"{commands.name}: {len(programs)} projects" if commands else None,
        },
        "namespaces": sorted(namespaces),
        "ambiguous": dict(sorted(ambiguous.items())),
        "imports": dict(sorted(imports.items())),
        "pypi_renames": dict(sorted(renames.items())),
        "commands": dict(sorted(command_packages(programs, pypi_to_conda).items())),
    }


def render(doc: dict[str, Any]) -> str:
    """The file's text: the header, then the document as YAML."""
    return HEADER + yaml.safe_dump(doc, sort_keys=False, default_flow_style=False, width=100)
