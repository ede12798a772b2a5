"""The scan result and its YAML document (build/<project>/deps.yml)."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import yaml

if TYPE_CHECKING:
    from portable_env.scan.parse import Use

PROG = "find-deps"


def warn(msg: str, kind: str = "warning") -> None:
    """Print a warning (or a note) to stderr."""
    print(f"{PROG}: {kind}: {msg}", file=sys.stderr)


@dataclass
class Result:
    """Classified, mapped dependencies of a project."""

    required: set[str] = field(default_factory=set)
    optional: set[str] = field(default_factory=set)
    on_demand: set[str] = field(default_factory=set)
    unresolved: set[str] = field(default_factory=set)
    evidence: dict[str, dict[str, list[str]]] = field(default_factory=dict)  # package -> import -> locations
    unparsed: list[str] = field(default_factory=list)
    uses: dict[str, list[Use]] = field(default_factory=dict)  # package -> uses
    warnings: list[tuple[str, str]] = field(default_factory=list)  # (kind, message), printed by find-deps

    def warn(self, msg: str, kind: str = "warning") -> None:
        """Record a warning (or a note) for the user."""
        self.warnings.append((kind, msg))


def loc_key(where: str) -> tuple[str, int]:
    """Sort key of a "path:LINE" location (lines in numeric order)."""
    path, _, line = where.rpartition(":")
    return (path, int(line) if line.isdigit() else 0)


def first(locations: list[str], limit: int) -> list[str]:
    """Unique locations in file order, at most `limit` (0: all)."""
    seen: list[str] = []
    for w in locations:
        if w not in seen:
            seen.append(w)
    seen.sort(key=loc_key)
    return seen if limit <= 0 else seen[:limit]


class _Flow(list):
    """A list dumped in flow style ([a, b])."""


class _Dumper(yaml.SafeDumper):
    pass


_Dumper.add_representer(_Flow, lambda d, v: d.represent_sequence("tag:yaml.org,2002:seq", v, flow_style=True))


def render(res: Result) -> str:
    """The deps YAML document, deterministic."""
    doc = {
        "required": sorted(res.required),
        "optional": sorted(res.optional),
        "on_demand": sorted(res.on_demand),
        "unresolved": sorted(res.unresolved),
        "imports": {pkg: {k: _Flow(v) for k, v in sorted(res.evidence[pkg].items())} for pkg in sorted(res.evidence)},
        "unparsed": sorted(res.unparsed, key=loc_key),
    }
    return yaml.dump(doc, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=1 << 16, allow_unicode=True)
