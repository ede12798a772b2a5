"""create-env and portable_env.env: creating an environment from a lock, checking one is complete."""
from __future__ import annotations

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
