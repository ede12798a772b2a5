"""The one place of the py-rattler shutdown workaround.

py-rattler's worker threads can abort the interpreter while it shuts down
("PyGILState_Release ... finalizing"), after all work is done and every file
renamed into place. Executables that used rattler therefore leave through
``exit_without_finalizing``: flush the standard streams, then ``os._exit``.
"""

from __future__ import annotations

import contextlib
import os
import sys
import traceback
from collections.abc import Callable
from typing import NoReturn

from portable_env.errors import run


def exit_without_finalizing(code: int) -> NoReturn:
    """Flush stdout and stderr, then end the process with code, skipping interpreter finalization."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed or broken stream: nothing to flush
            stream.flush()
    os._exit(code)


def run_and_exit(main: Callable[[], int], prog: str | None = None) -> NoReturn:
    """``errors.run(main, prog)``, then exit without finalizing.

    SystemExit (argparse, ``--help``) keeps its code; any other exception is a
    bug: its traceback is printed and the exit code is 1.
    """
    try:
        code = run(main, prog)
    except SystemExit as exc:
        if exc.code is None or isinstance(exc.code, int):
            code = exc.code or 0
        else:
            print(exc.code, file=sys.stderr)
            code = 1
    except BaseException:  # a bug: show it, then still skip finalization
        traceback.print_exc()
        code = 1
    exit_without_finalizing(code)
