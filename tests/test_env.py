"""create-env and portable_env.env: creating an environment from a lock, checking one is complete."""
from __future__ import annotations

import json
from pathlib import Path

from conftest import script
from portable_env import env


def test_create_env_check_finds_missing_package_files(tmp_path: Path) -> None:
    prefix = tmp_path / "env"
    assert env.missing_files(prefix) == ["conda-meta/"]
    (prefix / "conda-meta").mkdir(parents=True)
    (prefix / "conda-meta" / "six-1.0-0.json").write_text('{"files": ["lib/six.py", "bin/six"]}')
    (prefix / "lib").mkdir()
    (prefix / "lib" / "six.py").write_text("")
    assert env.missing_files(prefix) == ["bin/six"]
    proc = script("create-env", "--check", "--prefix", str(prefix))
    assert proc.returncode == 1 and "1 files missing, e.g. bin/six" in proc.stderr
    (prefix / "bin").mkdir()
    (prefix / "bin" / "six").symlink_to("nowhere")  # a dangling link is still the package's file
    assert script("create-env", "--check", "--prefix", str(prefix)).returncode == 0


def test_create_env_refuses_a_broken_lock_and_leaves_no_prefix(tmp_path: Path) -> None:
    lock, prefix = tmp_path / "rattler-lock.yml", tmp_path / "env"
    lock.write_text("not: [a lock\n")
    prefix.mkdir()
    (prefix / "stale").write_text("from an interrupted run")
    proc = script("create-env", "--lock", str(lock), "--prefix", str(prefix), "--cache-dir", str(tmp_path / "pkgs"))
    assert proc.returncode == 1, proc.stderr
    assert f"error: env: {lock} is not a readable lock file" in proc.stderr
    assert "error: env: could not create" in proc.stderr and "Traceback" not in proc.stderr
    assert not prefix.exists(), "the partial environment is removed"


def test_compiled_sources_that_hold_the_prefix_lose_their_pyc(tmp_path: Path) -> None:
    """_sysconfigdata-like files: conda-unpack rewrites the source, an unchecked-hash .pyc would keep the build path."""
    prefix = tmp_path / "env"
    (prefix / "conda-meta").mkdir(parents=True)
    (prefix / "conda-meta" / "python-3.11-0.json").write_text(json.dumps({"name": "python", "paths_data": {"paths": [
        {"_path": "lib/python3.11/_sysconfigdata_x.py", "prefix_placeholder": "/opt/ph", "file_mode": "text"},
        {"_path": "lib/python3.11/os.py"}]}}))
    cache = prefix / "lib" / "python3.11" / "__pycache__"
    cache.mkdir(parents=True)
    for name in ("_sysconfigdata_x.cpython-311.pyc", "os.cpython-311.pyc"):
        (cache / name).write_bytes(b"pyc")
    assert env.prefix_pycs(prefix) == [cache / "_sysconfigdata_x.cpython-311.pyc"]


def test_a_lost_cache_entry_of_binary_placeholder_files_makes_the_env_incomplete(tmp_path: Path) -> None:
    prefix, cached = tmp_path / "env", tmp_path / "pkgs" / "libx-1-0"
    (prefix / "conda-meta").mkdir(parents=True)
    (prefix / "lib").mkdir()
    (prefix / "lib" / "libx.so").write_bytes(b"\0")
    (prefix / "conda-meta" / "libx-1-0.json").write_text(json.dumps({
        "name": "libx", "files": ["lib/libx.so"], "link": {"source": str(cached), "type": 1},
        "paths_data": {"paths": [{"_path": "lib/libx.so", "prefix_placeholder": "/opt/ph", "file_mode": "binary"}]}}))
    (cached / "lib").mkdir(parents=True)
    (cached / "lib" / "libx.so").write_bytes(b"\0")
    assert env.uncached_binaries(prefix) == {} and env.check(prefix) == 0
    (cached / "lib" / "libx.so").unlink()
    assert env.uncached_binaries(prefix) == {"libx": ["lib/libx.so"]}
    proc = script("create-env", "--check", "--prefix", str(prefix))
    assert proc.returncode == 1 and "the package cache entries of libx are gone" in proc.stderr
