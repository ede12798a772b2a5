"""gate and portable_env.gate: content-based skipping of the env and pack steps."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
from conftest import script
from portable_env import gate
from portable_env.errors import UserError


def test_gate_skips_only_when_content_is_unchanged(tmp_path: Path) -> None:
    inp, out, stamp = tmp_path / "in", tmp_path / "out", tmp_path / "stamp"
    inp.write_text("a")
    assert script("gate", "check", str(stamp), str(inp), "--", str(out)).returncode == 1
    script("gate", "record", str(stamp), str(inp), check=True)
    assert script("gate", "check", str(stamp), str(inp), "--", str(out)).returncode == 1, "output missing"
    out.write_text("x")
    os.utime(out, (1, 1))
    assert script("gate", "check", str(stamp), str(inp), "--", str(out)).returncode == 0
    assert out.stat().st_mtime > 1, "a kept output is touched so make sees it up to date"
    assert script("gate", "check", "--salt", "other", str(stamp), str(inp), "--", str(out)).returncode == 1
    inp.write_text("b")
    assert script("gate", "check", str(stamp), str(inp), "--", str(out)).returncode == 1


def test_gate_digest_covers_names_salt_and_content(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.write_text("x")
    b.write_text("x")
    assert gate.digest([str(a)]) != gate.digest([str(b)]), "the input's name counts"
    assert gate.digest([str(a)], "s") != gate.digest([str(a)])
    assert gate.digest([str(a), str(b)]) != gate.digest([str(b), str(a)])


def test_gate_missing_input(tmp_path: Path) -> None:
    """check: the step must run (exit 1, no message); record: an error naming the input."""
    stamp, absent = tmp_path / "stamp", tmp_path / "absent"
    assert not gate.check(stamp, [str(absent)], [])
    proc = script("gate", "check", str(stamp), str(absent))
    assert proc.returncode == 1 and proc.stderr == ""
    with pytest.raises(UserError, match="cannot read the input"):
        gate.digest([str(absent)])
    proc = script("gate", "record", str(stamp), str(absent))
    assert proc.returncode == 1 and proc.stderr.startswith(f"error: gate: cannot read the input {absent}")
    assert not stamp.exists()
