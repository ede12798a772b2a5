"""The manifest and the CycloneDX SBOM of a built environment (scripts/write-manifest).

The manifest (JSON, "format": "portable-env-manifest/1") records:
  project, platform, python    what was packed, for which machine;
  target                       the machine it is built for: os, arch; the
                               declared target (settings' target: glibc,
                               cpu, cuda, and the virtual packages the lock
                               was solved with), which the installer checks;
                               and min_glibc, what its files need: the
                               highest GLIBC_x.y symbol version any ELF file
                               of ENV requires (portable_env.glibc), raised
                               to the packages' `__glibc >=x.y` depends
                               (never above target.glibc: pack refuses);
  packages[]                   every installed conda package (conda-meta/):
                               name, version, build, channel, subdir, url,
                               sha256, md5, license;
  pypi_packages[]              every PyPI package installed from the project's
                               PyPI lock (ENV/share/portable-env/pypi.json):
                               name, version, url, filename, sha256, license
                               (from the wheel's METADATA), top_level modules;
                               with --lock, exactly the PyPI lock's;
  imports[]                    the detected imports (deps.yml) with the files
                               and lines that import them; `smoke_imports`
                               are those of required, installed packages;
  code                         the project's shipped code and entry points
                               (ENV/share/portable-env/code.json, from
                               scripts/ship-code), when present;
  tools                        versions of the tools that built it;
  tarball                      name, size, sha256, format (--tarball only:
                               the copy inside the environment cannot know
                               the archive's checksum);
  locks                        sha256 of the lock files given with --lock;
                               with --lock, the installed packages must be
                               exactly the lock's, with the same sha256.
The SBOM (CycloneDX 1.6 JSON, made with cyclonedx-python-lib, in
portable_env.sbom) lists the same packages as pkg:conda/NAME@VERSION?build=..&channel=..&subdir=..
components, and the PyPI packages as pkg:pypi/NAME@VERSION components, with
their hashes, licenses, download URLs and dependencies. Each build checks it
in milliseconds (check_sbom: read back unchanged by the library, RFC 3986
URLs, hash lengths); the full strict schema validation takes seconds of
imports and is the tests' (`write-manifest --validate`, tests/test_manifest.py,
which also prove that what check_sbom passes, the strict validator passes).

Both files name no absolute build path, and their timestamp is the packed
archive's ($SOURCE_DATE_EPOCH, else the newest package build time), so the
same environment always gives the same bytes. (Written through a temporary
file and a rename, by scripts/write-manifest.)
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from portable_env import formats, glibc, lock, pypi, pypi_install, sbom
from portable_env.errors import UserError, run
from portable_env.files import sha256_of, write_atomic
from portable_env.settings import PYPI_PREFIX, load

FORMAT = "portable-env-manifest/1"
CODE_RECORD = "share/portable-env/code.json"
# conda platform -> `uname -m` of the machines that run it.
ARCH = {
    "linux-64": "x86_64",
    "linux-aarch64": "aarch64",
    "linux-ppc64le": "ppc64le",
    "linux-s390x": "s390x",
    "linux-32": "i686",
    "osx-64": "x86_64",
    "osx-arm64": "arm64",
    "win-64": "AMD64",
}
OS_NAME = {"linux": "Linux", "osx": "Darwin", "win": "Windows"}
TOOLS = ["conda-pack", "py-rattler", "depfinder", "cyclonedx-python-lib"]
GLIBC_SPEC = re.compile(r">=\s*(\d+)\.(\d+)")
ANACONDA = "https://conda.anaconda.org/"


# --- reading the environment -------------------------------------------------


def read_records(prefix: Path) -> list[dict[str, Any]]:
    """The conda-meta records of prefix, sorted by package name."""
    meta = prefix / "conda-meta"
    if not meta.is_dir():
        raise UserError(f"{prefix} is not a conda environment (no conda-meta/); build it with make env")
    records = []
    for path in sorted(meta.glob("*.json")):
        try:
            records.append(json.loads(path.read_text()))
        except (OSError, ValueError) as exc:
            raise UserError(
                f"{path}: unreadable package record ({exc}); rebuild the environment: "
                f"rm -rf {prefix} and run make again"
            ) from None
    if not records:
        raise UserError(f"{meta} lists no packages; rebuild the environment with make env")
    return sorted(records, key=lambda r: r["name"])


def channel_name(channel: str) -> str:
    """The channel as conda names it: 'conda-forge' for anaconda.org URLs,
    else the URL without a trailing slash."""
    channel = (channel or "").rstrip("/")
    if channel.startswith(ANACONDA):
        return channel[len(ANACONDA) :]
    return channel


def package_entry(record: dict[str, Any]) -> dict[str, Any]:
    """One manifest package from a conda-meta record."""
    fn = record.get("fn") or ""
    return {
        "name": record["name"],
        "version": str(record["version"]),
        "build": record.get("build", ""),
        "build_number": record.get("build_number", 0),
        "channel": channel_name(record.get("channel", "")),
        "subdir": record.get("subdir", ""),
        "url": record.get("url", ""),
        "filename": fn,
        "sha256": record.get("sha256", ""),
        "md5": record.get("md5", ""),
        "size": record.get("size"),
        "license": record.get("license") or "",
        "depends": list(record.get("depends") or []),
    }


def glibc_constraints(records: list[dict[str, Any]]) -> dict[str, str]:
    """package -> its `__glibc` depends spec (the lower bound counts)."""
    found = {}
    for record in records:
        for dep in record.get("depends") or []:
            parts = dep.split(None, 1)
            if parts and parts[0] == "__glibc":
                found[record["name"]] = parts[1] if len(parts) > 1 else ""
    return found


def version_key(version: str | None) -> tuple[int, ...]:
    return tuple(int(x) for x in version.split(".")) if version else ()


def min_glibc(prefix: Path, records: list[dict[str, Any]], platform: str) -> dict[str, Any]:
    """The minimum glibc: the ELF files' requirement raised to the packages' constraints."""
    if not platform.startswith("linux-"):
        return {"min_glibc": None, "glibc_evidence": {}}
    scan = glibc.scan(prefix)
    constraints = glibc_constraints(records)
    version, source = scan["version"], f"ELF symbols of {scan['file']}" if scan["version"] else ""
    for pkg, spec in sorted(constraints.items()):
        m = GLIBC_SPEC.search(spec)
        if m and version_key(f"{m[1]}.{m[2]}") > version_key(version):
            version, source = f"{m[1]}.{m[2]}", f"package {pkg} depends on __glibc {spec}"
    return {"min_glibc": version, "glibc_evidence": {"source": source, "elf": scan, "package_constraints": constraints}}


def detected_imports(deps: dict[str, Any], installed: set[str]) -> list[dict[str, Any]]:
    """deps.yml's import evidence (package -> import -> ["file:line"]) as a list."""
    required = set(deps.get("required") or [])
    optional = set(deps.get("optional") or [])
    on_demand = set(deps.get("on_demand") or [])
    found = []
    for pkg, names in sorted((deps.get("imports") or {}).items()):
        for name, files in sorted((names or {}).items()):
            if not name:
                continue
            found.append(
                {
                    "name": name,
                    "package": pkg,
                    "files": sorted(files or []),
                    "kind": "required"
                    if pkg in required
                    else "optional"
                    if pkg in optional
                    else "on_demand"
                    if pkg in on_demand
                    else "other",
                    "installed": pkg in installed,
                }
            )
    return found


def smoke_imports(imports: list[dict[str, Any]]) -> list[str]:
    """Imports `make verify` and the installer check: those of required,
    installed packages (optional and on-demand ones are never imported)."""
    return sorted({i["name"] for i in imports if i["installed"] and i["kind"] == "required"})


def tool_versions() -> dict[str, str]:
    """Versions of the tools in this venv (missing ones are left out)."""
    found = {}
    for name in TOOLS:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found


def check_against_lock(packages: list[dict[str, Any]], lock_file: Path, platform: str) -> None:
    """The installed packages must be the lock's (for platform), with the same sha256."""
    hashes = lock.package_hashes(lock_file, platform)
    bad = []
    for pkg in packages:
        locked = hashes.get(pkg["filename"])
        if locked is None:
            bad.append(f"  {pkg['filename']}: installed but not in the lock")
        elif pkg["sha256"] and locked != pkg["sha256"]:
            bad.append(f"  {pkg['filename']}: sha256 {pkg['sha256'][:16]}... but the lock says {locked[:16]}...")
    installed = {pkg["filename"] for pkg in packages}
    bad += [f"  {fn}: in the lock but not installed" for fn in sorted(set(hashes) - installed)]
    if bad:
        raise UserError(
            f"the environment does not match {lock_file}:\n"
            + "\n".join(bad)
            + "\n  rebuild it from the lock: rm -rf the env directory and run make again"
        )


def pypi_entries(prefix: Path) -> list[dict[str, Any]]:
    """The PyPI packages install-pypi recorded in the environment, sorted by name."""
    keys = ("name", "version", "url", "filename", "sha256", "license", "top_level")
    found = [{k: p.get(k) for k in keys} for p in pypi_install.installed_record(prefix).get("packages") or []]
    return sorted(found, key=lambda p: str(p["name"]))


def check_against_pypi_lock(packages: list[dict[str, Any]], pypi_lock: Path) -> None:
    """The installed PyPI packages must be the PyPI lock's (none without one), with the same sha256."""
    locked = {x.name: x.sha256 for x in pypi.read_lock(pypi_lock)[1]} if pypi_lock.is_file() else {}
    have = {str(p["name"]): str(p["sha256"]) for p in packages}
    bad = [f"  {n}: in {pypi_lock} but not installed" for n in sorted(set(locked) - set(have))]
    bad += [f"  {n}: installed but not in {pypi_lock}" for n in sorted(set(have) - set(locked))]
    bad += [
        f"  {n}: sha256 {have[n][:16]}... but the lock says {s[:16]}..."
        for n, s in locked.items()
        if n in have and have[n] != s
    ]
    if bad:
        raise UserError(
            f"the environment's PyPI packages do not match {pypi_lock}:\n"
            + "\n".join(bad)
            + "\n  rebuild it from the lock: rm -rf the env directory and run make again"
        )


def declared_target(target: lock.Target, platform: str) -> dict[str, Any]:
    """The manifest's record of the declared target machine."""
    return {
        **target.as_dict(),
        "virtual_packages": [f"{n}={v}={b}" for n, v, b in target.virtual_packages(platform)],
    }


def build_manifest(
    prefix: Path,
    deps_file: Path,
    project: str,
    platform: str,
    tarball: Path | None,
    locks: list[Path],
    target: lock.Target | None = None,
) -> dict[str, Any]:
    records = read_records(prefix)
    packages = [package_entry(r) for r in records]
    by_name = {p["name"]: p for p in packages}
    if "python" not in by_name:
        raise UserError(f"{prefix} has no python package; the environment is incomplete: rebuild it")
    for lock_file in locks:
        check_against_lock(packages, lock_file, platform)
    pypi_packages = pypi_entries(prefix)
    pypi_lock = pypi.lock_path(locks[0], platform) if locks else None
    if pypi_lock is not None:
        check_against_pypi_lock(pypi_packages, pypi_lock)
        if pypi_lock.is_file():
            locks = [*locks, pypi_lock]
    # A detected package is installed as a conda package, or from PyPI ("pypi:<name>" from imports:,
    # or named like a pypi: requirement).
    installed = set(by_name) | {f"{PYPI_PREFIX}{p['name']}" for p in pypi_packages} | {p["name"] for p in pypi_packages}
    imports = detected_imports(lock.read_deps(deps_file), installed)
    os_part = platform.split("-", 1)[0]
    stamp = formats.archive_mtime(r.get("timestamp") for r in records)
    manifest: dict[str, Any] = {
        "format": FORMAT,
        "project": project,
        "platform": platform,
        "python": by_name["python"]["version"],
        "timestamp": datetime.fromtimestamp(stamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "target": {
            "os": OS_NAME.get(os_part, os_part),
            "arch": ARCH.get(platform, ""),
            **(declared_target(target, platform) if target and platform.startswith("linux-") else {}),
            **min_glibc(prefix, records, platform),
        },
        "packages": packages,
        "pypi_packages": pypi_packages,
        "imports": imports,
        "smoke_imports": smoke_imports(imports),
        "tools": tool_versions(),
    }
    code = prefix / CODE_RECORD
    if code.is_file():
        try:
            manifest["code"] = json.loads(code.read_text())
        except ValueError as exc:
            raise UserError(f"{code}: unreadable ({exc}); run scripts/ship-code again") from None
    if locks:
        manifest["locks"] = {path.name: sha256_of(path) for path in locks}
    return with_tarball(manifest, tarball) if tarball is not None else manifest


def with_tarball(base: dict[str, Any], tarball: Path) -> dict[str, Any]:
    """base (a manifest without a tarball, e.g. the one written into the
    environment) with the archive's name, size, sha256 and format: the
    archive is read once, here."""
    if not tarball.is_file():
        raise UserError(f"{tarball}: no such archive; build it with make pack")
    return {
        **base,
        "tarball": {
            "name": tarball.name,
            "size": tarball.stat().st_size,
            "sha256": sha256_of(tarball),
            "format": fmt.name if (fmt := formats.of_path(tarball)) else "",
        },
    }


def read_manifest(path: Path) -> dict[str, Any]:
    """A manifest file written by write-manifest."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise UserError(f"cannot read {path} ({exc}); write it again with scripts/write-manifest") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise UserError(f"{path}: not a {FORMAT} manifest; write it again with scripts/write-manifest")
    return data


# --- output ------------------------------------------------------------------


def summary(manifest: dict[str, Any]) -> str:
    """A manifest, human-readable."""
    target = manifest["target"]
    glibc = target.get("min_glibc")
    evidence = (target.get("glibc_evidence") or {}).get("source", "")
    lines = [
        f"project   {manifest['project']} ({manifest['platform']}, python {manifest['python']})",
        f"target    {target['os']} {target['arch']}"
        + (f", cpu {target['cpu']}" if target.get("cpu") else "")
        + (f", glibc {target['glibc']}" if target.get("glibc") else "")
        + (f", CUDA {target['cuda']}" if target.get("cuda") else ""),
    ]
    if glibc:
        lines.append(f"needs     glibc >= {glibc} ({evidence})")
    if manifest.get("tarball"):
        t = manifest["tarball"]
        lines.append(f"archive   {t['name']}  {t['size'] / 2**20:.1f} MiB  sha256 {t['sha256']}")
    lines.append(
        f"built     {manifest['timestamp']} with " + ", ".join(f"{k} {v}" for k, v in manifest.get("tools", {}).items())
    )
    pkgs = manifest["packages"]
    lines.append(f"packages  {len(pkgs)}")
    width = [max([len(p[k]) for p in pkgs] + [4]) for k in ("name", "version", "build")]
    for p in pkgs:
        lines.append(
            f"  {p['name']:<{width[0]}}  {p['version']:<{width[1]}}  {p['build']:<{width[2]}}  "
            f"{p['license'] or '(no license recorded)'}"
        )
    pypi_pkgs = manifest.get("pypi_packages") or []
    if pypi_pkgs:
        lines.append(f"pypi      {len(pypi_pkgs)}")
        for p in pypi_pkgs:
            lines.append(f"  {p['name']}  {p['version']}  {p['filename']}  {p['license'] or '(no license recorded)'}")
    lines.append("imports")
    for i in manifest.get("imports", []):
        state = "" if i["installed"] else f"  [{i['kind']}, not installed]"
        lines.append(f"  {i['name']} ({i['package']}): {', '.join(i['files'])}{state}")
    code = manifest.get("code")
    if code:
        lines.append(f"code      {len(code.get('files', []))} files in {code.get('dir', '')}")
        for name, spec in sorted((code.get("entry_points") or {}).items()):
            lines.append(f"  bin/{name} -> {spec}")
    return "\n".join(lines)


def write(manifest: dict[str, Any], out_manifest: Path, out_sbom: Path | None, out_sha256: Path | None = None) -> None:
    """Write the manifest (its SBOM, and the tarball's sha256sum line) through temporary files and renames."""
    text = sbom.sbom_json(manifest) if out_sbom else None
    if out_sha256 is not None:
        write_atomic(out_sha256, f"{manifest['tarball']['sha256']}  {manifest['tarball']['name']}\n")
    write_atomic(out_manifest, json.dumps(manifest, indent=2) + "\n")
    if out_sbom is not None and text is not None:
        write_atomic(out_sbom, text)


def show(path: Path) -> str:
    """A manifest file, human-readable (write-manifest --print)."""
    try:
        return summary(json.loads(path.read_text()))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UserError(f"cannot read {path} ({exc}); build it with make manifest") from None


CLI_DOC = """Write the manifest and the CycloneDX SBOM of a built environment.

  write-manifest --prefix ENV --deps deps.yml --settings build/P/KEY/settings.json \\
      --out-manifest M.json [--out-sbom S.cdx.json] [--tarball T] [--lock L ...]
  write-manifest --base ENV/share/portable-env/manifest.json --tarball T \\
      --out-manifest M.json [--out-sbom S.cdx.json] [--out-sha256 T.sha256]
  write-manifest --print M.json      (a manifest, human-readable)
  write-manifest --validate S.cdx.json   (the full strict CycloneDX 1.6 check)

--project and --platform stand in for (or override) the settings' values; the
declared target (glibc, cpu, cuda) comes from the settings only. --base adds
the archive's record to the manifest written into the environment (it packed
that environment) instead of reading the environment again; --out-sha256
writes the archive's `sha256sum -c` line from the same single read.
The SBOM is checked as it is written (portable_env.sbom.check_sbom:
read back by cyclonedx-python-lib unchanged, URLs, hashes; milliseconds);
--validate runs cyclonedx-python-lib's JsonStrictValidator (the whole JSON
schema and its formats; seconds), as the tests do.
What the files record: see scripts/portable_env/manifest.py.
"""


def main(argv: list[str] | None = None) -> int:
    """scripts/write-manifest: see CLI_DOC."""
    ap = argparse.ArgumentParser(
        prog="write-manifest", description=CLI_DOC, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--prefix", type=Path, help="the built environment")
    ap.add_argument("--deps", type=Path, help="build/<project>/<key>/deps.yml")
    ap.add_argument("--settings", type=Path, help="build/<project>/<key>/settings.json (project, platform, target)")
    ap.add_argument("--project", help="project name (default: the settings')")
    ap.add_argument("--platform", help="conda platform, e.g. linux-64 (default: the settings')")
    ap.add_argument("--out-manifest", type=Path, help="manifest JSON to write")
    ap.add_argument("--out-sbom", type=Path, help="CycloneDX JSON SBOM to write")
    ap.add_argument("--tarball", type=Path, help="the packed archive: record its name, size and sha256")
    ap.add_argument("--out-sha256", type=Path, help="with --tarball: write its sha256sum line here")
    ap.add_argument(
        "--base", type=Path, metavar="MANIFEST", help="with --tarball: the manifest written into the packed environment"
    )
    ap.add_argument(
        "--lock",
        type=Path,
        action="append",
        default=[],
        help="rattler-lock.yml or @EXPLICIT lock the env must match (repeatable)",
    )
    ap.add_argument(
        "--print", dest="show", type=Path, metavar="MANIFEST", help="print MANIFEST human-readably and exit"
    )
    ap.add_argument(
        "--validate", type=Path, action="append", metavar="SBOM", help="validate SBOM strictly and exit (repeatable)"
    )
    args = ap.parse_args(argv)
    if args.show:
        return run(lambda: print(show(args.show)) or 0, "manifest")
    if args.validate:
        return run(lambda: validate_main(args.validate), "sbom")
    if args.out_sha256 is not None and args.tarball is None:
        ap.error("--out-sha256 needs --tarball (the archive whose checksum it writes)")
    if args.base is not None:
        extra = [
            opt for opt, value in (("--prefix", args.prefix), ("--deps", args.deps), ("--lock", args.lock)) if value
        ]
        if extra or args.tarball is None or args.out_manifest is None:
            ap.error(
                "--base takes everything but the archive from MANIFEST: give it --tarball and --out-manifest"
                + (f", without {', '.join(extra)}" if extra else "")
            )
        return run(lambda: base_main(args), "manifest")
    settings = load(args.settings) if args.settings else None
    project = args.project or (settings.project if settings else None)
    platform = args.platform or (settings.platform if settings else None)
    missing = [
        opt
        for opt, value in (
            ("--prefix", args.prefix),
            ("--deps", args.deps),
            ("--settings (or --project)", project),
            ("--settings (or --platform)", platform),
            ("--out-manifest", args.out_manifest),
        )
        if value is None
    ]
    if missing:
        ap.error(f"missing {', '.join(missing)} (or use --base, --print or --validate)")
    assert project is not None and platform is not None  # else ap.error exited

    def go() -> int:
        target = lock.Target.of(settings.target) if settings else None
        m = build_manifest(args.prefix, args.deps, project, platform, args.tarball, args.lock, target)
        write(m, args.out_manifest, args.out_sbom, args.out_sha256)
        report(m, args)
        return 0

    return run(go, f"[{project}] manifest")


def base_main(args: argparse.Namespace) -> int:
    """write-manifest --base: the environment's manifest plus the archive's record."""
    m = with_tarball(read_manifest(args.base), args.tarball)
    write(m, args.out_manifest, args.out_sbom, args.out_sha256)
    report(m, args)
    return 0


def validate_main(paths: list[Path]) -> int:
    """write-manifest --validate: the full strict check of each SBOM."""
    for path in paths:
        sbom.validate_strict(path)
        print(f"sbom: {path} is valid CycloneDX 1.6 (strict JSON schema and formats)", file=sys.stderr)
    return 0


def report(m: dict[str, Any], args: argparse.Namespace) -> None:
    """The one line write-manifest prints."""
    min_glibc = m["target"]["min_glibc"]
    print(
        f"manifest: {len(m['packages'])} packages, {len(m['smoke_imports'])} imports"
        + (f", needs glibc >= {min_glibc}" if min_glibc else "")
        + f" -> {args.out_manifest}"
        + (f", {args.out_sbom}" if args.out_sbom else "")
        + (f", {args.out_sha256}" if args.out_sha256 else ""),
        file=sys.stderr,
    )
