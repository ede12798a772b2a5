"""Build a single-file, self-extracting installer from a verified archive.

The installer is templates/installer.sh with the project's facts filled in
(name, platform, the target machine: OS, CPU architecture and level,
glibc, CUDA, as the manifest records them; the payload's format and the
command that decompresses it (from the format table), its size and sha256,
the import names to check, THE import probe's source (portable_env.probe,
the one verify-pack runs), the smoke test, the launchers, the package list
and the whole manifest), followed by the line __PORTABLE_ENV_PAYLOAD__ and
the archive's bytes. Users run `bash P-linux-64.sh --help`.

The archive must be the one the manifest describes (its sha256 is checked
when the manifest records it) and is read once, streamed, to measure its
unpacked size and to check that it is a conda-pack archive. The installer
is written through OUT.tmp, made executable, and renamed; OUT.sha256
(sha256sum format) is written beside it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
from pathlib import Path
from typing import Any

from portable_env import formats, probe
from portable_env.errors import UserError
from portable_env.files import sha256_of
from portable_env.settings import IMPORT_RE

TEMPLATE = Path(__file__).resolve().parent.parent.parent / "templates" / "installer.sh"
MARKER = b"\n__PORTABLE_ENV_PAYLOAD__\n"
HEADER_DIGITS = 12  # HEADER_SIZE is zero-padded, so filling it in never changes the header's length
SAFE = re.compile(r"[A-Za-z0-9._+-]*")
PLACEHOLDER = re.compile(r"@@([A-Z0-9_]+)@@")
DELIMITERS = ("PORTABLE_ENV_LIST_END", "PORTABLE_ENV_MANIFEST_END", "PORTABLE_ENV_PROBE_END")


def archive_facts(tarball: Path) -> int:
    """Unpacked size in KiB (rounded up per file); checks it is a conda-pack archive."""
    total = 0
    names = set()
    try:
        with formats.open_tar(tarball) as tf:
            for member in tf:
                total += -(-member.size // 4096) * 4 + 4  # blocks of 4 KiB, plus the inode
                name = member.name.removeprefix("./")
                if name in ("bin/python", "bin/conda-unpack"):
                    names.add(name)
    except formats.READ_ERRORS as exc:
        raise UserError(f"{tarball}: cannot read the archive ({exc}); rebuild it with make pack") from None
    missing = {"bin/python", "bin/conda-unpack"} - names
    if missing:
        raise UserError(
            f"{tarball}: has no {', '.join(sorted(missing))}: not a conda-pack archive of a "
            "Python environment; rebuild it with make pack"
        )
    return total


def safe(value: Any, what: str) -> str:
    """A manifest value that is safe inside single quotes of the template."""
    text = "" if value is None else str(value)
    if not SAFE.fullmatch(text):
        raise UserError(f"the manifest's {what} {text!r} has unexpected characters; rebuild it")
    return text


def package_list(manifest: dict[str, Any]) -> str:
    """The --list text: a heading, then one package a line."""
    pkgs = manifest["packages"]
    target = manifest["target"]
    glibc = target.get("glibc") or target.get("min_glibc")
    needs = f"{target['os']} {target['arch']}" + (f" ({target['cpu']})" if target.get("cpu") else "")
    needs += (f", glibc >= {glibc}" if glibc else "") + (f", CUDA >= {target['cuda']}" if target.get("cuda") else "")
    lines = [
        f"{manifest['project']} ({manifest['platform']}, python {manifest['python']}; needs {needs}): "
        f"{len(pkgs)} packages"
    ]
    width = [max([len(p[k]) for p in pkgs] + [4]) for k in ("name", "version", "build")]
    lines.append(f"{'name':<{width[0]}}  {'version':<{width[1]}}  {'build':<{width[2]}}  channel")
    for p in pkgs:
        lines.append(f"{p['name']:<{width[0]}}  {p['version']:<{width[1]}}  {p['build']:<{width[2]}}  {p['channel']}")
    return "\n".join(lines)


def render(template: str, values: dict[str, str]) -> str:
    """Fill every @@NAME@@ in one pass (filled-in text is never scanned again)."""
    unknown = sorted(set(PLACEHOLDER.findall(template)) - set(values))
    if unknown:
        raise UserError(f"the template has unknown placeholders: {', '.join(unknown)}")
    return PLACEHOLDER.sub(lambda m: values[m[1]], template)


def header_for(
    template: str,
    manifest: dict[str, Any],
    tarball: Path,
    fmt: formats.Format,
    sha: str,
    unpacked_kb: int,
    smoke_test: str,
    out_name: str,
) -> bytes:
    """The installer's bash header: the template with every value filled in."""
    target = manifest["target"]
    imports = [n for n in manifest.get("smoke_imports", []) if IMPORT_RE.fullmatch(n)]  # names, dist:x, bin/x
    launchers = [safe(n, "entry point") for n in sorted((manifest.get("code") or {}).get("entry_points") or {})]
    listing = package_list(manifest)
    manifest_json = json.dumps(manifest, indent=2)
    probe_source = probe.source()
    for delim in DELIMITERS:
        if any(delim in text.splitlines() for text in (listing, manifest_json, probe_source)):
            raise UserError(f"the manifest contains the line {delim}; it cannot be embedded")
    values = {
        "PROJECT": safe(manifest["project"], "project"),
        "PLATFORM": safe(manifest["platform"], "platform"),
        "PYTHON": safe(manifest["python"], "python version"),
        "OS": safe(target["os"], "target os"),
        "ARCH": safe(target["arch"], "target arch"),
        "MIN_GLIBC": safe(target.get("min_glibc") or "", "min_glibc"),
        # the declared target (a manifest without one: what its files need)
        "TARGET_GLIBC": safe(target.get("glibc") or target.get("min_glibc") or "", "target glibc"),
        "TARGET_CPU": safe(target.get("cpu") or "", "target cpu"),
        "TARGET_CUDA": safe(target.get("cuda") or "", "target cuda"),
        "FORMAT": fmt.name,
        "DECOMPRESS": fmt.decompress,
        "DECOMPRESSOR": fmt.program,
        "PROBE": probe_source.rstrip("\n"),
        "FILE": safe(out_name, "installer name"),
        "PAYLOAD_SIZE": str(tarball.stat().st_size),
        "PAYLOAD_SHA256": sha,
        "UNPACKED_KB": str(unpacked_kb),
        "IMPORTS": " ".join(imports),
        "LAUNCHERS": " ".join(launchers),
        "SMOKE_TEST": shlex.quote(smoke_test),
        "PACKAGE_LIST": listing,
        "MANIFEST_JSON": manifest_json,
        "HEADER_SIZE": "0" * HEADER_DIGITS,
    }
    size = len(render(template, values).encode())
    values["HEADER_SIZE"] = str(size).zfill(HEADER_DIGITS)
    header = render(template, values).encode()
    if len(header) != size or not header.endswith(MARKER):
        raise UserError("the template must end with the line __PORTABLE_ENV_PAYLOAD__")
    return header


def build(tarball: Path, manifest_path: Path, out: Path, template: Path, smoke_test: str) -> str:
    """Write the installer; returns its sha256."""
    if not tarball.is_file():
        raise UserError(f"{tarball}: no such archive; build it with make pack")
    try:
        manifest = json.loads(manifest_path.read_text())
    except (OSError, ValueError) as exc:
        raise UserError(f"{manifest_path}: cannot read the manifest ({exc}); build it with make manifest") from None
    fmt = formats.of_path(tarball)
    if fmt is None:
        raise UserError(
            f"{tarball.name}: the installer takes archives of the formats {', '.join(formats.names())}; "
            "set format: in project.yml"
        )
    sha = sha256_of(tarball)
    recorded = (manifest.get("tarball") or {}).get("sha256")
    if recorded and recorded != sha:
        raise UserError(
            f"{manifest_path} describes another archive (sha256 {recorded[:16]}..., "
            f"{tarball.name} is {sha[:16]}...); write the manifest again: make manifest"
        )
    unpacked_kb = archive_facts(tarball)
    try:
        text = template.read_text()
    except OSError as exc:
        raise UserError(f"{template}: cannot read the installer template ({exc.strerror})") from None
    header = header_for(text, manifest, tarball, fmt, sha, unpacked_kb, smoke_test, out.name)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    digest = hashlib.sha256(header)
    try:
        with open(tmp, "wb") as dst, open(tarball, "rb") as src:
            dst.write(header)
            for block in iter(lambda: src.read(1 << 20), b""):
                digest.update(block)
                dst.write(block)
        os.chmod(tmp, 0o755)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    sha_file = out.with_name(out.name + ".sha256")
    sha_file.with_name(sha_file.name + ".tmp").write_text(f"{digest.hexdigest()}  {out.name}\n")
    os.replace(sha_file.with_name(sha_file.name + ".tmp"), sha_file)
    return digest.hexdigest()
