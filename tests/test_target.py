"""The declared target machine (target: {glibc, cpu, cuda}): the solve uses exactly its virtual
packages, both locks record them, check-lock names a change, an unsatisfiable target names the
virtual package, its package and the setting; pack refuses ELF files needing a newer glibc; the
local channel says what its packages need; the installer compares the machine with the target.

Solve-only tests use the real conda-forge records in /work/shared/data/conda-forge-records (skipped
without them) and a tiny repodata-only channel of conda-forge's microarch-level shape."""
from __future__ import annotations

import json
import re
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from conftest import CACHE, HOST_GLIBC, REPO, Repo, run, script
from portable_env import glibc, installer, lock
from portable_env.channel.archive import paths_entry, write_conda, write_info
from portable_env.channel.convert import manylinux_glibc
from portable_env.channel.index import index_channel
from portable_env.errors import UserError
from portable_env.settings import Overrides, resolve

RECORDS = Path("/work/shared/data/conda-forge-records")
needs_records = pytest.mark.skipif(not (RECORDS / "linux-64" / "repodata.json").is_file(),
                                   reason=f"needs the conda-forge records in {RECORDS}")
CLEAN = {"PATH": "/usr/bin:/bin", "HOME": "/tmp", "LANG": "C.UTF-8"}


def settings_json(tmp: Path, glibc_: str | None = None, project_yml: str | None = None) -> Path:
    """build/P/KEY/settings.json of a project 'p' (target glibc override), written under tmp."""
    pdir = tmp / "projects" / "p"
    pdir.mkdir(parents=True, exist_ok=True)
    if project_yml is not None:
        (pdir / "project.yml").write_text(project_yml)
    s = resolve(pdir, overrides=Overrides(target_glibc=glibc_ or ""), root=REPO)
    out = tmp / f"settings-{glibc_ or 'default'}.json"
    out.write_text(s.to_json())
    return out


def lock_args(tmp: Path, env_file: Path, name: str = "out") -> list[str]:
    return ["--env-file", str(env_file), "--lock", str(tmp / name / "rattler-lock.yml"),
            "--explicit", str(tmp / name / "conda-linux-64.lock"), "--cache-dir", str(CACHE)]


def env_file(tmp: Path, channel: str, specs: list[str]) -> Path:
    path = tmp / "environment.yml"
    path.write_text(json.dumps({"name": "p", "channels": [channel], "dependencies": specs}))
    return path


# --- the virtual packages ------------------------------------------------------

def test_the_solve_uses_exactly_the_target_virtual_packages() -> None:
    assert lock.Target().virtual_packages() == [
        ("__unix", "0", "0"), ("__linux", "3.10", "0"), ("__glibc", "2.17", "0"), ("__archspec", "1", "x86_64")]
    t = lock.Target.of({"glibc": "2.28", "cpu": "x86_64_v3", "cuda": "12.4"})
    assert t.virtual_packages() == [("__unix", "0", "0"), ("__linux", "4.18", "0"), ("__glibc", "2.28", "0"),
                                    ("__archspec", "1", "x86_64_v3"), ("__cuda", "12.4", "0")]
    # The kernel of the oldest mainstream system with that glibc (CentOS 7, RHEL 8, RHEL 9).
    assert [lock.Target(glibc=g).linux for g in ("2.12", "2.17", "2.27", "2.28", "2.36")] == \
        ["2.6.32", "3.10", "3.10", "4.18", "5.14"]
    assert [str(vp.name.normalized) for vp in lock.rattler_virtual_packages(t, "linux-64")] == \
        ["__unix", "__linux", "__glibc", "__archspec", "__cuda"]
    # Nothing asks this host for its virtual packages any more.
    users = run(["grep", "-rln", "VirtualPackage.detect", str(REPO / "scripts")]).stdout.split()
    assert [u for u in users if "__pycache__" not in u and ".mypy_cache" not in u] == []


def test_a_changed_target_is_named_by_check_lock(tmp_path: Path) -> None:
    spec = env_file(tmp_path, "file:///nowhere", ["python"])
    out = tmp_path / "out"
    out.mkdir()
    old = lock.Target(glibc="2.17")
    (out / "conda-linux-64.lock").write_text(lock.explicit_text([], "linux-64", "p", lock.spec_hash(spec, old), old))
    (out / "rattler-lock.yml").write_text("version: 6\n")
    assert lock.recorded_target(out / "conda-linux-64.lock") == old
    default = settings_json(tmp_path)
    assert script("lock-env", *lock_args(tmp_path, spec), "--settings", str(default), "--check").returncode == 0
    proc = script("lock-env", *lock_args(tmp_path, spec), "--settings", str(settings_json(tmp_path, "2.28")),
                  "--check")
    assert proc.returncode == 1 and "target glibc changed 2.17 -> 2.28: run make PROJECT=p lock" in proc.stderr
    cuda = settings_json(tmp_path, project_yml='target: {cuda: "12.4", cpu: x86_64_v2}\n')
    proc = script("lock-env", *lock_args(tmp_path, spec), "--settings", str(cuda), "--check")
    assert "target cpu changed x86_64 -> x86_64_v2; target cuda changed none -> 12.4" in proc.stderr, proc.stderr
    # A lock from before targets (solved for the build host) is stale too.
    (out / "conda-linux-64.lock").write_text(f"{lock.HASH_LINE}{lock.spec_hash(spec)}\n@EXPLICIT\n")
    proc = script("lock-env", *lock_args(tmp_path, spec), "--settings", str(default), "--check")
    assert proc.returncode == 1 and "records no target machine" in proc.stderr


# --- real conda-forge records ----------------------------------------------------

@needs_records
def test_a_target_glibc_too_old_for_a_pin_fails_naming_both(tmp_path: Path) -> None:
    spec = env_file(tmp_path, RECORDS.as_uri(), ["c-ares==1.33.1"])
    proc = script("lock-env", *lock_args(tmp_path, spec), "--settings", str(settings_json(tmp_path)))
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    err = proc.stderr
    assert "error: lock: the target machine (glibc 2.17, cpu x86_64, no CUDA) cannot run" in err, err
    assert "__glibc >=2.28,<3.0.a0 needed by c-ares 1.33.1 (the target glibc is 2.17)" in err
    assert 'target: {glibc: "2.28"}  in projects/p/project.yml' in err.replace(str(tmp_path) + "/", "")
    assert "TARGET_GLIBC=2.28" in err
    assert not (tmp_path / "out").exists()
    # The same pin for a glibc-2.28 machine: solved, and both locks say for what.
    ok = script("lock-env", *lock_args(tmp_path, spec), "--settings", str(settings_json(tmp_path, "2.28")))
    assert ok.returncode == 0, ok.stderr
    for name in ("conda-linux-64.lock", "rattler-lock.yml"):
        path = tmp_path / "out" / name
        assert "# virtual-package: __glibc=2.28=0" in path.read_text().splitlines(), name
        assert lock.recorded_target(path) == lock.Target(glibc="2.28")
    names = {r.name.normalized: str(r.version) for r in lock.read_records(tmp_path / "out" / "rattler-lock.yml",
                                                                          "linux-64")}
    assert names["c-ares"] == "1.33.1"


@needs_records
def test_a_glibc_2_17_solve_takes_no_record_that_needs_more(tmp_path: Path) -> None:
    import asyncio

    specs = ["python 3.12.*", "pandas", "scikit-learn", "c-ares"]
    records = asyncio.run(lock.solve([RECORDS.as_uri()], specs, "linux-64", CACHE, {}, "p.yml", lock.Target()))
    needs = {f"{r.name.normalized} {r.version}": d for r in records for d in r.depends if d.startswith("__glibc")}
    assert needs, "the records declare their glibc"
    for who, dep in needs.items():
        assert tuple(map(int, re.search(r">=([\d.]+)", dep)[1].split(".")[:2])) <= (2, 17), (who, dep)
    got = {r.name.normalized: str(r.version) for r in records}
    assert got["c-ares"] != "1.33.1"  # the only c-ares that needs 2.28 was left out


def microarch_channel(root: Path) -> str:
    """A repodata-only channel of conda-forge's shape: `_x86_64-microarch-level` per
    microarchitecture (noarch, `__archspec 1=<name>`), and a library with a level-3 build (run
    export `_x86_64-microarch-level >=3`, higher build number) beside a generic one."""
    def rec(name: str, version: str, build: str, number: int, depends: list[str], subdir: str) -> tuple[str, dict]:
        return f"{name}-{version}-{build}.conda", {
            "name": name, "version": version, "build": build, "build_number": number, "depends": depends,
            "subdir": subdir, "license": "BSD-3-Clause", "timestamp": 1700000000000,
            "sha256": "0" * 64, "md5": "0" * 32, "size": 1, **({"noarch": "generic"} if subdir == "noarch" else {})}

    levels = [("1", "x86_64"), ("3", "x86_64_v3"), ("3", "haswell"), ("3", "zen3"), ("4", "x86_64_v4")]
    noarch = dict(rec("_x86_64-microarch-level", lv, f"2_{arch}", 2, [f"__archspec 1={arch}"], "noarch")
                  for lv, arch in levels)
    linux = dict([rec("fastlib", "1.0", "h0_level1", 0, [], "linux-64"),
                  rec("fastlib", "1.0", "h0_level3", 100, ["_x86_64-microarch-level >=3"], "linux-64")])
    for subdir, packages in (("noarch", noarch), ("linux-64", linux)):
        (root / subdir).mkdir(parents=True)
        (root / subdir / "repodata.json").write_text(json.dumps(
            {"info": {"subdir": subdir}, "packages": {}, "packages.conda": packages}))
    return root.as_uri()


def test_a_generic_cpu_target_pulls_in_no_microarch_level(tmp_path: Path) -> None:
    import asyncio

    chan = microarch_channel(tmp_path / "chan")

    def solved(cpu: str) -> dict[str, str]:
        records = asyncio.run(lock.solve([chan], ["fastlib"], "linux-64", tmp_path / "cache", {}, "p.yml",
                                         lock.Target(cpu=cpu)))
        return {r.name.normalized: f"{r.version} {r.build}" for r in records}

    assert solved("x86_64") == {"fastlib": "1.0 h0_level1"}
    assert solved("x86_64_v3") == {"fastlib": "1.0 h0_level3", "_x86_64-microarch-level": "3 2_x86_64_v3"}
    # Asking for the level-3 build on a generic target: the error names __archspec and the cpu setting.
    with pytest.raises(UserError) as err:
        asyncio.run(lock.solve([chan], ["fastlib * h0_level3"], "linux-64", tmp_path / "cache", {},
                               "projects/p/project.yml", lock.Target()))
    msg = str(err.value)
    assert "__archspec" in msg and "(the target cpu is x86_64)" in msg and "target: {cpu: x86_64_v3}" in msg, msg


# --- the local channel says what it needs ---------------------------------------

def test_manylinux_tags_give_the_glibc_a_wheel_needs() -> None:
    assert manylinux_glibc("numpy-2.4.6-cp311-cp311-manylinux_2_27_x86_64.manylinux_2_28_x86_64.whl") == (2, 27)
    assert manylinux_glibc("pyyaml-6.0.4-cp311-cp311-manylinux2014_x86_64.manylinux_2_17_x86_64.whl") == (2, 17)
    assert manylinux_glibc("x-1-cp311-cp311-manylinux2014_x86_64.whl") == (2, 17)
    assert manylinux_glibc("x-1-cp311-cp311-manylinux2010_x86_64.whl") == (2, 12)
    assert manylinux_glibc("x-1-cp311-cp311-manylinux1_x86_64.whl") == (2, 5)
    assert manylinux_glibc("x-1-cp311-cp311-musllinux_1_2_x86_64.whl") is None
    assert manylinux_glibc("six-1.17.0-py2.py3-none-any.whl") is None


def test_the_local_channel_declares_its_glibc(channel: str, tmp_path: Path) -> None:
    root = Path(channel.removeprefix("file://"))
    repodata = json.loads((root / "linux-64" / "repodata.json").read_text())["packages.conda"]
    by_name = {r["name"]: r for r in repodata.values()}
    wheels = {p.name.split("-")[0].lower().replace("_", "-"): p.name for p in (REPO / "build" / "wheels").glob("*.whl")}
    for name in ("numpy", "pyyaml", "scipy"):
        want = manylinux_glibc(wheels[name])
        assert f"__glibc >={want[0]}.{want[1]},<3.0.a0" in by_name[name]["depends"], name
    # python: the highest GLIBC_x.y of its ELF files (libpython, lib-dynload), at most this OS's.
    (py_glibc,) = [d for d in by_name["python"]["depends"] if d.startswith("__glibc")]
    version = re.search(r">=([\d.]+),", py_glibc)[1]
    base = Path(sys.base_prefix)
    elf = [glibc.elf_glibc_versions(p) for p in [*base.glob("lib/libpython3*.so*"), *base.glob("bin/python3.*")]
           if not p.is_symlink()]
    assert version == glibc.version_text(max(v for vs in elf for v in vs)), py_glibc
    assert tuple(map(int, version.split("."))) <= tuple(map(int, HOST_GLIBC.split(".")))
    assert not any(d.startswith("__glibc") for r in json.loads((root / "noarch" / "repodata.json").read_text())
                   ["packages.conda"].values() for d in r["depends"])
    # So the default target (glibc 2.17) cannot use this channel, and says why.
    spec = env_file(tmp_path, channel, ["python", "six"])
    proc = script("lock-env", *lock_args(tmp_path, spec), "--settings", str(settings_json(tmp_path)))
    assert proc.returncode == 1
    assert f"__glibc >={version},<3.0.a0 needed by python " in proc.stderr and "TARGET_GLIBC=" in proc.stderr


# --- pack refuses files that need a newer glibc -----------------------------------

def newer_elf(dest: Path) -> tuple[int, int]:
    """A copy of a host ELF file whose highest GLIBC_2.NN version name reads GLIBC_2.99 (never run)."""
    src = Path(sys.base_prefix) / "bin" / "python{}.{}".format(*sys.version_info[:2])
    data = src.resolve().read_bytes()
    names = sorted(set(re.findall(rb"GLIBC_2\.\d\d\0", data)))
    assert names, src
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_bytes(data.replace(names[-1], b"GLIBC_2.99\0"))
    return (2, 99)


def fake_env(root: Path) -> Path:
    """An env with one package 'fastlib 1.0' owning a file that needs glibc 2.99, and a plain text file."""
    env = root / "env"
    newer_elf(env / "lib" / "libfast.so")
    (env / "lib" / "notes.txt").write_text("not ELF\n")
    (env / "conda-meta").mkdir(parents=True)
    (env / "conda-meta" / "fastlib-1.0-0.json").write_text(json.dumps(
        {"name": "fastlib", "version": "1.0", "build": "0", "files": ["lib/libfast.so", "lib/notes.txt"]}))
    return env


def test_pack_refuses_an_elf_file_needing_a_newer_glibc(tmp_path: Path) -> None:
    env = fake_env(tmp_path)
    assert glibc.needs(env) == {"lib/libfast.so": (2, 99)}
    assert glibc.too_new(env, "2.36") == [("lib/libfast.so", "2.99", "fastlib 1.0")]
    with pytest.raises(UserError) as err:
        glibc.check(env, lock.Target(glibc="2.17"), "projects/p/project.yml", "p")
    msg = str(err.value)
    assert "1 ELF file(s) need a newer glibc than the target's 2.17 (up to 2.99)" in msg
    assert "lib/libfast.so needs glibc 2.99 (fastlib 1.0)" in msg and "packages: fastlib 1.0" in msg
    assert 'target: {glibc: "2.99"}  in projects/p/project.yml' in msg and "TARGET_GLIBC=2.99" in msg
    assert glibc.check(env, lock.Target(glibc="2.99"), "p.yml", "p")["version"] == "2.99"
    # The executable the archive transaction runs; a lock for another target is refused first.
    settings = settings_json(tmp_path)
    proc = script("check-target", "--prefix", str(env), "--settings", str(settings))
    assert proc.returncode == 1 and proc.stderr.startswith("error: target: ") and "fastlib 1.0" in proc.stderr
    explicit = tmp_path / "conda-linux-64.lock"
    explicit.write_text(lock.explicit_text([], "linux-64", "p", "0", lock.Target(glibc="2.99")))
    proc = script("check-target", "--prefix", str(env), "--settings", str(settings), "--explicit", str(explicit))
    assert proc.returncode == 1 and "solved for another target (target glibc changed 2.99 -> 2.17)" in proc.stderr
    ok = script("check-target", "--prefix", str(env), "--settings", str(settings_json(tmp_path, "2.99")),
                "--explicit", str(explicit))
    assert ok.returncode == 0 and "need at most the target's glibc 2.99" in ok.stderr, ok.stderr


def test_make_pack_refuses_a_package_with_files_newer_than_the_target(channel: str, repo: Repo,
                                                                       host_python: str, tmp_path: Path) -> None:
    """A package that does not declare its glibc (as converted or hand-made packages may not) is
    solved for the target, but make pack refuses it before packing, naming file and package; the
    same project without it packs for the host's glibc."""
    src, chan = Path(channel.removeprefix("file://")), tmp_path / "chan"
    for subdir in ("linux-64", "noarch"):
        (chan / subdir).mkdir(parents=True)
        for archive in (src / subdir).glob("*.conda"):
            if archive.name.split("-")[0] in ("python", "python_abi", "six"):
                (chan / subdir / archive.name).write_bytes(archive.read_bytes())
    tree = tmp_path / "tree"
    newer_elf(tree / "lib" / "libfast.so")
    index = {"name": "fastlib", "version": "1.0", "build": "0", "build_number": 0, "depends": [],
             "subdir": "linux-64", "arch": "x86_64", "platform": "linux", "license": "MIT",
             "timestamp": 1700000000000}
    write_info(tree, index, [paths_entry(tree, "lib/libfast.so")], {"summary": "needs a newer glibc"})
    write_conda(tree, chan / "linux-64" / "fastlib-1.0-0.conda", 1700000000)
    index_channel(chan)
    repo.project("p", {"main.py": "import six\n"}, "packages: [fastlib]\npip: false  # this channel has no pip\n")
    args = ("PROJECT=p", f"CHANNELS={chan.as_uri()}", f"PYTHON={host_python}")
    proc = repo.make(*args, "pack", check=False)
    assert proc.returncode != 0
    assert "lib/libfast.so needs glibc 2.99 (fastlib 1.0)" in proc.stderr, proc.stderr[-3000:]
    assert f"the target's {HOST_GLIBC}" in proc.stderr and not list((repo.root / "dist").glob("p-*"))
    (repo.root / "projects" / "p" / "project.yml").write_text("packages: []\npip: false\n")
    done = repo.make(*args, "pack", check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    m = json.loads((repo.root / "dist" / "p-linux-64.manifest.json").read_text())
    assert m["target"]["glibc"] == HOST_GLIBC and m["target"]["cpu"] == "x86_64"


# --- the installer compares the machine with the target ----------------------------

def fake_installer(tmp: Path, target: dict) -> Path:
    """An installer of a tiny archive (bin/python, bin/conda-unpack) whose manifest records target."""
    tree = tmp / "tree"
    (tree / "bin").mkdir(parents=True)
    (tree / "bin" / "python").write_text("#!/bin/sh\n")
    (tree / "bin" / "conda-unpack").write_text("#!/bin/sh\n")
    tarball = tmp / "t-linux-64.tar.gz"
    with tarfile.open(tarball, "w:gz") as tf:
        tf.add(tree / "bin", arcname="bin")
    manifest = {"project": "t", "platform": "linux-64", "python": "3.11.7",
                "target": {"os": "Linux", "arch": "x86_64", **target},
                "packages": [{"name": "python", "version": "3.11.7", "build": "0", "channel": "c"}],
                "smoke_imports": []}
    (tmp / "m.json").write_text(json.dumps(manifest))
    out = tmp / "t-linux-64.sh"
    installer.build(tarball, tmp / "m.json", out, installer.TEMPLATE, "")
    return out


def check(inst: Path, cwd: Path, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(inst), "--check", "-p", str(cwd / "out")], cwd=cwd, env={**CLEAN, **env},
                          capture_output=True, text=True)


V3 = "fpu sse sse2 pni ssse3 cx16 sse4_1 sse4_2 popcnt lahf_lm avx avx2 bmi1 bmi2 f16c fma abm movbe xsave"


def test_the_installer_refuses_a_machine_unlike_the_target(tmp_path: Path) -> None:
    inst = fake_installer(tmp_path, {"glibc": "2.28", "cpu": "x86_64_v3", "cuda": "12.4", "min_glibc": "2.17"})
    fine = dict(PORTABLE_ENV_GLIBC_VERSION="2.28", PORTABLE_ENV_CPU_FLAGS=V3, PORTABLE_ENV_CUDA_VERSION="12.4")
    ok = check(inst, tmp_path, **fine)
    assert ok.returncode == 0 and "this machine can run t" in ok.stderr, ok.stderr
    bad = check(inst, tmp_path, PORTABLE_ENV_GLIBC_VERSION="2.17",
                PORTABLE_ENV_CPU_FLAGS="fpu sse sse2 ssse3 cx16 sse4_1 sse4_2 popcnt lahf_lm avx",
                PORTABLE_ENV_CUDA_VERSION="11.8")
    assert bad.returncode == 1 and not (tmp_path / "out").exists()
    err = bad.stderr
    assert "built for glibc >= 2.28 (its target glibc; its files need 2.17), this machine has 2.17" in err, err
    assert "built for x86_64_v3 CPUs (its target cpu), this CPU lacks avx2 bmi1 bmi2 f16c fma abm movbe xsave" in err
    assert "built for CUDA >= 12.4 (its target cuda), this machine's NVIDIA driver supports CUDA 11.8" in err
    none = check(inst, tmp_path, **{**fine, "PORTABLE_ENV_CUDA_VERSION": ""})
    assert none.returncode == 1 and "has no NVIDIA driver" in none.stderr
    # Installing (not only --check) refuses before unpacking anything.
    proc = subprocess.run(["bash", str(inst), "-p", str(tmp_path / "out")], cwd=tmp_path, capture_output=True,
                          text=True, env={**CLEAN, **fine, "PORTABLE_ENV_GLIBC_VERSION": "2.27"})
    assert proc.returncode == 1 and "this machine has 2.27" in proc.stderr and not (tmp_path / "out").exists()
    # The header says what it needs; a generic target checks no CPU flags.
    assert "glibc >= 2.28" in subprocess.run(["bash", str(inst), "--help"], capture_output=True, text=True).stdout
    generic = fake_installer(tmp_path / "g", {"glibc": "2.17", "cpu": "x86_64", "cuda": None, "min_glibc": "2.17"})
    assert check(generic, tmp_path, PORTABLE_ENV_GLIBC_VERSION="2.17", PORTABLE_ENV_CPU_FLAGS="").returncode == 0
