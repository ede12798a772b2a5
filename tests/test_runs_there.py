"""Issue 12, "runs there": packed environments work at a new path without activation.

The local channel hides what conda-forge packages do, so this suite builds
small packages of their real shape in a throwaway channel (info/index.json,
info/paths.json with prefix placeholders, info/link.json entry points,
post-link scripts), indexes it with py-rattler and solves them together with
the local channel's python, then runs the project's own lock, env, pack and
verify modules on them:
  - a `noarch: python` package whose console script exists only as an entry
    point in info/link.json, and a plain bin/ script with a placeholder
    shebang: both run unpacked elsewhere, before and after conda-unpack,
    through a symlink, with a PATH that has no python;
  - a binary file carrying a 255-character prefix placeholder
    (`file_mode: binary`): relocated by conda-unpack; with its package cache
    entry gone the env is incomplete and pack refuses; a build path planted
    in an archive fails verify;
  - a broken on-demand package fails verify, naming the package;
  - post-link scripts run at create (a failing one fails it);
  - pip: verify runs `bin/python -m pip --version`.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import yaml
from conftest import script
from portable_env import env, lock, pack, verify
from portable_env.channel.archive import paths_entry, write_conda, write_info
from portable_env.errors import UserError

PY = "{}.{}".format(*sys.version_info[:2])  # the local channel's python is the host's
SITE = f"lib/python{PY}/site-packages"
# conda-forge's placeholder: the build's host prefix padded to 255 characters.
PLACEHOLDER = ("/home/conda/feedstock_root/build_artifacts/fake_1700000000/_h_env_" + "placehold_" * 30)[:255]
MTIME = 1700000000
# the local channel suits this OS only: solve for the host's glibc
HOST = lock.Target(glibc=os.confstr("CS_GNU_LIBC_VERSION").split()[-1])  # type: ignore[misc]


def build_package(
    channel: Path,
    name: str,
    files: dict[str, str | bytes],
    *,
    noarch: bool = False,
    depends: tuple[str, ...] = (),
    entry_points: tuple[str, ...] = (),
    placeholders: dict[str, str] | None = None,
    version: str = "1.0",
) -> None:
    """One .conda package of conda-forge's shape in channel/<subdir>/
    (placeholders: path -> file_mode, with PLACEHOLDER as the prefix)."""
    subdir = "noarch" if noarch else "linux-64"
    tree = channel.parent / "trees" / f"{name}-{version}"
    for rel, data in files.items():
        path = tree / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data if isinstance(data, bytes) else data.encode())
        if rel.startswith(("bin/", "python-scripts/")) and not Path(rel).name.startswith("."):
            path.chmod(0o755)
    paths = []
    for rel in files:
        mode = (placeholders or {}).get(rel)
        entry = paths_entry(tree, rel, PLACEHOLDER if mode else None)
        if mode:
            entry["file_mode"] = mode
        paths.append(entry)
    index = {
        "name": name,
        "version": version,
        "build": "0",
        "build_number": 0,
        "depends": list(depends),
        "subdir": subdir,
        "timestamp": MTIME * 1000,
        "license": "MIT",
    }
    if noarch:
        index["noarch"] = "python"
    write_info(tree, index, paths, {"summary": f"{name}, built by tests/test_runs_there.py"})
    if noarch:
        (tree / "info" / "link.json").write_text(
            json.dumps(
                {"noarch": {"type": "python", "entry_points": list(entry_points)}, "package_metadata_version": 1}
            )
        )
    (channel / subdir).mkdir(parents=True, exist_ok=True)
    write_conda(tree, channel / subdir / f"{name}-{version}-0.conda", MTIME)


def fake_binary(text: bytes) -> bytes:
    """Bytes shaped like a shared library (NULs, non-UTF-8) holding a C string."""
    return b"\x7fELF\x02\x01\x01\x00\xff\xfe\x00\x00" + text + b"\x00" * 300 + b"\xff\xfeend"


PACKAGES = {
    # noarch: python, the console script declared only in info/link.json (rattler writes bin/hello)
    "hello": dict(
        files={"site-packages/hello/__init__.py": "import sys\n\ndef main():\n    print('hello from', sys.prefix)\n"},
        noarch=True,
        depends=("python",),
        entry_points=("hello = hello:main",),
    ),
    # a plain bin/ script whose shebang is the placeholder's python
    "plain": dict(
        files={"bin/plain-tool": f"#!{PLACEHOLDER}/bin/python{PY}\nimport sys\nprint('plain from', sys.prefix)\n"},
        depends=("python",),
        placeholders={"bin/plain-tool": "text"},
    ),
    # a binary file with the prefix placeholder (libpython, libcrypto, bin/python3.X do this)
    "binpkg": dict(
        files={"lib/libfake.so": fake_binary(PLACEHOLDER.encode() + b"/share/fake")},
        placeholders={"lib/libfake.so": "binary"},
    ),
    # a post-link script that writes a file into the prefix and leaves a message
    "linked": dict(
        files={
            "bin/.linked-post-link.sh": 'mkdir -p "$PREFIX/share"\n'
            'echo "$PKG_NAME $PKG_VERSION $PKG_BUILDNUM $PREFIX" > "$PREFIX/share/linked.txt"\n'
            'echo "linked: set up" >> "$PREFIX/.messages.txt"\n'
        }
    ),
    "failing": dict(files={"bin/.failing-post-link.sh": 'echo "failing: needs a licence server" >&2\nexit 3\n'}),
    # an on-demand import that is broken
    "broken": dict(
        files={"site-packages/broken/__init__.py": "raise ImportError('broken on purpose')\n"},
        noarch=True,
        depends=("python",),
    ),
    # pip's shape for `python -m pip --version`
    "pip": dict(
        files={
            "site-packages/pip/__init__.py": "__version__ = '99.0'\n",
            "site-packages/pip/__main__.py": "import os, sys\nimport pip\nprint(f'pip {pip.__version__} from "
            "{os.path.dirname(pip.__file__)} (python {sys.version_info[0]}.{sys.version_info[1]})')\n",
        },
        noarch=True,
        depends=("python",),
        entry_points=("pip = pip.__main__:main",),
    ),
}
ENV_PACKAGES = ["hello", "plain", "binpkg", "linked", "broken", "pip"]


@pytest.fixture(scope="module")
def shaped(tmp_path_factory: pytest.TempPathFactory, channel: str) -> dict[str, object]:
    """The throwaway channel and a lock of python + ENV_PACKAGES."""
    root = tmp_path_factory.mktemp("runs-there")
    ch = root / "channel"
    for name, spec in PACKAGES.items():
        build_package(ch, name, **spec)  # type: ignore[arg-type]
    (ch / "noarch").mkdir(exist_ok=True)
    from rattler.index import index_fs

    asyncio.run(index_fs(ch, force=True, write_zst=False, write_shards=False))
    channels = [f"file://{ch}", channel]

    def lock_of(names: list[str], out: Path) -> Path:
        records = asyncio.run(
            lock.solve(channels, [f"python={PY}", *names], "linux-64", root / "repodata", {}, "project.yml", HOST)
        )
        lock.write_lock(records, channels, "linux-64", out)
        return out

    return {"root": root, "lock": lock_of(ENV_PACKAGES, root / "rattler-lock.yml"), "lock_of": lock_of}


@pytest.fixture(scope="module")
def built(shaped: dict[str, object]) -> dict[str, Path]:
    """The environment (own package cache) and its archive (plain tar: fast)."""
    root: Path = shaped["root"]  # type: ignore[assignment]
    prefix, cache = root / "build" / "env", root / "pkgs"
    env.create(shaped["lock"], prefix, cache, "linux-64")  # type: ignore[arg-type]
    archive = root / "env.tar"
    pack.pack(prefix, archive, "tar")
    return {"root": root, "prefix": prefix, "cache": cache, "archive": archive}


def no_python_path(where: Path) -> str:
    """A PATH with the tools a /bin/sh script needs and no python at all."""
    where.mkdir(parents=True, exist_ok=True)
    for tool in ("sh", "dirname", "readlink"):
        found = shutil.which(tool, path="/usr/bin:/bin")
        assert found, tool
        (where / tool).unlink(missing_ok=True)
        (where / tool).symlink_to(found)
    return str(where)


def unpack(archive: Path, dest: Path) -> Path:
    dest.mkdir(parents=True)
    verify.safe_extract(archive, dest)
    return dest


def run_clean(cmd: list[str], path: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, env={"PATH": path, "HOME": str(cwd)}, cwd=cwd, capture_output=True, text=True)


def with_members(archive: Path, out: Path, extra: dict[str, bytes]) -> Path:
    """A copy of a plain tar with members added or replaced."""
    with tarfile.open(archive) as src, tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as dst:
        for member in src:
            if member.name in extra:
                continue
            dst.addfile(member, src.extractfile(member) if member.isreg() else None)
        for name, data in extra.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o755
            dst.addfile(info, io.BytesIO(data))
    return out


def test_entry_points_run_without_activation_at_any_path(built: dict[str, Path], tmp_path: Path) -> None:
    prefix = built["prefix"]
    assert (prefix / "bin" / "hello").read_text().startswith(f"#!{prefix}/bin/python{PY}"), "rattler wrote it"
    path = no_python_path(tmp_path / "tools")
    with tarfile.open(built["archive"]) as tf:
        packed = {n: tf.extractfile(n).read() for n in ("bin/hello", "bin/plain-tool")}  # type: ignore[union-attr]
    for name, data in packed.items():
        assert data.startswith(b"#!/bin/sh\n"), f"{name}: {data[:60]!r}"
        assert str(prefix).encode() not in data and b"/usr/bin/env" not in data
    for when in ("before", "after"):
        root = unpack(built["archive"], tmp_path / f"{when} conda-unpack" / "somewhere else")
        if when == "after":
            proc = run_clean([str(root / "bin" / "conda-unpack")], path, tmp_path)  # runs without a python on PATH
            assert proc.returncode == 0, proc.stderr
        for tool, word in (("hello", "hello"), ("plain-tool", "plain")):
            proc = run_clean([str(root / "bin" / tool)], path, tmp_path)
            assert proc.returncode == 0, f"{when}: {tool}: {proc.stderr}"
            assert proc.stdout.strip() == f"{word} from {root}", f"{when}: {tool}"
        link = tmp_path / f"{when}-links" / "hello"  # a user's ~/bin/hello -> the env's
        link.parent.mkdir()
        link.symlink_to(root / "bin" / "hello")
        proc = run_clean([str(link)], path, tmp_path)
        assert (proc.returncode, proc.stdout.strip()) == (0, f"hello from {root}"), proc.stderr


def test_verify_runs_every_console_script_and_pip(
    built: dict[str, Path], tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    verify.verify(built["archive"], ["hello"], str(built["prefix"]), tmp_path / "w")
    err = capfd.readouterr().err
    assert "4 scripts in bin/ start the packed python without activation" in err  # conda-unpack, hello, pip, plain-tool
    stale = with_members(
        built["archive"], tmp_path / "stale.tar", {"bin/stale": f"#!/usr/bin/env python{PY}\nprint('hi')\n".encode()}
    )
    with pytest.raises(UserError, match=r"do not start the packed python without activation[^$]*bin/stale"):
        verify.verify(stale, ["hello"], None, tmp_path / "w")
    nopip = with_members(
        built["archive"], tmp_path / "nopip.tar", {f"{SITE}/pip/__main__.py": b"raise SystemExit('pip is broken')\n"}
    )
    with pytest.raises(UserError, match=r"bin/python -m pip --version does not run the packed pip.*pip is broken"):
        verify.verify(nopip, ["hello"], None, tmp_path / "w")


def test_binaries_are_relocated_and_never_packed_with_the_build_path(
    shaped: dict[str, object], built: dict[str, Path], tmp_path: Path
) -> None:
    root = unpack(built["archive"], tmp_path / "elsewhere")
    subprocess.run(
        [str(root / "bin" / "python"), str(root / "bin" / "conda-unpack")], check=True, env={"PATH": "/usr/bin:/bin"}
    )
    data = (root / "lib" / "libfake.so").read_bytes()
    assert f"{root}/share/fake\0".encode() in data and len(data) == len(
        fake_binary(PLACEHOLDER.encode() + b"/share/fake")
    )
    assert str(built["prefix"]).encode() not in data
    # a planted build path in a binary file fails verify, naming it
    planted = with_members(
        built["archive"],
        tmp_path / "planted.tar",
        {"lib/libplanted.so": fake_binary(str(built["prefix"]).encode() + b"/lib")},
    )
    with pytest.raises(UserError, match=r"1 files still contain the build prefix[^$]*lib/libplanted.so \(binary"):
        verify.verify(planted, ["hello"], str(built["prefix"]), tmp_path / "w", project="p")
    # the package cache entry gone: the env is incomplete, pack refuses
    cache, prefix = tmp_path / "pkgs", tmp_path / "env"
    env.create(shaped["lock"], prefix, cache, "linux-64")  # type: ignore[arg-type]
    assert env.check(prefix) == 0 and env.uncached_binaries(prefix) == {}
    shutil.rmtree(next(cache.glob("binpkg-1.0-0")))
    assert env.uncached_binaries(prefix) == {"binpkg": ["lib/libfake.so"]}
    assert env.check(prefix) == 1
    out = tmp_path / "lost.tar"
    proc = script("pack-env", "--prefix", str(prefix), "--out", str(out), "--format", "tar")
    assert proc.returncode == 1, proc.stderr
    assert "binpkg: lib/libfake.so" in proc.stderr and "make PROJECT=<project> clean" in proc.stderr
    assert not out.exists() and not list(tmp_path.glob("lost.tar*"))


def test_verify_imports_installed_on_demand_and_optional_packages(built: dict[str, Path], tmp_path: Path) -> None:
    deps, env_file = tmp_path / "deps.yml", tmp_path / "environment.yml"
    deps.write_text(
        yaml.safe_dump(
            {
                "required": ["hello"],
                "optional": ["ujson"],
                "on_demand": ["broken"],
                "imports": {
                    "hello": {"hello": ["a.py:1"]},
                    "ujson": {"ujson": ["a.py:3"]},
                    "broken": {"broken": ["pkg/io.py:2"]},
                },
            }
        )
    )
    env_file.write_text(f"channels: [c]\ndependencies: [python={PY}, hello, broken]\n")
    assert verify.import_packages(deps, env_file) == {"broken": "broken", "hello": "hello"}
    proc = script(
        "verify-pack",
        str(built["archive"]),
        "--deps",
        str(deps),
        "--env-file",
        str(env_file),
        "--workdir",
        str(tmp_path / "w"),
    )
    assert proc.returncode == 1, proc.stderr
    assert "import broken: ImportError: broken on purpose (package broken)" in proc.stderr
    assert "ujson" not in proc.stderr, "an optional package that was not installed is not imported"


def test_verify_checks_the_programs_the_code_runs_are_in_bin(built: dict[str, Path], tmp_path: Path) -> None:
    """A program a notebook runs (`!hello`, deps.yml `bin/hello`) is checked in the
    unpacked bin/: an entry point rattler wrote from info/link.json and a plain
    bin/ script pass; a program the package does not install fails, naming it."""

    def verify_with(imports: dict[str, dict[str, list[str]]], work: str) -> subprocess.CompletedProcess:
        deps, env_file = tmp_path / f"{work}.yml", tmp_path / "environment.yml"
        deps.write_text(yaml.safe_dump({"required": sorted(imports), "imports": imports}))
        env_file.write_text(f"channels: [c]\ndependencies: [python={PY}, hello, plain]\n")
        return script(
            "verify-pack", str(built["archive"]), "--deps", str(deps), "--env-file", str(env_file),
            "--workdir", str(tmp_path / work),
        )  # fmt: skip

    ok = verify_with({"hello": {"bin/hello": ["nb.ipynb[1]:1"]}, "plain": {"bin/plain-tool": ["run.py:3"]}}, "ok")
    assert ok.returncode == 0, ok.stderr
    bad = verify_with({"hello": {"bin/hello": ["nb.ipynb[1]:1"], "bin/hello-gui": ["nb.ipynb[2]:1"]}}, "bad")
    assert bad.returncode == 1, bad.stderr
    assert "bin/hello-gui: FileNotFoundError: no program hello-gui in" in bad.stderr
    assert "(package hello)" in bad.stderr and "bin/hello:" not in bad.stderr


def test_post_link_scripts_run_at_create_and_a_failing_one_fails_it(
    shaped: dict[str, object], built: dict[str, Path], tmp_path: Path
) -> None:
    prefix = built["prefix"]
    assert (prefix / "share" / "linked.txt").read_text() == f"linked 1.0 0 {prefix}\n"
    assert not (prefix / ".messages.txt").exists()
    with tarfile.open(built["archive"]) as tf:
        assert "share/linked.txt" in tf.getnames(), "what the script made is packed"
    bad_lock = shaped["lock_of"](["failing"], tmp_path / "failing.yml")  # type: ignore[operator]
    bad = tmp_path / "bad"
    proc = script("create-env", "--lock", str(bad_lock), "--prefix", str(bad), "--cache-dir", str(built["cache"]))
    assert proc.returncode == 1
    assert "the post-link script of package failing 1.0 (bin/.failing-post-link.sh) failed (exit 3)" in proc.stderr
    assert "failing: needs a licence server" in proc.stderr and "Traceback" not in proc.stderr
    assert not bad.exists()


def test_relocatable_shebang_keeps_options_and_ignores_other_scripts() -> None:
    pythons = {"python", f"python{PY}"}
    assert pack.env_python_of(f"#!/p/env/bin/python{PY} -E -s\n".encode(), b"/p/env", pythons) == (
        f"python{PY}",
        ["-E", "-s"],
    )
    assert pack.env_python_of(b"#!/usr/bin/env python\n", b"/p/env", pythons) == ("python", [])
    for other in (
        b"#!/bin/sh\n",
        b"#!/usr/bin/python3\n",
        b"#!/p/env/bin/perl\n",
        b"#!/usr/bin/env python3\n",
        b"#!/p/env/bin/python -c 'x'\n",
        b"\x7fELF",
    ):
        assert pack.env_python_of(other, b"/p/env", pythons) is None, other
    script_ = pack.relocatable(b"#!/p/env/bin/python -E\nprint(1)\n", "python", ["-E"])
    assert script_.splitlines()[-1] == b"print(1)"
    assert b'/python" -E "$0" "$@"' in script_
