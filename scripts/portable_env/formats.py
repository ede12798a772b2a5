"""THE archive format table, THE archive mtime rule, and the one archive reader.

Every format an archive can be written in, with what each consumer needs:
settings validation (names, levels), pack (the compressor and its module),
verify and make-installer (reading it back), the installer template (the
decompressing command, filled in by make-installer) and the manifest (a
format from a file name). No other place lists the formats.
"""

from __future__ import annotations

import lzma
import os
import tarfile
import zlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, NamedTuple

from portable_env.errors import UserError


class Format(NamedTuple):
    """One archive format of dist/<project>-<platform>.<name>."""

    name: str  # also the file extension
    levels: tuple[int, int] | None  # valid compression levels, None: not compressed
    default_level: int | None
    unpack: str  # how a user unpacks it ("{archive}" and "{dir}" are filled in)
    module: str | None = None  # Python module (beyond the standard library) that writes and reads it
    magic: bytes = b""  # how the compressed file starts (b"": a plain tar)
    decompress: str = ""  # command that turns it into a plain tar, stdin to stdout ("": none needed)

    @property
    def program(self) -> str:
        """The program the target machine needs to unpack it ("" for a plain tar)."""
        return self.decompress.split(" ", 1)[0]


FORMATS: dict[str, Format] = {
    f.name: f
    for f in (
        Format("tar.gz", (1, 9), 4, "tar -xzf {archive} -C {dir}", None, b"\x1f\x8b", "gzip -dc"),
        Format(
            "tar.zst", (1, 19), 4, "tar --zstd -xf {archive} -C {dir}", "zstandard", b"\x28\xb5\x2f\xfd", "zstd -dc"
        ),
        Format("tar.bz2", (1, 9), 4, "tar -xjf {archive} -C {dir}", None, b"BZh", "bzip2 -dc"),
        Format("tar.xz", (0, 9), 4, "tar -xJf {archive} -C {dir}", None, b"\xfd7zXZ\x00", "xz -dc"),
        Format("tar", None, None, "tar -xf {archive} -C {dir}"),
    )
}
DEFAULT = "tar.gz"

# Errors reading a damaged archive can raise (zstd's are turned into OSError).
READ_ERRORS = (tarfile.TarError, EOFError, OSError, ValueError, zlib.error, lzma.LZMAError)

# The timestamp of every archive entry and of the manifest when no package
# records one: 2000-01-01.
FALLBACK_MTIME = 946684800


def names() -> list[str]:
    """The format names, in table order."""
    return list(FORMATS)


def get(name: str) -> Format:
    """The format called name; UserError listing the valid ones otherwise."""
    try:
        return FORMATS[name]
    except KeyError:
        raise UserError(f"unknown archive format {name!r}; valid formats: {', '.join(names())}") from None


def of_path(path: Path | str) -> Format | None:
    """The format a file name ends with (longest match), None when none does."""
    name = Path(path).name
    found = [f for f in FORMATS.values() if name.endswith("." + f.name)]
    return max(found, key=lambda f: len(f.name)) if found else None


def archive_mtime(timestamps: Iterable[Any]) -> int:
    """THE archive time: $SOURCE_DATE_EPOCH, else the newest of the packages'
    build timestamps (milliseconds or seconds), else FALLBACK_MTIME."""
    if os.environ.get("SOURCE_DATE_EPOCH", "").isdigit():
        return int(os.environ["SOURCE_DATE_EPOCH"])
    newest = 0
    for stamp in timestamps:
        if isinstance(stamp, (int, float)) and not isinstance(stamp, bool):
            newest = max(newest, int(stamp / 1000 if stamp > 1e11 else stamp))
    return newest or FALLBACK_MTIME


def detect(raw: IO[bytes]) -> Format:
    """The format of an open archive, from its first bytes (then rewound)."""
    head = raw.read(8)
    raw.seek(0)
    for fmt in FORMATS.values():
        if fmt.magic and head.startswith(fmt.magic):
            return fmt
    return FORMATS["tar"]


class _ZstdStream:
    """A zstd-decompressing reader whose errors are OSErrors (as gzip's are)."""

    def __init__(self, raw: IO[bytes]) -> None:
        import zstandard

        self._error = zstandard.ZstdError
        self._stream = zstandard.ZstdDecompressor().stream_reader(raw)

    def read(self, size: int = -1) -> bytes:
        try:
            return self._stream.read(size)
        except self._error as exc:
            raise OSError(f"zstd: {exc}") from None

    def close(self) -> None:
        self._stream.close()


@contextmanager
def open_tar(path: Path) -> Iterator[tarfile.TarFile]:
    """The archive at path as a streaming tarfile (read once, never whole),
    whatever its format; reading a damaged one raises one of READ_ERRORS."""
    with open(path, "rb") as raw:
        fmt = detect(raw)
        if fmt.name == "tar.zst":
            try:
                stream = _ZstdStream(raw)
            except ImportError:
                raise UserError(
                    f"{path}: reading {fmt.name} needs the Python module {fmt.module}; "
                    "install the tools again: make tools"
                ) from None
            with tarfile.open(fileobj=stream, mode="r|") as tf:  # type: ignore[call-overload]
                yield tf
        else:
            mode = "r|" + fmt.name.removeprefix("tar").removeprefix(".")
            with tarfile.open(fileobj=raw, mode=mode) as tf:  # type: ignore[call-overload]
                yield tf
