"""The one user-facing exception type and the wrapper every executable uses.

A ``UserError`` is a problem with the input (a setting, a file, a name): its
message is printed as ``error: ...`` lines without a traceback. Anything else
is a bug in portable-env and keeps its traceback.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import NoReturn


class UserError(Exception):
    """A failure with a message for the user: what was wrong, where, the fix.

    The first line is printed after ``error: ``; further lines (hints) are
    printed as they are, so start them with two spaces.
    """


def report(exc: UserError, prog: str | None = None) -> None:
    """Print a UserError as ``error: [prog: ]message`` lines on stderr."""
    lines = str(exc).splitlines() or ["failed"]
    head = f"{prog}: " if prog else ""
    for i, line in enumerate(lines):
        if i == 0 or not line.startswith(" "):
            print(f"error: {head}{line}", file=sys.stderr)
        else:
            print(line, file=sys.stderr)


def run(main: Callable[[], int], prog: str | None = None) -> int:
    """Call ``main()``; a UserError becomes exit 1 with its message, ^C exit 130."""
    try:
        return main()
    except UserError as exc:
        report(exc, prog)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def exit_now(code: int) -> NoReturn:
    """End the process with code as soon as its output is flushed, without
    the interpreter's teardown (freeing every object costs a step that has
    handled thousands of files tens of ms): for executables whose main()
    has closed and renamed everything it wrote."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
