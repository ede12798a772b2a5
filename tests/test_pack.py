"""pack: reproducible archives from conda-pack's public interface (a fake prefix, no channel needed)."""
from __future__ import annotations

import hashlib
import io
import json
import os
import stat
import tarfile
from pathlib import Path

import pytest
import yaml
from conftest import script
from portable_env import formats, pack, tarwrite
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
    st = os.stat_result((stat.S_IFREG | 0o700, 1, 1, 1, 1000, 1000, 5, 123, 123, 123))
    out = tarwrite.entry_info("bin/tool", st, 42)
    assert (out.mtime, out.uid, out.gid, out.uname, out.gname, out.mode, out.size) == (42, 0, 0, "", "", 0o755, 5)
    assert tarwrite.entry_info("x", os.stat_result((stat.S_IFREG | 0o640, *[1] * 9)), 0).mode == 0o644
    assert tarwrite.entry_info("d", os.stat_result((stat.S_IFDIR | 0o700, *[1] * 9)), 0).mode == 0o755
    data = pack.scrub_record({
        "name": "six", "extracted_package_dir": "/build/pkgs/six", "link": {"source": "/build/pkgs/six", "type": 1},
        "paths_data": {"paths": [
            {"_path": "a.py", "sha256": "x", "sha256_in_prefix": "y", "size_in_bytes": 3},
            {"_path": "b.txt", "sha256": "x", "sha256_in_prefix": "z", "size_in_bytes": 9,
             "prefix_placeholder": "/opt/placeholder"}]}})
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
    assert_packed_order(env, names)
    assert {"bin/tool", "conda-meta/history", "conda-meta/six-1.0-0.json", "bin/conda-unpack"} <= set(names)
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
        pack.scrub_record({"name": "pip", "paths_data": {"paths": [
            {"_path": "bin/pip", "path_type": "unix_python_entry_point", "sha256": digest, "size_in_bytes": size},
            {"_path": "lib/pip.py", "path_type": "hardlink", "sha256": "same", "size_in_bytes": 7}]}})
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


def placeholder_env(root: Path) -> Path:
    """A prefix whose package (cache present) has what conda-forge packages
    have: text and binary prefix placeholders, a bin/ script with the
    placeholder in its shebang, a symlink, two hard-linked files; plus an
    unowned file naming the prefix and an unowned empty folder."""
    cache = root.parent / "pkgs" / "tool-1.0-0"
    ph = "/opt/anaconda1anaconda2anaconda3"
    files = {"lib/tool.cfg": f"prefix={ph}\n".encode(), "bin/tool-run": f"#!{ph}/bin/python3.11\nprint(1)\n".encode(),
             "lib/libtool.so": b"\x7fELF\x00" + ph.encode() + b"\x00" * 64, "lib/plain.txt": b"no prefix\n",
             "share/a.dat": b"same inode\n"}
    paths = []
    for rel, data in files.items():
        for base in (cache, root):
            (base / rel).parent.mkdir(parents=True, exist_ok=True)
        (cache / rel).write_bytes(data)
        entry: dict[str, object] = {"_path": rel, "path_type": "hardlink"}
        if ph.encode() in data:
            entry |= {"prefix_placeholder": ph, "file_mode": "binary" if rel.endswith(".so") else "text"}
            (root / rel).write_bytes(data.replace(ph.encode(), str(root).encode()))
        else:
            os.link(cache / rel, root / rel)
        paths.append(entry)
    os.chmod(cache / "bin/tool-run", 0o755)
    os.chmod(root / "bin/tool-run", 0o755)
    for base in (cache, root):
        os.link(base / "share/a.dat", base / "share/b.dat")
        os.symlink("libtool.so", base / "lib/libtool.so.1")
    paths += [{"_path": "share/b.dat", "path_type": "hardlink"}, {"_path": "lib/libtool.so.1", "path_type": "softlink"}]
    (cache / "info").mkdir()
    (cache / "info" / "paths.json").write_text(json.dumps({"paths": paths, "paths_version": 1}))
    (root / "conda-meta").mkdir()
    (root / "conda-meta" / "tool-1.0-0.json").write_text(json.dumps({
        "name": "tool", "version": "1.0", "build": "0", "files": [p["_path"] for p in paths],
        "timestamp": 1700000000000, "link": {"source": str(cache), "type": 1}, "extracted_package_dir": str(cache)}))
    (root / "conda-meta" / "history").write_text("")  # conda-pack's own tar needs it for its mtime
    (root / "share" / "unowned.txt").write_text(f"built in {root}\n")
    (root / "share" / "empty").mkdir()
    return root


def test_the_archive_holds_what_conda_pack_packs(tmp_path: Path) -> None:
    """Files without a prefix go into the archive straight from the package,
    conda-pack stages the rest: the result must be exactly what conda-pack's
    own tar of the same environment holds (records scrubbed, conda-unpack's
    first line relocatable), placeholders, links and hard links included."""
    prefix = placeholder_env(tmp_path / "env")
    ours, theirs = tmp_path / "ours.tar", tmp_path / "theirs.tar"
    pack.pack(prefix, ours, "tar")
    pack.conda_env(prefix, scratch=tmp_path / "scripts").pack(output=str(theirs), format="tar")

    def contents(path: Path) -> dict[str, tuple[bytes, str, bytes]]:
        with tarfile.open(path) as tf:
            return {m.name: (m.type, m.linkname, tf.extractfile(m).read() if m.isreg() else b"")  # type: ignore[union-attr]
                    for m in tf if not m.isdir()}

    mine, conda = contents(ours), contents(theirs)
    assert set(mine) == set(conda)
    assert mine["share/b.dat"][0] == tarfile.LNKTYPE and mine["share/b.dat"][1] == "share/a.dat"
    assert mine["lib/libtool.so.1"][:2] == (tarfile.SYMTYPE, "libtool.so")
    for name in conda:
        if name.startswith("conda-meta/") and name.endswith(".json"):
            assert json.loads(mine[name][2]) == {
                k: v for k, v in json.loads(conda[name][2]).items() if k != "extracted_package_dir"
            } | {"link": {"type": 1}}
        elif name == "bin/conda-unpack":
            assert mine[name][2].split(b"\n", 3)[3] == conda[name][2].split(b"\n", 1)[1]
        else:
            assert mine[name] == conda[name], name
    assert b"/opt/anaconda1anaconda2anaconda3" in mine["lib/libtool.so"][2], "binary placeholder packed as installed"
    assert b"lib/tool.cfg" in mine["bin/conda-unpack"][2] and b"share/unowned.txt" in mine["bin/conda-unpack"][2]
    with tarfile.open(ours) as tf:
        assert_packed_order(prefix, [m.name for m in tf])
        assert tf.getmember("share/empty").isdir()


def assert_packed_order(prefix: Path, names: list[str]) -> None:
    """The archive's order: the files packed as they are, sorted, then what
    conda-pack wrote (its scripts, rewritten files) and the records, sorted."""
    direct = {f.target for f in pack.conda_env(prefix).files if f.file_mode is None and not pack.is_record(f.target)}
    assert names == sorted(n for n in names if n in direct) + sorted(n for n in names if n not in direct)
    assert {"bin/conda-unpack", "conda-meta/history"} <= set(names)
    assert {n for n in names if n.startswith("conda-meta/") and n.endswith(".json")}.isdisjoint(direct)


@pytest.mark.parametrize("name,kind,link,size,mode", [
    ("bin/tool", tarfile.REGTYPE, "", 5, 0o755), ("lib", tarfile.DIRTYPE, "", 0, 0o755),
    ("lib/libz.so", tarfile.SYMTYPE, "libz.so.1.3", 0, 0o777), ("share/b", tarfile.LNKTYPE, "share/a", 0, 0o644),
    ("x" * 100, tarfile.REGTYPE, "", 8**11 - 1, 0o644), ("x" * 101, tarfile.REGTYPE, "", 1, 0o644),
    ("lib/é.py", tarfile.REGTYPE, "", 1, 0o644), ("l", tarfile.SYMTYPE, "y" * 101, 0, 0o777),
    ("big", tarfile.REGTYPE, "", 8**11, 0o644),
])
def test_headers_are_what_tarfile_writes(name: str, kind: bytes, link: str, size: int, mode: int) -> None:
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.size, info.mode, info.mtime = kind, link, size, mode, 1700000000
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    assert tarwrite.header(info) == info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")


def test_slim_rule_is_fnmatch_of_the_patterns() -> None:
    import fnmatch

    paths = ["include/six.h", "lib/libz.a", "lib/libz.so", "share/doc/x/README", "share/man/man1/x.1",
             "lib/python3.11/site-packages/pkg/tests/test_a.py", "lib/python3.11/site-packages/pkg/testing/tests/t.py",
             "lib/python3.11/site-packages/pkg/testsuite.py", "bin/include", "share/info/dir", "lib/x.a.so"]
    for path in paths:
        assert pack.slimmed(path) == any(fnmatch.fnmatch(path, p) for p in pack.SLIM_EXCLUDES), path
    assert pack.slimmed("include/six.h") and not pack.slimmed("lib/libz.so"), "the control"


class _Sink:
    """A compress.Writer that keeps what it is given (and checks it is consumed at once)."""

    def __init__(self) -> None:
        self.data = bytearray()

    def write(self, data: bytes | bytearray | memoryview) -> int:
        self.data += data
        return len(data)

    def close(self) -> None:
        pass


def test_the_tar_writer_streams_files_and_blobs_of_any_size(tmp_path: Path) -> None:
    """Files and in-memory blobs smaller and larger than the reused buffer,
    written in two parts, read back as tarfile sees them; a name written twice
    and a file that changes size while it is read are refused."""
    big = os.urandom(tarwrite.BATCH + 12345)
    (tmp_path / "big.bin").write_bytes(big)
    (tmp_path / "small.txt").write_bytes(b"small")
    sink = _Sink()
    tar = tarwrite.TarWriter(sink, 1700000000)  # type: ignore[arg-type]
    tar.add({"lib/small.txt": str(tmp_path / "small.txt"), "lib/big.bin": str(tmp_path / "big.bin")})
    tar.add({"conda-meta/x.json": (b"{}\n", 0o644), "share/blob": (big[::-1], 0o755)})
    with pytest.raises(UserError, match="packed twice"):
        tar.add({"lib/big.bin": (b"", 0o644)})
    tar.close()
    assert len(sink.data) % tarfile.RECORDSIZE == 0
    with tarfile.open(fileobj=io.BytesIO(bytes(sink.data))) as tf:
        got = {m.name: (m.mode, tf.extractfile(m).read()) for m in tf}  # type: ignore[union-attr]
        assert [m.name for m in tf] == ["lib/big.bin", "lib/small.txt", "conda-meta/x.json", "share/blob"]
    assert got == {"lib/big.bin": (0o644, big), "lib/small.txt": (0o644, b"small"),
                   "conda-meta/x.json": (0o644, b"{}\n"), "share/blob": (0o755, big[::-1])}
    for changed in (b"smal", b"smaller"):
        (tmp_path / "small.txt").write_bytes(changed)
        with pytest.raises(UserError, match="changed while it was packed"):
            tarwrite._Batch(_Sink()).copy_file(str(tmp_path / "small.txt"), 5)  # 5 bytes when its header was made
