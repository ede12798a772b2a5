"""Compressing byte sinks for the archive formats (formats.FORMATS) whose
output does not depend on the number of threads: gzip in fixed 1 MiB blocks
compressed in parallel (each primed with the previous 32 KiB, one gzip
member, a fixed header: the pigz layout), zstd in its multi-threaded mode
(deterministic for any number of workers >= 1), bz2 and xz on one thread.
"""

from __future__ import annotations

import bz2
import lzma
import struct
import zlib
from collections import deque
from typing import IO, TYPE_CHECKING, Any, Protocol

from portable_env import formats
from portable_env.errors import UserError

if TYPE_CHECKING:
    from concurrent.futures import Future

GZIP_BLOCK = 1 << 20  # fixed: the compressed bytes never depend on the number of threads
GZIP_WINDOW = 32768


Data = bytes | bytearray | memoryview  # consumed before write returns: the caller may reuse it


class Writer(Protocol):
    """A compressing byte sink over the output file."""

    def write(self, data: Data) -> int: ...

    def close(self) -> None: ...


def _deflate(block: bytes, level: int, window: bytes) -> bytes:
    """One block as raw deflate, primed with the previous data, ending byte-aligned (not final)."""
    c = (
        zlib.compressobj(level, zlib.DEFLATED, -15, zdict=window)
        if window
        else zlib.compressobj(level, zlib.DEFLATED, -15)
    )
    return c.compress(block) + c.flush(zlib.Z_SYNC_FLUSH)


class GzipWriter:
    """One gzip member made of independently compressed fixed-size blocks
    (as pigz does): the same bytes with 1 or N threads."""

    def __init__(self, out: IO[bytes], level: int, jobs: int, mtime: int) -> None:
        self.out, self.level, self.jobs = out, level, max(1, jobs)
        from concurrent.futures import ThreadPoolExecutor  # here: only gzip needs it

        self.pool = ThreadPoolExecutor(self.jobs) if self.jobs > 1 else None
        self.pending: deque[Future[bytes]] = deque()
        self.buf = bytearray()
        self.window = b""
        self.crc = self.size = 0
        xfl = 2 if level == 9 else 4 if level == 1 else 0
        out.write(b"\x1f\x8b\x08\x00" + struct.pack("<I", mtime & 0xFFFFFFFF) + bytes([xfl, 255]))

    def write(self, data: Data) -> int:
        view = memoryview(data)
        if self.buf:  # complete the block begun by an earlier write
            take = GZIP_BLOCK - len(self.buf)
            self.buf += view[:take]
            view = view[take:]
            if len(self.buf) < GZIP_BLOCK:
                return len(data)
            self._block(bytes(self.buf))
            self.buf.clear()
        while len(view) >= GZIP_BLOCK:
            self._block(bytes(view[:GZIP_BLOCK]))
            view = view[GZIP_BLOCK:]
        self.buf += view
        return len(data)

    def _block(self, block: bytes) -> None:
        self.crc = zlib.crc32(block, self.crc)
        self.size += len(block)
        window = self.window
        self.window = block[-GZIP_WINDOW:] if len(block) >= GZIP_WINDOW else (window + block)[-GZIP_WINDOW:]
        if self.pool is None:
            self.out.write(_deflate(block, self.level, window))
            return
        self.pending.append(self.pool.submit(_deflate, block, self.level, window))
        while len(self.pending) > 2 * self.jobs:
            self.out.write(self.pending.popleft().result())

    def close(self) -> None:
        try:
            if self.buf:
                self._block(bytes(self.buf))
            while self.pending:
                self.out.write(self.pending.popleft().result())
            self.out.write(zlib.compressobj(self.level, zlib.DEFLATED, -15).flush())  # the final, empty block
            self.out.write(struct.pack("<II", self.crc, self.size & 0xFFFFFFFF))
        finally:
            if self.pool is not None:
                self.pool.shutdown(cancel_futures=True)


class StreamWriter:
    """A one-stream compressor object (bz2, lzma, or nothing) over out."""

    def __init__(self, out: IO[bytes], compressor: Any | None) -> None:
        self.out, self.compressor = out, compressor

    def write(self, data: Data) -> int:
        self.out.write(self.compressor.compress(data) if self.compressor else data)
        return len(data)

    def close(self) -> None:
        if self.compressor:
            self.out.write(self.compressor.flush())


class ZstdWriter:
    """zstd in its multi-threaded mode, whose output is the same for any number of workers >= 1."""

    def __init__(self, out: IO[bytes], level: int, jobs: int) -> None:
        try:
            import zstandard
        except ImportError:
            raise UserError(
                "writing tar.zst needs the Python module zstandard; install the tools again: make tools"
            ) from None
        self.stream = zstandard.ZstdCompressor(level=level, threads=max(1, jobs), write_checksum=True).stream_writer(
            out, closefd=False
        )

    def write(self, data: Data) -> int:
        self.stream.write(data)
        return len(data)

    def close(self) -> None:
        self.stream.close()


def writer(out: IO[bytes], fmt: formats.Format, level: int, jobs: int, mtime: int) -> Writer:
    """The compressing writer of a format (formats.FORMATS) over out."""
    if fmt.name == "tar.gz":
        return GzipWriter(out, level, jobs, mtime)
    if fmt.name == "tar.zst":
        return ZstdWriter(out, level, jobs)
    if fmt.name == "tar.bz2":
        return StreamWriter(out, bz2.BZ2Compressor(level))
    if fmt.name == "tar.xz":
        return StreamWriter(out, lzma.LZMACompressor(format=lzma.FORMAT_XZ, preset=level))
    return StreamWriter(out, None)
