"""pack: reproducible archives from conda-pack's public interface (a fake prefix, no channel needed)."""
from __future__ import annotations

import hashlib
import json
import os
import tarfile
from pathlib import Path

import pytest
import yaml
from conftest import script
from portable_env import formats, pack
from portable_env.errors import UserError

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning:conda_pack")  # its package cache is gone
BIG = bytes(range(256)) * 4096 * 3  # 3 MiB: several gzip blocks


def fake_env(root: Path) -> Path:
    """A prefix conda-pack accepts: one package (its cache gone), an unowned
    file, a compiled .pyc of a package module and a test folder slim drops."""
    owned = {"lib/python3.11/site-packages/six.py": b"x = 1\n", "bin/tool": b"#!/bin/sh\necho hi\n",
             "share/data.bin": BIG, "lib/python3.11/site-packages/six/tests/test_six.py": b"",
             "include/six.h": b"/* header */\n"}
    for rel, data in owned.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    os.chmod(root / "bin" / "tool", 0o700)
    (root / "conda-meta").mkdir()
    (root / "conda-meta" / "six-1.0-0.json").write_text(json.dumps({
        "name": "six", "version": "1.0", "build": "0", "url": "file:///x/six-1.0-0.conda", "files": list(owned),
        "timestamp": 1700000000000, "link": {"source": "/nowhere/pkgs/six-1.0-0", "type": 1},
        "extracted_package_dir": "/nowhere/pkgs/six-1.0-0"}))
    (root / "conda-meta" / "history").write_text("")
    (root / "share" / "mine.txt").write_text("shipped, no build path\n")
    pyc = root / "lib/python3.11/site-packages/__pycache__/six.cpython-311.pyc"
    pyc.parent.mkdir()
    pyc.write_bytes(b"compiled")
    return root


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return fake_env(tmp_path_factory.mktemp("pack") / "env")


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_normalise_entries_and_scrub_build_paths() -> None:
    info = tarfile.TarInfo("bin/tool")
    info.mtime, info.uid, info.gid, info.uname, info.gname, info.mode = 123, 1000, 1000, "me", "us", 0o700
    out = pack.normalise(info, 42)
    assert (out.mtime, out.uid, out.gid, out.uname, out.gname, out.mode) == (42, 0, 0, "", "", 0o755)
    data = pack.scrub_record(json.dumps({
        "name": "six", "extracted_package_dir": "/build/pkgs/six", "link": {"source": "/build/pkgs/six", "type": 1},
        "paths_data": {"paths": [
            {"_path": "a.py", "sha256": "x", "sha256_in_prefix": "y", "size_in_bytes": 3},
            {"_path": "b.txt", "sha256": "x", "sha256_in_prefix": "z", "size_in_bytes": 9,
             "prefix_placeholder": "/opt/placeholder"}]}}).encode())
    record = yaml.safe_load(data)
    assert "extracted_package_dir" not in record and record["link"] == {"type": 1}
    assert record["paths_data"]["paths"][0] == {"_path": "a.py", "sha256": "x", "size_in_bytes": 3}
    assert "size_in_bytes" not in record["paths_data"]["paths"][1]
    assert b"/build/" not in data


def test_default_mtime_is_the_newest_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    meta = tmp_path / "conda-meta"
    meta.mkdir()
    (meta / "a.json").write_text('{"timestamp": 1700000000000}')
    (meta / "b.json").write_text('{"timestamp": 1600000000}')
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    assert pack.env_mtime(tmp_path) == 1700000000
    assert formats.archive_mtime([None, "x"]) == formats.FALLBACK_MTIME
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "5")
    assert pack.env_mtime(tmp_path) == 5


@pytest.mark.parametrize("fmt", formats.names())
def test_bytes_do_not_depend_on_the_thread_count(env: Path, tmp_path: Path, fmt: str) -> None:
    one, four = tmp_path / f"one.{fmt}", tmp_path / f"four.{fmt}"
    pack.pack(env, one, fmt, jobs=1)
    pack.pack(env, four, fmt, jobs=4)
    assert sha(one) == sha(four)
    with formats.open_tar(one) as tf:
        names = [m.name for m in tf]
    assert names[:3] == ["bin/tool", "conda-meta/history", "conda-meta/six-1.0-0.json"]
    assert "bin/conda-unpack" in names
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([one.name, four.name]), "no temporary files left"


def test_entries_are_normalised_and_records_scrubbed(env: Path, tmp_path: Path) -> None:
    out = tmp_path / "e.tar.gz"
    pack.pack(env, out, "tar.gz", mtime=1234)
    assert out.stat().st_mode & 0o777 == 0o644
    with tarfile.open(out) as tf:
        members = {m.name: m for m in tf}
        assert {(m.mtime, m.uid, m.gid, m.uname, m.gname) for m in members.values()} == {(1234, 0, 0, "", "")}
        assert members["bin/tool"].mode == 0o755 and members["share/mine.txt"].mode == 0o644
        record = json.loads(tf.extractfile("conda-meta/six-1.0-0.json").read())  # type: ignore[union-attr]
        unpack = tf.extractfile("bin/conda-unpack").read().decode()  # type: ignore[union-attr]
        assert tf.extractfile("share/data.bin").read() == BIG  # type: ignore[union-attr]
    assert "extracted_package_dir" not in record and "source" not in record["link"]
    assert "lib/python3.11/site-packages/__pycache__/six.cpython-311.pyc" in members, "compiled .pyc files stay"
    assert "share/mine.txt" not in unpack, "an unowned file without the build path needs no rewriting"
    with open(out, "rb") as raw:
        assert raw.read(10)[4:8] == (1234).to_bytes(4, "little"), "the gzip header carries the archive time"


def test_slim_leaves_out_tests_and_headers(env: Path, tmp_path: Path) -> None:
    full, out = tmp_path / "f.tar", tmp_path / "s.tar"
    pack.pack(env, full, "tar")
    with tarfile.open(full) as tf:
        everything = set(tf.getnames())
    assert "include/six.h" in everything and any("/tests/" in n for n in everything), "the control"
    pack.pack(env, out, "tar", slim=True)
    with tarfile.open(out) as tf:
        names = set(tf.getnames())
    assert "include/six.h" not in names and not any("/tests/" in n for n in names)
    assert "lib/python3.11/site-packages/six.py" in names


def test_pack_env_errors_name_the_fix(tmp_path: Path) -> None:
    proc = script("pack-env", "--prefix", str(tmp_path), "--out", str(tmp_path / "x.tar.gz"))
    assert proc.returncode == 1 and proc.stderr.startswith("error: pack: ") and "make env" in proc.stderr
    assert "Traceback" not in proc.stderr
    with pytest.raises(UserError, match="valid levels 1-9"):
        pack.pack(tmp_path, tmp_path / "x.tar.gz", "tar.gz", level=12)


def test_scrub_drops_the_build_path_hash_of_generated_entry_points() -> None:
    """rattler records the hash and size of the console scripts it writes at
    install (their first line names the build prefix): two checkouts at
    different paths would pack different records."""
    records = [
        pack.scrub_record(json.dumps({"name": "pip", "paths_data": {"paths": [
            {"_path": "bin/pip", "path_type": "unix_python_entry_point", "sha256": digest, "size_in_bytes": size},
            {"_path": "lib/pip.py", "path_type": "hardlink", "sha256": "same", "size_in_bytes": 7}]}}).encode())
        for digest, size in (("81d4", 257), ("df76", 258))]
    assert records[0] == records[1]
    entry, plain = yaml.safe_load(records[0])["paths_data"]["paths"]
    assert "sha256" not in entry and "size_in_bytes" not in entry
    assert plain == {"_path": "lib/pip.py", "path_type": "hardlink", "sha256": "same", "size_in_bytes": 7}


def test_pack_uses_only_conda_packs_public_names() -> None:
    """pack.py reaches conda-pack through the names it exports (conda_pack.__all__)
    only: no private module, no monkeypatch."""
    import ast

    import conda_pack

    tree = ast.parse((Path(pack.__file__)).read_text())
    used = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("conda_pack"):
            assert node.module == "conda_pack", f"private module {node.module}"
            used |= {a.name for a in node.names}
        if isinstance(node, ast.Import):
            assert not any(a.name.startswith("conda_pack.") for a in node.names)
    assert used and used <= set(conda_pack.__all__), used - set(conda_pack.__all__)
