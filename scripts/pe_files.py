"""File helpers shared by the Python scripts in scripts/ (not a script).

A script run as `scripts/NAME` finds this module beside it (Python puts the
script's folder first on sys.path).
"""
from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path


def sha256_of(path: Path | str) -> str:
    """Hex sha256 of a file's bytes, read in blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_atomic(path: Path, text: str, mode: int = 0o644) -> None:
    """Write text to path through a unique temporary file in the same folder
    and a rename: readers see the old or the new content, never a part."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def spec_name(spec: str) -> str:
    """Package name of a conda match spec ("numpy>=1.26" -> "numpy")."""
    return re.split(r"[ =<>!~\[]", str(spec).strip(), maxsplit=1)[0]
