"""lock-env: the spec hash recorded in the lock, check mode, the unsolvable-import message."""
from __future__ import annotations

import hashlib
from pathlib import Path

from conftest import load_script, script


def test_lock_env_records_and_reads_spec_hash(tmp_path: Path) -> None:
    lock_env = load_script("lock-env")
    spec = tmp_path / "environment.yml"
    spec.write_text("name: x\nchannels: [c]\ndependencies: [python=3.11]\n")
    explicit = tmp_path / "conda-linux-64.lock"

    digest = lock_env.spec_hash(spec)
    assert digest == hashlib.sha256(spec.read_bytes()).hexdigest()
    lines = ["# platform: linux-64", f"{lock_env.HASH_LINE}{digest}", "@EXPLICIT"]
    explicit.write_text("\n".join(lines) + "\nhttps://x/a.conda#" + "0" * 64 + "\n")
    assert lock_env.recorded_hash(explicit) == digest
    assert lock_env.recorded_hash(tmp_path / "missing") is None
    assert lock_env.spec_name("numpy>=1.26") == "numpy" and lock_env.spec_name("python=3.11") == "python"


def test_lock_env_check_mode(tmp_path: Path) -> None:
    spec = tmp_path / "environment.yml"
    spec.write_text("name: x\nchannels: [c]\ndependencies: [python=3.11]\n")
    lock, explicit = tmp_path / "rattler-lock.yml", tmp_path / "conda-linux-64.lock"
    args = ["--env-file", str(spec), "--lock", str(lock), "--explicit", str(explicit), "--check"]
    proc = script("lock-env", *args)
    assert proc.returncode == 1 and "is missing" in proc.stderr
    digest = hashlib.sha256(spec.read_bytes()).hexdigest()
    explicit.write_text(f"# spec-sha256: {digest}\n@EXPLICIT\n")
    lock.write_text("version: 6\n")
    assert script("lock-env", *args).returncode == 0
    spec.write_text("name: x\nchannels: [c]\ndependencies: [python=3.12]\n")
    proc = script("lock-env", *args)
    assert proc.returncode == 1 and "different environment.yml" in proc.stderr


def test_lock_env_missing_message_names_import_files_and_fix() -> None:
    lock_env = load_script("lock-env")
    scan = {"imports": {"cv3": {"cv3": ["a.py:3"]}, "h6py": {"h6py": ["b/c.py:9"]}},
            "on_demand": ["h6py"]}
    msg = lock_env.missing_message(["cv3", "h6py"], ["conda-forge"], scan, "projects/p/project.yml")
    assert "import 'cv3' (in a.py:3)" in msg
    assert "projects/p/project.yml:  imports: {cv3: <package>}" in msg
    assert msg.count("only imported on demand: `install_on_demand: false`") == 1, msg
