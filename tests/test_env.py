"""create-env: checking an installed environment against its package records."""
from __future__ import annotations

from pathlib import Path

from conftest import load_script, script


def test_create_env_check_finds_missing_package_files(tmp_path: Path) -> None:
    create_env = load_script("create-env")
    prefix = tmp_path / "env"
    assert create_env.missing_files(prefix) == ["conda-meta/"]
    (prefix / "conda-meta").mkdir(parents=True)
    (prefix / "conda-meta" / "six-1.0-0.json").write_text('{"files": ["lib/six.py", "bin/six"]}')
    (prefix / "lib").mkdir()
    (prefix / "lib" / "six.py").write_text("")
    assert create_env.missing_files(prefix) == ["bin/six"]
    proc = script("create-env", "--check", "--prefix", str(prefix))
    assert proc.returncode == 1 and "1 files missing, e.g. bin/six" in proc.stderr
    (prefix / "bin").mkdir()
    (prefix / "bin" / "six").symlink_to("nowhere")  # a dangling link is still the package's file
    assert script("create-env", "--check", "--prefix", str(prefix)).returncode == 0
