"""Unit tests for the pure helpers of scripts/build-channel (no network, no real build)."""

from __future__ import annotations

import json
import os
import sys
import tarfile
import time
import zipfile
from pathlib import Path

import pytest

from conftest import REPO, load_script

SCRIPT = REPO / "scripts" / "build-channel"

bc = load_script("build-channel")


# --- the wheel list


def test_parse_wheel_list_reads_pins_comments_and_renames() -> None:
    text = """
# a comment
numpy==2.4.6            # trailing comment
python_dateutil == 2.9.0.post0
tzdata==2026.6 as python-tzdata   # explicit conda name

"""
    pins = bc.parse_wheel_list(text, "list.txt")
    assert [(p.name, p.version, p.conda_name, p.line) for p in pins] == [
        ("numpy", "2.4.6", None, 3),
        ("python_dateutil", "2.9.0.post0", None, 4),
        ("tzdata", "2026.6", "python-tzdata", 5),
    ]


@pytest.mark.parametrize("line", ["numpy>=2", "numpy", "numpy==2.4 as", "numpy==2.4 as Py_Bad", "==1.0"])
def test_parse_wheel_list_rejects_unpinned_or_malformed_lines(line: str) -> None:
    with pytest.raises(bc.BuildError, match=r"list.txt:2: expected 'name==version'"):
        bc.parse_wheel_list(f"six==1.17.0\n{line}\n", "list.txt")


def test_parse_wheel_list_rejects_duplicates_after_normalisation() -> None:
    with pytest.raises(bc.BuildError, match="list.txt:2: Python.Dateutil is already pinned on line 1"):
        bc.parse_wheel_list("python-dateutil==2.9.0\nPython.Dateutil==2.8.0\n", "list.txt")


def test_parse_wheel_list_rejects_an_empty_list() -> None:
    with pytest.raises(bc.BuildError, match="no 'name==version' lines"):
        bc.parse_wheel_list("# nothing\n\n", "list.txt")


def test_conda_name_explicit_then_rename_table_then_normalised() -> None:
    renames = {"tzdata": "python-tzdata"}
    pin = bc.WheelPin
    assert bc.conda_name_for(pin("tzdata", "1", None, 1), renames) == "python-tzdata"
    assert bc.conda_name_for(pin("tzdata", "1", "tz", 1), renames) == "tz"
    assert bc.conda_name_for(pin("Scikit_Learn", "1", None, 1), renames) == "scikit-learn"


def test_demo_wheel_list_parses() -> None:
    path = SCRIPT.parent.parent / "templates" / "demo-channel.txt"
    names = {p.name for p in bc.parse_wheel_list(path.read_text(), str(path))}
    assert {"numpy", "scipy", "pandas", "scikit-learn", "six", "pyyaml", "tzdata"} <= names


# --- input hashing and the up-to-date check


def test_inputs_digest_is_stable_order_independent_and_unambiguous() -> None:
    a = bc.inputs_digest({"x": "1", "y": b"2"})
    assert a == bc.inputs_digest({"y": b"2", "x": "1"})
    assert a != bc.inputs_digest({"x": "1", "y": b"3"})
    assert bc.inputs_digest({"a": "bc"}) != bc.inputs_digest({"ab": "c"})
    assert len(a) == 64


def test_collect_inputs_covers_wheel_list_script_host_and_tools() -> None:
    host = bc.Host(Path("/opt/py"), "3.11.7", "3.11", "311", "x86_64", "linux-64", "3.11.7 (main)")
    base = bc.collect_inputs(b"six==1.17.0\n", b"script", host, {"whl2conda": "1"})
    digest = bc.inputs_digest(base)
    changed = [
        bc.collect_inputs(b"six==1.16.0\n", b"script", host, {"whl2conda": "1"}),
        bc.collect_inputs(b"six==1.17.0\n", b"script v2", host, {"whl2conda": "1"}),
        bc.collect_inputs(b"six==1.17.0\n", b"script", host, {"whl2conda": "2"}),
        bc.collect_inputs(b"six==1.17.0\n", b"script",
                          bc.Host(Path("/opt/py2"), "3.11.7", "3.11", "311", "x86_64", "linux-64", "x"),
                          {"whl2conda": "1"}),
    ]
    assert all(bc.inputs_digest(c) != digest for c in changed)


def make_channel(root: Path, digest: str | None, subdirs: tuple[str, ...] = ("noarch", "linux-64")) -> Path:
    out = root / "channel"
    for sd in subdirs:
        (out / sd).mkdir(parents=True)
        (out / sd / "repodata.json").write_text('{"packages": {}}')
    if digest is not None:
        (out / bc.STAMP).write_text(digest + "\n")
    return out


def test_up_to_date_needs_matching_stamp_and_all_repodata(tmp_path: Path) -> None:
    subdirs = ("noarch", "linux-64")
    assert not bc.is_up_to_date(tmp_path / "missing", "d", subdirs)
    assert bc.is_up_to_date(make_channel(tmp_path / "ok", "d"), "d", subdirs)
    assert not bc.is_up_to_date(make_channel(tmp_path / "other", "e"), "d", subdirs)
    assert not bc.is_up_to_date(make_channel(tmp_path / "nostamp", None), "d", subdirs)
    assert not bc.is_up_to_date(make_channel(tmp_path / "half", "d", ("noarch",)), "d", subdirs)


def test_main_exits_fast_when_the_channel_is_up_to_date(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    wheels = tmp_path / "wheels.txt"
    wheels.write_text("six==1.17.0\n")
    host = bc.host_info()
    digest = bc.inputs_digest(bc.collect_inputs(wheels.read_bytes(), SCRIPT.read_bytes(), host, bc.tool_versions()))
    out = make_channel(tmp_path, digest, ("noarch", host.subdir))
    start = time.monotonic()
    assert bc.main(["--out", str(out), "--wheels", str(wheels)]) == 0
    assert time.monotonic() - start < 1.0
    assert "channel up to date" in capsys.readouterr().err


def test_main_reports_an_unreadable_wheel_list(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert bc.main(["--out", str(tmp_path / "c"), "--wheels", str(tmp_path / "nope.txt")]) == 1
    assert "cannot read the wheel list" in capsys.readouterr().err
    assert not (tmp_path / "c").exists()


# --- dependency check


def index(name: str, version: str, build: str = "py_0", depends: tuple[str, ...] = (),
          subdir: str = "noarch") -> dict[str, object]:
    return {"name": name, "version": version, "build": build, "build_number": 0, "subdir": subdir,
            "depends": list(depends)}


def test_unsatisfied_depends_empty_for_a_closed_channel() -> None:
    indexes = [
        index("python", "3.11.7", "h1_0_cpython", ("python_abi 3.11.* *_cp311",), "linux-64"),
        index("python_abi", "3.11", "8_cp311", (), "linux-64"),
        index("six", "1.17.0", depends=("python >=2.7",)),
        index("numpy", "2.4.6", "py311_0", ("python >=3.11,<3.12.0a0", "python_abi 3.11.* *_cp311", "__glibc >=2.17"),
              "linux-64"),
    ]
    assert bc.unsatisfied_depends(indexes) == []


def test_unsatisfied_depends_names_the_missing_package_and_version() -> None:
    indexes = [
        index("python", "3.11.7", "h1_0_cpython"),
        index("python-dateutil", "2.9.0", depends=("six >=1.5", "python")),
        index("pandas", "2.3.3", depends=("python-tzdata >=2022.7", "python-dateutil >=3")),
    ]
    problems = bc.unsatisfied_depends(indexes)
    assert problems == [
        "python-dateutil-2.9.0 depends on 'six >=1.5', but no package 'six' is in the channel",
        "pandas-2.3.3 depends on 'python-tzdata >=2022.7', but no package 'python-tzdata' is in the channel",
        "pandas-2.3.3 depends on 'python-dateutil >=3', but only python-dateutil 2.9.0 py_0 is in the channel",
    ]


def test_with_python_depends_adds_python_to_noarch_only() -> None:
    assert bc.with_python_depends({"noarch": "python", "depends": []}) == ["python"]
    assert bc.with_python_depends({"noarch": "python", "depends": ["python >=3.9"]}) == ["python >=3.9"]
    assert bc.with_python_depends({"noarch": "python", "depends": ["python-tzdata"]}) == ["python-tzdata", "python"]
    assert bc.with_python_depends({"depends": ["numpy"]}) == ["numpy"]


# --- python package helpers


@pytest.mark.parametrize(
    ("rel", "excluded"),
    [
        ("os.py", False),
        ("json/__init__.py", False),
        ("lib-dynload/_ssl.cpython-311-x86_64-linux-gnu.so", False),
        ("config-3.11-x86_64-linux-gnu/Makefile", False),
        ("site-packages/README.txt", False),
        ("site-packages/numpy/__init__.py", True),
        ("site-packages/distutils-precedence.pth", True),
        ("test/test_os.py", True),
        ("ctypes/test/test_pep3118.py", True),
        ("idlelib/idle.py", True),
        ("tkinter/__init__.py", True),
        ("ensurepip/__init__.py", True),
        ("json/__pycache__/decoder.cpython-311.pyc", True),
        ("config-3.11-x86_64-linux-gnu/libpython3.11.a", True),
        ("lib-dynload/_tkinter.cpython-311-x86_64-linux-gnu.so", True),
        ("lib-dynload/_testcapi.cpython-311-x86_64-linux-gnu.so", True),
    ],
)
def test_stdlib_excluded(rel: str, excluded: bool) -> None:
    assert bc.stdlib_excluded(rel) is excluded


@pytest.mark.parametrize(
    ("rel_dir", "excluded"),
    [("json", False), ("lib-dynload", False), ("site-packages", False), ("site-packages/numpy", True),
     ("test", True), ("test/support", True), ("ctypes/test", True), ("lib2to3/tests", True),
     ("idlelib", True), ("email/__pycache__", True), ("unittest", False)],
)
def test_stdlib_dir_excluded(rel_dir: str, excluded: bool) -> None:
    assert bc.stdlib_dir_excluded(rel_dir) is excluded


@pytest.mark.parametrize(
    ("rpath", "file_dir", "expected"),
    [
        ("/opt/py/lib", "bin", "$ORIGIN/../lib"),
        ("/opt/py/lib", "lib", "$ORIGIN"),
        ("/opt/py/lib/", "lib/python3.11/lib-dynload", "$ORIGIN/../.."),
        ("/opt/py/lib:/usr/local/lib", "bin", "$ORIGIN/../lib:/usr/local/lib"),
        ("/opt/python/lib", "bin", "/opt/python/lib"),  # not under the prefix
        ("$ORIGIN/../lib", "bin", "$ORIGIN/../lib"),
        ("", "bin", ""),
    ],
)
def test_relocated_rpath(rpath: str, file_dir: str, expected: str) -> None:
    assert bc.relocated_rpath(rpath, "/opt/py", file_dir) == expected


def test_paths_entry_marks_placeholder_files_as_text(tmp_path: Path) -> None:
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "conf.py").write_text(f"PREFIX = '{bc.PLACEHOLDER}'\n")
    (tmp_path / "lib" / "link").symlink_to("conf.py")
    entry = bc.paths_entry(tmp_path, "lib/conf.py", bc.PLACEHOLDER)
    assert entry["prefix_placeholder"] == bc.PLACEHOLDER
    assert entry["file_mode"] == "text"
    assert entry["path_type"] == "hardlink"
    assert entry["size_in_bytes"] == (tmp_path / "lib" / "conf.py").stat().st_size
    link = bc.paths_entry(tmp_path, "lib/link")
    assert link["path_type"] == "softlink" and "prefix_placeholder" not in link


# --- wheels


def test_find_cached_wheel_matches_name_version_and_tags(tmp_path: Path) -> None:
    ranks = {"cp311-cp311-manylinux_2_28_x86_64": 0, "cp311-cp311-manylinux_2_17_x86_64": 1, "py3-none-any": 2}
    for name in (
        "numpy-2.4.6-cp312-cp312-manylinux_2_28_x86_64.whl",  # other python
        "numpy-2.4.5-cp311-cp311-manylinux_2_28_x86_64.whl",  # other version
        "numpy-2.4.6-cp311-cp311-manylinux_2_17_x86_64.whl",
        "numpy-2.4.6-cp311-cp311-manylinux_2_27_x86_64.manylinux_2_28_x86_64.whl",
        "python_dateutil-2.9.0.post0-py2.py3-none-any.whl",
        "not-a-wheel.whl",
    ):
        (tmp_path / name).touch()
    pin = bc.WheelPin
    found = bc.find_cached_wheel(tmp_path, pin("numpy", "2.4.6", None, 1), ranks)
    assert found is not None and found.name.startswith("numpy-2.4.6-cp311-cp311-manylinux_2_27")
    found = bc.find_cached_wheel(tmp_path, pin("Python-DateUtil", "2.9.0.post0", None, 1), ranks)
    assert found is not None and found.name.startswith("python_dateutil")
    assert bc.find_cached_wheel(tmp_path, pin("numpy", "2.4.7", None, 1), ranks) is None
    assert bc.find_cached_wheel(tmp_path / "absent", pin("numpy", "2.4.6", None, 1), ranks) is None


def test_wheel_info_reads_purity_date_and_imports(tmp_path: Path) -> None:
    wheel = tmp_path / "pyyaml-6.0-cp311-cp311-manylinux_2_17_x86_64.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr(zipfile.ZipInfo("yaml/__init__.py", (2024, 1, 2, 3, 4, 6)), "")
        zf.writestr(zipfile.ZipInfo("_yaml/__init__.py", (2023, 1, 1, 0, 0, 0)), "")
        zf.writestr(zipfile.ZipInfo("PyYAML-6.0.dist-info/WHEEL", (2023, 1, 1, 0, 0, 0)),
                    "Wheel-Version: 1.0\nRoot-Is-Purelib: false\n")
    pure, newest, imports = bc.wheel_info(wheel)
    assert (pure, imports) == (False, ("yaml",))
    assert newest == 1704164646  # 2024-01-02T03:04:06Z


@pytest.mark.parametrize(
    ("paths", "expected"),
    [
        (["six.py", "six-1.17.0.dist-info/RECORD"], ("six",)),
        (["attr/__init__.py", "attrs/__init__.py"], ("attr", "attrs")),
        (["_yaml/__init__.py", "yaml/__init__.py"], ("yaml",)),
        (["_cffi_backend.cpython-311-x86_64-linux-gnu.so"], ("_cffi_backend",)),
        (["numpy/__init__.py", "numpy.libs/libgfortran.so", "numpy-2.dist-info/METADATA"], ("numpy",)),
        (["x.data/scripts/tool", "README.md"], ()),
    ],
)
def test_import_names(paths: list[str], expected: tuple[str, ...]) -> None:
    assert bc.import_names(paths) == expected


def test_short_license_keeps_short_ones_and_cuts_embedded_files() -> None:
    assert bc.short_license("MIT") == "MIT"
    assert bc.short_license(None) is None
    assert bc.short_license("BSD 3-Clause License         Copyright (c) 2008 " + "x" * 200) == "BSD 3-Clause License"
    assert len(bc.short_license("y" * 300) or "") == 80


# --- packing


def make_tree(root: Path) -> Path:
    tree = root / "tree"
    (tree / "info").mkdir(parents=True)
    (tree / "bin").mkdir()
    (tree / "site-packages" / "pkg").mkdir(parents=True)
    (tree / "info" / "index.json").write_text(json.dumps({"name": "pkg", "version": "1.0", "build": "py_0"}))
    (tree / "site-packages" / "pkg" / "__init__.py").write_text("X = 1\n")
    (tree / "bin" / "tool").write_text("#!/bin/sh\n")
    os.chmod(tree / "bin" / "tool", 0o750)
    (tree / "bin" / "tool2").symlink_to("tool")
    return tree


def test_write_conda_is_reproducible_and_readable(tmp_path: Path) -> None:
    from conda_package_streaming.package_streaming import stream_conda_component

    tree = make_tree(tmp_path)
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    bc.write_conda(tree, first / "pkg-1.0-py_0.conda", mtime=1_700_000_000)
    os.utime(tree / "site-packages" / "pkg" / "__init__.py", (1, 1))  # disk mtimes do not matter
    time.sleep(1.1)  # nor the wall clock (zip entries carry a date)
    bc.write_conda(tree, second / "pkg-1.0-py_0.conda", mtime=1_700_000_000)
    data = (first / "pkg-1.0-py_0.conda").read_bytes()
    assert data == (second / "pkg-1.0-py_0.conda").read_bytes()
    assert not list(first.glob("*.part"))

    members: dict[str, tarfile.TarInfo] = {}
    with open(first / "pkg-1.0-py_0.conda", "rb") as fh:
        for component in ("pkg", "info"):
            fh.seek(0)
            for _tar, member in stream_conda_component("pkg-1.0-py_0.conda", fh, component):
                members[member.name] = member
    assert sorted(members) == ["bin/tool", "bin/tool2", "info/index.json", "site-packages/pkg/__init__.py"]
    assert {m.mtime for m in members.values()} == {1_700_000_000}
    assert {(m.uid, m.gid, m.uname, m.gname) for m in members.values()} == {(0, 0, "", "")}
    assert members["bin/tool"].mode == 0o755
    assert members["site-packages/pkg/__init__.py"].mode == 0o644
    assert members["bin/tool2"].issym() and members["bin/tool2"].linkname == "tool"


def test_write_conda_rejects_other_suffixes(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not a .conda"):
        bc.write_conda(make_tree(tmp_path), tmp_path / "pkg.tar.bz2", mtime=0)


# --- swapping the new channel into place


def test_swap_into_place_replaces_the_old_channel(tmp_path: Path) -> None:
    out, staging = tmp_path / "channel", tmp_path / ".channel.tmp"
    out.mkdir()
    (out / "old").touch()
    staging.mkdir()
    (staging / "new").touch()
    bc.swap_into_place(staging, out)
    assert sorted(p.name for p in out.iterdir()) == ["new"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["channel"]


def test_swap_into_place_creates_a_missing_channel(tmp_path: Path) -> None:
    staging = tmp_path / ".tmp"
    staging.mkdir()
    bc.swap_into_place(staging, tmp_path / "channel")
    assert (tmp_path / "channel").is_dir() and not staging.exists()


def test_swap_into_place_refuses_to_replace_a_file(tmp_path: Path) -> None:
    (tmp_path / "channel").write_text("not a channel")
    (tmp_path / ".tmp").mkdir()
    with pytest.raises(bc.BuildError, match="is not a channel directory"):
        bc.swap_into_place(tmp_path / ".tmp", tmp_path / "channel")
