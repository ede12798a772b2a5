"""Which import names popular PyPI projects ship: a snapshot read from their wheels' file lists.

The snapshot (templates/pypi-top-levels.txt) is the fourth source of the generated import map
(portable_env.importmap): it names the project of an import that depfinder's table and the pinned
tools do not know (``upath``: universal-pathlib, ``docket``: pydocket). It is fetched rarely, by
hand, with network access (scripts/fetch-top-levels), and committed, so that gen-import-map stays
offline and reproducible.

For each project of a ranked list (most downloaded first), the wheel of its latest release on PyPI
(``py3-none-any`` first, else a Linux x86_64 one, else any) is opened remotely: HTTP range requests
read only the zip's central directory, never the whole file. Its import names are what a wheel
installs at the top of site-packages: packages (folders with ``__init__.py``), modules (``x.py``,
``x.cpython-311-x86_64-linux-gnu.so``), and inside a namespace folder without ``__init__.py`` the
dotted path down to the first package (``google/cloud/storage/__init__.py``: google.cloud.storage).

The file: one line per project, in rank order, ``project import import ...``; ``#`` comments.

``--commands`` snapshots, the same way and in the same format, the programs each wheel installs in
bin/ (its entry points' console_scripts and gui_scripts, its ``.data/scripts/`` files):
templates/pypi-commands.txt, the source of the generated table's ``commands:`` (``!kaggle ...``).
"""

from __future__ import annotations

import configparser
import http.client
import importlib.metadata as md
import io
import json
import re
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from portable_env.errors import UserError
from portable_env.files import TEST_DIR_RE, canon
from portable_env.scan.magics import COMMAND_RE

PYPI_JSON = "https://pypi.org/pypi/{name}/json"
TAIL = 64 * 1024  # bytes read from the end of a wheel at first: its central directory, mostly
NAMESPACE_INIT = 512  # bytes: a pkgutil namespace's __init__.py (extend_path, declare_namespace) is smaller
ATTEMPTS = 4  # tries per project (a busy resolver or mirror fails now and then)
MAX_FAILED = 0.01  # share of the projects that may fail to be read before the snapshot is refused
LINUX_WHEEL_RE = re.compile(r"manylinux\w*_x86_64|linux_x86_64")


class RemoteFile(io.RawIOBase):
    """A read-only, seekable view of a file served over HTTP (range requests), for zipfile."""

    def __init__(self, url: str, size: int, timeout: float = 60.0) -> None:
        self.url, self.size, self.timeout, self.pos = url, size, timeout, 0
        start = max(0, size - TAIL)
        self.cache_start, self.cache = start, self._get(start, size)

    def _get(self, start: int, end: int) -> bytes:
        req = urllib.request.Request(self.url, headers={"Range": f"bytes={start}-{end - 1}"})
        with urllib.request.urlopen(req, timeout=self.timeout) as resp:
            data: bytes = resp.read()
        if len(data) != end - start:
            raise OSError(f"{self.url}: asked for {end - start} bytes at {start}, got {len(data)}")
        return data

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.pos, io.SEEK_END: self.size}[whence]
        self.pos = max(0, base + offset)
        return self.pos

    def readinto(self, buffer: Any) -> int:
        end = min(self.size, self.pos + len(buffer))
        if end <= self.pos:
            return 0
        if self.pos >= self.cache_start:
            data = self.cache[self.pos - self.cache_start : end - self.cache_start]
        else:
            data = self._get(self.pos, end)
        buffer[: len(data)] = data
        self.pos += len(data)
        return len(data)


def installed_names(dist: md.Distribution) -> set[str]:
    """Top-level import names an installed distribution provides (its top_level.txt, else
    the modules and packages its RECORD lists): the one reader of an installed
    dist-info, for the import map (the tools venv) and install-pypi's record."""
    text = dist.read_text("top_level.txt")
    names: set[str] = set()
    if text:
        names = {n.strip().replace("/", ".") for n in text.split() if n.strip()}
    else:
        for f in dist.files or []:
            parts = f.parts
            if not parts or parts[0].endswith((".dist-info", ".data")) or parts[0] in ("..", "__pycache__"):
                continue
            if len(parts) == 1:
                if f.suffix == ".py":
                    names.add(f.stem)
                elif f.suffix in (".so", ".pyd"):
                    names.add(f.name.split(".")[0])
            elif any(p.endswith(".py") for p in parts[-1:]):
                names.add(parts[0])
    return {n for n in names if n.isidentifier() and not n.startswith("__")}


def pick_wheel(files: Iterable[dict[str, Any]]) -> dict[str, Any] | None:
    """The wheel of a release to read: pure Python first, then Linux x86_64, then any."""
    wheels = [f for f in files if f.get("packagetype") == "bdist_wheel" and not f.get("yanked")]

    def rank(f: dict[str, Any]) -> tuple[int, str]:
        name = str(f.get("filename", ""))
        return (0 if name.endswith("-none-any.whl") else 1 if LINUX_WHEEL_RE.search(name) else 2, name)

    return min(wheels, key=rank) if wheels else None


def import_names(entries: Iterable[tuple[str, int]]) -> list[str]:
    """Import names a wheel installs, from its (path, size) entries (see the module docstring).

    A package of nothing but a small ``__init__.py`` and sub-packages is a
    pkgutil-style namespace (backports/, azure/): its sub-packages are the
    names. A namespace folder (on the way down to a package, no package
    itself) that holds modules of the project is a name too
    (opentelemetry.instrumentation, for opentelemetry/instrumentation/
    instrumentor.py beside opentelemetry/instrumentation/_labeler/): one
    name for the folder, not one a module. Modules in a folder that is no package
    nor namespace (docs, scripts, data) and test folders are not importable
    names of the project."""
    files = {path: size for path, size in entries if not path.endswith("/")}

    def folder(path: str) -> str:
        return path.rsplit("/", 1)[0] if "/" in path else ""

    inits = {folder(f): size for f, size in files.items() if f.rsplit("/", 1)[-1] == "__init__.py" and "/" in f}
    with_modules = {folder(f) for f in files if not f.rsplit("/", 1)[-1].startswith("__init__.")}
    packages = {
        d
        for d, size in inits.items()
        if d in with_modules or size > NAMESPACE_INIT or not any(q.startswith(d + "/") for q in inits)
    }
    namespaces = {"/".join(d.split("/")[:i]) for d in packages for i in range(1, d.count("/") + 1)} - packages
    names: set[str] = set()
    for path in files:
        parts = path.split("/")
        if parts[0].endswith((".dist-info", ".data")) or not parts[-1].endswith((".py", ".so", ".pyd")):
            continue
        if len(parts) == 1:
            names.add(parts[0].split(".", 1)[0])
            continue
        # the first folder on the way down that is a package
        top = next((parts[:i] for i in range(1, len(parts)) if "/".join(parts[:i]) in packages), None)
        if top:
            names.add(".".join(top))
        elif folder(path) in namespaces and not parts[-1].startswith("__init__."):  # the folder is importable
            names.add(".".join(parts[:-1]))
    return sorted(
        n
        for n in names
        if all(x.isidentifier() and not x.startswith("__") and not TEST_DIR_RE.match(x) for x in n.split("."))
    )


def project_json(name: str, timeout: float = 60.0) -> dict[str, Any] | None:
    """PyPI's JSON for a project, or None when it has none (404)."""
    try:
        with urllib.request.urlopen(PYPI_JSON.format(name=name), timeout=timeout) as resp:
            doc: dict[str, Any] = json.load(resp)
            return doc
    except urllib.error.HTTPError as e:
        if e.code == 404:
            return None
        raise


def wheel_commands(zf: zipfile.ZipFile) -> list[str]:
    """The commands a wheel installs in bin/: its entry points' console_scripts and
    gui_scripts, and the files of its `.data/scripts/` folder (ruff, aws)."""
    names = zf.namelist()
    found = {n.rsplit("/", 1)[1] for n in names if n.count("/") == 2 and n.split("/")[0].endswith(".data")
             and n.split("/")[1] == "scripts"}  # fmt: skip
    eps = [n for n in names if n.count("/") == 1 and n.endswith(".dist-info/entry_points.txt")]
    if eps:
        cp = configparser.ConfigParser(delimiters=("=",), interpolation=None)
        cp.optionxform = str  # type: ignore[assignment,method-assign]  # command names keep their case
        try:
            cp.read_string(zf.read(eps[0]).decode("utf-8", "replace"))
        except configparser.Error:
            cp.clear()
        found |= {c for sec in ("console_scripts", "gui_scripts") if cp.has_section(sec) for c in cp.options(sec)}
    return sorted(c for c in found if COMMAND_RE.fullmatch(c))


def _project_wheel(name: str, read: Callable[[zipfile.ZipFile], list[str]]) -> list[str] | None:
    """`read` of the latest release's wheel of a PyPI project; None without a wheel."""
    doc = project_json(name)
    wheel = pick_wheel(doc.get("urls") or []) if doc else None
    if wheel is None:
        return None
    url = urllib.parse.urljoin(PYPI_JSON.format(name=name), str(wheel["url"]))  # mirrors serve relative URLs
    with zipfile.ZipFile(RemoteFile(url, int(wheel["size"]))) as zf:
        return read(zf)


def project_imports(name: str) -> list[str] | None:
    """Import names of the latest release's wheel of a PyPI project; None without a wheel."""
    return _project_wheel(name, lambda zf: import_names((i.filename, i.file_size) for i in zf.infolist()))


def project_commands(name: str) -> list[str] | None:
    """Commands the latest release's wheel of a PyPI project installs; None without a wheel."""
    return _project_wheel(name, wheel_commands)


def render(rows: Iterable[tuple[str, list[str]]], header: Iterable[str]) -> str:
    """The snapshot's text: `# ` header lines, then `project import ...` lines."""
    lines = [f"# {h}" for h in header]
    lines += [f"{canon(name)} {' '.join(imps)}" for name, imps in rows if imps]
    return "\n".join(lines) + "\n"


def read(path: Path) -> list[tuple[str, list[str]]]:
    """(project, its import names) of each line of a snapshot, in rank order."""
    try:
        text = path.read_text()
    except OSError as e:
        raise UserError(f"cannot read {path}: {e.strerror}; fetch it with scripts/fetch-top-levels") from None
    rows = []
    for n, line in enumerate(text.splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        name, *imps = line.split()
        if not imps:
            raise UserError(f"{path}:{n}: '{line}' names no import; the form is 'project import ...'")
        rows.append((name, imps))
    return rows


def fetch_all(
    names: list[str], jobs: int, reader: Callable[[str], list[str] | None] = project_imports
) -> list[tuple[str, list[str]]]:
    """(project, import names) for each name (`reader`: project_commands for its commands),
    in the given order; progress on stderr.
    A project without a wheel is left out; when more than MAX_FAILED of the
    projects cannot be read (network, mirror), nothing is returned but an error."""
    import sys
    import time
    from concurrent.futures import ThreadPoolExecutor

    failed: list[str] = []

    def one(name: str) -> list[str] | None:
        for attempt in range(ATTEMPTS):
            try:
                return reader(name)
            except (OSError, ValueError, zipfile.BadZipFile, http.client.HTTPException) as e:  # IncompleteRead
                if attempt + 1 == ATTEMPTS:
                    failed.append(f"{name}: {e}")
                    print(f"fetch-top-levels: {name}: {e}", file=sys.stderr)
                else:
                    time.sleep(2**attempt)
        return None

    out: list[tuple[str, list[str]]] = []
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        for i, (name, imps) in enumerate(zip(names, pool.map(one, names), strict=True), 1):
            if imps:
                out.append((name, imps))
            if i % 500 == 0 or i == len(names):
                print(f"fetch-top-levels: {i}/{len(names)} projects, {len(out)} listed", file=sys.stderr)
    if len(failed) > MAX_FAILED * len(names):
        raise UserError(
            f"{len(failed)} of {len(names)} projects could not be read (first: {failed[0]}); "
            "nothing written: check the connection to pypi.org and run it again"
        )
    return out


def refreshed(
    old: list[tuple[str, list[str]]], new: list[tuple[str, list[str]]], only: set[str]
) -> list[tuple[str, list[str]]]:
    """An earlier snapshot's rows with those of the projects `only` names
    read again (`new`), in the earlier snapshot's rank order (a project that
    has no wheel any more is left out)."""
    fresh = {canon(name): imps for name, imps in new}
    return [(name, fresh.get(canon(name), []) if canon(name) in only else imps) for name, imps in old]


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point (scripts/fetch-top-levels)."""
    import argparse
    import datetime

    from portable_env.errors import run
    from portable_env.files import write_atomic

    ap = argparse.ArgumentParser(prog="fetch-top-levels", description=(__doc__ or "").splitlines()[0])
    ap.add_argument("names", type=Path, help="PyPI project names, one per line, most downloaded first")
    ap.add_argument("--source", help="where the ranked list came from (written in the header; needed without --only)")
    ap.add_argument("-o", "--output", type=Path, required=True, help="the snapshot to write")
    ap.add_argument("--jobs", type=int, default=16, help="projects fetched at once (default 16)")
    ap.add_argument(
        "--only",
        metavar="WHY",
        help="read again only the NAMES projects that the existing OUTPUT lists, keep its other rows; "
        "WHY (which projects, and why) is added to its header",
    )
    ap.add_argument(
        "--commands",
        action="store_true",
        help="snapshot the commands each wheel installs (entry points) instead: templates/pypi-commands.txt",
    )
    args = ap.parse_args(argv)

    def go() -> int:
        if not args.only and not args.source:
            ap.error("--source is needed (where the ranked list came from), unless --only refreshes a snapshot")
        try:
            lines = args.names.read_text().split()
        except OSError as e:
            raise UserError(f"cannot read {args.names}: {e.strerror}; pass a file of PyPI names") from None
        bad = [n for n in lines if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", n)]
        if bad:
            raise UserError(f"{args.names}: '{bad[0]}' is not a PyPI project name; one name per line")
        names = list(dict.fromkeys(canon(n) for n in lines))
        today = datetime.date.today().isoformat()
        if args.only and args.commands:
            ap.error("--only refreshes an import snapshot; fetch the commands snapshot whole")
        if args.only:
            old = read(args.output)
            header = [ln[2:] for ln in args.output.read_text().splitlines() if ln.startswith("# ")]
            wanted = {canon(n) for n, _ in old} & set(names)
            rows = refreshed(old, fetch_all([n for n in names if n in wanted], args.jobs), wanted)
            header.append(f"Read again {today}: {len(wanted)} projects, {args.only}.")
        elif args.commands:
            rows = fetch_all(names, args.jobs, project_commands)
            header = [
                "GENERATED by scripts/fetch-top-levels --commands; do not edit. Read by scripts/gen-import-map.",
                "Commands each PyPI project's latest wheel installs in bin/ (its console_scripts and gui_scripts",
                "entry points), most downloaded project first; projects that install none are left out.",
                f"Ranking: {args.source}.",
                f"Fetched {today} from pypi.org: {len(rows)} of {len(names)} projects install commands.",
            ]
        else:
            rows = fetch_all(names, args.jobs)
            header = [
                "GENERATED by scripts/fetch-top-levels; do not edit. Read by scripts/gen-import-map.",
                "Import names each PyPI project's latest wheel installs, most downloaded project first.",
                f"Ranking: {args.source}. Fetched {today} from pypi.org:",
                f"{len(rows)} of {len(names)} projects had a wheel.",
            ]
        write_atomic(args.output, render(rows, header))
        return 0

    return run(go, "fetch-top-levels")
