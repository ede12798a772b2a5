"""The manifest step: what the build checks in each SBOM, what only the full
strict CycloneDX validator checks (here), the published manifest made from
the environment's, and the archive and the ELF files read once.

The build checks an SBOM cheaply as it writes it (sbom.check_sbom); the
full strict validation (cyclonedx-python-lib's JsonStrictValidator, seconds
of imports) runs here, on SBOMs the pipeline made: the tests prove that what
the cheap check lets through is valid CycloneDX 1.6.
"""
from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import REPO, Repo, run, script
from portable_env import glibc, lock, manifest, sbom
from portable_env.errors import UserError

SHA = "ab" * 32
MD5 = "cd" * 16


def strict_errors(text: str) -> Any:
    """The full strict validator's verdict on an SBOM text (None: valid)."""
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    return JsonStrictValidator(SchemaVersion.V1_6).validate_str(text)


def package(name: str, url: str, **kw: Any) -> dict[str, Any]:
    """A manifest package entry as manifest.package_entry makes them."""
    return manifest.package_entry({"name": name, "version": "1.0", "build": "h0_0", "channel": "file:///ch",
                                   "subdir": "linux-64", "url": url, "fn": f"{name}-1.0-h0_0.conda",
                                   "sha256": SHA, "md5": MD5, "license": "MIT", "depends": ["python >=3.11"], **kw})


def a_manifest(packages: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    """A small manifest with python, the given packages, a PyPI package and a tarball."""
    return {
        "format": manifest.FORMAT, "project": "tiny", "platform": "linux-64", "python": "3.11.9",
        "timestamp": "2026-01-02T03:04:05Z",
        "target": {"os": "Linux", "arch": "x86_64", "glibc": "2.28", "cpu": "x86_64", "cuda": None,
                   "min_glibc": "2.17"},
        "packages": [package("python", "file:///ch/linux-64/python-1.0-h0_0.conda", depends=[]), *packages],
        "pypi_packages": [{"name": "tinylib", "version": "2.0", "sha256": SHA, "license": "BSD-3-Clause",
                           "url": "https://files.example.org/packages/tinylib-2.0-py3-none-any.whl",
                           "filename": "tinylib-2.0-py3-none-any.whl", "top_level": ["tinylib"]}],
        "imports": [{"name": "yaml", "package": "pyyaml", "files": ["app.py:1"], "kind": "required",
                     "installed": True}],
        "tools": {"conda-pack": "0.9.2"},
        "tarball": {"name": "tiny-linux-64.tar.gz", "size": 1, "sha256": SHA, "format": "tar.gz"},
        **extra,
    }


# URLs a channel or a PyPI index may give: those the SBOM can record as they are or in their URI form.
RECORDABLE = [
    "https://conda.anaconda.org/conda-forge/linux-64/pyyaml-6.0-py311_0.conda",
    "file:///home/me/my channel/linux-64/pyyaml-6.0-py311_0.conda",  # XsUri encodes the space
    "file:///home/josé/chän/linux-64/pyyaml-6.0-py311_0.conda",  # non-ASCII: its URI form
    "https://user@mirror.example.org/ch/linux-64/x%2By-1.0.conda?token=a&b=c",
    "file:///ch/{x}/\"q\"/'s'/<a>/pyyaml.conda",
]
# URLs that are no URI (nor IRI) reference, whatever the encoding: the build must refuse them.
NOT_URIS = [
    "https://mirror.example.org/a|b.conda",
    "https://mirror.example.org/a\\b.conda",
    "https://mirror.example.org/a^b.conda",
    "https://mirror.example.org/a`b.conda",
    "https://mirror.example.org:port/x.conda",
    "https://mirror.example.org/x.conda\n",
    "https://mirror.example.org/x\x7f.conda",
]


@pytest.mark.parametrize("url", RECORDABLE)
def test_what_the_build_check_passes_the_strict_validator_passes(url: str) -> None:
    text = sbom.sbom_json(a_manifest([package("pyyaml", url)]))  # the build's check ran
    assert strict_errors(text) is None
    (component,) = [c for c in json.loads(text)["components"] if c["name"] == "pyyaml"]
    (ref,) = component["externalReferences"]
    assert ref["url"].isascii() and " " not in ref["url"]


@pytest.mark.parametrize("url", NOT_URIS)
def test_the_build_refuses_a_url_the_strict_validator_refuses(url: str) -> None:
    m = a_manifest([package("pyyaml", url)])
    with pytest.raises(UserError, match=r"(?s)pyyaml@1\.0.*is not an RFC 3986 URI reference.*rebuild: make pack"):
        sbom.sbom_json(m)
    # The same SBOM without the build's check: the strict validator refuses it too (the check is not stricter
    # than needed for these), so the two agree.
    text = sbom.sbom_json(a_manifest([package("pyyaml", "https://mirror.example.org/x.conda")]))
    assert strict_errors(text.replace("https://mirror.example.org/x.conda", json.dumps(url)[1:-1])) is not None


def test_a_malformed_percent_escape_is_a_user_error() -> None:
    with pytest.raises(UserError, match=r"package pyyaml: its URL .*%zz.* is not a URI.*re-lock"):
        sbom.sbom_json(a_manifest([package("pyyaml", "https://mirror.example.org/%zz.conda")]))


@pytest.mark.parametrize(("field", "value"), [("sha256", "ab" * 31), ("md5", "xyz" * 10 + "ab"),
                                              ("sha256", "g" * 64)])
def test_the_build_refuses_a_hash_the_schema_refuses(field: str, value: str) -> None:
    m = a_manifest([package("pyyaml", "https://mirror.example.org/x.conda", **{field: value})])
    with pytest.raises(UserError, match=r"pyyaml@1\.0.*is not (64|32) hex digits"):
        sbom.sbom_json(m)


def test_the_build_check_refuses_what_cyclonedx_does_not_read_back() -> None:
    text = sbom.sbom_json(a_manifest([])).rstrip("\n")
    sbom.check_sbom(text)
    data = json.loads(text)
    data["components"][0]["colour"] = "blue"  # no such CycloneDX field: the library drops it when reading
    changed = json.dumps(data, indent=2)
    with pytest.raises(UserError, match=r"does not read back as CycloneDX 1\.6 unchanged"):
        sbom.check_sbom(changed)
    assert strict_errors(changed) is not None  # the schema says so too


def test_validate_is_the_full_strict_check(tmp_path: Path) -> None:
    good, bad = tmp_path / "good.cdx.json", tmp_path / "bad.cdx.json"
    text = sbom.sbom_json(a_manifest([package("pyyaml", "https://mirror.example.org/x.conda")]))
    good.write_text(text)
    # Valid for the library's model (it reads it back), not for the schema's date-time format.
    bad.write_text(text.replace('"timestamp": "2026-01-02T03:04:05', '"timestamp": "2026-13-02T03:04:05'))
    ok = script("write-manifest", "--validate", str(good))
    assert ok.returncode == 0 and "valid CycloneDX 1.6 (strict" in ok.stderr
    proc = script("write-manifest", "--validate", str(good), "--validate", str(bad))
    assert proc.returncode == 1 and f"{bad} is not valid CycloneDX 1.6" in proc.stderr
    missing = script("write-manifest", "--validate", str(tmp_path / "none.json"))
    assert missing.returncode == 1 and "none.json" in missing.stderr and "--out-sbom" in missing.stderr


# --- a small environment on disk ---------------------------------------------

def tiny_env(root: Path) -> tuple[Path, Path]:
    """A conda-like prefix (python and pyyaml records, the host python binary as its only ELF file) and its
    deps.yml."""
    prefix = root / "env"
    (prefix / "conda-meta").mkdir(parents=True)
    (prefix / "bin").mkdir()
    shutil.copy(Path(sys.executable).resolve(), prefix / "bin" / "python3.11")
    for name, url in (("python", "file:///ch/linux-64/python-3.11.9-h0_0.conda"),
                      ("pyyaml", "file:///ch/linux-64/pyyaml-6.0-h0_0.conda")):
        record = {"name": name, "version": "3.11.9" if name == "python" else "6.0", "build": "h0_0",
                  "build_number": 0, "channel": "file:///ch", "subdir": "linux-64", "url": url,
                  "fn": url.rsplit("/", 1)[1], "sha256": SHA, "md5": MD5, "license": "MIT", "depends": [],
                  "timestamp": 1700000000000, "files": ["bin/python3.11"] if name == "python" else []}
        (prefix / "conda-meta" / f"{record['fn'][:-6]}.json").write_text(json.dumps(record))
    deps = root / "deps.yml"
    deps.write_text("required: [pyyaml]\nimports: {pyyaml: {yaml: ['app.py:1']}}\n")
    return prefix, deps


def write_manifest(*args: str) -> subprocess.CompletedProcess:
    return script("write-manifest", *args)


def test_the_published_manifest_is_the_envs_plus_the_archive(tmp_path: Path) -> None:
    prefix, deps = tiny_env(tmp_path)
    common = ["--prefix", str(prefix), "--deps", str(deps), "--project", "tiny", "--platform", "linux-64"]
    inner = tmp_path / "inner.json"
    proc = write_manifest(*common, "--out-manifest", str(inner), "--out-sbom", str(tmp_path / "inner.cdx.json"))
    assert proc.returncode == 0, proc.stderr
    tarball = tmp_path / "tiny-linux-64.tar.gz"
    tarball.write_bytes(b"\x1f\x8b" + bytes(range(256)) * 1000)
    full, base = tmp_path / "full", tmp_path / "base"
    full.mkdir(), base.mkdir()
    for out, mode in ((full, common), (base, ["--base", str(inner)])):
        proc = write_manifest(*mode, "--tarball", str(tarball), "--out-manifest", str(out / "m.json"),
                              "--out-sbom", str(out / "s.cdx.json"), "--out-sha256", str(out / "t.sha256"))
        assert proc.returncode == 0, proc.stderr
    for name in ("m.json", "s.cdx.json", "t.sha256"):
        assert (base / name).read_bytes() == (full / name).read_bytes(), name
    digest = hashlib.sha256(tarball.read_bytes()).hexdigest()
    assert (base / "t.sha256").read_text() == f"{digest}  {tarball.name}\n"
    assert run(["sha256sum", "-c", str(base / "t.sha256")], cwd=tmp_path).returncode == 0
    m = json.loads((base / "m.json").read_text())
    assert m == {**json.loads(inner.read_text()), "tarball": {"name": tarball.name, "size": tarball.stat().st_size,
                                                             "sha256": digest, "format": "tar.gz"}}
    assert m["target"]["min_glibc"] == "{}.{}".format(*max(glibc.elf_glibc_versions(prefix / "bin/python3.11")))
    for path in (tmp_path / "inner.cdx.json", base / "s.cdx.json"):
        assert strict_errors(path.read_text()) is None, path


def test_base_and_sha256_command_line_errors(tmp_path: Path) -> None:
    prefix, deps = tiny_env(tmp_path)
    tarball = tmp_path / "t.tar.gz"
    tarball.write_bytes(b"x")
    proc = write_manifest("--base", str(deps), "--prefix", str(prefix), "--tarball", str(tarball),
                          "--out-manifest", str(tmp_path / "m.json"))
    assert proc.returncode == 2 and "without --prefix" in proc.stderr
    proc = write_manifest("--base", str(deps), "--out-manifest", str(tmp_path / "m.json"))
    assert proc.returncode == 2 and "give it --tarball and --out-manifest" in proc.stderr
    proc = write_manifest("--prefix", str(prefix), "--deps", str(deps), "--project", "p", "--platform", "linux-64",
                          "--out-manifest", str(tmp_path / "m.json"), "--out-sha256", str(tmp_path / "x.sha256"))
    assert proc.returncode == 2 and "--out-sha256 needs --tarball" in proc.stderr
    other = tmp_path / "other.json"
    other.write_text('{"format": "something-else/1"}')
    proc = write_manifest("--base", str(other), "--tarball", str(tarball), "--out-manifest", str(tmp_path / "m.json"))
    assert proc.returncode == 1 and f"{other}: not a portable-env-manifest/1 manifest" in proc.stderr
    proc = write_manifest("--base", str(deps), "--tarball", str(tarball), "--out-manifest", str(tmp_path / "m.json"))
    assert proc.returncode == 1 and f"cannot read {deps}" in proc.stderr
    proc = write_manifest("--base", str(tmp_path / "none.json"), "--tarball", str(tarball),
                          "--out-manifest", str(tmp_path / "m.json"))
    assert proc.returncode == 1 and "none.json" in proc.stderr and "write it again" in proc.stderr
    assert not (tmp_path / "m.json").exists() and not (tmp_path / "x.sha256").exists()


def test_writing_a_manifest_imports_no_json_schema_validator(tmp_path: Path) -> None:
    """The build's manifest step imports neither jsonschema nor rfc3987-syntax (seconds of parser building)."""
    prefix, deps = tiny_env(tmp_path)
    code = (f"import sys; sys.path.insert(0, {str(REPO / 'scripts')!r}); from portable_env import manifest\n"
            f"rc = manifest.main(['--prefix', {str(prefix)!r}, '--deps', {str(deps)!r}, '--project', 'tiny', "
            f"'--platform', 'linux-64', '--out-manifest', {str(tmp_path / 'm.json')!r}, "
            f"'--out-sbom', {str(tmp_path / 's.cdx.json')!r}])\n"
            "print(rc, sorted(m for m in ('jsonschema', 'rfc3987_syntax', 'lark') if m in sys.modules))")
    proc = run([sys.executable, "-c", code])
    assert proc.stdout.strip() == "0 []", proc.stderr
    assert strict_errors((tmp_path / "s.cdx.json").read_text()) is None


def test_check_target_and_the_manifest_read_each_elf_file_once(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """In one process (build-step archive), the manifest reuses what check-target read."""
    prefix, deps = tiny_env(tmp_path)
    (prefix / "lib").mkdir()
    shutil.copy(prefix / "bin" / "python3.11", prefix / "lib" / "libcopy.so")
    host = "{}.{}".format(*max(glibc.elf_glibc_versions(prefix / "bin/python3.11")))
    reads: list[str] = []
    real = glibc.elf_glibc_versions
    monkeypatch.setattr(glibc, "elf_glibc_versions", lambda p: reads.append(Path(p).name) or real(p))
    args = ["--prefix", str(prefix), "--deps", str(deps), "--project", "tiny", "--platform", "linux-64",
            "--out-manifest", str(tmp_path / "m.json")]

    def elf_files() -> int:
        return json.loads((tmp_path / "m.json").read_text())["target"]["glibc_evidence"]["elf"]["elf_files"]

    assert glibc.check(prefix, lock.Target.of({"glibc": host}), "project.yml", "tiny")["elf_files"] == 2
    assert {"libcopy.so", "python3.11"} <= set(reads)
    reads.clear()
    assert manifest.main(args) == 0
    assert reads == [] and elf_files() == 2  # no file read again
    (prefix / "lib" / "libcopy.so").write_bytes(b"\x7fELF" + bytes(100))  # changed: read again, only it
    assert manifest.main(args) == 0
    assert reads == ["libcopy.so"] and elf_files() == 1


# --- the pipeline's own SBOMs ------------------------------------------------

def test_make_pack_publishes_strictly_valid_sboms_and_one_checksum(channel: str, repo: Repo,
                                                                  host_python: str) -> None:
    repo.project("tiny", {"app.py": "import yaml\n"})
    proc = repo.make("PROJECT=tiny", f"CHANNELS={channel}", f"PYTHON={host_python}", "pack")
    assert "[tiny] manifest: done in" in proc.stderr and "[tiny] checksum: done in" in proc.stderr
    (kdir,) = (repo.root / "build" / "tiny").glob("override-*")
    tarball = kdir / "tiny-linux-64.tar.gz"
    inner_sbom = kdir / "env" / "share" / "portable-env" / "sbom.cdx.json"
    outer_sbom = kdir / "tiny-linux-64.cdx.json"
    for path in (inner_sbom, outer_sbom):
        assert strict_errors(path.read_text()) is None, path
    digest = hashlib.sha256(tarball.read_bytes()).hexdigest()
    assert (kdir / "tiny-linux-64.tar.gz.sha256").read_text() == f"{digest}  tiny-linux-64.tar.gz\n"
    outer = json.loads((kdir / "tiny-linux-64.manifest.json").read_text())
    inner = json.loads((kdir / "env" / "share" / "portable-env" / "manifest.json").read_text())
    assert outer["tarball"]["sha256"] == digest and {**outer, "tarball": None} == {**inner, "tarball": None}
    bom = json.loads(outer_sbom.read_text())
    assert {"alg": "SHA-256", "content": digest} in bom["metadata"]["component"]["hashes"]
    assert {c["name"] for c in bom["components"]} == {p["name"] for p in outer["packages"]}
    assert "pyelftools" not in outer["tools"]
