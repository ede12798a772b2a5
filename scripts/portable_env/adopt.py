"""Adopt an existing conda environment: write the project's lock from its records, without solving.

``make PROJECT=foo adopt FROM=/path/to/env`` reads ``FROM/conda-meta/*.json``
(written by conda, mamba, micromamba, pixi, rattler or this project) and writes
the project's two lock files (through ``portable_env.lock``'s writers) from
those records: the same URLs, builds and hashes, so ``make pack`` then builds
exactly the versions the code was developed with. The lock records the spec
hash of the project's current environment.yml, so check-lock, a fresh clone and
CI treat it as any other lock.

What is kept (setting ``adopt``):

- ``needed`` (default): the specs of the rendered environment.yml (python, the
  scanned packages, ``packages:``) and their dependency closure as the
  environment's own records state it; the rest is listed as dropped, with why;
- ``all``: every conda record of the environment.

Differences are errors that say what to change: a spec the environment cannot
satisfy (the import and its files), a record for another platform, a record
that needs more of the target than ``target:`` gives (``__glibc >=X``), an
inconsistent environment, a record without sha256 that no package cache or
channel can complete. Packages pip installed (site-packages metadata no conda
record owns, ``"channel": "pypi"`` records) are not in the lock: they are
listed by name.
"""

from __future__ import annotations

import argparse
import asyncio
import email.parser
import hashlib
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from portable_env import lock
from portable_env.errors import UserError
from portable_env.files import canon, spec_name, write_atomic
from portable_env.settings import Settings, load

META_SUFFIXES = (".dist-info", ".egg-info")


# ---------------------------------------------------------------- reading the environment


@dataclass(frozen=True)
class PipPackage:
    """A Python distribution in the environment that no conda record owns."""

    name: str
    version: str
    where: str  # path relative to the prefix
    editable: str = ""  # the source location of an editable install


@dataclass
class Env:
    """The conda records of an environment (normalised name -> PrefixRecord) and what pip put there."""

    prefix: Path
    records: dict[str, Any]
    raw: dict[str, dict[str, Any]]  # name -> the conda-meta JSON as written
    meta: dict[str, Path]  # name -> its conda-meta file
    pip: list[PipPackage] = field(default_factory=list)


def check_prefix(prefix: str) -> Path:
    """FROM as a Path, when it is an existing directory with conda-meta/; UserError otherwise."""
    usage = "make PROJECT=<name> adopt FROM=/path/to/env (the environment's prefix: the folder holding conda-meta/)"
    if not prefix.strip():
        raise UserError(f"FROM is not set: {usage}")
    path = Path(prefix)
    if not path.is_dir():
        raise UserError(f"FROM={prefix}: no such directory; {usage}")
    if not (path / "conda-meta").is_dir():
        raise UserError(
            f"FROM={prefix} has no conda-meta/: it is not a conda environment\n"
            "  give the environment's prefix: `conda env list` shows them (pixi: .pixi/envs/default)"
        )
    return path


def read_env(prefix: Path) -> Env:
    """The conda records of prefix/conda-meta, and the pip-installed packages of its site-packages."""
    import rattler

    env = Env(prefix, {}, {}, {})
    for path in sorted((prefix / "conda-meta").glob("*.json")):
        try:
            raw = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise UserError(f"{path}: not a readable conda-meta record ({exc}); repair or remove it") from None
        if not isinstance(raw, dict) or not raw.get("name"):
            raise UserError(f"{path}: not a conda-meta record (no package name); repair or remove it")
        if str(raw.get("channel", "")).rstrip("/").endswith("pypi"):
            where = path.relative_to(prefix).as_posix()
            env.pip.append(PipPackage(str(raw["name"]), str(raw.get("version", "")), where))
            continue
        try:
            record = rattler.PrefixRecord.from_path(path)
        except Exception as exc:  # rattler raises its own parse errors
            raise UserError(f"{path}: not a conda-meta record rattler can read ({exc}); repair or remove it") from None
        name = record.name.normalized
        if name in env.records:
            raise UserError(
                f"{prefix} has two records of '{name}' ({env.meta[name].name}, {path.name}): the "
                "environment is broken; repair it (conda install --force-reinstall) before adopting it"
            )
        env.records[name], env.raw[name], env.meta[name] = record, raw, path
    if not env.records:
        raise UserError(f"FROM={prefix}: conda-meta/ holds no conda package records; is it an environment?")
    env.pip += pip_installed(prefix, env.raw.values())
    return env


def _metadata(path: Path) -> tuple[str, str]:
    """Name and version of a .dist-info/.egg-info directory (or PKG-INFO-style file)."""
    meta = path
    if path.is_dir():
        meta = next((path / n for n in ("METADATA", "PKG-INFO") if (path / n).is_file()), path / "METADATA")
    try:
        msg = email.parser.Parser().parsestr(meta.read_text(errors="replace"), headersonly=True)
    except OSError:
        msg = None
    stem = path.name.rsplit(".", 1)[0]
    name = (msg.get("Name") if msg else None) or stem.split("-", 1)[0]
    version = (msg.get("Version") if msg else None) or (stem.split("-", 1)[1] if "-" in stem else "")
    return str(name), str(version)


def _editable(path: Path) -> str:
    """Where an editable install's source lives (PEP 610 direct_url.json), or ''."""
    try:
        data = json.loads((path / "direct_url.json").read_text())
    except (OSError, ValueError):
        return ""
    if isinstance(data, dict) and (data.get("dir_info") or {}).get("editable"):
        return str(data.get("url", "")).removeprefix("file://")
    return ""


def pip_installed(prefix: Path, raws: Any) -> list[PipPackage]:
    """Distributions in site-packages whose metadata no conda record owns (pip, editable, egg-link)."""
    owned: set[str] = set()
    for raw in raws:
        for rel in raw.get("files") or []:
            parts = str(rel).split("/")
            for i, part in enumerate(parts):
                if part.endswith(META_SUFFIXES):
                    owned.add("/".join(parts[: i + 1]))
                    break
    found = []
    for site in sorted(prefix.glob("lib/python*/site-packages")):
        for entry in sorted(site.iterdir()):
            rel = entry.relative_to(prefix).as_posix()
            if entry.name.endswith(META_SUFFIXES) and rel not in owned:
                name, version = _metadata(entry)
                found.append(PipPackage(name, version, rel, _editable(entry)))
            elif entry.name.endswith(".egg-link") and rel not in owned:  # setup.py develop
                try:
                    source = entry.read_text().splitlines()[0].strip()
                except (OSError, IndexError):
                    source = "?"
                found.append(PipPackage(entry.name.removesuffix(".egg-link"), "", rel, source))
    return found


# ---------------------------------------------------------------- completing hashes


def _hex(digest: bytes | None) -> str:
    return digest.hex() if digest else ""


def _file_digests(path: Path) -> tuple[str, str]:
    """md5 and sha256 of a file."""
    md5, sha = hashlib.md5(usedforsecurity=False), hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            md5.update(block)
            sha.update(block)
    return md5.hexdigest(), sha.hexdigest()


def package_caches(env: Env, extra: list[Path]) -> list[Path]:
    """Package caches that may hold the environment's packages: the ones its records name, the
    environment's own pkgs/ (and a conda root's, for <root>/envs/<name>), then extra."""
    dirs: list[Path] = []
    for raw in env.raw.values():
        for key in ("extracted_package_dir", "package_tarball_full_path"):
            if raw.get(key):
                dirs.append(Path(str(raw[key])).parent)
    dirs.append(env.prefix / "pkgs")
    if env.prefix.parent.name == "envs":
        dirs.append(env.prefix.parent.parent / "pkgs")
    dirs += extra
    seen: list[Path] = []
    for d in dirs:
        if d not in seen and d.is_dir():
            seen.append(d)
    return seen


def _stem(record: Any) -> str:
    return f"{record.name.normalized}-{record.version}-{record.build}"


def _from_archive(record: Any, raw: dict[str, Any], caches: list[Path]) -> tuple[str, str] | None:
    """(sha256, where) from the package archive in a cache whose md5 is the record's."""
    candidates = [Path(str(raw["package_tarball_full_path"]))] if raw.get("package_tarball_full_path") else []
    candidates += [d / record.file_name for d in caches]
    for path in candidates:
        if path.is_file() and record.md5:
            md5, sha = _file_digests(path)
            if md5 == _hex(record.md5):
                return sha, str(path)
    return None


def _from_repodata_record(record: Any, caches: list[Path]) -> tuple[str, str] | None:
    """(sha256, where) from conda's extracted info/repodata_record.json with the record's md5."""
    for d in caches:
        path = d / _stem(record) / "info" / "repodata_record.json"
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(data, dict) and data.get("sha256") and record.md5 and data.get("md5") == _hex(record.md5):
            return str(data["sha256"]), str(path)
    return None


def _from_rattler_cache(record: Any, raw: dict[str, Any], caches: list[Path]) -> tuple[str, str] | None:
    """(sha256, where) from a rattler package cache (build/pkgs): py-rattler 0.28 writes the sha256
    of the archive it extracted into <name>-<version>-<build>.lock (after an 8-byte revision).
    Taken only when the extracted files are the record's (their sha256s in info/paths.json)."""
    installed = {str(p.get("sha256")) for p in (raw.get("paths_data") or {}).get("paths") or [] if p.get("sha256")}
    if not installed:
        return None
    for d in caches:
        try:
            head = (d / f"{_stem(record)}.lock").read_bytes()
            paths = json.loads((d / _stem(record) / "info" / "paths.json").read_text()).get("paths") or []
        except (OSError, ValueError, AttributeError):
            continue
        shipped = {str(p.get("sha256")) for p in paths if p.get("sha256") and not p.get("prefix_placeholder")}
        if len(head) >= 40 and shipped and shipped <= installed:
            return head[8:40].hex(), str(d / f"{_stem(record)}.lock")
    return None


async def _from_channels(records: list[Any], cache_dir: Path) -> dict[str, tuple[str, str]]:
    """name -> (sha256, where) from the repodata of the channel each record's URL points at (md5 checked)."""
    import rattler

    groups: dict[tuple[str, str], list[Any]] = {}
    for r in records:
        groups.setdefault((str(r.url).rsplit("/", 2)[0], r.subdir), []).append(r)
    gateway = rattler.Gateway(cache_dir=cache_dir)
    found: dict[str, tuple[str, str]] = {}
    for (channel, subdir), group in groups.items():
        try:
            names = [r.name.normalized for r in group]
            result = await gateway.query([channel], [rattler.Subdir(subdir)], names, recursive=False)
        except Exception:  # an unreachable or unindexed channel: another source may still pin them
            continue
        listed = {(c.file_name, _hex(c.md5)): c for part in result for c in part}
        for r in group:
            hit = listed.get((r.file_name, _hex(r.md5)))
            if hit is not None and hit.sha256:
                found[r.name.normalized] = (_hex(hit.sha256), f"repodata of {channel}/{subdir}")
    return found


def complete_hashes(env: Env, names: list[str], caches: list[Path], cache_dir: Path) -> dict[str, str]:
    """Give the records of names that lack a sha256 (older conda writes md5 only) the sha256 of their
    package, from a package archive, conda's repodata_record.json, the channel's repodata or a
    rattler cache, each checked against the record. Returns name -> where it came from; UserError
    naming the records no source could pin."""
    lacking = [n for n in names if not env.records[n].sha256]
    done: dict[str, tuple[str, str]] = {}
    for n in lacking:
        r, raw = env.records[n], env.raw[n]
        hit = _from_archive(r, raw, caches) or _from_repodata_record(r, caches)
        if hit:
            done[n] = hit
    rest = [env.records[n] for n in lacking if n not in done and env.records[n].md5]
    if rest:
        done.update(asyncio.run(_from_channels(rest, cache_dir)))
    for n in lacking:
        if n not in done and (hit := _from_rattler_cache(env.records[n], env.raw[n], caches)):
            done[n] = hit
    unpinned = [n for n in lacking if n not in done]
    if unpinned:
        lines = [
            f"cannot pin {len(unpinned)} record(s) of FROM={env.prefix}: their conda-meta records have no sha256 "
            "(older conda writes md5 only) and no package cache or channel has their package:"
        ]
        lines += [f"  - {n} {env.records[n].version} {env.records[n].build} ({env.meta[n].name})" for n in unpinned]
        lines.append(
            f"  searched: {', '.join(str(c) for c in caches) or 'no package cache'}, and the channels of their URLs"
        )
        lines.append(
            "  fix: put the package files (<name>-<version>-<build>.conda or .tar.bz2) into one of those "
            "folders or make their channel reachable, or reinstall them with a newer conda, then adopt again"
        )
        raise UserError("\n".join(lines))
    for n, (sha, _) in done.items():
        env.records[n].sha256 = bytes.fromhex(sha)
    return {n: where for n, (_, where) in done.items()}


# ---------------------------------------------------------------- what to keep


def _spec(text: str, origin: str) -> Any:
    import rattler

    try:
        return rattler.MatchSpec(text)
    except Exception as exc:
        raise UserError(f"{origin}: {text!r} is not a match spec rattler reads ({exc})") from None


def _show(record: Any) -> str:
    return f"{record.name.normalized} {record.version} {record.build}"


def closure(env: Env, roots: list[str], keep_all: bool) -> tuple[dict[str, str], list[str], list[str]]:
    """What to keep (name -> why), the root specs the environment lacks, and other problems
    (a root it has in another version, a record whose dependency it lacks or does not match)."""
    kept: dict[str, str] = {}
    missing: list[str] = []
    problems: list[str] = []
    queue: list[str] = []
    for text in roots:
        spec = _spec(text, "environment.yml")
        name = spec.name.normalized
        record = env.records.get(name)
        if record is None:
            missing.append(text)
        elif not spec.matches(record):
            problems.append(f"the project asks for '{text}'; FROM has {_show(record)}")
        elif name not in kept:
            kept[name] = f"asked: {text}"
            queue.append(name)
    if keep_all:
        for name in env.records:
            if name not in kept:
                kept[name] = "adopt: all"
        queue = list(env.records)
    seen: set[str] = set()
    while queue:
        name = queue.pop(0)
        if name in seen:
            continue
        seen.add(name)
        record = env.records[name]
        for dep in record.depends or []:
            spec = _spec(dep, str(env.meta[name]))
            dname = spec.name.normalized
            if dname.startswith("__"):
                continue  # a virtual package: checked against the target
            target = env.records.get(dname)
            if target is None:
                problems.append(f"{_show(record)} depends on '{dep}', which FROM does not have")
            elif not spec.matches(target):
                problems.append(f"{_show(record)} depends on '{dep}'; FROM has {_show(target)}")
            else:
                kept.setdefault(dname, f"needed by {name}")
                queue.append(dname)
    return kept, missing, problems


def _virtual(name: str, version: str, build: str, platform: str) -> Any:
    """A virtual package as a record a MatchSpec can test."""
    import rattler

    return rattler.PackageRecord(
        name=name, version=version, build=rattler.BuildString(build), build_number=0, subdir=platform
    )


def target_problems(env: Env, names: list[str], settings: Settings) -> list[str]:
    """Records of names for another platform, or depending on a virtual package (``__glibc >=X``,
    ``__cuda``, ...) the target machine (settings.target, as lock.Target declares it) does not satisfy."""
    target = lock.Target.of(settings.target)
    declared = {n: _virtual(n, v, b, settings.platform) for n, v, b in target.virtual_packages(settings.platform)}
    origin = {
        "__glibc": f"TARGET_GLIBC={target.glibc}"
        if "target_glibc" in settings.overrides
        else f"target glibc {target.glibc} ({settings.settings_file}, 'target:')",
        "__linux": f"kernel {target.linux} (what target glibc {target.glibc} implies)",
        "__archspec": f"target cpu {target.cpu} ({settings.settings_file}, 'target:')",
        "__cuda": f"target cuda {target.cuda} ({settings.settings_file}, 'target:')",
    }
    found = []
    for name in names:
        record = env.records[name]
        if record.subdir not in (settings.platform, "noarch"):
            found.append(f"{_show(record)} is a {record.subdir} package; the project builds {settings.platform}")
        for dep in record.depends or []:
            spec = _spec(dep, str(env.meta[name]))
            vname = spec.name.normalized
            if not vname.startswith("__"):
                continue
            if vname not in declared:
                what = (
                    'a CUDA driver; the target has none: set target: {cuda: "12.4"}'
                    if vname == "__cuda"
                    else (f"{vname}, which the target machine ({target.describe()}) does not have")
                )
                found.append(f"{_show(record)} depends on '{dep}' ({what} in {settings.settings_file})")
            elif not spec.matches(declared[vname]):
                found.append(
                    f"{_show(record)} depends on '{dep}'; the {origin.get(vname, vname)} does not satisfy it: "
                    f"adopt an environment built for the target machine, or raise the target in "
                    f"{settings.settings_file} (or TARGET_GLIBC=) if every target machine has it"
                )
    return found


def missing_message(missing: list[str], env: Env, scan: dict[str, Any], settings: Settings) -> str:
    """Explain specs FROM has no conda package for: the imports and files behind each, and the fixes."""
    pip = {canon(p.name): p for p in env.pip}
    where = settings.settings_file
    lines = [f"FROM={env.prefix} has no conda package for what the project needs:"]
    for text in missing:
        name = _spec(text, "environment.yml").name.normalized
        imports = (scan.get("imports") or {}).get(name) or {}
        lines.append(f"  - '{name}'" + (f" (asked: {text})" if text != name else ""))
        if canon(name) in pip:
            p = pip[canon(name)]
            lines.append(
                f"      it is pip-installed in FROM ({p.name} {p.version}, {p.where}): a lock holds conda packages "
                "only (PyPI packages: issue 15's `pypi:` setting)"
            )
        others = [f for f in lock.name_forms(name) if f in env.records]
        for imp, files in imports.items():
            shown = ", ".join(files[:3]) + (" ..." if len(files) > 3 else "")
            lines.append(f"      import '{imp}' (in {shown})")
            for other in others:
                lines.append(
                    f"      FROM has '{other}': if '{imp}' comes from it, add to {where}:  imports: {{{imp}: {other}}}"
                )
            lines.append(
                f"      install it into the environment (conda install -p {env.prefix} {name}) and adopt again,"
            )
            lines.append(
                f"      or if '{imp}' comes from another conda package, add to {where}:  imports: {{{imp}: <package>}}"
            )
            lines.append(f'      or if it is not needed, add:  imports: {{{imp}: ""}}')
        if not imports and name == "python":
            lines.append("      FROM has no python; adopt a Python environment")
        elif not imports:
            lines.append(
                f"      listed in 'packages:' of {where} (or the template): install it into the environment, "
                "or remove it from packages:"
            )
    return "\n".join(lines)


# ---------------------------------------------------------------- the step


def write_locks(
    records: list[Any], env_file: Path, lock_file: Path, explicit: Path, platform: str, target: lock.Target
) -> None:
    """Both lock files of records through portable_env.lock's writers, recording the spec hash of
    env_file and target (what lock-env records, so check-lock calls the lock current)."""
    spec = lock.read_env_file(env_file)
    digest = lock.spec_hash(env_file, target, platform)
    origin = "adopted from an existing environment by scripts/adopt"
    lock.write_lock(records, spec.channels, platform, lock_file, target, origin)
    write_atomic(explicit, lock.explicit_text(records, platform, spec.name, digest, target, origin))


def _table(rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  " + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]


def foreign_channels(records: list[Any], channels: list[str]) -> list[str]:
    """The channels records come from (their URLs) that are not among channels (names and URLs compared
    as rattler resolves them)."""
    import rattler

    def base(url: str) -> str:
        try:
            return str(rattler.Channel(url).base_url)
        except Exception:  # not a channel rattler can name: compare as written
            return url.rstrip("/") + "/"

    project = {base(c) for c in channels}
    return sorted({u for r in records if base(u := str(r.url).rsplit("/", 2)[0]) not in project})


def dropped_reasons(env: Env, kept: dict[str, str]) -> dict[str, str]:
    """Why each record not kept was dropped."""
    users: dict[str, list[str]] = {}
    for name, record in env.records.items():
        for dep in record.depends or []:
            users.setdefault(_spec(dep, str(env.meta[name])).name.normalized, []).append(name)
    why = {}
    for name in env.records:
        if name in kept:
            continue
        by = sorted(set(users.get(name, [])))
        why[name] = (
            f"needed only by dropped packages ({', '.join(by)})"
            if by
            else "not imported by the project, not in packages:, no kept package depends on it"
        )
    return why


def adopt(
    from_: str,
    env_file: Path,
    deps: Path | None,
    settings_path: Path,
    lock_file: Path,
    explicit: Path,
    pkgs: list[Path],
    cache_dir: Path,
) -> None:
    """Write lock_file + explicit from the conda environment FROM (see the module docstring)."""
    settings = load(settings_path)
    prefix = check_prefix(from_)
    env = read_env(prefix)
    roots = lock.read_env_file(env_file).specs
    kept, missing, problems = closure(env, roots, settings.adopt == "all")
    if "pip" in missing and "pip" not in {spec_name(s) for s in settings.packages}:
        # pip is added to every python environment (settings pip: true), not asked for by the code.
        missing.remove("pip")
        print(
            f"note: adopt: FROM={prefix} has no pip; the adopted environment has none either "
            "(install pip into FROM to have it, or set pip: false to say so)",
            file=sys.stderr,
        )
    if missing:
        raise UserError(missing_message(missing, env, lock.scan_results(deps), settings))
    problems += target_problems(env, sorted(kept), settings)
    if problems:
        raise UserError(
            f"FROM={prefix} does not fit the project:\n"
            + "\n".join(f"  - {p}" for p in problems)
            + f"\n  change the environment, or the project's settings ({settings.settings_file}, "
            "PYTHON=, TARGET_GLIBC=), and adopt again"
        )
    no_url = [n for n in kept if not env.records[n].url or str(env.records[n].url).startswith("<")]
    if no_url:
        raise UserError(
            f"FROM={prefix}: no package URL in the records of {', '.join(sorted(no_url))}; "
            "a lock needs where to fetch each package: reinstall them from a channel and adopt again"
        )
    completed = complete_hashes(env, sorted(kept), package_caches(env, pkgs), cache_dir)
    records = [env.records[n] for n in sorted(kept)]
    write_locks(records, env_file, lock_file, explicit, settings.platform, lock.Target.of(settings.target))

    why = dropped_reasons(env, kept)
    print(f"adopt: {len(records)} of {len(env.records)} conda packages of {prefix} -> {explicit}, {lock_file}")
    for n, where in sorted(completed.items()):
        print(f"adopt: {n}: no sha256 in {env.meta[n].name} (older conda); completed from {where}")
    if why:
        print(f"adopt: dropped {len(why)} (adopt: all in {settings.settings_file} keeps them):")
        rows = [["package", "version", "build", "why"]]
        rows += [[n, str(env.records[n].version), str(env.records[n].build), why[n]] for n in sorted(why)]
        print("\n".join(_table(rows)))
    if env.pip:
        print("adopt: not in the lock (pip-installed, not conda packages; install them with conda, or see issue 15):")
        conda = {canon(n): n for n in env.records}
        table = [["package", "version", "where"]]
        for p in sorted(env.pip, key=lambda p: canon(p.name)):
            note = f"editable: {p.editable}" if p.editable else p.where
            if canon(p.name) in conda:
                note += f" (over conda's {_show(env.records[conda[canon(p.name)]])}: the lock has conda's)"
            table.append([p.name, p.version or "?", note])
        print("\n".join(_table(table)))
    foreign = foreign_channels(records, lock.read_env_file(env_file).channels)
    if foreign:
        print(
            f"adopt: note: packages come from {', '.join(foreign)}, not from the project's channels; "
            "make lock would re-solve against those (set channels: in "
            f"{settings.settings_file} or CHANNELS= to keep them)",
            file=sys.stderr,
        )
    print(f"adopt: make PROJECT={settings.project} pack now builds exactly these versions (no solve)")


def main(argv: list[str] | None = None) -> int:
    """scripts/adopt."""
    ap = argparse.ArgumentParser(
        prog="adopt", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--from", dest="from_", required=True, metavar="PREFIX", help="the conda environment to adopt")
    ap.add_argument("--env-file", type=Path, required=True, help="the project's rendered environment.yml")
    ap.add_argument("--deps", type=Path, help="deps.yml (names the imports behind a missing package)")
    ap.add_argument("--settings", type=Path, required=True, help="build/P/KEY/settings.json")
    ap.add_argument("--lock", type=Path, required=True, help="rattler lock file to write")
    ap.add_argument("--explicit", type=Path, required=True, help="@EXPLICIT lock to write")
    ap.add_argument(
        "--pkgs", type=Path, action="append", default=[], help="a package cache to complete missing sha256 from"
    )
    ap.add_argument("--cache-dir", type=Path, default=Path("build/cache"), help="repodata cache")
    args = ap.parse_args(argv)
    adopt(args.from_, args.env_file, args.deps, args.settings, args.lock, args.explicit, args.pkgs, args.cache_dir)
    return 0
