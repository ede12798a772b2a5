"""PyPI packages inside the conda environment: declared, locked with hashes, installed without resolving.

Declared, never guessed: the settings' ``pypi:`` requirements and ``imports: {x: "pypi:<project>"}``
reach environment.yml's ``pip:`` section (scripts/render-env), headed by the index options
(``--index-url URL``, or ``--no-index`` + ``--find-links file:///folder`` for a folder of wheels;
``--only-binary=:all:`` unless ``pypi_sdists``).

Locked (``lock``, called by lock-env after the conda solve): uv resolves the requirements for the
environment's python and the target machine (``--python-platform x86_64-manylinux_2_N``, N the
highest uv knows at or below the target glibc, so only wheels the target can load), with the conda
packages of the lock as fixed constraints: each conda record that is a Python distribution is given
to uv as ``name==version`` (its PyPI name: the record name, or the import map's PyPI -> conda
rename reversed) and as a metadata-only stub wheel, so a dependency a conda package provides is
resolved to it and left out of the lock, and a version conflict is an error naming both. The result
is ``pypi-<platform>.txt`` beside the ``@EXPLICIT`` file: ``name @ URL --hash=sha256:...`` lines
that ``pip install --no-deps --require-hashes -r`` (or ``uv pip install``) reads, headed by the
spec hash of the conda lock (re-resolved only when environment.yml or the target change).

Installed: portable_env.pypi_install (scripts/install-pypi).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
import urllib.error
import urllib.request
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from portable_env.errors import UserError
from portable_env.files import write_atomic
from portable_env.settings import PYPI_INDEX_DEFAULT, canonical_pypi

HASH_LINE = "# spec-sha256: "
INDEX_LINE = "# index: "
# The manylinux_2_N levels uv's --python-platform knows (x86_64-manylinux_2_N).
MANYLINUX = (17, 28, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40)
ARCH = {"linux-64": "x86_64", "linux-aarch64": "aarch64"}


def uv() -> str:
    """The pinned uv of the tools venv (requirements.txt), else one on PATH."""
    beside = Path(sys.executable).parent / "uv"
    found = str(beside) if beside.is_file() else shutil.which("uv")
    if not found:
        raise UserError("uv is not installed: run make tools (requirements.txt pins it)")
    return found


def uv_env(cache_dir: Path) -> dict[str, str]:
    """The environment uv runs with: no UV_* / PIP_* settings of the caller, its cache under cache_dir."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("UV_", "PIP_"))}
    env["UV_CACHE_DIR"] = str(cache_dir)
    env["UV_NO_CONFIG"] = "1"
    return env


# ---------------------------------------------------------------- the pip: section


@dataclass(frozen=True)
class PipSpec:
    """What environment.yml's pip: section holds: the requirements and where they come from."""

    requirements: list[str] = field(default_factory=list)
    index_url: str | None = None
    find_links: list[str] = field(default_factory=list)
    no_index: bool = False
    only_binary: bool = False

    @property
    def index(self) -> str:
        """The one source the lock names (the index URL, or the folder of wheels)."""
        if self.no_index:
            return self.find_links[0] if self.find_links else ""
        return self.index_url or PYPI_INDEX_DEFAULT

    def source_args(self) -> list[str]:
        """uv's options for this source."""
        args = ["--no-index"] if self.no_index else ["--index-url", self.index_url or PYPI_INDEX_DEFAULT]
        for link in self.find_links:
            args += ["--find-links", link]
        return args

    def option_lines(self) -> list[str]:
        """The option lines as render-env writes them (and the hash covers)."""
        return (
            [f"--index-url {self.index}"]
            if not self.no_index
            else ["--no-index"] + [f"--find-links {x}" for x in self.find_links]
        )


def parse_pip_section(lines: Iterable[object], env_file: Path | str) -> PipSpec:
    """A PipSpec from the pip: entries of environment.yml; UserError for anything else in it."""
    reqs: list[str] = []
    index_url, find_links, no_index, only_binary = None, [], False, False
    for raw in lines:
        if not isinstance(raw, str):
            raise UserError(f"{env_file}: pip: entries must be strings, not {raw!r}; run make env-file")
        line = raw.strip()
        word, _, value = line.partition(" ")
        if line.startswith("--only-binary"):
            only_binary = line.replace(" ", "=").split("=", 1)[-1] == ":all:"
        elif word == "--index-url" and value.strip():
            index_url = value.strip()
        elif word == "--find-links" and value.strip():
            find_links.append(value.strip())
        elif line == "--no-index":
            no_index = True
        elif line.startswith("-"):
            raise UserError(
                f"{env_file}: pip: option {line!r} is not supported (only --index-url, --no-index, "
                "--find-links, --only-binary=:all:); set pypi_index / pypi_sdists in project.yml"
            )
        else:
            from packaging.requirements import InvalidRequirement, Requirement

            try:
                Requirement(line)
            except InvalidRequirement as exc:
                raise UserError(f"{env_file}: pip: {line!r} is not a valid requirement ({exc})") from None
            reqs.append(line)
    return PipSpec(reqs, index_url, find_links, no_index, only_binary)


def lock_path(beside: Path, platform: str) -> Path:
    """The PyPI lock of a project: pypi-<platform>.txt in the folder of its other lock files."""
    return beside.parent / f"pypi-{platform}.txt"


# ---------------------------------------------------------------- the target


def python_platform(platform: str, glibc: str) -> str:
    """uv's --python-platform for a conda platform and the target glibc (manylinux_2_N, N <= glibc)."""
    arch = ARCH.get(platform)
    if arch is None:
        raise UserError(f"platform {platform}: PyPI packages are supported for {', '.join(ARCH)} only")
    minor = int(glibc.split(".")[1]) if re.fullmatch(r"2\.\d+", glibc) else 0
    levels = [n for n in MANYLINUX if n <= minor]
    if not levels:
        raise UserError(
            f"target glibc {glibc} is older than manylinux_2_17, the oldest wheel level uv installs for; "
            'PyPI packages need target: {glibc: "2.17"} or newer'
        )
    return f"{arch}-manylinux_2_{levels[-1]}"


# ---------------------------------------------------------------- the conda side


def _renames() -> dict[str, str]:
    """conda name -> PyPI name, where they differ (the import map's PyPI -> conda renames reversed)."""
    from portable_env.scan.mapping import GENERATED_MAPPING, load_layer

    layer = load_layer(GENERATED_MAPPING, "generated", required=False)
    return {canonical_pypi(conda): canonical_pypi(pypi) for pypi, conda in layer.renames.items()}


def _is_python_dist(name: str, depends: Iterable[str], noarch: object) -> bool:
    if name in ("python", "python_abi"):
        return False
    return str(noarch or "").endswith("python") or any(
        re.split(r"[ =<>!~]", d.strip(), maxsplit=1)[0] in ("python", "python_abi") for d in depends
    )


def conda_provided(records: Iterable[Any]) -> dict[str, tuple[str, str]]:
    """PyPI name -> (version, conda package) for each conda record that is a Python distribution."""
    from packaging.version import InvalidVersion, Version

    renames = _renames()
    found: dict[str, tuple[str, str]] = {}
    for r in records:
        name = r.name.normalized
        if not _is_python_dist(name, [str(d) for d in r.depends], getattr(r, "noarch", None)):
            continue
        version = str(r.version)
        try:
            Version(version)
        except InvalidVersion:
            continue
        found[renames.get(canonical_pypi(name), canonical_pypi(name))] = (version, name)
    return found


def python_version(records: Iterable[Any]) -> str:
    """The version of the lock's python package."""
    for r in records:
        if r.name.normalized == "python":
            return str(r.version)
    raise UserError("the conda lock has no python package; PyPI packages need one (python= in environment.yml)")


def _stub_wheel(folder: Path, name: str, version: str) -> None:
    """A metadata-only wheel standing for a conda package (uv resolves to it; never installed)."""
    dist = f"{re.sub(r'[-.]+', '_', name)}-{version}"
    files = {
        f"{dist}.dist-info/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
        f"{dist}.dist-info/WHEEL": (
            "Wheel-Version: 1.0\nGenerator: portable-env\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        ),
    }
    files[f"{dist}.dist-info/RECORD"] = "".join(f"{p},,\n" for p in [*files, f"{dist}.dist-info/RECORD"])
    with zipfile.ZipFile(folder / f"{dist}-py3-none-any.whl", "w") as z:
        for path, text in files.items():
            z.writestr(zipfile.ZipInfo(path, (1980, 1, 1, 0, 0, 0)), text)


# ---------------------------------------------------------------- resolving


@dataclass(frozen=True)
class Locked:
    """One locked PyPI distribution."""

    name: str
    version: str
    url: str
    sha256: str

    @property
    def filename(self) -> str:
        return self.url.rsplit("/", 1)[-1]

    def line(self) -> str:
        return f"{self.name} @ {self.url} --hash=sha256:{self.sha256}"


def _conflict_message(stderr: str, provided: dict[str, tuple[str, str]], settings: str) -> str | None:
    """Explain uv's failure when it involves a package the conda side provides."""
    named = sorted(
        n for n in provided if re.search(rf"(?<![\w.-]){re.escape(n)}(?![\w-])", stderr.lower().replace("_", "-"))
    )
    if not named:
        return None
    sides = ", ".join(f"{n} {provided[n][0]} (conda package {provided[n][1]})" for n in named)
    return (
        f"the PyPI requirements conflict with the conda packages of the lock: {sides} is fixed by the conda "
        f"side, and a PyPI requirement needs another version of it\n"
        f"  relax the PyPI requirement in {settings} ('pypi:'), or pin the conda package to a version it "
        "accepts in 'packages:'"
    )


def resolve(
    spec: PipSpec, records: list[Any], glibc: str, platform: str, cache_dir: Path, settings: str
) -> list[Locked]:
    """The locked wheels for spec's requirements on the target, the conda records fixed."""
    provided = conda_provided(records)
    python = python_version(records)
    target = python_platform(platform, glibc)
    with tempfile.TemporaryDirectory(prefix="pypi-lock-") as tmp:
        work = Path(tmp)
        stubs = work / "conda"
        stubs.mkdir()
        for name, (version, _) in sorted(provided.items()):
            _stub_wheel(stubs, name, version)
        (work / "requirements.in").write_text("".join(f"{r}\n" for r in spec.requirements))
        (work / "conda.txt").write_text("".join(f"{n}=={v}\n" for n, (v, _) in sorted(provided.items())))
        cmd = [
            uv(),
            "pip",
            "compile",
            "--quiet",
            "--no-config",
            "--format",
            "pylock.toml",
            "-o",
            str(work / "pylock.toml"),
            "--python-version",
            python,
            "--python-platform",
            target,
            *(["--only-binary", ":all:"] if spec.only_binary else []),
            *spec.source_args(),
            "--find-links",
            str(stubs),
            "-c",
            str(work / "conda.txt"),
            str(work / "requirements.in"),
        ]
        print(
            f"lock: resolving {len(spec.requirements)} PyPI requirements for python {python}, {target} "
            f"({len(provided)} provided by conda) from {spec.index}",
            file=sys.stderr,
            flush=True,
        )
        proc = subprocess.run(cmd, capture_output=True, text=True, env=uv_env(cache_dir / "uv"))
        if proc.returncode != 0:
            said = "\n".join(f"    {line}" for line in proc.stderr.strip().splitlines())
            why = _conflict_message(proc.stderr, provided, settings) or (
                f"the PyPI requirements cannot be resolved for python {python} on {target} "
                f"({'wheels only' if spec.only_binary else 'wheels or source distributions'}, from {spec.index})\n"
                f"  fix the requirement in {settings} ('pypi:'); a project without a wheel for the target needs "
                "a newer target glibc or pypi_sdists: true"
            )
            raise UserError(f"{why}\n  uv said:\n{said}")
        doc = tomllib.loads((work / "pylock.toml").read_text())
    locked = []
    for pkg in doc.get("packages", []):
        name = canonical_pypi(pkg["name"])
        if name in provided:
            continue  # the conda package provides it
        dists = pkg.get("wheels") or ([pkg["sdist"]] if pkg.get("sdist") else [])
        usable = [d for d in dists if d.get("url") and (d.get("hashes") or {}).get("sha256")]
        if not usable:
            raise UserError(f"uv locked {name} {pkg.get('version')} without a URL and sha256; cannot lock it")
        locked.append(Locked(name, str(pkg["version"]), usable[0]["url"], usable[0]["hashes"]["sha256"]))
    for req in spec.requirements:
        from packaging.requirements import Requirement

        name = canonical_pypi(Requirement(req).name)
        if name in provided:
            print(
                f"lock: PyPI requirement {req!r}: provided by the conda package {provided[name][1]} "
                f"{provided[name][0]}; not installed from PyPI",
                file=sys.stderr,
            )
    return sorted(locked, key=lambda x: x.name)


# ---------------------------------------------------------------- the lock file


def lock_text(locked: list[Locked], spec: PipSpec, project: str, platform: str, glibc: str, digest: str) -> str:
    """pypi-<platform>.txt: a header (index, spec hash), then one hashed direct reference per wheel."""
    lines = [
        f"# PyPI packages of project '{project}' for {platform}, locked by scripts/lock-env (portable-env):",
        f"# for the target machine (glibc {glibc}), beside the conda packages of conda-{platform}.lock",
        "# (the PyPI packages those provide are not repeated here). Install after them, without resolving:",
        "#   pip install --no-deps --require-hashes -r <this file>",
        "#   uv pip install --python <env>/bin/python --no-deps --require-hashes -r <this file>",
        f"{INDEX_LINE}{spec.index}",
        f"{HASH_LINE}{digest}",
    ]
    for item in locked:
        lines += [f"# {item.name}=={item.version}", item.line()]
    return "\n".join(lines) + "\n"


def recorded_hash(path: Path) -> str | None:
    """The spec hash a PyPI lock records (None when there is none)."""
    try:
        for line in path.read_text().splitlines():
            if line.startswith(HASH_LINE):
                return line[len(HASH_LINE) :].strip()
    except OSError:
        return None
    return None


LINE_RE = re.compile(r"(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*) @ (?P<url>\S+) --hash=sha256:(?P<sha>[0-9a-f]{64})")


def read_lock(path: Path) -> tuple[str, list[Locked]]:
    """(the index it names, the locked wheels) of a PyPI lock; UserError when unreadable."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise UserError(f"{path}: cannot read the PyPI lock ({exc.strerror}); re-lock with make lock") from None
    index, found, version = "", [], ""
    for n, line in enumerate(text.splitlines(), 1):
        if line.startswith(INDEX_LINE):
            index = line[len(INDEX_LINE) :].strip()
        elif line.startswith("# ") and "==" in line:
            version = line.split("==", 1)[1].strip()
        elif line.strip() and not line.startswith("#"):
            m = LINE_RE.fullmatch(line.strip())
            if not m:
                raise UserError(f"{path}:{n}: not a 'name @ URL --hash=sha256:HEX' line; re-lock with make lock")
            found.append(Locked(canonical_pypi(m["name"]), version, m["url"], m["sha"]))
    return index, found


def is_current(path: Path, spec: PipSpec, digest: str) -> bool:
    """Whether the PyPI lock matches the spec: present with this hash when there are requirements, absent otherwise."""
    if not spec.requirements:
        return not path.exists()
    return recorded_hash(path) == digest


def lock(
    spec: PipSpec,
    records: list[Any],
    path: Path,
    project: str,
    platform: str,
    glibc: str,
    digest: str,
    cache_dir: Path,
    settings: str,
) -> None:
    """Write (or remove, without requirements) the PyPI lock for spec and the conda records."""
    if not spec.requirements:
        if path.exists():
            path.unlink()
            print(f"lock: no PyPI requirements; removed {path}", file=sys.stderr)
        return
    locked = resolve(spec, records, glibc, platform, cache_dir, settings)
    write_atomic(path, lock_text(locked, spec, project, platform, glibc, digest))
    local = sorted({x.url for x in locked if x.url.startswith("file:")})
    if local and "build" not in path.parts:
        print(
            f"lock: warning: {path} records local wheel paths ({local[0]}{' ...' if len(local) > 1 else ''}); "
            "it only installs where they exist",
            file=sys.stderr,
        )
    print(f"lock: {len(locked)} PyPI packages -> {path}", file=sys.stderr)


# ---------------------------------------------------------------- the missing-package hint


def project_exists(name: str, index: str, timeout: float = 5.0) -> bool | None:
    """Whether the index (a PEP 503 URL or a file:// folder of wheels) has a project of that name;
    None when it cannot be asked."""
    want = canonical_pypi(name)
    if index.startswith("file://"):
        folder = Path(index[len("file://") :])
        if not folder.is_dir():
            return None
        return any(canonical_pypi(f.name.split("-", 1)[0]) == want for f in folder.iterdir() if "-" in f.name)
    url = f"{index.rstrip('/')}/{want}/"
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=timeout) as resp:
            return bool(200 <= resp.status < 300)
    except urllib.error.HTTPError as exc:
        return False if exc.code == 404 else None
    except (urllib.error.URLError, OSError, ValueError):
        return None
