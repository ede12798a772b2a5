"""THE archive format table: every format an archive can be written in.

Settings validation, pack, the installer and the workflows read this table;
no other place lists the formats.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Format:
    """One archive format of dist/<project>-<platform>.<name>."""

    name: str  # also the file extension
    levels: tuple[int, int] | None  # valid compression levels, None: not compressed
    default_level: int | None
    unpack: str  # how a user unpacks it ("{archive}" and "{dir}" are filled in)


FORMATS: dict[str, Format] = {
    f.name: f
    for f in (
        Format("tar.gz", (1, 9), 4, "tar -xzf {archive} -C {dir}"),
        Format("tar.zst", (1, 19), 4, "tar --zstd -xf {archive} -C {dir}"),
        Format("tar.bz2", (1, 9), 4, "tar -xjf {archive} -C {dir}"),
        Format("tar.xz", (0, 9), 4, "tar -xJf {archive} -C {dir}"),
        Format("tar", None, None, "tar -xf {archive} -C {dir}"),
    )
}
DEFAULT = "tar.gz"


def names() -> list[str]:
    """The format names, in table order."""
    return list(FORMATS)
