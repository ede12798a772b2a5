"""PyPI packages installed into a conda environment from their lock (portable_env.pypi).

``install`` (scripts/install-pypi, after the conda packages): every wheel is fetched from the URL
the lock names and its sha256 checked; a wheel that would overwrite a file of a conda package fails
naming the file and both packages; uv installs the checked files with ``--no-deps
--require-hashes --offline``; console scripts get pack's relocatable shebang (they run without
activation at any path); uv's timestamped cache record is dropped (reproducible archives);
``share/portable-env/pypi.json`` records what was installed (the manifest and SBOM read it).
"""

from __future__ import annotations

import argparse
import base64
import configparser
import hashlib
import importlib.metadata as md
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
import zipfile
from dataclasses import asdict
from email.parser import Parser
from pathlib import Path
from typing import Any

from portable_env import toplevels
from portable_env.errors import UserError, run
from portable_env.files import conda_file_owners, sha256_of, write_atomic
from portable_env.pypi import Locked, read_lock, uv, uv_env
from portable_env.settings import canonical_pypi

RECORD = "share/portable-env/pypi.json"
UV_DROPPED = ("uv_cache.json",)  # dist-info files uv writes with a timestamp in them


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
                "top_level": sorted(toplevels.installed_names(md.Distribution.at(info))),
            }
        )
    write_atomic(prefix / RECORD, json.dumps({"index": index, "packages": installed}, indent=1) + "\n")
    print(f"pypi: installed {len(installed)} PyPI packages from {lock_file}", file=sys.stderr)
    return installed


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
