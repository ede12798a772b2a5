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

Installed (``install``, scripts/install-pypi, after the conda packages): every wheel is fetched from
the URL the lock names and its sha256 checked; a wheel that would overwrite a file of a conda
package fails naming the file and both packages; uv installs the checked files with ``--no-deps
--require-hashes --offline``; console scripts get pack's relocatable shebang (they run without
activation at any path); uv's timestamped cache record is dropped (reproducible archives);
``share/portable-env/pypi.json`` records what was installed (the manifest and SBOM read it).
"""

from __future__ import annotations

import argparse
import base64
import configparser
import hashlib
import json
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
from dataclasses import asdict, dataclass, field
from email.parser import Parser
from pathlib import Path
from typing import Any

from portable_env.errors import UserError, run
from portable_env.files import conda_file_owners, sha256_of, write_atomic
from portable_env.settings import PYPI_INDEX_DEFAULT, canonical_pypi

HASH_LINE = "# spec-sha256: "
INDEX_LINE = "# index: "
RECORD = "share/portable-env/pypi.json"
# The manylinux_2_N levels uv's --python-platform knows (x86_64-manylinux_2_N).
MANYLINUX = (17, 28, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40)
ARCH = {"linux-64": "x86_64", "linux-aarch64": "aarch64"}
UV_DROPPED = ("uv_cache.json",)  # dist-info files uv writes with a timestamp in them


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


# ---------------------------------------------------------------- installing


def _b64(digest: bytes) -> str:
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def fetch(item: Locked, cache: Path) -> Path:
    """The wheel of item, from the URL the lock names (cached by sha256), its sha256 checked."""
    dest = cache / item.sha256 / item.filename
    if dest.is_file() and hashlib.sha256(dest.read_bytes()).hexdigest() == item.sha256:
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
    try:
        if item.url.startswith("file://"):
            shutil.copyfile(urllib.request.url2pathname(item.url[len("file://") :]), tmp)
        else:
            with urllib.request.urlopen(item.url, timeout=120) as resp, open(tmp, "wb") as out:
                shutil.copyfileobj(resp, out)
    except (OSError, urllib.error.URLError, ValueError) as exc:
        tmp.unlink(missing_ok=True)
        raise UserError(f"cannot fetch {item.name} {item.version} from {item.url}: {exc}") from None
    actual = hashlib.sha256(tmp.read_bytes()).hexdigest()
    if actual != item.sha256:
        tmp.unlink(missing_ok=True)
        raise UserError(
            f"{item.url}: sha256 {actual} does not match the lock ({item.sha256}); the file changed on the "
            "index: re-lock with make lock if that is expected"
        )
    os.replace(tmp, dest)
    return dest


def site_packages(prefix: Path) -> Path:
    """prefix's site-packages folder (lib/python3.X/site-packages)."""
    found = sorted(p for p in (prefix / "lib").glob("python3*/site-packages") if p.is_dir())
    if not found:
        raise UserError(f"{prefix} has no lib/python3.X/site-packages: the conda environment is incomplete")
    return found[0]


def wheel_targets(wheel: Path, prefix: Path) -> list[str]:
    """The prefix-relative paths a wheel installs (files, console scripts), from its RECORD."""
    site = site_packages(prefix).relative_to(prefix).as_posix()
    py = site.split("/")[1]
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        record = next((n for n in names if n.endswith(".dist-info/RECORD") and n.count("/") == 1), None)
        listed = [row.split(",", 1)[0] for row in z.read(record).decode().splitlines()] if record else names
        eps = next((n for n in names if n.endswith(".dist-info/entry_points.txt") and n.count("/") == 1), None)
        scripts: list[str] = []
        if eps:
            cp = configparser.ConfigParser(delimiters=("=",))
            cp.read_string(z.read(eps).decode())
            for section in ("console_scripts", "gui_scripts"):
                scripts += [f"bin/{k}" for k in (cp[section] if cp.has_section(section) else {})]
    out = []
    for name in listed:
        parts = name.split("/")
        if len(parts) > 2 and parts[0].endswith(".data"):
            kind, rest = parts[1], "/".join(parts[2:])
            out.append(
                {
                    "scripts": f"bin/{rest}",
                    "data": rest,
                    "headers": f"include/{py}/{parts[0][: -len('.data')].split('-')[0]}/{rest}",
                }.get(kind, f"{site}/{rest}")
            )
        elif name:
            out.append(f"{site}/{name}")
    return sorted(set(out + scripts))


def conda_files(prefix: Path) -> dict[str, str]:
    """Prefix-relative path -> the conda package that installed it (conda-meta files lists)."""
    return {rel: f"{name} {version}" for rel, (name, version) in conda_file_owners(prefix).items()}


def check_overwrites(prefix: Path, wheels: list[tuple[Locked, Path]]) -> None:
    """UserError naming each file a wheel would overwrite, with the conda package and the wheel."""
    owned = conda_files(prefix)
    clashes = [
        f"  {path}: of the conda package {owned[path]}, and in the PyPI wheel {item.name} {item.version} "
        f"({item.filename})"
        for item, wheel in wheels
        for path in wheel_targets(wheel, prefix)
        if path in owned
    ]
    if clashes:
        raise UserError(
            f"{len(clashes)} files of PyPI wheels would overwrite files of conda packages:\n"
            + "\n".join(clashes[:20])
            + ("\n  ..." if len(clashes) > 20 else "")
            + "\n  install that project from conda only (remove it from 'pypi:'/imports: \"pypi:...\"), or leave "
            "the conda package out ('exclude:') if the wheel replaces it"
        )


def _relocatable_scripts(prefix: Path, dist_info: Path) -> None:
    """Give the console scripts uv wrote (absolute python path, or sh polyglot for long paths) pack's
    relocatable shebang, and update RECORD: they run without activation wherever the env is unpacked."""
    from portable_env.pack import relocatable

    record = dist_info / "RECORD"
    rows = record.read_text().splitlines()
    python = next(
        (p.name for p in sorted((prefix / "bin").glob("python3.*")) if re.fullmatch(r"python3\.\d+", p.name)), "python3"
    )
    raw = str(prefix).encode()
    out = []
    for row in rows:
        rel = row.split(",", 1)[0]
        if rel.split("/")[-1] in UV_DROPPED:
            (dist_info.parent / rel).unlink(missing_ok=True)
            continue
        path = (dist_info.parent / rel).resolve() if rel.startswith("../") else dist_info.parent / rel
        if path.parent == (prefix / "bin").resolve() and path.is_file():
            data = path.read_bytes()
            if data.startswith(b"#!") and raw in data.split(b"\n", 3)[0] + data.split(b"\n", 3)[1]:
                body = data.split(b"\n", 3)[3] if data.startswith(b"#!/bin/sh\n'''exec'") else data.split(b"\n", 1)[1]
                new = relocatable(b"#!\n" + body, python, [])
                path.write_bytes(new)
                row = f"{rel},sha256={_b64(hashlib.sha256(new).digest())},{len(new)}"
        out.append(row)
    record.write_text("\n".join(out) + "\n")


def _dist_info(site: Path, name: str, version: str) -> Path | None:
    for d in site.glob("*.dist-info"):
        n, _, v = d.name[: -len(".dist-info")].rpartition("-")
        if canonical_pypi(n) == name and (not version or v == version):
            return d
    return None


def license_of(dist_info: Path) -> str:
    """A distribution's license from its METADATA: License-Expression, else License, else classifiers."""
    try:
        meta = Parser().parsestr((dist_info / "METADATA").read_text(errors="replace"), headersonly=True)
    except OSError:
        return ""
    if meta.get("License-Expression"):
        return str(meta["License-Expression"]).strip()
    text = str(meta.get("License") or "").strip()
    if text and "\n" not in text and len(text) <= 80:
        return text
    classifiers = [str(c).rsplit("::", 1)[-1].strip() for c in meta.get_all("Classifier") or [] if "License ::" in c]
    return " AND ".join(classifiers) if classifiers else ""


def build_wheel(sdist: Path, python: Path, index: str, work: Path, cache_dir: Path) -> Path:
    """The wheel uv builds from a source distribution for python (build
    requirements from index: an https:// index, or a file:// folder of wheels)."""
    out = work / "built" / sdist.name
    out.mkdir(parents=True)
    source = ["--index-url", index] if index.startswith("https://") else ["--no-index", "--offline"]
    if index.startswith("file://"):
        source += ["--find-links", urllib.request.url2pathname(index[len("file://") :])]
    cmd = [uv(), "build", "--quiet", "--no-config", "--wheel", "--python", str(python), "--out-dir", str(out)]
    proc = subprocess.run([*cmd, *source, str(sdist)], capture_output=True, text=True, env=uv_env(cache_dir / "uv"))
    built = sorted(out.glob("*.whl"))
    if proc.returncode != 0 or len(built) != 1:
        raise UserError(
            f"uv could not build a wheel from {sdist.name} (pypi_sdists: true):\n{proc.stderr.strip()}\n"
            "  its build requirements must be on the index; or leave the package out of pypi:"
        )
    return built[0]


def install(prefix: Path, lock_file: Path, cache_dir: Path) -> list[dict[str, Any]]:
    """Install the PyPI lock into the conda environment at prefix, hashes checked, nothing resolved."""
    index, locked = read_lock(lock_file)
    python = prefix / "bin" / "python"
    if not python.exists():
        raise UserError(f"{prefix} has no bin/python: create the conda environment first")
    fetched = [(item, fetch(item, cache_dir / "wheels")) for item in locked]
    with tempfile.TemporaryDirectory(prefix="pypi-install-") as tmp:
        # A source distribution (pypi_sdists: true) is built into a wheel first, from the file
        # whose sha256 fetch checked: what it installs is then known before anything is installed.
        wheels = [
            (item, dist if dist.name.endswith(".whl") else build_wheel(dist, python, index, Path(tmp), cache_dir))
            for item, dist in fetched
        ]
        check_overwrites(prefix, wheels)
        reqs = Path(tmp) / "requirements.txt"
        # fetch checked the locked files' sha256; only a wheel built here needs hashing
        reqs.write_text(
            "".join(
                f"{item.name} @ {w.as_uri()} --hash=sha256:{item.sha256 if w.name == item.filename else sha256_of(w)}\n"
                for item, w in wheels
            )
        )
        cmd = [
            uv(),
            "pip",
            "install",
            "--quiet",
            "--no-config",
            "--python",
            str(python),
            "--no-deps",
            "--require-hashes",
            "--link-mode",
            "copy",
            "--break-system-packages",
            "-r",
            str(reqs),
        ]
        cmd += ["--no-index", "--offline"]
        proc = subprocess.run(cmd, capture_output=True, text=True, env=uv_env(cache_dir / "uv"))
    if proc.returncode != 0:
        raise UserError(f"uv could not install {lock_file} into {prefix}:\n{proc.stderr.strip()}")
    site = site_packages(prefix)
    installed = []
    for item, _ in wheels:
        info = _dist_info(site, item.name, item.version)
        if info is None:
            raise UserError(f"{item.name} {item.version}: installed, but no dist-info of it in {site}")
        direct = info / "direct_url.json"
        direct.write_text(json.dumps({"url": item.url, "archive_info": {"hashes": {"sha256": item.sha256}}}))
        _relocatable_scripts(prefix, info)
        installed.append(
            {
                **asdict(item),
                "filename": item.filename,
                "license": license_of(info),
                "dist_info": info.relative_to(prefix).as_posix(),
                "top_level": top_level(info),
            }
        )
    write_atomic(prefix / RECORD, json.dumps({"index": index, "packages": installed}, indent=1) + "\n")
    print(f"pypi: installed {len(installed)} PyPI packages from {lock_file}", file=sys.stderr)
    return installed


def top_level(dist_info: Path) -> list[str]:
    """The importable top-level modules of an installed distribution (top_level.txt, else its RECORD)."""
    tl = dist_info / "top_level.txt"
    if tl.is_file():
        return sorted({n.strip() for n in tl.read_text().splitlines() if n.strip() and "/" not in n})
    found = set()
    for row in (dist_info / "RECORD").read_text().splitlines():
        rel = row.split(",", 1)[0]
        head = rel.split("/", 1)[0]
        if rel.startswith("../") or head.endswith((".dist-info", ".data")) or head == "__pycache__":
            continue
        if "/" in rel or head.endswith(".py"):
            name = head[:-3] if head.endswith(".py") and "/" not in rel else head
            if name.isidentifier():
                found.add(name)
        elif head.endswith(".so"):
            found.add(head.split(".", 1)[0])
    return sorted(found)


def installed_record(prefix: Path) -> dict[str, Any]:
    """share/portable-env/pypi.json of an environment ({} when it has no PyPI packages)."""
    path = prefix / RECORD
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise UserError(f"{path}: unreadable ({exc}); rebuild the environment with make env") from None
    return data if isinstance(data, dict) else {}


def main(argv: list[str] | None = None) -> int:
    """scripts/install-pypi: install a PyPI lock into a conda environment."""
    ap = argparse.ArgumentParser(
        prog="install-pypi", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--lock", type=Path, required=True, help="pypi-<platform>.txt")
    ap.add_argument("--prefix", type=Path, required=True, help="the conda environment")
    ap.add_argument("--cache-dir", type=Path, default=Path("build/pypi"), help="wheels and uv's cache")
    ap.add_argument("--compile", action="store_true", help="precompile .pyc files afterwards (compile: true)")
    args = ap.parse_args(argv)

    def go() -> int:
        install(args.prefix, args.lock, args.cache_dir)
        if args.compile:
            from portable_env.env import compile_pyc

            compile_pyc(args.prefix)
        return 0

    return run(go, "install-pypi")
