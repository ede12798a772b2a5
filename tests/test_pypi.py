"""PyPI packages inside the conda environment (issue 15): declared in project.yml, rendered as a
pip: section, locked with uv into a hashed pypi-<platform>.txt (the conda packages fixed), installed
without resolving, packed, and listed in the manifest and SBOM.

Offline: a folder of wheels built here (pure python; one with a console script; one depending on
six, which the local conda channel provides; one shipping six.py), used as pypi_index: file://...,
plus one real PyPI wheel (tabulate, downloaded once into build/wheels/pypi like the channel's).
"""
from __future__ import annotations

import base64
import hashlib
import io
import json
import shutil
import subprocess
import tarfile
import zipfile
from pathlib import Path

import pytest
import yaml
from conftest import HOST_GLIBC, REPO, Repo, run
from portable_env import pypi
from portable_env.errors import UserError
from portable_env.settings import resolve

REAL = "tabulate==0.9.0"  # small, pure python, MIT, with a console script
REAL_DIR = REPO / "build" / "wheels" / "pypi"


def wheel(folder: Path, name: str, version: str, files: dict[str, str], requires: tuple[str, ...] = (),
          scripts: dict[str, str] | None = None, license: str | None = "MIT") -> Path:
    """A wheel (py3-none-any) with a RECORD, like a build backend writes it."""
    dist = f"{name.replace('-', '_')}-{version}"
    info = f"{dist}.dist-info"
    items = dict(files)
    items[f"{info}/METADATA"] = (f"Metadata-Version: 2.4\nName: {name}\nVersion: {version}\n"
                                 + (f"License-Expression: {license}\n" if license else "")
                                 + "".join(f"Requires-Dist: {r}\n" for r in requires))
    items[f"{info}/WHEEL"] = "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    if scripts:
        items[f"{info}/entry_points.txt"] = "[console_scripts]\n" + "".join(f"{k} = {v}\n" for k, v in scripts.items())
    rows = [f"{p},sha256={base64.urlsafe_b64encode(hashlib.sha256(d.encode()).digest()).rstrip(b'=').decode()},"
            f"{len(d.encode())}" for p, d in items.items()]
    items[f"{info}/RECORD"] = "\n".join([*rows, f"{info}/RECORD,,"]) + "\n"
    folder.mkdir(parents=True, exist_ok=True)
    out = folder / f"{dist}-py3-none-any.whl"
    with zipfile.ZipFile(out, "w") as z:
        for path, text in items.items():
            z.writestr(zipfile.ZipInfo(path, (2020, 1, 1, 0, 0, 0)), text)
    return out


def real_wheel() -> Path:
    """The real PyPI wheel, downloaded once (cached in build/wheels/pypi)."""
    found = sorted(REAL_DIR.glob("tabulate-0.9.0-*.whl"))
    if not found:
        run([str(REPO / ".venv" / "bin" / "pip"), "download", "-q", "--no-deps", "--only-binary", ":all:",
             "-d", str(REAL_DIR), REAL], check=True)
        found = sorted(REAL_DIR.glob("tabulate-0.9.0-*.whl"))
    return found[0]


@pytest.fixture
def wheels(tmp_path: Path) -> Path:
    """The local wheel index: a folder of wheels."""
    folder = tmp_path / "wheels"
    wheel(folder, "tinylib", "1.2", {"tinylib/__init__.py": "import six\nVALUE = 'tiny ' + six.__name__\n"},
          ("six>=1.10",))
    wheel(folder, "clitool", "0.1", {"clitool/__init__.py": "def main():\n    print('hi from clitool')\n"},
          scripts={"clitool": "clitool:main"})
    wheel(folder, "needsoldsix", "1.0", {"needsoldsix/__init__.py": ""}, ("six<1.10",))
    wheel(folder, "sixclone", "1.0", {"six.py": "# not the real six\n"})
    shutil.copy2(real_wheel(), folder)
    return folder


def settings_text(channel: str, wheels: Path, extra: str = "") -> str:
    """project.yml with the local channel and the wheel folder (locks land in projects/P, like a clone)."""
    return (f'python: "3.11"\nchannels: [{channel}]\ntarget: {{glibc: "{HOST_GLIBC}"}}\n'
            f"pypi_index: {wheels.as_uri()}\n{extra}")


# --- settings, render, target: small units ----------------------------------------------


@pytest.mark.parametrize("entry, why", [
    ("--index-url https://evil/simple", "characters no requirement has"),
    ("tinylib; rm -rf /", "not a valid requirement"),
    ("tinylib $(id)", "characters no requirement has"),
    ("tinylib @ http://host/t.whl", "not to an https:// or file:// URL"),
    ("tinylib @ git+https://host/t.git", "not to an https:// or file:// URL"),
])
def test_settings_refuse_bad_pypi_entries_naming_the_entry_and_the_form(tmp_path: Path, entry: str,
                                                                          why: str) -> None:
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "project.yml").write_text(yaml.safe_dump({"pypi": [entry]}))
    with pytest.raises(UserError) as exc:
        resolve(tmp_path / "p")
    assert repr(entry) in str(exc.value) and why in str(exc.value) and "PEP 508 requirement" in str(exc.value)


def test_settings_accept_requirements_and_normalise_pypi_imports(tmp_path: Path) -> None:
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "project.yml").write_text(
        "pypi: [\"tinylib>=1.2\", \"a[x]==1; python_version>='3.8'\", \"b @ https://h/b-1-py3-none-any.whl\"]\n"
        "imports: {tiny: \"pypi:Tiny_Lib\"}\npypi_sdists: true\npypi_index: file:///srv/wheels\n")
    s = resolve(tmp_path / "p")
    assert s.imports == {"tiny": "pypi:tiny-lib"} and s.pypi_sdists and s.pypi_index == "file:///srv/wheels"
    assert len(s.pypi) == 3


def test_python_platform_follows_the_target_glibc() -> None:
    assert pypi.python_platform("linux-64", "2.17") == "x86_64-manylinux_2_17"
    assert pypi.python_platform("linux-64", "2.27") == "x86_64-manylinux_2_17"
    assert pypi.python_platform("linux-64", "2.36") == "x86_64-manylinux_2_36"
    assert pypi.python_platform("linux-aarch64", "2.99") == "aarch64-manylinux_2_40"
    with pytest.raises(UserError, match="older than manylinux_2_17"):
        pypi.python_platform("linux-64", "2.12")


def test_render_writes_the_pip_section_conda_users_know(tmp_path: Path, repo: Repo, wheels: Path) -> None:
    repo.project("p", {"a.py": "import tinylib\nimport yaml\n"},
                 settings_text("conda-forge", wheels, 'imports: {tinylib: "pypi:tinylib"}\npypi: ["clitool>=0.1"]\n'))
    env = yaml.safe_load(repo.make("PROJECT=p", "env-file").stdout)
    assert env["dependencies"][:3] == ["python=3.11", "pip", "pyyaml"], env
    assert env["dependencies"][3] == {"pip": ["--no-index", f"--find-links {wheels.as_uri()}",
                                              "--only-binary=:all:", "clitool>=0.1", "tinylib"]}


# --- the pipeline ---------------------------------------------------------------------------


def unpack(tarball: Path, dest: Path) -> Path:
    dest.mkdir(parents=True)
    with tarfile.open(tarball) as tf:
        tf.extractall(dest, filter="tar")
    return dest


def test_lock_fresh_clone_and_new_path(tmp_path: Path, channel: str, wheels: Path) -> None:
    """Locked once with hashes; a fresh clone installs the lock without resolving (a newer tinylib on
    the index is not picked up); six comes from conda; imports and console scripts work at a new path
    without activation; the manifest and SBOM list the PyPI packages."""
    first = Repo(tmp_path / "first")
    files = {"app.py": "import tinylib\nimport tabulate\nprint(tinylib.VALUE)\n"}
    text = settings_text(channel, wheels, 'imports: {tinylib: "pypi:tinylib"}\npypi: ["clitool", "tabulate"]\n'
                         "packages: [six]\n")
    pdir = first.project("p", files, text)
    first.make("PROJECT=p", "lock")
    locked = (pdir / "pypi-linux-64.txt").read_text()
    lines = [x for x in locked.splitlines() if not x.startswith("#")]
    assert [x.split(" @ ")[0] for x in lines] == ["clitool", "tabulate", "tinylib"], locked
    assert all("--hash=sha256:" in x and ".whl " in x for x in lines)
    assert "six" not in " ".join(lines), "six is provided by the conda package: not locked again"
    assert "# spec-sha256: " in locked and f"# index: {wheels.as_uri()}" in locked

    # A fresh clone: the project folder with its locks, and a newer tinylib on the index.
    wheel(wheels, "tinylib", "9.9", {"tinylib/__init__.py": "VALUE = 'new'\n"})
    clone = Repo(tmp_path / "clone")
    shutil.copytree(pdir, clone.root / "projects" / "p")
    proc = clone.make("PROJECT=p", "pack")
    assert "resolving" not in proc.stderr and "kept" in proc.stderr, proc.stderr
    assert (clone.root / "projects" / "p" / "pypi-linux-64.txt").read_text() == locked
    env = clone.root / "build" / "p" / "default" / "env"
    script = (env / "bin" / "clitool").read_text()
    assert script.startswith("#!/bin/sh\n'''exec'") and str(env) not in script

    tarball = clone.root / "dist" / "p-linux-64.tar.gz"
    root = unpack(tarball, tmp_path / "elsewhere" / "p")
    clean = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    out = subprocess.run([str(root / "bin" / "python"), "-c", "import tinylib, tabulate, clitool, sys; "
                          "print(tinylib.VALUE, tinylib.__file__.startswith(sys.prefix), sys.prefix)"],
                         env=clean, capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.split()[:3] == ["tiny", "six", "True"], out
    for name, expected in (("clitool", "hi from clitool"), ("tabulate", "usage")):
        proc2 = subprocess.run([str(root / "bin" / name), "--help"], env=clean, capture_output=True, text=True)
        assert expected in (proc2.stdout + proc2.stderr).lower(), (name, proc2)

    manifest = json.loads((clone.root / "dist" / "p-linux-64.manifest.json").read_text())
    pkgs = {p["name"]: p for p in manifest["pypi_packages"]}
    assert set(pkgs) == {"clitool", "tabulate", "tinylib"}
    assert pkgs["tabulate"]["license"] == "MIT" and pkgs["tinylib"]["version"] == "1.2"
    assert "tinylib" in manifest["smoke_imports"], manifest["smoke_imports"]
    assert "pypi-linux-64.txt" in manifest["locks"]
    sbom = json.loads((clone.root / "dist" / "p-linux-64.cdx.json").read_text())
    purls = {c["purl"] for c in sbom["components"]}
    assert {"pkg:pypi/tinylib@1.2", "pkg:pypi/tabulate@0.9.0", "pkg:pypi/clitool@0.1"} <= purls
    assert not any(p.startswith("pkg:pypi/six") for p in purls)
    record = (root / "lib" / "python3.11" / "site-packages" / "tinylib-1.2.dist-info")
    assert not (record / "uv_cache.json").exists(), "uv's timestamped record would make archives differ"


def test_a_requirement_conflicting_with_the_conda_side_fails_naming_both(repo: Repo, channel: str,
                                                                          wheels: Path) -> None:
    repo.project("p", {"a.py": "import six\n"}, settings_text(channel, wheels, 'pypi: ["needsoldsix"]\n'))
    proc = repo.make("PROJECT=p", "lock", check=False)
    assert proc.returncode != 0
    assert "conflict with the conda packages" in proc.stderr and "six 1.17.0 (conda package six)" in proc.stderr
    assert "needsoldsix" in proc.stderr, proc.stderr  # uv's explanation names the PyPI side
    assert "Traceback" not in proc.stderr
    assert not (repo.root / "projects" / "p" / "pypi-linux-64.txt").exists()


def test_a_wheel_overwriting_a_conda_file_fails(repo: Repo, channel: str, wheels: Path) -> None:
    repo.project("p", {"a.py": "import six\n"}, settings_text(channel, wheels, 'pypi: ["sixclone"]\n'))
    proc = repo.make("PROJECT=p", "env", check=False)
    assert proc.returncode != 0
    assert "lib/python3.11/site-packages/six.py: of the conda package six 1.17.0, and in the PyPI wheel " \
           "sixclone 1.0" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr


def test_the_missing_package_hint_shows_the_pypi_line_and_adds_nothing(repo: Repo, channel: str,
                                                                        wheels: Path) -> None:
    text = settings_text(channel, wheels, "packages: [clitool]\n")
    pdir = repo.project("p", {"a.py": "import tinylib\nimport nowhere_at_all\n"}, text)
    proc = repo.make("PROJECT=p", "lock", check=False)
    assert proc.returncode != 0
    assert 'imports: {tinylib: "pypi:tinylib"}' in proc.stderr, proc.stderr
    assert 'pypi: ["clitool"]' in proc.stderr
    assert "pypi:nowhere" not in proc.stderr, "no PyPI line for a project the index does not have"
    assert (pdir / "project.yml").read_text() == text, "the hint never edits project.yml"


# An in-tree PEP 517 backend (no build requirements): the sdist builds offline.
BACKEND = '''import base64, hashlib, os, zipfile

NAME, VERSION = "srconly", "0.3"


def _record_row(path, data):
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{path},sha256={digest},{len(data)}"


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    info = f"{NAME}-{VERSION}.dist-info"
    items = {f"{NAME}/__init__.py": open(os.path.join(NAME, "__init__.py"), "rb").read(),
             f"{info}/METADATA": f"Metadata-Version: 2.1\\nName: {NAME}\\nVersion: {VERSION}\\n".encode(),
             f"{info}/WHEEL": b"Wheel-Version: 1.0\\nGenerator: test\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n"}
    rows = [_record_row(p, d) for p, d in items.items()] + [f"{info}/RECORD,,"]
    items[f"{info}/RECORD"] = ("\\n".join(rows) + "\\n").encode()
    name = f"{NAME}-{VERSION}-py3-none-any.whl"
    with zipfile.ZipFile(os.path.join(wheel_directory, name), "w") as z:
        for path, data in items.items():
            z.writestr(zipfile.ZipInfo(path, (2020, 1, 1, 0, 0, 0)), data)
    return name
'''


def sdist(folder: Path) -> Path:
    """srconly-0.3.tar.gz: a source distribution only (no wheel of it anywhere)."""
    base = "srconly-0.3"
    files = {"pyproject.toml": '[build-system]\nrequires = []\nbuild-backend = "backend"\nbackend-path = ["."]\n'
                               '[project]\nname = "srconly"\nversion = "0.3"\n',
             "backend.py": BACKEND, "srconly/__init__.py": "VALUE = 'built from source'\n",
             "PKG-INFO": "Metadata-Version: 2.1\nName: srconly\nVersion: 0.3\n"}
    out = folder / f"{base}.tar.gz"
    with tarfile.open(out, "w:gz") as tf:
        for rel, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(f"{base}/{rel}")
            info.size, info.mtime, info.mode = len(data), 1577836800, 0o644
            tf.addfile(info, io.BytesIO(data))
    return out


def test_pypi_sdists_builds_a_source_only_package_and_without_it_the_lock_names_the_setting(
        repo: Repo, channel: str, wheels: Path, tmp_path: Path) -> None:
    sdist(wheels)
    files = {"app.py": "import srconly\nprint(srconly.VALUE)\n"}
    extra = 'imports: {srconly: "pypi:srconly"}\n'
    repo.project("p", files, settings_text(channel, wheels, extra))
    refused = repo.make("PROJECT=p", "lock", check=False)
    assert refused.returncode != 0 and "pypi_sdists: true" in refused.stderr, refused.stderr
    assert "srconly" in refused.stderr
    repo.project("p", files, settings_text(channel, wheels, extra + "pypi_sdists: true\n"))
    env = yaml.safe_load(repo.make("PROJECT=p", "env-file").stdout)
    assert "--only-binary=:all:" not in env["dependencies"][-1]["pip"], env
    repo.make("PROJECT=p", "pack")
    locked = (repo.root / "projects" / "p" / "pypi-linux-64.txt").read_text()
    digest = hashlib.sha256((wheels / "srconly-0.3.tar.gz").read_bytes()).hexdigest()
    assert "srconly-0.3.tar.gz" in locked and f"--hash=sha256:{digest}" in locked, locked
    root = unpack(repo.root / "dist" / "p-linux-64.tar.gz", tmp_path / "there")
    out = subprocess.run([str(root / "bin" / "python"), "-c", "import srconly; print(srconly.VALUE)"],
                         env={"PATH": "/usr/bin:/bin"}, capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip() == "built from source", out
