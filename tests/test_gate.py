"""gate: content-based skipping of the env and pack steps."""
from __future__ import annotations

import os
from pathlib import Path

from conftest import script


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
