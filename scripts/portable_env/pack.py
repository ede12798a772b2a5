"""Pack a conda environment into a relocatable, reproducible archive.

conda-pack does the relocation work through its public interface
(``CondaEnv`` / ``File`` / ``CondaEnv.pack``): prefix rewriting,
bin/conda-unpack, the activate scripts. A file conda-pack would pack as it
is (``file_mode`` None: no prefix in it) goes into the archive straight from
its source; conda-pack stages the others as they will be unpacked (its
`no-archive` format beside the output: hard links, new files only where it
rewrites bytes), plus its own scripts. This module writes both as one tar,
streamed into the compressor (tests/test_pack.py checks it holds what
conda-pack's own tar holds), so identical environments give byte-identical
archives, on any checkout path, at any time and with any number of threads:
  - entries in a fixed order: the files packed as they are, sorted by
    path, then (written while the compressor works through those)
    conda-pack's output and the records, sorted,
  - mtime = the archive time (formats.archive_mtime: $SOURCE_DATE_EPOCH,
    else the newest package build timestamp, which the lock fixes),
  - owner/group 0/0 with no names, permissions 0755 or 0644,
  - conda-meta/*.json without the fields that name the build machine's paths
    (extracted_package_dir, link.source, sha256_in_prefix and the size of
    prefix-rewritten files): they are wrong after unpacking anyway,
  - compression whose output does not depend on the thread count
    (compress.py); the tar itself is tarwrite.py.
Files no package owns that do not contain the build path (shipped code,
the manifest, compiled .pyc files) are packed as they are, so
bin/conda-unpack does not list them with the build path.

Scripts run without activation: every bin/ script whose first line starts
the environment's python (`#!<prefix>/bin/python3.X`, as packages' entry
points and scripts are installed, or `#!/usr/bin/env python3.X`) and
bin/conda-unpack get a first line that finds the python beside the script
(symlinks resolved) instead of conda-pack's `#!/usr/bin/env python3.X`,
which picks the target's own python, or none: they run at any unpack path,
before and after conda-unpack, with any PATH (RELOCATABLE_SHEBANG).

Binary prefixes are never left behind: a `file_mode: binary` file with a
prefix placeholder (conda-forge's bin/python3.X, libpython, libcrypto) is
relocated from its package cache copy; when that copy is gone
(env.uncached_binaries) pack refuses, naming the files, their packages and
the fix, instead of packing the file with the build path in it (conda-pack
only warns).
The archive is written to OUT.tmp and renamed.
"""

from __future__ import annotations

import argparse
import contextlib
import fnmatch
import json
import os
import re
import shutil
import stat
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from portable_env import formats
from portable_env.compress import writer
from portable_env.env import uncached_binaries
from portable_env.errors import UserError, run
from portable_env.files import env_records
from portable_env.tarwrite import Blob, TarWriter, tree_entries

# slim: true leaves these out (fnmatch on paths in the prefix; '*' crosses
# '/'): installed packages' test suites, static libraries, C headers and
# documentation. Nothing a packed program imports at run time. (.pyc files
# stay: they exist only when compile: true asked for them.)
SLIM_EXCLUDES = [
    "lib/python*/site-packages/*/tests/*",
    "lib/python*/site-packages/*/testing/tests/*",
    "*.a",
    "include/*",
    "share/doc/*",
    "share/man/*",
    "share/info/*",
]
SLIM_RE = re.compile("|".join(f"(?:{fnmatch.translate(p)})" for p in SLIM_EXCLUDES))


def slimmed(target: str) -> bool:
    """Whether slim: true leaves the prefix path target out (SLIM_EXCLUDES, fnmatch's rules)."""
    return SLIM_RE.match(target) is not None


def env_mtime(prefix: Path, records: list[tuple[Path, dict[str, Any]]] | None = None) -> int:
    """The archive time of the environment at prefix (formats.archive_mtime of
    its packages; records: files.env_records(prefix), when the caller has them)."""
    found = env_records(prefix) if records is None else records
    return formats.archive_mtime([record.get("timestamp") for _meta, record in found])


def scrub_record(record: dict[str, Any]) -> bytes:
    """A conda-meta record (changed in place) without the fields that depend on the build paths."""
    record.pop("extracted_package_dir", None)
    record.pop("package_tarball_full_path", None)
    (record.get("link") or {}).pop("source", None)
    for entry in (record.get("paths_data") or {}).get("paths", []):
        entry.pop("sha256_in_prefix", None)
        if entry.get("prefix_placeholder"):
            entry.pop("size_in_bytes", None)
        if str(entry.get("path_type", "")).endswith("python_entry_point"):
            # Written at install with the build prefix in its first line (and
            # rewritten by pack): its hash and size are the build path's.
            entry.pop("sha256", None)
            entry.pop("size_in_bytes", None)
    return (json.dumps(record) + "\n").encode()


def is_record(name: str) -> bool:
    """Whether an archive entry is a conda-meta package record."""
    return name.startswith("conda-meta/") and name.endswith(".json") and name.count("/") == 1


# --- what conda-pack packs -----------------------------------------------------


def _unowned_pycs(prefix: Path, known: set[str]) -> list[str]:
    """.pyc files conda-pack leaves out, the ones `compile: true` made, kept:
    the files of a __pycache__ folder beside a packed .py file that are not
    packed (conda-pack drops exactly the unowned .pyc whose source a package
    owns, and importlib puts those there)."""
    found = []
    for folder in sorted({t.rpartition("/")[0] for t in known if t.endswith(".py")}):
        cache = f"{folder}/__pycache__" if folder else "__pycache__"
        try:
            with os.scandir(prefix / cache) as it:
                names = [e.name for e in it if e.name.endswith(".pyc") and not e.is_dir()]
        except (FileNotFoundError, NotADirectoryError):
            continue
        found += [f"{cache}/{n}" for n in names if f"{cache}/{n}" not in known]
    return sorted(found)


# --- scripts that run without activation -------------------------------------

# The pip/distlib polyglot: /bin/sh runs line 2 (exec the python beside the
# script's real path), python reads lines 2-3 as a string and runs the rest.
RELOCATABLE_SHEBANG = (
    "#!/bin/sh\n"
    '\'\'\'exec\' "$(dirname -- "$(readlink -f -- "$0" 2>/dev/null || printf %s "$0")")/{python}"'
    '{options} "$0" "$@"\n'
    "' '''\n"
)
_SHEBANG = re.compile(rb"#![ \t]*(\S+)([^\n]*)\n")
_PYTHON_NAME = re.compile(r"python(\d+(\.\d+)?)?")
_OPTION = re.compile(r"-[A-Za-z]+")


def env_python_of(first: bytes, prefix: bytes, pythons: set[str]) -> tuple[str, list[str]] | None:
    """(python name, options) when a script's first bytes start the
    environment's python at prefix (or `/usr/bin/env pythonX` with that
    python in the environment: conda-pack's and rattler's long-path form)."""
    m = _SHEBANG.match(first)
    if not m:
        return None
    exe, words = m.group(1), m.group(2).decode(errors="replace").split()
    if exe.startswith(prefix + b"/bin/"):
        name = exe[len(prefix) + 5 :].decode(errors="replace")
    elif exe == b"/usr/bin/env" and words:
        name, words = words[0], words[1:]
    else:
        return None
    if not _PYTHON_NAME.fullmatch(name) or name not in pythons or not all(_OPTION.fullmatch(w) for w in words):
        return None
    return name, words


def relocatable(data: bytes, python: str, options: list[str]) -> bytes:
    """A script with its first line replaced by RELOCATABLE_SHEBANG."""
    head = RELOCATABLE_SHEBANG.replace("{python}", python).replace("{options}", "".join(f" {o}" for o in options))
    return head.encode() + (data.split(b"\n", 1)[1] if b"\n" in data else b"")


def _relocatable_scripts(prefix: Path, files: list[Any], scratch: Path) -> list[Any]:
    """files with each bin/ script that starts the env's python replaced by
    a relocatable copy written under scratch (never the env's own file: it
    is a hardlink into the package cache)."""
    from conda_pack import File

    bin_dir = prefix / "bin"
    pythons = {p.name for p in bin_dir.glob("python*")} if bin_dir.is_dir() else set()
    raw = str(prefix).encode()
    out = []
    for file in files:
        if not file.target.startswith("bin/") or file.target.count("/") != 1:
            out.append(file)
            continue
        path = prefix / file.target
        if path.is_symlink() or not path.is_file():
            out.append(file)
            continue
        with open(path, "rb") as fh:
            found = env_python_of(fh.read(512), raw, pythons)
        if found is None:
            out.append(file)
            continue
        data = relocatable(path.read_bytes(), *found)
        copy = scratch / file.target
        copy.parent.mkdir(parents=True, exist_ok=True)
        copy.write_bytes(data)
        os.chmod(copy, path.stat().st_mode & 0o777)
        if raw in data:  # the build path further down: conda-unpack rewrites it
            out.append(
                File(str(copy), file.target, is_conda=file.is_conda, prefix_placeholder=str(prefix), file_mode="text")
            )
        else:
            out.append(File(str(copy), file.target, is_conda=file.is_conda, file_mode=None))
    return out


def refuse_uncached_binaries(
    prefix: Path, project: str = "", records: list[tuple[Path, dict[str, Any]]] | None = None
) -> None:
    """UserError when a binary-placeholder file cannot be restored from the package cache."""
    lost = uncached_binaries(prefix, records)
    if not lost:
        return
    shown = [f"  {name}: {', '.join(paths[:3])}{' ...' if len(paths) > 3 else ''}" for name, paths in lost.items()]
    p = project or "<project>"
    raise UserError(
        f"{prefix}: {sum(map(len, lost.values()))} files carry a binary prefix placeholder but their package "
        "cache entries are gone, so conda-pack cannot relocate them (the archive would point at the build path):\n"
        + "\n".join(shown)
        + f"\n  recreate the environment, which fetches those packages again: make PROJECT={p} clean, "
        f"then make PROJECT={p} pack"
    )


def _as_packed(file: Any, prefix: bytes) -> Any:
    """An unowned file without the build path in it needs no rewriting: pack
    it as it is (conda-pack would list it in bin/conda-unpack, with the build
    path, so the archive would differ per checkout)."""
    from conda_pack import File

    if (
        file.file_mode == "unknown"
        and not file.is_conda
        and os.path.isfile(file.source)
        and not os.path.islink(file.source)
    ):
        with open(file.source, "rb") as f:
            if prefix not in f.read():
                return File(file.source, file.target, is_conda=False, file_mode=None)
    return file


def conda_env(prefix: Path, scratch: Path | None = None) -> Any:
    """The conda_pack.CondaEnv to pack: every file of prefix (compiled .pyc
    files included), unowned files without the build path as they are,
    scripts made relocatable (copies written under scratch, when given)."""
    from conda_pack import CondaEnv, File

    env = CondaEnv.from_prefix(str(prefix))
    known = {f.target for f in env.files}
    extra = [
        File(os.path.join(env.prefix, rel), rel, is_conda=False, file_mode="unknown")
        for rel in _unowned_pycs(Path(env.prefix), known)
    ]
    raw_prefix = env.prefix.encode()
    files = [_as_packed(f, raw_prefix) for f in [*env.files, *extra]]
    if scratch is not None:
        files = _relocatable_scripts(Path(env.prefix), files, scratch)
    return CondaEnv(env.prefix, files)


def slim_split(files: list[Any]) -> tuple[list[Any], int, int]:
    """The conda-pack files slim: true keeps (slimmed), and the number and
    bytes of the regular files it leaves out."""
    kept, count, size = [], 0, 0
    for f in files:
        if not slimmed(f.target):
            kept.append(f)
            continue
        with contextlib.suppress(OSError):
            st = os.lstat(f.source)
            if stat.S_ISREG(st.st_mode):
                count, size = count + 1, size + st.st_size
    return kept, count, size


# --- the archive ---------------------------------------------------------------


def finish_stage(staged: Path, records: list[tuple[Path, dict[str, Any]]]) -> dict[str, Blob]:
    """What the archive holds beside conda-pack's no-archive output: the
    conda-meta records scrubbed (scrub_record; records: files.env_records,
    consumed) and bin/conda-unpack with a relocatable first line (it
    replaces the staged one)."""
    made: dict[str, Blob] = {
        f"conda-meta/{meta.name}": (scrub_record(record), 0o644) for meta, record in records if not meta.is_symlink()
    }
    unpack = staged / "bin" / "conda-unpack"
    if unpack.is_file():  # conda-pack writes `#!/usr/bin/env python`
        made["bin/conda-unpack"] = (relocatable(unpack.read_bytes(), "python", []), 0o755)
    return made


def _drop_conda_packs_temp_file(staged: Path, targets: set[str]) -> None:
    """conda-pack moves its (empty) temporary output file into a no-archive
    output folder: remove the one top-level entry no packed file explains."""
    expected = {t.split("/", 1)[0] for t in targets} | {"bin"}
    extra = [p for p in staged.iterdir() if p.name not in expected]
    if len(extra) != 1 or not extra[0].is_file() or extra[0].is_symlink() or extra[0].stat().st_size:
        raise UserError(
            f"{staged}: unexpected entries {sorted(p.name for p in extra)} after conda-pack; run make again"
        )
    extra[0].unlink()


@contextmanager
def _temp_files_in(folder: Path) -> Iterator[None]:
    """conda-pack writes its output through a temporary file: keep it beside
    the output (same disk, no copy) instead of the system temp dir."""
    saved = tempfile.tempdir
    tempfile.tempdir = str(folder)
    try:
        yield
    finally:
        tempfile.tempdir = saved


def pack(
    prefix: Path,
    out: Path,
    fmt: str = formats.DEFAULT,
    level: int | None = None,
    jobs: int = 1,
    mtime: int | None = None,
    slim: bool = False,
    verbose: bool = False,
    project: str = "",
) -> None:
    """Pack prefix into out (through out.tmp); UserError on a bad environment
    or format, or on files that cannot be relocated (project: named in the fix)."""
    from conda_pack import CondaEnv, CondaPackException

    form = formats.get(fmt)
    if level is None:
        level = form.default_level or 0
    if form.levels and not form.levels[0] <= level <= form.levels[1]:
        raise UserError(f"compression level {level} does not fit {fmt}: valid levels {form.levels[0]}-{form.levels[1]}")
    if not (prefix / "conda-meta").is_dir():
        raise UserError(f"{prefix} is not a conda environment (no conda-meta/); rebuild it with make env")
    records = env_records(prefix)
    refuse_uncached_binaries(prefix, project, records)
    stamp = env_mtime(prefix, records) if mtime is None else mtime
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    staged = out.with_name(out.name + ".staged")
    scratch = out.with_name(out.name + ".scripts")
    try:
        for folder in (staged, scratch):
            shutil.rmtree(folder, ignore_errors=True)
        try:
            with _temp_files_in(out.parent):
                env = conda_env(prefix, scratch)
                files = [f for f in env.files if not is_record(f.target)]  # finish_stage adds them scrubbed
                if slim:
                    files, count, size = slim_split(files)
                    print(
                        f"pack: slim: leaving out {count} files, {size / 2**20:.1f} MiB (tests, headers, docs, "
                        "static libraries)",
                        file=sys.stderr,
                    )
                # conda-pack packs a file without a prefix (file_mode None) as it is: those go
                # into the archive straight from the environment; it stages the others.
                direct = [f for f in files if f.file_mode is None]
                worked = [f for f in files if f.file_mode is not None]
                CondaEnv(env.prefix, worked).pack(output=str(staged), format="no-archive", verbose=verbose, force=True)
        except CondaPackException as exc:
            raise UserError(
                f"conda-pack refused {prefix}: {exc}\n  rebuild the environment: rm -rf {prefix} and run make again"
            ) from None
        _drop_conda_packs_temp_file(staged, {f.target for f in worked})
        staged_names = set(tree_entries(staged))
        with open(tmp, "wb") as raw:
            sink = writer(raw, form, level, jobs, stamp)
            try:
                # The files packed as they are first, then (while the compressor works
                # through what it has been given) the files conda-pack wrote and the records.
                tar = TarWriter(sink, stamp)
                tar.add({f.target: f.source for f in direct if f.target not in staged_names})
                made = finish_stage(staged, records)
                tar.add({name: made.get(name) or str(staged / name) for name in {*staged_names, *made}})
                tar.close()
            finally:
                sink.close()
        os.chmod(tmp, 0o644)
        os.replace(tmp, out)
    except OSError as exc:
        raise UserError(
            f"cannot write {out}: {exc.strerror} ({exc.filename or out}); free some space or make "
            "the directory writable"
        ) from None
    finally:
        tmp.unlink(missing_ok=True)
        for folder in (staged, scratch):
            shutil.rmtree(folder, ignore_errors=True)


CLI_DOC = """Pack a conda environment into a relocatable, reproducible archive.

conda-pack (its public interface) does the relocation work; every archive
entry is then normalised (order, mtime, owners, permissions, conda-meta
records without build paths) and compressed so the same environment gives
the same bytes on any path, at any time, with any number of threads. The
entries' mtime is --mtime, else $SOURCE_DATE_EPOCH, else the newest package
build timestamp. See scripts/portable_env/pack.py.
"""


def main(argv: list[str] | None = None) -> int:
    """scripts/pack-env: see CLI_DOC."""
    ap = argparse.ArgumentParser(
        prog="pack-env", description=CLI_DOC, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--prefix", type=Path, required=True, help="the environment to pack")
    ap.add_argument("--out", type=Path, required=True, help="archive to write")
    ap.add_argument(
        "--settings", type=Path, help="build/<project>/<key>/settings.json: format, compression_level, slim"
    )
    ap.add_argument(
        "--format", choices=formats.names(), help=f"archive format (default: the settings', else {formats.DEFAULT})"
    )
    ap.add_argument("--level", type=int, help="compression level (default: the settings', else the format's default)")
    ap.add_argument(
        "--jobs",
        type=int,
        default=os.cpu_count() or 1,
        help="compression threads (default: cores; the bytes are the same for any number)",
    )
    ap.add_argument("--mtime", type=int, help="timestamp of every entry (default: see above)")
    ap.add_argument(
        "--slim",
        action="store_true",
        default=None,
        help="leave out tests, headers, docs, static libraries (default: the settings')",
    )
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args(argv)

    def go() -> int:
        s = None
        if args.settings:
            from portable_env.settings import load  # here: the settings model is not needed without them

            s = load(args.settings)
        fmt = args.format or (s.format if s else formats.DEFAULT)
        level = args.level if args.level is not None else (s.compression_level if s and fmt == s.format else None)
        slim = args.slim if args.slim is not None else bool(s and s.slim)
        pack(args.prefix, args.out, fmt, level, args.jobs, args.mtime, slim, args.verbose, s.project if s else "")
        return 0

    return run(go, "pack")
