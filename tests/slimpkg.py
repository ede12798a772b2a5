"""A tiny conda channel with one package of the shape `slim: true` acts on.

The local channel's packages (PyPI wheels) have no tests/, include/, *.a or
share/doc/: `slimdemo` has each, so a slim test can fail.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from portable_env.channel.archive import paths_entry, write_conda, write_info
from portable_env.channel.index import index_channel

PY = "{}.{}".format(*sys.version_info[:2])
SITE = f"lib/python{PY}/site-packages/slimdemo"
KEPT = [f"{SITE}/__init__.py"]
SLIMMED = [f"{SITE}/tests/test_slimdemo.py", "include/slimdemo.h", "lib/libslimdemo.a", "share/doc/slimdemo/README"]
BIG = 64 * 1024  # bytes of each slimmed file


def slim_channel(root: Path) -> str:
    """Build and index the channel under root; its file:// URL."""
    tree = root / "tree"
    files = {KEPT[0]: b"VALUE = 42\n"}
    for i, rel in enumerate(SLIMMED):
        files[rel] = bytes((i * 7 + j * 13) % 251 for j in range(BIG))
    for rel, data in files.items():
        (tree / rel).parent.mkdir(parents=True, exist_ok=True)
        (tree / rel).write_bytes(data)
    index = {"name": "slimdemo", "version": "1.0", "build": "0", "build_number": 0,
             "depends": [f"python {PY}.*"], "subdir": "linux-64", "arch": "x86_64", "platform": "linux",
             "license": "MIT", "timestamp": 1700000000000}
    write_info(tree, index, [paths_entry(tree, rel) for rel in files], {"summary": "a package slim trims"})
    channel = root / "slimchannel"
    (channel / "noarch").mkdir(parents=True)
    (channel / "linux-64").mkdir()
    (channel / "noarch" / "repodata.json").write_text(json.dumps({"info": {"subdir": "noarch"}, "packages": {}}))
    write_conda(tree, channel / "linux-64" / "slimdemo-1.0-0.conda", 1700000000)
    index_channel(channel)
    return channel.as_uri()
