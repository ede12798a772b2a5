"""Reproducible `.conda` archives and their info/ metadata."""

from __future__ import annotations

import json
import os
import stat
import tarfile
import time
import zipfile
from pathlib import Path
from typing import Any

from portable_env.files import sha256_of

ZSTD_LEVEL = 3  # whl2conda's default (19) is ~25x slower for a few % in size


def write_conda(tree: Path, dest: Path, mtime: int, level: int = ZSTD_LEVEL) -> None:
    """Pack a package tree (info/ + files) as a reproducible `.conda` archive.

    Members are sorted, owned by root, and dated `mtime`: the same tree always
    gives the same bytes (and the same sha256 in the repodata).
    """
    try:
        from compression import zstd  # Python >= 3.14
    except ImportError:
        from backports import zstd  # the same module, before 3.14

    if not dest.name.endswith(".conda"):
        raise ValueError(f"not a .conda file name: {dest}")
    stem = dest.name[: -len(".conda")]
    members = sorted(p.relative_to(tree).as_posix() for p in tree.rglob("*") if p.is_symlink() or not p.is_dir())
    info = [m for m in members if m.startswith("info/")]
    pkg = [m for m in members if not m.startswith("info/")]
    date_time = time.gmtime(max(mtime, 315532800))[:6]  # zip cannot date before 1980
    part = dest.with_name(dest.name + ".part")
    with zipfile.ZipFile(part, "w", compression=zipfile.ZIP_STORED) as zf:
        zf.writestr(zipfile.ZipInfo("metadata.json", date_time), json.dumps({"conda_pkg_format_version": 2}))
        for component, names in ((f"pkg-{stem}.tar.zst", pkg), (f"info-{stem}.tar.zst", info)):
            zinfo = zipfile.ZipInfo(component, date_time)
            with (
                zf.open(zinfo, "w", force_zip64=True) as raw,
                zstd.ZstdFile(raw, "w", level=level) as compressed,
                tarfile.open(fileobj=compressed, mode="w|", format=tarfile.PAX_FORMAT) as tar,
            ):
                for name in names:
                    add_tar_member(tar, tree, name, mtime)
    os.replace(part, dest)


def add_tar_member(tar: tarfile.TarFile, tree: Path, name: str, mtime: int) -> None:
    """Add one file or symlink with normalised metadata."""
    path = tree / name
    st = path.lstat()
    ti = tarfile.TarInfo(name)
    ti.mtime = mtime
    ti.uid = ti.gid = 0
    ti.uname = ti.gname = ""
    if stat.S_ISLNK(st.st_mode):
        ti.type = tarfile.SYMTYPE
        ti.linkname = os.readlink(path)
        ti.mode = 0o777
        tar.addfile(ti)
        return
    ti.size = st.st_size
    ti.mode = 0o755 if st.st_mode & 0o111 else 0o644
    with open(path, "rb") as fh:
        tar.addfile(ti, fh)


def paths_entry(tree: Path, rel: str, placeholder: str | None = None) -> dict[str, Any]:
    """One info/paths.json entry for a file or symlink of `tree`."""
    path = tree / rel
    entry: dict[str, Any] = {"_path": rel}
    if path.is_symlink():
        entry["path_type"] = "softlink"
        target = path.resolve()
        if target.is_file():
            entry["sha256"] = sha256_of(target)
            entry["size_in_bytes"] = target.stat().st_size
        return entry
    entry["path_type"] = "hardlink"
    if placeholder:
        entry["prefix_placeholder"] = placeholder
        entry["file_mode"] = "text"
    entry["sha256"] = sha256_of(path)
    entry["size_in_bytes"] = path.stat().st_size
    return entry


def write_info(tree: Path, index: dict[str, Any], paths: list[dict[str, Any]], about: dict[str, Any]) -> None:
    """Write info/index.json, info/paths.json, info/files, info/about.json."""
    info = tree / "info"
    info.mkdir(parents=True, exist_ok=True)
    paths = sorted(paths, key=lambda e: e["_path"])
    (info / "index.json").write_text(json.dumps(index, indent=2, sort_keys=True) + "\n")
    (info / "paths.json").write_text(json.dumps({"paths": paths, "paths_version": 1}, indent=2) + "\n")
    (info / "files").write_text("".join(e["_path"] + "\n" for e in paths))
    (info / "about.json").write_text(json.dumps(about, indent=2, sort_keys=True) + "\n")
