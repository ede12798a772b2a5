"""One POSIX (pax) tar, written straight into a compressing sink
(compress.Writer), in parts whose entries are each sorted by name (TarWriter.add),
read into one reused buffer; headers normalised (mtime given,
owner 0/0 without names, permissions 0755/0644, 0777 for symlinks), files
sharing an inode as hard links to the first. The same entries give the same
bytes, on any path and at any time."""

from __future__ import annotations

import os
import stat
import tarfile
from collections.abc import Mapping
from pathlib import Path

from portable_env.compress import Writer
from portable_env.errors import UserError

BATCH = 4 << 20  # bytes handed to the compressor at once


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
    (every entry TarWriter makes, almost always) is composed directly, 4x
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


Blob = tuple[bytes, int]  # a file made in memory: its content and permissions


class TarWriter:
    """One POSIX (pax) tar written to sink in parts: each add() writes its
    entries (archive name -> the file, symlink or folder to pack there, or
    a Blob) sorted by name, headers normalised (entry_info), files sharing
    an inode as hard links to the first one written. The files are only read."""

    def __init__(self, sink: Writer, mtime: int) -> None:
        self.out, self.mtime = _Batch(sink), mtime
        self.first_of: dict[tuple[int, int], str] = {}
        self.names: set[str] = set()

    def add(self, entries: Mapping[str, str | Blob]) -> None:
        """Write entries, sorted by name; UserError on a name already written."""
        if again := self.names.intersection(entries):
            raise UserError(f"{sorted(again)[0]}: packed twice; run make again")
        self.names.update(entries)
        for name in sorted(entries):
            source = entries[name]
            if isinstance(source, tuple):
                info = tarfile.TarInfo(name)
                info.mtime, info.mode, info.size = self.mtime, source[1], len(source[0])
                self.out.add(header(info))
                self.out.add(source[0])
                self.out.add(_padding(info.size))
                continue
            st = os.lstat(source)
            info = entry_info(name, st, self.mtime)
            if info.issym():
                info.linkname = os.readlink(source)
            elif info.isreg() and st.st_nlink > 1:
                first = self.first_of.setdefault((st.st_dev, st.st_ino), name)
                if first != name:
                    info.type, info.linkname, info.size = tarfile.LNKTYPE, first, 0
            self.out.add(header(info))
            if info.isreg():
                self.out.copy_file(source, info.size)
                self.out.add(_padding(info.size))

    def close(self) -> None:
        """End the tar (two zero blocks, padded to a record) and hand everything to the sink."""
        end = tarfile.NUL * (2 * tarfile.BLOCKSIZE)
        self.out.add(end + tarfile.NUL * (-(self.out.total + len(end)) % tarfile.RECORDSIZE))
        self.out.flush()


class _Batch:
    """The tar's bytes gathered in one reused buffer, file data read
    straight into it, and handed to the sink BATCH bytes at a time (the
    sinks consume what they are given before write returns)."""

    def __init__(self, sink: Writer) -> None:
        self.sink = sink
        self.view = memoryview(bytearray(BATCH))
        self.pos = self.total = 0

    def add(self, data: bytes) -> None:
        n = len(data)
        if self.pos + n > BATCH:
            self.flush()
            if n > BATCH:
                self.sink.write(data)
                self.total += n
                return
        self.view[self.pos : self.pos + n] = data
        self.pos += n
        self.total += n

    def flush(self) -> None:
        if self.pos:
            self.sink.write(self.view[: self.pos])
            self.pos = 0

    def copy_file(self, path: str, size: int) -> None:
        """Append the size bytes of the file at path; UserError if it changed meanwhile."""
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            left = size
            while True:
                if self.pos == BATCH:
                    self.flush()
                # one byte more than is left: a file that grew shows, and EOF is seen
                got = os.readv(fd, [self.view[self.pos : self.pos + min(left + 1, BATCH - self.pos)]])
                if got > left or not got:
                    break
                self.pos += got
                self.total += got
                left -= got
        finally:
            os.close(fd)
        if left or got:
            raise UserError(f"{path} changed while it was packed; run make again")
