"""Artifacts people can trust and ship: manifest, SBOM, installer, shipped code.

One real small project (import yaml, import six, plus its own package and a
script) is packed once with `make pack` against the real local channel; the
module fixture then runs the steps the Makefile runs after the env is built:
ship-code -> write-manifest (into the env) -> pack-env -> verify-pack ->
write-manifest --tarball (beside it) -> make-installer. The tests check
each artifact the way its consumer uses it.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from conftest import HOST_GLIBC, Repo, run, script
from portable_env import formats, installer, manifest, probe

TINY = {
    "app.py": "import yaml\nimport six\n\n\ndef main():\n"
              "    print(yaml.safe_dump({'six': six.PY3}).strip())\n    return 0\n",
    "tinypkg/__init__.py": "GREETING = 'hi from tinypkg'\n",
    "tinypkg/__main__.py": "import sys\nfrom tinypkg import GREETING\nprint(GREETING, sys.argv[1:])\n",
    "tinypkg/cli.py": "import sys\n\n\ndef main():\n    print('cli', sys.argv[0].rsplit('/', 1)[-1], sys.argv[1:])\n"
                      "    return 3\n",
    "tinypkg/data.txt": "package data\n",
    "tools/hello.py": "import sys\nprint('script', sys.argv[1:])\n",
    "tests/test_app.py": "def test_nothing():\n    pass\n",
    "notes.txt": "not code\n",
}
ENTRY_POINTS = ["tiny-hello = app:main", "tiny-cli = tinypkg.cli:main", "tiny-mod = tinypkg",
                "tiny-script = tools/hello.py"]
CLEAN = {"PATH": "/usr/bin:/bin", "HOME": "/tmp", "LANG": "C.UTF-8"}


@dataclass
class Built:
    root: Path
    repo: Repo
    kdir: Path
    env: Path
    tarball: Path
    manifest: Path
    sbom: Path
    inner_manifest: Path
    inner_sbom: Path
    installer: Path


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def bash(cmd: str, cwd: Path, **env: str) -> subprocess.CompletedProcess:
    """A command in a clean shell: no tools venv, no python on PATH."""
    return subprocess.run(["bash", "-c", cmd], cwd=cwd, env={**CLEAN, **env}, capture_output=True, text=True)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, channel: str, host_python: str) -> Built:
    root = tmp_path_factory.mktemp("artifacts")
    repo = Repo(root / "repo")
    repo.project("tiny", TINY)
    repo.make("PROJECT=tiny", f"CHANNELS={channel}", f"PYTHON={host_python}", "pack")
    (kdir,) = (repo.root / "build" / "tiny").glob("override-*")
    env, deps = kdir / "env", kdir / "deps.yml"
    eps = [a for ep in ENTRY_POINTS for a in ("--entry-point", ep)]
    script("ship-code", "--project-dir", str(repo.root / "projects" / "tiny"), "--prefix", str(env), "--code",
           *eps, check=True)
    meta = env / "share" / "portable-env"
    common = ["--prefix", str(env), "--deps", str(deps), "--project", "tiny", "--platform", "linux-64",
              "--settings", str(kdir / "settings.json"),
              "--lock", str(kdir / "rattler-lock.yml"), "--lock", str(kdir / "conda-linux-64.lock")]
    script("write-manifest", *common, "--out-manifest", str(meta / "manifest.json"),
           "--out-sbom", str(meta / "sbom.cdx.json"), check=True)
    tarball = root / "tiny-linux-64.tar.gz"
    script("pack-env", "--prefix", str(env), "--out", str(tarball), check=True)
    script("verify-pack", str(tarball), "--deps", str(deps), "--build-prefix", str(env), "--project", "tiny",
           check=True)
    manifest, sbom = root / "tiny-linux-64.manifest.json", root / "tiny-linux-64.cdx.json"
    script("write-manifest", *common, "--tarball", str(tarball), "--out-manifest", str(manifest),
           "--out-sbom", str(sbom), check=True)
    installer = root / "tiny-linux-64.sh"
    script("make-installer", "--tarball", str(tarball), "--manifest", str(manifest), "--out", str(installer),
           "--smoke-test", "tiny-hello && python -c 'import tinypkg'", check=True)
    return Built(root, repo, kdir, env, tarball, manifest, sbom, meta / "manifest.json", meta / "sbom.cdx.json",
                 installer)


# --- manifest ----------------------------------------------------------------

def test_manifest_matches_the_locks(built: Built) -> None:
    m = json.loads(built.manifest.read_text())
    assert (m["format"], m["project"], m["platform"]) == ("portable-env-manifest/1", "tiny", "linux-64")
    pkgs = {p["filename"]: p for p in m["packages"]}
    lock = yaml.safe_load((built.kdir / "rattler-lock.yml").read_text())
    locked = {p["conda"].rsplit("/", 1)[-1]: p for p in lock["packages"]}
    assert set(pkgs) == set(locked)
    for fn, p in pkgs.items():
        assert p["sha256"] == locked[fn]["sha256"] and p["md5"] == locked[fn]["md5"], fn
        assert fn == f"{p['name']}-{p['version']}-{p['build']}.conda"
        assert p["url"].endswith("/" + fn) and p["license"] == locked[fn].get("license", ""), fn
    explicit = [line for line in (built.kdir / "conda-linux-64.lock").read_text().splitlines()
                if line.startswith("file://")]
    assert sorted(explicit) == sorted(f"{p['url']}#{p['sha256']}" for p in m["packages"])
    assert m["python"] == next(p["version"] for p in m["packages"] if p["name"] == "python")
    assert {"pyyaml", "six", "python"} <= {p["name"] for p in m["packages"]}


def test_manifest_imports_tools_tarball_and_code(built: Built) -> None:
    m = json.loads(built.manifest.read_text())
    imports = {i["name"]: i for i in m["imports"]}
    assert imports["yaml"]["package"] == "pyyaml" and imports["yaml"]["files"] == ["app.py:1"]
    assert imports["six"]["files"] == ["app.py:2"] and imports["six"]["installed"]
    assert m["smoke_imports"] == ["six", "yaml"]
    from importlib.metadata import version

    for tool in ("conda-pack", "py-rattler", "depfinder", "cyclonedx-python-lib"):
        assert m["tools"][tool] == version(tool)
    assert m["tarball"] == {"name": "tiny-linux-64.tar.gz", "size": built.tarball.stat().st_size,
                            "sha256": sha(built.tarball), "format": "tar.gz"}
    assert set(m["locks"]) == {"rattler-lock.yml", "conda-linux-64.lock"}
    assert m["code"]["dir"] == "share/tiny"
    assert sorted(f["path"] for f in m["code"]["files"]) == [
        "app.py", "tinypkg/__init__.py", "tinypkg/__main__.py", "tinypkg/cli.py", "tinypkg/data.txt",
        "tools/hello.py"]
    assert m["code"]["entry_points"]["tiny-cli"] == "tinypkg.cli:main"
    # The copy inside the environment is the same, except it cannot know the archive.
    inner = json.loads(built.inner_manifest.read_text())
    assert "tarball" not in inner and inner["packages"] == m["packages"]
    assert str(built.repo.root) not in built.manifest.read_text()  # no build path


def test_manifest_refuses_an_env_that_is_not_the_lock(built: Built, tmp_path: Path) -> None:
    lock = tmp_path / "conda-linux-64.lock"
    text = (built.kdir / "conda-linux-64.lock").read_text()
    lock.write_text(re.sub(r"(six-[^#]+#)[0-9a-f]{4}", r"\g<1>0000", text))
    proc = script("write-manifest", "--prefix", str(built.env), "--deps", str(built.kdir / "deps.yml"),
                  "--project", "tiny", "--platform", "linux-64", "--lock", str(lock),
                  "--out-manifest", str(tmp_path / "m.json"))
    assert proc.returncode == 1 and "does not match" in proc.stderr and "six-" in proc.stderr
    assert not (tmp_path / "m.json").exists()
    extra = "file:///elsewhere/linux-64/extra-1-0.conda#" + "0" * 64
    lock.write_text(text.replace("@EXPLICIT\n", f"@EXPLICIT\n{extra}\n"))
    proc = script("write-manifest", "--prefix", str(built.env), "--deps", str(built.kdir / "deps.yml"),
                  "--project", "tiny", "--platform", "linux-64", "--lock", str(lock),
                  "--out-manifest", str(tmp_path / "m.json"))
    assert proc.returncode == 1 and "extra-1-0.conda: in the lock but not installed" in proc.stderr


def test_manifest_is_reproducible(built: Built, tmp_path: Path) -> None:
    out = tmp_path / "again.json"
    script("write-manifest", "--prefix", str(built.env), "--deps", str(built.kdir / "deps.yml"),
           "--project", "tiny", "--platform", "linux-64", "--settings", str(built.kdir / "settings.json"),
           "--out-manifest", str(out),
           "--out-sbom", str(tmp_path / "again.cdx.json"), "--lock", str(built.kdir / "rattler-lock.yml"),
           "--lock", str(built.kdir / "conda-linux-64.lock"), check=True)
    assert out.read_bytes() == built.inner_manifest.read_bytes()
    assert (tmp_path / "again.cdx.json").read_bytes() == built.inner_sbom.read_bytes()


def test_print_is_human_readable(built: Built) -> None:
    out = script("write-manifest", "--print", str(built.manifest), check=True).stdout
    assert out.startswith("project   tiny (linux-64, python ")
    assert "glibc >= " in out and "pyyaml" in out and "yaml (pyyaml): app.py:1" in out
    assert "bin/tiny-cli -> tinypkg.cli:main" in out and sha(built.tarball) in out
    bad = script("write-manifest", "--print", str(built.root / "missing.json"))
    assert bad.returncode == 1 and "make manifest" in bad.stderr


# --- SBOM --------------------------------------------------------------------

def test_sbom_validates_and_lists_the_same_packages(built: Built) -> None:
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator
    from packageurl import PackageURL

    m = json.loads(built.manifest.read_text())
    for path in (built.sbom, built.inner_sbom):
        text = path.read_text()
        assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(text) is None, path
    bom = json.loads(built.sbom.read_text())
    assert bom["bomFormat"] == "CycloneDX" and bom["specVersion"] == "1.6"
    comps = {c["name"]: c for c in bom["components"]}
    assert set(comps) == {p["name"] for p in m["packages"]}
    for p in m["packages"]:
        c = comps[p["name"]]
        purl = PackageURL.from_string(c["purl"])
        assert (purl.type, purl.name, purl.version) == ("conda", p["name"], p["version"])
        assert purl.qualifiers == {"build": p["build"], "channel": p["channel"], "subdir": p["subdir"],
                                   "type": "conda"}
        assert {h["alg"]: h["content"] for h in c["hashes"]}["SHA-256"] == p["sha256"]
    root = bom["metadata"]["component"]
    assert root["name"] == "tiny" and root["hashes"] == [{"alg": "SHA-256", "content": sha(built.tarball)}]
    deps = {d["ref"]: set(d.get("dependsOn", [])) for d in bom["dependencies"]}
    assert {comps["pyyaml"]["bom-ref"], comps["six"]["bom-ref"], comps["python"]["bom-ref"]} <= deps[root["bom-ref"]]
    assert comps["python"]["bom-ref"] in deps[comps["pyyaml"]["bom-ref"]]
    assert {t["name"] for t in bom["metadata"]["tools"]["components"]} >= {"conda-pack", "py-rattler", "depfinder"}


# --- minimum glibc -----------------------------------------------------------

def readelf_glibc(path: Path) -> tuple[int, int]:
    out = run(["readelf", "-V", "--wide", str(path)], check=True).stdout
    return max([(int(a), int(b)) for a, b in re.findall(r"Name: GLIBC_(\d+)\.(\d+)", out)], default=(0, 0))


@pytest.mark.skipif(shutil.which("readelf") is None and not os.environ.get("CI"),
                    reason="needs readelf (binutils); under CI (.ci/run installs it) a missing one fails")
def test_min_glibc_is_the_highest_symbol_version(built: Built) -> None:
    target = json.loads(built.manifest.read_text())["target"]
    assert (target["os"], target["arch"]) == ("Linux", "x86_64")
    # The declared target (make's TARGET_GLIBC= for the local channel), as the lock was solved for it.
    assert (target["glibc"], target["cpu"], target["cuda"]) == (HOST_GLIBC, "x86_64", None)
    assert {f"__glibc={HOST_GLIBC}=0", "__archspec=1=x86_64"} <= set(target["virtual_packages"])
    evidence = target["glibc_evidence"]["elf"]
    assert evidence["elf_files"] > 0
    found = readelf_glibc(built.env / evidence["file"])
    assert target["min_glibc"] == "{}.{}".format(*found)
    for other in ("bin/python3", "lib/python3*/lib-dynload/_json*.so"):
        for path in built.env.glob(other):
            assert readelf_glibc(path.resolve()) <= found, path
    host = run(["getconf", "GNU_LIBC_VERSION"], check=True).stdout.split()[1]
    assert tuple(map(int, host.split(".")[:2])) >= found  # it runs here


def test_min_glibc_takes_the_packages_glibc_constraints(tmp_path: Path) -> None:
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "notelf.so").write_bytes(b"not an elf file")
    records = [{"name": "a", "depends": ["__glibc >=2.28,<3.0.a0", "python"]}, {"name": "b", "depends": []}]
    got = manifest.min_glibc(tmp_path, records, "linux-64")
    assert got["min_glibc"] == "2.28" and "package a depends on __glibc >=2.28" in got["glibc_evidence"]["source"]
    assert manifest.min_glibc(tmp_path, records, "osx-arm64")["min_glibc"] is None
    assert manifest.min_glibc(tmp_path, [], "linux-64")["min_glibc"] is None


# --- installer ---------------------------------------------------------------

def test_installer_installs_runs_and_refuses_a_non_empty_dir(built: Built, tmp_path: Path) -> None:
    target = tmp_path / "opt" / "tiny"
    target.mkdir(parents=True)
    (target / "keep.txt").write_text("mine")
    refused = bash(f"bash {built.installer} -p {target}", tmp_path)
    assert refused.returncode == 1 and "is not empty" in refused.stderr and "-f" in refused.stderr
    assert sorted(p.name for p in target.iterdir()) == ["keep.txt"]
    proc = bash(f"bash {built.installer} -p {target} -f", tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "checking imports: six yaml" in proc.stderr and "smoke test: tiny-hello" in proc.stderr
    assert f"source {target}/bin/activate" in proc.stdout and f"{target}/bin/tiny-cli" in proc.stdout
    assert (target / "keep.txt").read_text() == "mine"
    check = bash(f"{target}/bin/python -c 'import sys, yaml, six, tinypkg; print(sys.prefix)'", tmp_path)
    assert check.stdout.strip() == str(target), check.stderr
    # The launchers, through activate and directly; the shipped files.
    hello = bash(f"source {target}/bin/activate && tiny-hello", tmp_path)
    assert hello.stdout.strip() == "six: true", hello.stderr
    cli = bash(f"{target}/bin/tiny-cli a 'b c'", tmp_path)
    assert (cli.returncode, cli.stdout.strip()) == (3, "cli tiny-cli ['a', 'b c']"), cli.stderr
    assert bash(f"{target}/bin/tiny-mod x", tmp_path).stdout.strip() == "hi from tinypkg ['x']"
    assert bash(f"{target}/bin/tiny-script y", tmp_path).stdout.strip() == "script ['y']"
    shipped = sorted(p.relative_to(target / "share" / "tiny").as_posix()
                     for p in (target / "share" / "tiny").rglob("*") if p.is_file() and p.suffix != ".pyc")
    assert shipped == ["app.py", "tinypkg/__init__.py", "tinypkg/__main__.py", "tinypkg/cli.py",
                       "tinypkg/data.txt", "tools/hello.py"]


def test_launchers_work_unpacked_elsewhere_without_conda_unpack(built: Built, tmp_path: Path) -> None:
    where = tmp_path / "plain"
    where.mkdir()
    run(["tar", "-xzf", str(built.tarball), "-C", str(where)], check=True)
    (tmp_path / "mybin").mkdir()
    (tmp_path / "mybin" / "hello").symlink_to(where / "bin" / "tiny-hello")
    # From another directory, through a symlink, with a module of the same name in the current directory.
    (tmp_path / "app.py").write_text("raise SystemExit('the wrong app.py')\n")
    out = bash("mybin/hello", tmp_path)
    assert (out.returncode, out.stdout.strip()) == (0, "six: true"), out.stderr
    assert built.repo.root.as_posix() not in (where / "bin" / "tiny-hello").read_text()


def test_installer_refuses_a_changed_payload(built: Built, tmp_path: Path) -> None:
    bad = tmp_path / "tiny-linux-64.sh"
    data = bytearray(built.installer.read_bytes())
    data[-1000] ^= 0xFF  # inside the payload
    bad.write_bytes(bytes(data))
    proc = bash(f"bash {bad} -p {tmp_path / 'out'}", tmp_path)
    assert proc.returncode == 1 and "sha256" in proc.stderr and "download it again" in proc.stderr
    assert not (tmp_path / "out").exists()
    truncated = tmp_path / "short.sh"
    truncated.write_bytes(built.installer.read_bytes()[:-10])
    proc = bash(f"bash {truncated} --check", tmp_path)
    assert proc.returncode == 1 and "truncated" in proc.stderr


def test_installer_refuses_an_old_glibc_before_unpacking(built: Built, tmp_path: Path) -> None:
    target = json.loads(built.manifest.read_text())["target"]
    need, files_need = target["glibc"], target["min_glibc"]
    proc = bash(f"bash {built.installer} -p {tmp_path / 'out'}", tmp_path, PORTABLE_ENV_GLIBC_VERSION="2.17")
    assert proc.returncode == 1, proc.stderr
    assert f"built for glibc >= {need} (its target glibc; its files need {files_need}), this machine has 2.17" \
        in proc.stderr
    assert not (tmp_path / "out").exists()
    ok = bash(f"bash {built.installer} --check -p {tmp_path / 'out'}", tmp_path, PORTABLE_ENV_GLIBC_VERSION="99.0")
    assert ok.returncode == 0 and "can run tiny" in ok.stderr, ok.stderr
    assert not (tmp_path / "out").exists()
    same = bash(f"bash {built.installer} --check", tmp_path, PORTABLE_ENV_GLIBC_VERSION=f"{need}.1")
    assert same.returncode == 0, same.stderr


def test_installer_list_help_and_manifest_need_no_unpacking(built: Built, tmp_path: Path) -> None:
    m = json.loads(built.manifest.read_text())
    listing = bash(f"bash {built.installer} --list", tmp_path)
    assert listing.returncode == 0 and f"{len(m['packages'])} packages" in listing.stdout
    for p in m["packages"]:
        assert re.search(rf"^{re.escape(p['name'])}\s+{re.escape(p['version'])}\s+{re.escape(p['build'])}\s",
                         listing.stdout, re.M), p["name"]
    helped = bash(f"bash {built.installer} --help", tmp_path)
    assert helped.returncode == 0 and "-p, --prefix DIR" in helped.stdout and "--check" in helped.stdout
    assert json.loads(bash(f"bash {built.installer} --manifest", tmp_path).stdout) == m
    wrong = bash(f"bash {built.installer} --bogus", tmp_path)
    assert wrong.returncode == 2 and "unknown argument: --bogus" in wrong.stderr
    assert list(tmp_path.iterdir()) == []


def test_installer_header_is_shellcheck_clean(built: Built, tmp_path: Path) -> None:
    data = built.installer.read_bytes()
    size = int(re.search(rb"^HEADER_SIZE=(\d+)$", data[:200000], re.M)[1])
    assert data[:size].endswith(b"\n__PORTABLE_ENV_PAYLOAD__\n") and data[size:] == built.tarball.read_bytes()
    (tmp_path / "header.sh").write_bytes(data[:size])
    assert probe.source().rstrip("\n").encode() in data[:size], "the installer runs THE import probe"
    for path in (tmp_path / "header.sh", installer.TEMPLATE):
        proc = run(["shellcheck", str(path)])
        assert proc.returncode == 0, proc.stdout
    assert (built.root / "tiny-linux-64.sh.sha256").read_text() == f"{sha(built.installer)}  tiny-linux-64.sh\n"


@pytest.mark.parametrize("fmt", ["tar.zst", "tar.xz", "tar"])
def test_installers_of_other_formats(built: Built, tmp_path: Path, fmt: str) -> None:
    program = formats.FORMATS[fmt].program
    if program and shutil.which(program) is None:
        assert not os.environ.get("CI"), f"CI must have {program} (.ci/run installs it)"
        pytest.skip(f"needs the {program} program")
    tarball = tmp_path / f"tiny-linux-64.{fmt}"
    script("pack-env", "--prefix", str(built.env), "--out", str(tarball), "--format", fmt, check=True)
    manifest = tmp_path / "tiny-linux-64.manifest.json"
    script("write-manifest", "--prefix", str(built.env), "--deps", str(built.kdir / "deps.yml"),
           "--project", "tiny", "--platform", "linux-64", "--tarball", str(tarball), "--out-manifest", str(manifest),
           check=True)
    installer = tmp_path / "tiny-linux-64.sh"
    mismatch = script("make-installer", "--tarball", str(tarball), "--manifest", str(built.manifest),
                      "--out", str(installer))
    assert mismatch.returncode == 1 and "describes another archive" in mismatch.stderr
    script("make-installer", "--tarball", str(tarball), "--manifest", str(manifest), "--out", str(installer),
           check=True)
    proc = bash(f"bash {installer} -p z", tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "checking imports: six yaml" in proc.stderr
    out = bash("z/bin/tiny-cli q; z/bin/python -c 'import sys, yaml; print(sys.prefix)'", tmp_path)
    assert out.stdout.split("\n")[:2] == ["cli tiny-cli ['q']", str(tmp_path / "z")], out.stderr


def test_make_installer_errors(built: Built, tmp_path: Path) -> None:
    plain = tmp_path / "tiny-linux-64.zip"
    plain.write_bytes(b"x")
    proc = script("make-installer", "--tarball", str(plain), "--manifest", str(built.manifest),
                  "--out", str(tmp_path / "i.sh"))
    assert proc.returncode == 1 and "the formats tar.gz, tar.zst, tar.bz2, tar.xz, tar" in proc.stderr
    broken = tmp_path / "tiny-linux-64.tar.gz"
    broken.write_bytes(b"\x1f\x8b broken")
    manifest = tmp_path / "m.json"
    manifest.write_text(json.dumps({**json.loads(built.manifest.read_text()), "tarball": None}))
    proc = script("make-installer", "--tarball", str(broken), "--manifest", str(manifest),
                  "--out", str(tmp_path / "i.sh"))
    assert proc.returncode == 1 and "cannot read the archive" in proc.stderr
    assert not (tmp_path / "i.sh").exists() and not (tmp_path / "i.sh.tmp").exists()


def test_installer_template_tarball_listing_helper(built: Built, tmp_path: Path) -> None:
    """The space the installer asks for covers what unpacking really takes
    on disk (du of an unpacked copy), without asking for absurdly more."""
    kb = installer.archive_facts(built.tarball)
    where = tmp_path / "unpacked"
    where.mkdir()
    run(["tar", "-xzf", str(built.tarball), "-C", str(where)], check=True)
    used = int(run(["du", "-sk", str(where)], check=True).stdout.split()[0])
    assert used <= kb <= 2 * used + 1024, (kb, used)


def test_smoke_imports_are_required_installed_ones() -> None:
    deps = {"required": ["six", "gone"], "optional": ["ujson"], "on_demand": ["h5py"],
            "imports": {"six": {"six": ["a.py:1"]}, "gone": {"gone": ["a.py:2"]},
                        "ujson": {"ujson": ["a.py:3"]}, "h5py": {"h5py": ["p/io.py:9"]}}}
    imports = manifest.detected_imports(deps, {"six", "ujson", "h5py"})
    assert {i["name"]: i["kind"] for i in imports} == {
        "six": "required", "gone": "required", "ujson": "optional", "h5py": "on_demand"}
    assert manifest.smoke_imports(imports) == ["six"]
