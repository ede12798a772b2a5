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

import json
import os
import re
from pathlib import Path
from typing import Any

from portable_env import lock
from portable_env.errors import UserError

GLIBC_SYMBOL = re.compile(r"GLIBC_(\d+)\.(\d+)(?:\.\d+)?")
ELF_MAGIC = b"\x7fELF"
SHOWN = 8  # files named in the refusal
PROJECT_CODE = "share/portable-env/"


def elf_glibc_versions(path: Path) -> list[tuple[int, int]]:
    """GLIBC_x.y versions an ELF file requires (its .gnu.version_r section); [] for other files."""
    from elftools.common.exceptions import ELFError
    from elftools.elf.elffile import ELFFile
    from elftools.elf.gnuversions import GNUVerNeedSection

    found = []
    try:
        with open(path, "rb") as f:
            if f.read(4) != ELF_MAGIC:
                return []
            f.seek(0)
            for section in ELFFile(f).iter_sections():
                if isinstance(section, GNUVerNeedSection):
                    for _needed, aux in section.iter_versions():
                        for version in aux:
                            m = GLIBC_SYMBOL.fullmatch(version.name)
                            if m:
                                found.append((int(m[1]), int(m[2])))
    except (ELFError, ValueError, OSError, KeyError):
        return []  # not an ELF file pyelftools can read: it cannot require glibc symbols we could list
    return found


def needs(prefix: Path) -> dict[str, tuple[int, int]]:
    """Relative path -> the highest GLIBC_x.y it needs, for every ELF file of prefix that needs one."""
    found: dict[str, tuple[int, int]] = {}
    for dirpath, dirs, files in os.walk(prefix):
        dirs.sort()
        for name in sorted(files):
            path = Path(dirpath, name)
            if path.is_symlink() or not path.is_file():
                continue
            versions = elf_glibc_versions(path)
            if versions:
                found[path.relative_to(prefix).as_posix()] = max(versions)
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
    found: dict[str, str] = {}
    for meta in sorted((prefix / "conda-meta").glob("*.json")):
        try:
            record = json.loads(meta.read_text())
        except (OSError, ValueError):
            continue
        for rel in record.get("files") or []:
            found[rel] = f"{record.get('name', meta.stem)} {record.get('version', '')}".strip()
    return found


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
