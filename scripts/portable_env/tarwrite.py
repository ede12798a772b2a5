"""One POSIX (pax) tar, written straight into a compressing sink
(compress.Writer): entries sorted by name, headers normalised (mtime given,
owner 0/0 without names, permissions 0755/0644, 0777 for symlinks), files
sharing an inode as hard links to the first. The same entries give the same
bytes, on any path and at any time."""

from __future__ import annotations

import os
import stat
import tarfile
from pathlib import Path

from portable_env.compress import Writer
from portable_env.errors import UserError

CHUNK = 1 << 20


def tree_entries(root: Path) -> list[str]:
    """Every file, symlink and empty folder under root as relative posix
    paths, sorted: the archive's entries and their order."""
    out = []
    for dirpath, dirs, files in os.walk(root):
        base = os.path.relpath(dirpath, root)
        prefix = "" if base == "." else base.replace(os.sep, "/") + "/"
        out += [prefix + name for name in files]
        out += [prefix + name for name in dirs if os.path.islink(os.path.join(dirpath, name))]
        if prefix and not files and not dirs:
            out.append(prefix[:-1])
    return sorted(out)


def entry_info(name: str, st: os.stat_result, mtime: int) -> tarfile.TarInfo:
    """The normalised tar header of a staged file: its name, kind and size;
    mtime, owner 0/0 without names, permissions 0755/0644 (0777 for links)."""
    info = tarfile.TarInfo(name)
    info.mtime = mtime
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    if stat.S_ISLNK(st.st_mode):
        info.type, info.mode = tarfile.SYMTYPE, 0o777
    elif stat.S_ISDIR(st.st_mode):
        info.type, info.mode = tarfile.DIRTYPE, 0o755
    elif stat.S_ISREG(st.st_mode):
        info.mode = 0o755 if st.st_mode & 0o111 else 0o644
        info.size = st.st_size
    else:
        raise UserError(f"{name}: neither a file, a folder nor a symlink; remove it from the environment")
    return info


_USTAR_LIMIT = 8**11  # sizes and times that fit a ustar header


def header(info: tarfile.TarInfo) -> bytes:
    """info's header block(s), byte for byte what tarfile writes in PAX
    format; a short ASCII name and link with owner 0/0 and no owner names
    (every entry write_tar makes, almost always) is composed directly, 4x
    faster than tarfile's field-by-field checks."""
    name, link = info.name, info.linkname
    if info.type == tarfile.DIRTYPE and not name.endswith("/"):
        name += "/"
    if not (
        name.isascii()
        and link.isascii()
        and len(name) <= 100
        and len(link) <= 100
        and info.uid == info.gid == 0
        and info.uname == info.gname == ""
        and not info.pax_headers
        and 0 <= info.size < _USTAR_LIMIT
        and isinstance(info.mtime, int)
        and 0 <= info.mtime < _USTAR_LIMIT
        and info.type not in (tarfile.CHRTYPE, tarfile.BLKTYPE)
    ):
        return info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")
    block = b"".join(
        (
            name.encode().ljust(100, b"\0"),
            b"%07o\0" % (info.mode & 0o7777),
            b"0000000\0" * 2,
            b"%011o\0" % info.size,
            b"%011o\0" % info.mtime,
            b"        ",
            info.type,
            link.encode().ljust(100, b"\0"),
            tarfile.POSIX_MAGIC,
        )
    ).ljust(tarfile.BLOCKSIZE, b"\0")
    return block[:148] + b"%06o\0" % sum(block) + block[155:]


def _padding(size: int) -> bytes:
    return tarfile.NUL * (-size % tarfile.BLOCKSIZE)


def write_tar(entries: dict[str, str], sink: Writer, mtime: int) -> None:
    """Write entries (archive name -> the file, symlink or folder to pack
    there) to sink as one POSIX (pax) tar: sorted by name, headers
    normalised (entry_info), files sharing an inode as hard links to the
    first. The files are only read."""
    written = 0
    first_of: dict[tuple[int, int], str] = {}
    for name in sorted(entries):
        path = entries[name]
        st = os.lstat(path)
        info = entry_info(name, st, mtime)
        if info.issym():
            info.linkname = os.readlink(path)
        elif info.isreg() and st.st_nlink > 1:
            first = first_of.setdefault((st.st_dev, st.st_ino), name)
            if first != name:
                info.type, info.linkname, info.size = tarfile.LNKTYPE, first, 0
        head = header(info)
        sink.write(head)
        written += len(head)
        if info.isreg():
            _copy_file(path, info.size, sink)
            pad = _padding(info.size)
            sink.write(pad)
            written += info.size + len(pad)
    end = tarfile.NUL * (2 * tarfile.BLOCKSIZE)
    written += len(end)
    sink.write(end + tarfile.NUL * (-written % tarfile.RECORDSIZE))


def _copy_file(path: str, size: int, sink: Writer) -> None:
    """Copy size bytes of the file at path into sink; UserError if it changed meanwhile."""
    left = size
    with open(path, "rb") as fh:
        while left > 0:
            data = fh.read(min(CHUNK, left))
            if not data:
                break
            sink.write(data)
            left -= len(data)
        if left or fh.read(1):
            raise UserError(f"{path} changed while it was packed; run make again")
