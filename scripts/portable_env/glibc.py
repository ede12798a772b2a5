"""The glibc an environment's ELF files need, and the pack-time check against the target.

Every ELF file lists the GLIBC_x.y symbol versions it needs (its
.gnu.version_r section); the highest one is the oldest glibc it runs on.
``needs`` reads them for every file of an environment (the manifest's
``min_glibc`` and this check both use it); ``check`` refuses an environment
with a file that needs a newer glibc than the target machine has, naming the
worst files and the packages (conda-meta) they come from, and refuses a lock
solved for another target than the settings'.
"""

from __future__ import annotations

import argparse
import os
import re
import struct
import sys
from pathlib import Path
from typing import IO, Any

from portable_env import lock
from portable_env.errors import UserError, run
from portable_env.files import conda_file_owners
from portable_env.settings import load

GLIBC_SYMBOL = re.compile(r"GLIBC_(\d+)\.(\d+)(?:\.\d+)?")
ELF_MAGIC = b"\x7fELF"
SHOWN = 8  # files named in the refusal
PROJECT_CODE = "share/portable-env/"


SHT_GNU_VERNEED = 0x6FFFFFFE
SHN_UNDEF = 0
# (ELF header after e_ident, section header) layouts per EI_CLASS: 1 = 32-bit, 2 = 64-bit.
_LAYOUT = {
    1: ("HHIIIIIHHHHHH", "IIIIIIIIII"),
    2: ("HHIQQQIHHHHHH", "IIQQQQIIQQ"),
}


def _cstring(table: bytes, offset: int) -> str:
    """The NUL-terminated string at offset of a string table."""
    end = table.find(b"\0", offset)
    return table[offset : end if end >= 0 else len(table)].decode("utf-8", errors="replace")


def _verneed_names(f: IO[bytes]) -> list[str]:
    """The version names (GLIBC_2.17, ...) of every SHT_GNU_verneed section of
    an ELF file open at f. Reads the ELF header, the section headers and those
    sections only; struct.error / ValueError / OSError on a malformed file."""
    ident = f.read(16)
    cls, data = ident[4], ident[5]
    if cls not in _LAYOUT or data not in (1, 2):
        raise ValueError("unknown ELF class or byte order")
    end = "<" if data == 1 else ">"
    head, sect = (struct.Struct(end + x) for x in _LAYOUT[cls])
    header = head.unpack(f.read(head.size))
    shoff, shentsize, shnum = header[5], header[10], header[11]
    if shoff == 0:
        return []
    if shentsize < sect.size:
        raise ValueError("section header too small")

    def section(n: int) -> tuple[int, ...]:
        f.seek(shoff + n * shentsize)
        return sect.unpack(f.read(sect.size))

    def contents(sh: tuple[int, ...]) -> bytes:
        f.seek(sh[4])
        return f.read(sh[5])

    if shnum == SHN_UNDEF:  # 0xff00 sections or more: the count is section 0's sh_size
        shnum = section(0)[5]
    f.seek(shoff)
    table = f.read(shnum * shentsize)
    headers = [sect.unpack_from(table, i * shentsize) for i in range(shnum)]
    need, aux = struct.Struct(end + "HHIII"), struct.Struct(end + "IHHII")
    names: list[str] = []
    for sh in headers:
        if sh[1] != SHT_GNU_VERNEED:
            continue
        body, strings = contents(sh), contents(headers[sh[6]])  # sh_link: the string table
        offset = 0
        for _ in range(sh[7]):  # sh_info: the number of entries
            _version, count, _file, aux_offset, next_offset = need.unpack_from(body, offset)
            if count <= 0:
                raise ValueError("a version entry without auxiliary entries")
            at = offset + aux_offset
            for _ in range(count):
                _hash, _flags, _other, name, next_aux = aux.unpack_from(body, at)
                names.append(_cstring(strings, name))
                at += next_aux
            offset += next_offset
    return names


def elf_glibc_versions(path: Path) -> list[tuple[int, int]]:
    """GLIBC_x.y versions an ELF file requires (its .gnu.version_r section); [] for other files
    and for ELF files that cannot be read."""
    found = []
    try:
        with open(path, "rb") as f:
            if f.read(4) != ELF_MAGIC:
                return []
            f.seek(0)
            for name in _verneed_names(f):
                m = GLIBC_SYMBOL.fullmatch(name)
                if m:
                    found.append((int(m[1]), int(m[2])))
    except (struct.error, ValueError, OSError, IndexError):
        return []  # not an ELF file we can read: it cannot require glibc symbols we could list
    return found


# What each file needed when last read (key: its real path; value: size,
# mtime, inode and the result): check-target and both manifests of a pack
# run in one process (portable_env.build) and read each ELF file once.
_SEEN: dict[str, tuple[int, int, int, tuple[int, int] | None]] = {}


def _files(prefix: Path) -> list[tuple[str, os.stat_result]]:
    """(relative path, lstat) of every regular file of prefix (no symlinks), sorted by folder then name."""
    found: list[tuple[str, os.stat_result]] = []

    def walk(folder: str, rel: str) -> None:
        with os.scandir(folder) as it:
            entries = sorted(it, key=lambda e: e.name)
        subdirs = []
        for entry in entries:
            if entry.is_symlink():
                continue
            if entry.is_dir():
                subdirs.append(entry)
            elif entry.is_file():
                found.append((rel + entry.name, entry.stat(follow_symlinks=False)))
        for entry in subdirs:
            walk(entry.path, f"{rel}{entry.name}/")

    walk(str(prefix), "")
    return found


def needs(prefix: Path) -> dict[str, tuple[int, int]]:
    """Relative path -> the highest GLIBC_x.y it needs, for every ELF file of prefix that needs one."""
    root = os.path.realpath(prefix)
    found: dict[str, tuple[int, int]] = {}
    for rel, st in _files(prefix):
        key, state = f"{root}/{rel}", (st.st_size, st.st_mtime_ns, st.st_ino)
        seen = _SEEN.get(key)
        if seen is not None and seen[:3] == state:
            best = seen[3]
        else:
            versions = elf_glibc_versions(prefix / rel) if st.st_size >= 64 else []
            best = max(versions) if versions else None
            _SEEN[key] = (*state, best)
        if best is not None:
            found[rel] = best
    return found


def summary(found: dict[str, tuple[int, int]]) -> dict[str, Any]:
    """The highest version of ``needs``' result and its (first) file, as the manifest records it."""
    best: tuple[int, int] | None = None
    where = ""
    for rel, version in found.items():
        if best is None or version > best:
            best, where = version, rel
    return {"version": f"{best[0]}.{best[1]}" if best else None, "file": where, "elf_files": len(found)}


def scan(prefix: Path) -> dict[str, Any]:
    """The highest GLIBC_x.y any ELF file of prefix requires, and which file."""
    return summary(needs(prefix))


def owners(prefix: Path) -> dict[str, str]:
    """Relative path -> 'name version' of the conda package that installed it (conda-meta/*.json)."""
    return {rel: f"{name} {version}".strip() for rel, (name, version) in conda_file_owners(prefix).items()}


def version_text(version: tuple[int, int]) -> str:
    return f"{version[0]}.{version[1]}"


def too_new(prefix: Path, glibc: str, found: dict[str, tuple[int, int]] | None = None) -> list[tuple[str, str, str]]:
    """(file, the glibc it needs, its package) of every file needing more than glibc, worst first."""
    limit = tuple(int(x) for x in glibc.split(".")[:2])
    found = needs(prefix) if found is None else found
    bad = sorted(((v, rel) for rel, v in found.items() if v > limit), key=lambda x: (-x[0][0], -x[0][1], x[1]))
    if not bad:
        return []
    own = owners(prefix)

    def owner(rel: str) -> str:
        if rel in own:
            return own[rel]
        return "the project's shipped code" if rel.startswith(PROJECT_CODE) else "no package (added to the env)"

    return [(rel, version_text(v), owner(rel)) for v, rel in bad]


def check_lock_target(explicit: Path, target: lock.Target, project: str) -> None:
    """The lock must have been solved for the settings' target."""
    recorded = lock.recorded_target(explicit)
    if recorded is None:
        raise UserError(
            f"{explicit} records no target machine (it was solved for the build host); "
            f"re-solve it for {target.describe()}: make PROJECT={project} lock"
        )
    changes = lock.target_changes(recorded, target)
    if changes:
        raise UserError(f"{explicit} was solved for another target ({'; '.join(changes)}): make PROJECT={project} lock")


def check(prefix: Path, target: lock.Target, settings_file: str, project: str) -> dict[str, Any]:
    """Refuse an environment with an ELF file that needs a newer glibc than the target; returns ``scan``'s summary."""
    found = needs(prefix)
    bad = too_new(prefix, target.glibc, found)
    if bad:
        worst = bad[0][1]
        packages = sorted({pkg for _rel, _v, pkg in bad})
        lines = [
            f"{prefix}: {len(bad)} ELF file(s) need a newer glibc than the target's {target.glibc} "
            f"(up to {worst}); the target machine cannot run them:"
        ]
        lines += [f"  - {rel} needs glibc {v} ({pkg})" for rel, v, pkg in bad[:SHOWN]]
        if len(bad) > SHOWN:
            lines.append(f"  ... and {len(bad) - SHOWN} more")
        lines.append(f"  packages: {', '.join(packages)}")
        lines.append(
            f'  if the machine has glibc {worst} or newer, set  target: {{glibc: "{worst}"}}  in {settings_file} '
            f"(or TARGET_GLIBC={worst} for one build); otherwise take these packages from a channel built for "
            f"glibc {target.glibc} (conda-forge builds for 2.17) and re-lock: make PROJECT={project} lock"
        )
        raise UserError("\n".join(lines))
    return summary(found)


CLI_DOC = """Refuse to pack an environment the target machine cannot run.

  check-target --prefix ENV --settings build/P/KEY/settings.json [--explicit conda-linux-64.lock]

Fails (naming the worst files, their packages and the fix) when an ELF file
of ENV needs a newer glibc (GLIBC_x.y symbol versions) than the settings'
target glibc, and, with --explicit, when the lock was solved for another
target than the settings'. See scripts/portable_env/glibc.py.
"""


def main(argv: list[str] | None = None) -> int:
    """scripts/check-target: see CLI_DOC."""
    ap = argparse.ArgumentParser(
        prog="check-target", description=CLI_DOC, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--prefix", type=Path, required=True, help="the built environment")
    ap.add_argument("--settings", type=Path, required=True, help="build/<project>/<key>/settings.json (target)")
    ap.add_argument("--explicit", type=Path, help="the @EXPLICIT lock: it must record the same target")
    args = ap.parse_args(argv)

    def go() -> int:
        s = load(args.settings)
        target = lock.Target.of(s.target)
        if args.explicit is not None:
            check_lock_target(args.explicit, target, s.project)
        found = check(args.prefix, target, s.settings_file, s.project)
        need = f"glibc >= {found['version']} ({found['file']})" if found["version"] else "no glibc symbols"
        print(
            f"target: {found['elf_files']} ELF files need at most the target's glibc {target.glibc}: {need}",
            file=sys.stderr,
        )
        return 0

    return run(go, "target")
