"""verify-pack and THE import probe (no channel needed)."""
from __future__ import annotations

import io
import json
import subprocess
import sys
import tarfile
from pathlib import Path

import yaml
from conftest import script
from portable_env import probe, verify


def make_tar(path: Path, members: list[tarfile.TarInfo]) -> None:
    with tarfile.open(path, "w:gz") as tf:
        for m in members:
            tf.addfile(m, io.BytesIO(b"x" * m.size) if m.isfile() else None)


def test_verify_refuses_unsafe_and_corrupt_archives(tmp_path: Path) -> None:
    deps = tmp_path / "deps.yml"
    deps.write_text("required: []\n")
    evil = tarfile.TarInfo("../escape.txt")
    evil.size = 1
    make_tar(tmp_path / "evil.tar.gz", [evil])
    proc = script("verify-pack", str(tmp_path / "evil.tar.gz"), "--deps", str(deps), "--workdir", str(tmp_path / "w"))
    assert proc.returncode == 1 and "unsafe entry, refused" in proc.stderr
    assert not (tmp_path / "w" / "escape.txt").exists()
    link = tarfile.TarInfo("bin/link")
    link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
    make_tar(tmp_path / "link.tar.gz", [link])
    proc = script("verify-pack", str(tmp_path / "link.tar.gz"), "--deps", str(deps))
    assert proc.returncode == 1 and "unsafe entry" in proc.stderr
    good = tarfile.TarInfo("bin/file")
    good.size = 100000
    make_tar(tmp_path / "ok.tar.gz", [good])
    data = (tmp_path / "ok.tar.gz").read_bytes()
    (tmp_path / "cut.tar.gz").write_bytes(data[: len(data) // 2])
    proc = script("verify-pack", str(tmp_path / "cut.tar.gz"), "--deps", str(deps))
    assert proc.returncode == 1 and "corrupt or truncated" in proc.stderr
    sha = tmp_path / "ok.tar.gz.sha256"
    sha.write_text("0" * 64 + "  ok.tar.gz\n")
    proc = script("verify-pack", str(tmp_path / "ok.tar.gz"), "--deps", str(deps), "--sha256", str(sha))
    assert proc.returncode == 1 and "does not match" in proc.stderr
    proc = script("verify-pack", str(tmp_path / "absent.tar.gz"), "--deps", str(deps), "--project", "p")
    assert proc.returncode == 1 and proc.stderr.startswith("error: [p] verify: ") and "no such archive" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_verify_import_names_every_detected_package_that_was_installed(tmp_path: Path) -> None:
    deps = tmp_path / "deps.yml"
    deps.write_text(yaml.safe_dump({"required": ["scikit-learn", "scipy"], "optional": ["ujson"],
                                    "on_demand": ["h5py"], "unresolved": ["nowhere"],
                                    "imports": {"scikit-learn": {"sklearn": ["a.py:1"]},
                                                "scipy": {"scipy": ["a.py:2"]}, "ujson": {"ujson": ["b.py:1"]},
                                                "h5py": {"h5py": ["p/io.py:3"]}, "nowhere": {"nowhere": ["c.py:1"]}}}))
    assert verify.import_names(deps, None) == ["h5py", "scipy", "sklearn", "ujson"]
    env = tmp_path / "environment.yml"
    env.write_text("channels: [c]\ndependencies: [python=3.11, scikit-learn>=1, h5py]\n")
    assert verify.import_names(deps, env) == ["h5py", "sklearn"]
    assert verify.import_packages(deps, env) == {"h5py": "h5py", "sklearn": "scikit-learn"}


def test_leftover_prefix_finds_text_and_binary_files(tmp_path: Path) -> None:
    build = b"/work/build/p/env"
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "libx.so").write_bytes(b"\x7fELF\0\xff" + build + b"/lib\0")
    (tmp_path / "lib" / "ok.so").write_bytes(b"\x7fELF\0\xff/elsewhere\0")
    (tmp_path / "cfg.txt").write_bytes(build + b"/etc\n")
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "conda-unpack").write_bytes(build)  # conda-pack's own list of old prefixes
    assert verify.leftover_prefix(tmp_path, build) == ["cfg.txt", "lib/libx.so"]


def run_probe(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", probe.source(), *args], capture_output=True, text=True,
                          cwd="/")


def test_the_probe_reports_failed_imports_and_an_unrelocated_prefix() -> None:
    ok = run_probe(sys.prefix, "json", "os.path")
    assert (ok.returncode, ok.stdout) == (0, "")
    bad = run_probe("/elsewhere", "json", "no_such_module_xyz")
    assert bad.returncode == 1
    assert bad.stdout.splitlines() == [
        "  import no_such_module_xyz: ModuleNotFoundError: No module named 'no_such_module_xyz'",
        f"  sys.prefix is {sys.prefix}, not /elsewhere: not relocated"]
    result = json.loads(run_probe("--json", sys.prefix, "no_such_module_xyz").stdout)
    assert result["relocated"] and list(result["failed"]) == ["no_such_module_xyz"]
    assert probe.problems(result, sys.prefix) == bad.stdout.splitlines()[:1]


def test_the_probe_checks_the_programs_and_distributions_the_code_needs(tmp_path: Path) -> None:
    """deps.yml names programs a shell command runs (bin/kaggle: an executable in
    ROOT/bin/), distributions looked up by name (dist:pytest: installed) and those
    an install command names (install:opencv-python: conda's opencv carries no such
    distribution; its imports are what is checked)."""
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "kaggle").write_text("#!/bin/sh\n")
    (tmp_path / "bin" / "kaggle").chmod(0o755)
    (tmp_path / "bin" / "notes").write_text("not a program\n")
    result = json.loads(
        run_probe("--json", str(tmp_path), "bin/kaggle", "bin/notes", "bin/gdown", "bin/..", "dist:pytest",
                  "dist:no-such-dist-xyz", "install:opencv-python").stdout
    )
    assert sorted(result["failed"]) == ["bin/..", "bin/gdown", "bin/notes", "dist:no-such-dist-xyz"]
    lines = probe.problems(result, str(tmp_path))
    assert f"  bin/gdown: FileNotFoundError: no program gdown in {tmp_path}/bin" in lines
    assert any(ln.startswith("  dist:no-such-dist-xyz: ") and "PackageNotFoundError" in ln for ln in lines)


def test_pypi_packages_of_the_pip_section_are_imported_too(tmp_path: Path) -> None:
    """Imports mapped to PyPI projects (imports: {x: "pypi:name"}) are
    verified when the environment.yml's pip: section installs them."""
    from portable_env import verify as verify_mod

    deps = tmp_path / "deps.yml"
    deps.write_text('required: [pyyaml, numpy, "pypi:tinylib", "pypi:other"]\nimports:\n'
                    "  pyyaml: {yaml: [a.py:1]}\n  numpy: {numpy: [a.py:3]}\n"
                    '  "pypi:tinylib": {tinylib: [a.py:2]}\n  "pypi:other": {other: [a.py:4]}\n')
    env = tmp_path / "environment.yml"
    env.write_text("name: x\nchannels: [c]\ndependencies:\n- python=3.11\n- pyyaml\n- pip:\n"
                   "    - '--only-binary=:all:'\n    - TinyLib>=1\n")
    assert verify_mod.import_packages(deps, env) == {"tinylib": "pypi:tinylib", "yaml": "pyyaml"}
