"""Content gates for Make steps: skip a step when only timestamps changed.

A stamp file records the sha256 of a step's inputs' content (and a salt: the
step's options). ``is_current`` says whether the stamp still matches and every
output exists; ``record`` writes the stamp after the step succeeded. A
``touch``, a fresh ``git clone`` or a rewritten-but-identical input thus never
re-runs an expensive step (install, pack, verify), while any change of content
does. Standard library only: the Makefile gates the tools' own install with it.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path

from portable_env.errors import UserError
from portable_env.files import write_atomic


def digest(inputs: Sequence[str], salt: str = "") -> str:
    """sha256 over the salt and each input's name and bytes; UserError when an input cannot be read."""
    h = hashlib.sha256(salt.encode())
    for name in inputs:
        h.update(b"\0" + name.encode() + b"\0")
        try:
            with open(name, "rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    h.update(block)
        except OSError as exc:
            raise UserError(
                f"gate: cannot read the input {name} ({exc.strerror}); it must exist before this step runs"
            ) from None
    return h.hexdigest()


def is_current(stamp: Path, value: str, outputs: Sequence[str]) -> bool:
    """True when stamp holds value and every output exists."""
    try:
        recorded = stamp.read_text().strip()
    except OSError:
        return False
    return recorded == value and all(os.path.exists(o) for o in outputs)


def record(stamp: Path, value: str) -> None:
    """Write value into stamp atomically."""
    write_atomic(stamp, value + "\n")


def check(stamp: Path, inputs: Sequence[str], outputs: Sequence[str], salt: str = "") -> bool:
    """Whether the step can be skipped; if so, touch the outputs and the stamp so Make sees them up to date.

    An input that cannot be read means the step must run (it reports the problem itself).
    """
    try:
        value = digest(inputs, salt)
    except UserError:
        return False
    if not is_current(stamp, value, outputs):
        return False
    for p in [*outputs, str(stamp)]:
        os.utime(p)
    return True
