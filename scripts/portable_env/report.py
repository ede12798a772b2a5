"""Reports on a built project, for people: what a change does to the lock,
where the archive's bytes go, and the CI job summary (scripts/report).

lock-diff  the project's lock at a git ref (the merge base of BASE and HEAD,
           else BASE itself) against the current one: packages added,
           removed, and version/build changes. The old lock is read with
           ``git show REF:path`` into a temporary file and parsed by
           portable_env.lock (the one lock reader).
size       the archive's bytes by package, largest first, with a bar each,
           and what ``slim: true`` would leave out (pack.SLIM_EXCLUDES, the
           one slim rule). Read from the archive alone: its entries' sizes
           and the conda-meta records inside it, which say which package owns
           which file. Compressed bytes per package are the archive's
           average ratio applied to the package's bytes (an estimate: the
           archive is one compressed stream).
summary    Markdown for $GITHUB_STEP_SUMMARY: archive size and checksum,
           package count, target (OS, CPU, glibc), the largest packages and,
           given a base ref, the lock's change.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from portable_env import formats, lock, pack
from portable_env.errors import UserError

OTHER = "(not from a package)"
BAR_WIDTH = 30
TOP = 10
PYC = re.compile(r"(?P<dir>(?:.*/)?)__pycache__/(?P<mod>[^/.]+)\.[^/]+\.pyc")


def human(n: float) -> str:
    """Bytes as B/KiB/MiB/GiB with one decimal."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"  # unreachable


# ---------------------------------------------------------------- lock-diff


@dataclass(frozen=True, order=True)
class Pkg:
    """A locked package: what a diff compares."""

    name: str
    version: str
    build: str

    def __str__(self) -> str:
        return f"{self.name} {self.version} {self.build}"


@dataclass
class LockDiff:
    """The change from the lock at `base` to the current lock."""

    base: str  # the ref as given
    commit: str  # the commit compared against
    path: str  # the lock's path in the repository
    had_lock: bool  # False: no lock at that commit (every package is added)
    added: list[Pkg] = field(default_factory=list)
    removed: list[Pkg] = field(default_factory=list)
    changed: list[tuple[Pkg, Pkg]] = field(default_factory=list)
    unchanged: int = 0

    @property
    def empty(self) -> bool:
        return not (self.added or self.removed or self.changed)


def packages_of(lock_file: Path, platform: str) -> dict[str, Pkg]:
    """name -> Pkg of a rattler lock's packages for platform (lock.read_records)."""
    found = {}
    for r in lock.read_records(lock_file, platform):
        name = r.name.normalized
        found[name] = Pkg(name, str(r.version), str(r.build))
    return found


def compare(old: dict[str, Pkg], new: dict[str, Pkg]) -> tuple[list[Pkg], list[Pkg], list[tuple[Pkg, Pkg]], int]:
    """(added, removed, changed, unchanged count) from old to new, sorted by name."""
    added = [new[n] for n in sorted(set(new) - set(old))]
    removed = [old[n] for n in sorted(set(old) - set(new))]
    both = sorted(set(old) & set(new))
    changed = [(old[n], new[n]) for n in both if old[n] != new[n]]
    return added, removed, changed, len(both) - len(changed)


def git(args: list[str], cwd: Path) -> subprocess.CompletedProcess[bytes]:
    """Run git (output captured as bytes)."""
    try:
        return subprocess.run(["git", *args], cwd=cwd, capture_output=True)
    except FileNotFoundError:
        raise UserError("lock-diff needs git, which is not installed") from None


def resolve_base(base: str, cwd: Path) -> str:
    """The commit to compare against: the merge base of BASE and HEAD, else BASE's commit."""
    if not base or base.startswith("-") or any(c.isspace() for c in base):
        raise UserError(f"BASE {base!r} is not a git ref; give a branch, tag or commit: BASE=origin/main")
    top = git(["rev-parse", "--show-toplevel"], cwd)
    if top.returncode != 0:
        raise UserError(f"{cwd} is not in a git repository: lock-diff compares the lock with git history")
    found = git(["rev-parse", "--verify", "--quiet", f"{base}^{{commit}}"], cwd)
    if found.returncode != 0:
        raise UserError(
            f"BASE {base!r} is not a commit in this repository; fetch it (git fetch origin main) "
            "or give another ref: make PROJECT=<name> lock-diff BASE=<branch, tag or commit>"
        )
    commit = found.stdout.decode().strip()
    merged = git(["merge-base", commit, "HEAD"], cwd)
    return merged.stdout.decode().strip() if merged.returncode == 0 and merged.stdout.strip() else commit


def lock_at(commit: str, path: str, platform: str, cwd: Path) -> dict[str, Pkg] | None:
    """The packages of the lock at path in commit (None when that commit has no such file)."""
    shown = git(["show", f"{commit}:{path}"], cwd)
    if shown.returncode != 0:
        return None
    fd, tmp = tempfile.mkstemp(prefix=".lock-diff.", suffix=".yml")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(shown.stdout)
        try:
            return packages_of(Path(tmp), platform)
        except UserError as exc:
            raise UserError(f"{path} at {commit[:12]}: {str(exc).replace(tmp, path)}") from None
    finally:
        os.unlink(tmp)


def repo_path(path: Path, cwd: Path) -> str:
    """path relative to the top of the git repository containing cwd."""
    top = git(["rev-parse", "--show-toplevel"], cwd)
    if top.returncode != 0:
        raise UserError(f"{cwd} is not in a git repository: lock-diff compares the lock with git history")
    root = Path(top.stdout.decode().strip()).resolve()
    full = (cwd / path).resolve()
    try:
        return full.relative_to(root).as_posix()
    except ValueError:
        raise UserError(f"{path} is not inside the git repository {root}") from None


def lock_diff(
    lock_file: Path, base: str, platform: str, base_path: Path | None = None, cwd: Path | None = None
) -> LockDiff:
    """The change of lock_file against base_path (default: the same path) at the base ref."""
    cwd = cwd or Path.cwd()
    commit = resolve_base(base, cwd)
    path = repo_path(base_path or lock_file, cwd)
    new = packages_of(lock_file, platform)
    old = lock_at(commit, path, platform, cwd)
    added, removed, changed, same = compare(old or {}, new)
    return LockDiff(base, commit, path, old is not None, added, removed, changed, same)


def diff_text(d: LockDiff) -> str:
    """A lock diff for a terminal."""
    head = f"lock-diff: {d.path} at {d.base} ({d.commit[:12]}) -> now"
    if not d.had_lock:
        head += f"\n  (no lock at {d.commit[:12]}: every package is new)"
    if d.empty:
        return f"{head}\n  no change ({d.unchanged} packages)"
    lines = [head]
    lines += [f"  + {p}" for p in d.added]
    lines += [f"  - {p}" for p in d.removed]
    lines += [f"  ~ {a.name} {a.version} {a.build} -> {b.version} {b.build}" for a, b in d.changed]
    lines.append(f"  {len(d.added)} added, {len(d.removed)} removed, {len(d.changed)} changed, {d.unchanged} unchanged")
    return "\n".join(lines)


def diff_markdown(d: LockDiff) -> str:
    """A lock diff as Markdown."""
    lines = [f"**Lock change** against `{d.base}` (`{d.commit[:12]}`), `{d.path}`:", ""]
    if not d.had_lock:
        lines += ["No lock at the base: every package is new.", ""]
    if d.empty:
        return "\n".join([*lines, f"No change ({d.unchanged} packages)."])
    lines += ["| change | package | before | after |", "| --- | --- | --- | --- |"]
    lines += [f"| added | {p.name} | | {p.version} `{p.build}` |" for p in d.added]
    lines += [f"| removed | {p.name} | {p.version} `{p.build}` | |" for p in d.removed]
    lines += [f"| changed | {a.name} | {a.version} `{a.build}` | {b.version} `{b.build}` |" for a, b in d.changed]
    lines += [
        "",
        f"{len(d.added)} added, {len(d.removed)} removed, {len(d.changed)} changed, {d.unchanged} unchanged.",
    ]
    return "\n".join(lines)


# ---------------------------------------------------------------- size


@dataclass
class PackageSize:
    """One package's share of an archive."""

    name: str
    version: str
    files: int = 0
    bytes: int = 0
    slim_files: int = 0
    slim_bytes: int = 0


@dataclass
class SizeReport:
    """Where an archive's bytes go."""

    archive: Path
    archive_bytes: int
    packages: list[PackageSize]  # largest first, OTHER included

    @property
    def total(self) -> int:
        return sum(p.bytes for p in self.packages)

    @property
    def ratio(self) -> float:
        """Archive bytes per unpacked byte."""
        return self.archive_bytes / self.total if self.total else 1.0

    @property
    def slim_files(self) -> int:
        return sum(p.slim_files for p in self.packages)

    @property
    def slim_bytes(self) -> int:
        return sum(p.slim_bytes for p in self.packages)

    @property
    def package_count(self) -> int:
        return sum(1 for p in self.packages if p.name != OTHER)


def slimmed(name: str) -> bool:
    """Whether slim: true leaves this archive entry out (the rule pack uses)."""
    return pack.slimmed(name)


def owner_of(name: str, owners: dict[str, str]) -> str:
    """The package owning an archive entry: the file's package, a .pyc's source's package, else OTHER."""
    if name in owners:
        return owners[name]
    m = PYC.fullmatch(name)
    if m:
        return owners.get(f"{m['dir']}{m['mod']}.py", OTHER)
    return OTHER


def archive_sizes(archive: Path) -> SizeReport:
    """Read the archive once: entry sizes and the conda-meta records that own them."""
    if not archive.is_file():
        raise UserError(f"{archive}: no such archive; build it with make PROJECT=<name> pack")
    sizes: dict[str, int] = {}
    owners: dict[str, str] = {}
    versions: dict[str, str] = {}
    try:
        with formats.open_tar(archive) as tf:
            for member in tf:
                if member.isdir():
                    continue
                sizes[member.name] = member.size if member.isreg() else 0
                if pack.is_record(member.name) and member.isreg():
                    data = tf.extractfile(member)
                    record = json.loads(data.read()) if data else {}
                    name = str(record.get("name") or member.name)
                    versions[name] = str(record.get("version", ""))
                    owners[member.name] = name
                    for f in record.get("files") or []:
                        owners[f] = name
    except formats.READ_ERRORS as exc:
        raise UserError(f"{archive}: not a readable archive ({exc}); rebuild it with make pack") from None
    by_pkg: dict[str, PackageSize] = {}
    for name, size in sizes.items():
        pkg = owner_of(name, owners)
        entry = by_pkg.setdefault(pkg, PackageSize(pkg, versions.get(pkg, "")))
        entry.files += 1
        entry.bytes += size
        if slimmed(name):
            entry.slim_files += 1
            entry.slim_bytes += size
    ordered = sorted(by_pkg.values(), key=lambda p: (-p.bytes, p.name))
    return SizeReport(archive, archive.stat().st_size, ordered)


def bar(part: int, whole: int, width: int = BAR_WIDTH, char: str = "#") -> str:
    """A bar of width * part / whole characters (at least one for a non-empty part)."""
    if whole <= 0 or part <= 0:
        return ""
    return char * max(1, round(width * part / whole))


def slim_saving(r: SizeReport) -> str:
    """What slim: true would leave out ('' when nothing)."""
    if not r.slim_bytes:
        return ""
    return (
        f"{r.slim_files} files, {human(r.slim_bytes)} unpacked (about {human(r.slim_bytes * r.ratio)} of the "
        "archive): package tests, headers, docs, static libraries"
    )


def slim_line(r: SizeReport, slim_on: bool) -> str:
    """What slim: true saves (or that it is on)."""
    if slim_on:
        return "slim: true is set: package tests, headers, docs and static libraries are already left out"
    if not r.slim_bytes:
        return "slim: true would save nothing here (no package tests, headers, docs or static libraries)"
    return f"slim: true would leave out {slim_saving(r)}"


def size_text(r: SizeReport, slim_on: bool = False, top: int | None = None) -> str:
    """The size report for a terminal: one line per package, largest first."""
    lines = [
        f"{r.archive.name}: {human(r.archive_bytes)} ({human(r.total)} unpacked, {r.package_count} packages; "
        f"the archive is {r.ratio:.0%} of that)",
        f"  {'package':<28} {'version':<14} {'unpacked':>10} {'share':>6}  {'archive ~':>10}  slim saves",
    ]
    shown = r.packages if top is None else r.packages[:top]
    biggest = r.packages[0].bytes if r.packages else 0
    for p in shown:
        saves = human(p.slim_bytes) if p.slim_bytes else ""
        lines.append(
            f"  {p.name:<28} {p.version:<14} {human(p.bytes):>10} {p.bytes / (r.total or 1):>6.1%}  "
            f"{human(p.bytes * r.ratio):>10}  {saves:<10} {bar(p.bytes, biggest)}"
        )
    if top is not None and len(r.packages) > top:
        lines.append(f"  ... {len(r.packages) - top} more")
    lines.append(slim_line(r, slim_on))
    return "\n".join(lines)


# ---------------------------------------------------------------- summary


def target_text(target: dict[str, Any]) -> str:
    """The manifest's target: OS, CPU and glibc (declared and/or found)."""
    parts = [str(target.get("os") or ""), str(target.get("cpu") or target.get("arch") or "")]
    declared, found = target.get("glibc"), target.get("min_glibc")
    if declared and found and declared != found:
        above = version_key(str(found)) > version_key(str(declared))
        parts.append(f"needs glibc >= {found}, target glibc {declared}" + (" (above the target!)" if above else ""))
    elif declared or found:
        parts.append(f"glibc >= {declared or found}")
    if target.get("cuda"):
        parts.append(f"CUDA {target['cuda']}")
    return ", ".join(p for p in parts if p) or "unknown"


def version_key(version: str) -> tuple[int, ...]:
    """'2.17' -> (2, 17); non-numbers sort first."""
    return tuple(int(x) if x.isdigit() else -1 for x in version.split("."))


def find_manifest(project: str, dist: Path) -> Path:
    """dist/<project>-<platform>.manifest.json (the one whose project is `project`)."""
    for path in sorted(dist.glob(f"{project}-*.manifest.json")):
        try:
            if json.loads(path.read_text()).get("project") == project:
                return path
        except (OSError, ValueError):
            continue
    raise UserError(f"no manifest of project '{project}' in {dist}/; build it first: make PROJECT={project} pack")


def summary(manifest_file: Path, lock_file: Path | None = None, base: str | None = None, top: int = TOP) -> str:
    """The Markdown job summary of one built project."""
    try:
        m = json.loads(manifest_file.read_text())
    except (OSError, ValueError) as exc:
        raise UserError(f"{manifest_file}: cannot read the manifest ({exc}); run make pack") from None
    tarball = m.get("tarball") or {}
    if not tarball.get("name"):
        raise UserError(f"{manifest_file}: records no archive (the copy beside the archive does); run make pack")
    sizes = archive_sizes(manifest_file.parent / tarball["name"])
    lines = [
        f"### {m.get('project', '?')}: `{tarball['name']}`",
        "",
        "| | |",
        "| --- | --- |",
        f"| archive | {human(tarball.get('size') or sizes.archive_bytes)} ({tarball.get('format') or '?'}), "
        f"{human(sizes.total)} unpacked |",
        f"| sha256 | `{tarball.get('sha256', '')}` |",
        f"| packages | {len(m.get('packages') or [])} (python {m.get('python', '?')}) |",
        f"| target | {target_text(m.get('target') or {})} |",
        f"| slim: true would leave out | {slim_saving(sizes) or 'nothing'} |",
        "",
        f"**Largest packages** (of {sizes.package_count}):",
        "",
        "| package | version | unpacked | share | |",
        "| --- | --- | ---: | ---: | --- |",
    ]
    biggest = sizes.packages[0].bytes if sizes.packages else 0
    for p in sizes.packages[:top]:
        lines.append(
            f"| {p.name} | {p.version} | {human(p.bytes)} | {p.bytes / (sizes.total or 1):.1%} | "
            f"{bar(p.bytes, biggest, 20, '█')} |"
        )
    if base and lock_file is not None:
        d = lock_diff(lock_file, base, str(m.get("platform") or ""))
        lines += ["", diff_markdown(d)]
    return "\n".join(lines) + "\n"
