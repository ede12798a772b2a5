"""Static truth of `if` tests that depend on the platform or the Python version
(the target is Linux, CPython, one X.Y): branches for other platforms and
versions are not scanned."""

from __future__ import annotations

import ast
import operator
import re
from collections.abc import Callable

from portable_env.scan.guards import const_str, dotted

WIN_NAME = re.compile(
    r"^_?(IS_|ON_|RUNNING_ON_|MS_)?(WIN|WINDOWS|WIN32|WIN64|MSWINDOWS|MSWIN|"
    r"NT|MAC|MACOS|MACOSX|OSX|DARWIN|CYGWIN|JYTHON|IRONPYTHON|PYPY|"
    r"EMSCRIPTEN|WASM|PYODIDE|IOS|ANDROID)$",
    re.IGNORECASE,
)
PY_FLAG = re.compile(
    r"^_?(?:IS_)?PY(?:THON)?_?3_?(\d{1,2})(_?(?:OR_)?(?:LESS|OLDER|MINUS|BELOW|LT))?"
    r"(?:_?(?:PLUS|OR_LATER|OR_NEWER|OR_GREATER|UP|AND_UP|GE))?$",
    re.IGNORECASE,
)
VERSION_INFO = ("sys.version_info", "version_info")
COMPARE: dict[type, Callable[[tuple, tuple], bool]] = {
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
}


class Evaluator:
    """Static truth of `if` tests that depend on platform or Python version."""

    def __init__(self, version: tuple[int, int]) -> None:
        self.version = version
        self.values = {
            "sys.platform": "linux",
            "os.name": "posix",
            "platform.system()": "Linux",
            "sys.implementation.name": "cpython",
            "platform.python_implementation()": "CPython",
        }

    def truth(self, node: ast.expr) -> bool | None:
        """True/False if known for the target, else None."""
        if isinstance(node, (ast.Name, ast.Attribute)):
            return self._flag(node.id if isinstance(node, ast.Name) else node.attr)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            v = self.truth(node.operand)
            return None if v is None else not v
        if isinstance(node, ast.BoolOp):
            vals = [self.truth(v) for v in node.values]
            if isinstance(node.op, ast.And):
                if False in vals:
                    return False
                return True if all(v is True for v in vals) else None
            if True in vals:
                return True
            return False if all(v is False for v in vals) else None
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in ("startswith", "endswith")
            and len(node.args) == 1
        ):
            subject = self.values.get(dotted(node.func.value))
            arg = node.args[0]
            opts = [const_str(e) for e in arg.elts] if isinstance(arg, ast.Tuple) else [const_str(arg)]
            if subject is None or None in opts:
                return None
            fn = subject.startswith if node.func.attr == "startswith" else subject.endswith
            return any(fn(o) for o in opts if o is not None)
        if isinstance(node, ast.Compare) and len(node.ops) == 1:
            return self._compare(node.left, node.ops[0], node.comparators[0])
        return None

    def _flag(self, last: str) -> bool | None:
        """TYPE_CHECKING, PY2/PY3, IS_WINDOWS, PY310-style names."""
        if last == "TYPE_CHECKING":
            return False
        if last in ("PY2", "PY26", "PY27", "IS_PY2", "PYTHON2"):
            return False
        if last in ("PY3", "IS_PY3", "PYTHON3"):
            return True
        if WIN_NAME.match(last):
            return False
        m = PY_FLAG.match(last)
        if m:  # PY38, PY_312, PYTHON_3_11, IS_PY310_PLUS: "at least 3.X"
            minor = int(m.group(1))
            return None if m.group(2) else self.version >= (3, minor)
        return None

    def _compare(self, left: ast.expr, op: ast.cmpop, right: ast.expr) -> bool | None:
        key = dotted(left)
        if key in self.values:
            return self._compare_value(self.values[key], op, right)
        lhs = self._version_operand(left, key)
        if lhs is None:
            return None
        rhs: tuple[int, ...]
        if isinstance(right, ast.Tuple):
            vals = [e.value if isinstance(e, ast.Constant) and isinstance(e.value, int) else None for e in right.elts]
            if not vals or any(v is None for v in vals):
                return None
            rhs = tuple(v for v in vals if v is not None)
        elif isinstance(right, ast.Constant) and isinstance(right.value, int):
            rhs = (right.value,)
        else:
            return None
        if len(lhs) == 2 and len(rhs) > 2:
            if rhs[:2] != lhs:
                rhs = rhs[:2]
            else:
                return None  # depends on the patch level
        fn = COMPARE.get(type(op))
        if fn is None:
            return None
        if len(lhs) > len(rhs) and isinstance(op, (ast.Eq, ast.NotEq)):
            return None
        return fn(lhs[: len(rhs)] if len(lhs) >= len(rhs) else lhs, rhs)

    @staticmethod
    def _compare_value(subject: str, op: ast.cmpop, right: ast.expr) -> bool | None:
        """`sys.platform == "win32"`, `os.name in ("nt", "ce")`."""
        if isinstance(op, (ast.In, ast.NotIn)) and isinstance(right, (ast.Tuple, ast.List, ast.Set)):
            opts = [const_str(e) for e in right.elts]
            if None in opts:
                return None
            hit = subject in opts
            return hit if isinstance(op, ast.In) else not hit
        s = const_str(right)
        if s is None:
            return None
        if isinstance(op, (ast.Eq, ast.Is)):
            return subject == s
        if isinstance(op, (ast.NotEq, ast.IsNot)):
            return subject != s
        return None  # `"win" in sys.platform` and other operators: unknown

    def _version_operand(self, left: ast.expr, key: str) -> tuple[int, ...] | None:
        """The target version as the left side of a version_info comparison."""
        ver = (3, self.version[1])
        if key in VERSION_INFO:
            return ver
        if isinstance(left, ast.Subscript) and dotted(left.value) in VERSION_INFO:
            sl = left.slice
            if isinstance(sl, ast.Constant) and sl.value in (0, 1) and isinstance(sl.value, int):
                return (ver[sl.value],)
            upper = sl.upper.value if isinstance(sl, ast.Slice) and isinstance(sl.upper, ast.Constant) else None
            if isinstance(sl, ast.Slice) and sl.lower is None and upper in (1, 2) and isinstance(upper, int):
                return ver[:upper]
            return None
        if key in ("sys.version_info.major", "sys.version_info.minor"):
            return (ver[0] if key.endswith("major") else ver[1],)
        return None
