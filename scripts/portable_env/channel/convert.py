"""Wheel -> conda package: whl2conda into a tree, normalised, packed reproducibly.

A binary wheel's package depends on `__glibc >=X.Y` as its manylinux tag
promises (manylinux_2_17 and manylinux2014: 2.17), else from its ELF files'
symbol versions, so a solve for an older target machine leaves it out.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

from portable_env import glibc
from portable_env.channel.archive import write_conda
from portable_env.channel.common import Tools, run_tool
from portable_env.errors import UserError
from portable_env.files import canon

# The legacy manylinux tags and the glibc each stands for (PEP 513, 571, 599).
LEGACY_MANYLINUX = {"manylinux1": (2, 5), "manylinux2010": (2, 12), "manylinux2014": (2, 17)}
MANYLINUX = re.compile(r"manylinux_(\d+)_(\d+)_\w+")


def manylinux_glibc(wheel_name: str) -> tuple[int, int] | None:
    """The oldest glibc a wheel's platform tags promise to run on (None: no manylinux tag)."""
    from packaging.utils import parse_wheel_filename

    found = []
    for tag in parse_wheel_filename(wheel_name)[3]:
        if m := MANYLINUX.fullmatch(tag.platform):
            found.append((int(m[1]), int(m[2])))
        elif (legacy := tag.platform.split("_", 1)[0]) in LEGACY_MANYLINUX:
            found.append(LEGACY_MANYLINUX[legacy])
    return min(found) if found else None


def glibc_depends(version: tuple[int, int] | None) -> list[str]:
    """The `__glibc` depends of a package that needs glibc version (conda-forge's form)."""
    return [f"__glibc >={version[0]}.{version[1]},<3.0.a0"] if version else []


def tree_glibc(tree: Path) -> tuple[int, int] | None:
    """The highest GLIBC_x.y any ELF file of a package tree needs."""
    found = glibc.needs(tree)
    return max(found.values()) if found else None


def short_license(text: str | None, limit: int = 80) -> str | None:
    """A one-line license for repodata (whl2conda may embed whole license files)."""
    if not text:
        return text
    text = text.strip()
    if len(text) <= limit and "\n" not in text:
        return text
    first = re.split(r"\s{2,}|\n", text, maxsplit=1)[0].strip()
    return first[:limit]


def with_python_depends(index: dict[str, Any]) -> list[str]:
    """Depends of a converted package, with `python` added to noarch ones lacking it.

    whl2conda adds `python` only from Requires-Python (pytz has none); an
    installer needs python in the environment to place a noarch package.
    """
    depends = list(index.get("depends", []))
    if index.get("noarch") == "python" and not any(
        re.split(r"[\s=<>!~]", d, maxsplit=1)[0] == "python" for d in depends
    ):
        depends.append("python")
    return depends


def normalize_whl2conda_tree(tree: Path, timestamp: int, needs_glibc: tuple[int, int] | None = None) -> dict[str, Any]:
    """Make a whl2conda tree reproducible (and add its `__glibc` depends); return its index.json.

    whl2conda stamps the conversion time into index.json, embeds whole license
    files as `license` (which repodata.json would repeat) and lists files in
    directory order.
    """
    info = tree / "info"
    index = json.loads((info / "index.json").read_text())
    index["timestamp"] = timestamp * 1000
    index["license"] = short_license(index.get("license"))
    index["depends"] = [d for d in with_python_depends(index) if not d.startswith("__glibc")]
    index["depends"] += glibc_depends(needs_glibc)
    (info / "index.json").write_text(json.dumps(index, indent=2, sort_keys=True) + "\n")
    paths = json.loads((info / "paths.json").read_text())
    paths["paths"] = sorted(paths["paths"], key=lambda e: e["_path"])
    (info / "paths.json").write_text(json.dumps(paths, indent=2) + "\n")
    (info / "files").write_text("".join(e["_path"] + "\n" for e in paths["paths"]))
    return index


def convert_wheel(
    wheel: Path, conda_name: str, pure: bool, timestamp: int, work: Path, channel: Path, tools: Tools, verbose: bool
) -> dict[str, Any]:
    """whl2conda a wheel into a tree, then pack it into `channel/<subdir>/`."""
    out = Path(tempfile.mkdtemp(prefix="whl2conda-", dir=work))
    cmd = [
        tools.whl2conda,
        "convert",
        str(wheel),
        "--batch",
        "--yes",
        "--ignore-pyproject",
        "--no-update-stdrenames",
        "--format",
        "tree",
        "--out-dir",
        str(out),
        "--overwrite",
    ]
    if not pure:
        cmd.append("--allow-impure")
    if conda_name != canon(wheel.name.split("-", 1)[0]):
        cmd += ["--name", conda_name]
    run_tool(
        cmd,
        f"whl2conda convert {wheel.name}",
        "check that the wheel is intact (delete it from the wheel cache to re-download it)",
        verbose,
    )
    trees = [p for p in out.iterdir() if (p / "info" / "index.json").is_file()]
    if len(trees) != 1:
        raise UserError(f"whl2conda convert {wheel.name} produced {len(trees)} packages, expected 1")
    tree = trees[0]
    needs_glibc = None if pure else (manylinux_glibc(wheel.name) or tree_glibc(tree))
    index = normalize_whl2conda_tree(tree, timestamp, needs_glibc)
    subdir_dir = channel / index["subdir"]
    subdir_dir.mkdir(parents=True, exist_ok=True)
    write_conda(tree, subdir_dir / f"{tree.name}.conda", timestamp)
    shutil.rmtree(out, ignore_errors=True)
    return index
