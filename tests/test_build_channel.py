"""Tests of portable_env.channel (scripts/build-channel): pure helpers, no network, no real build,
except the cached-rebuild check on the real channel of the test session."""

from __future__ import annotations

import json
import os
import tarfile
import time
import zipfile
from pathlib import Path

import pytest
from conftest import REPO, script
from portable_env.channel import archive, build, convert, hostpython, index, inputs, wheels
from portable_env.errors import UserError

# --- the wheel list


def test_parse_wheel_list_reads_pins_comments_and_renames() -> None:
    text = """
# a comment
numpy==2.4.6            # trailing comment
python_dateutil == 2.9.0.post0
tzdata==2026.6 as python-tzdata   # explicit conda name

"""
    pins = inputs.parse_wheel_list(text, "list.txt")
    assert [(p.name, p.version, p.conda_name, p.line) for p in pins] == [
        ("numpy", "2.4.6", None, 3),
        ("python_dateutil", "2.9.0.post0", None, 4),
        ("tzdata", "2026.6", "python-tzdata", 5),
    ]


@pytest.mark.parametrize("line", ["numpy>=2", "numpy", "numpy==2.4 as", "numpy==2.4 as Py_Bad", "==1.0"])
def test_parse_wheel_list_rejects_unpinned_or_malformed_lines(line: str) -> None:
    with pytest.raises(UserError, match=r"list.txt:2: expected 'name==version'"):
        inputs.parse_wheel_list(f"six==1.17.0\n{line}\n", "list.txt")


def test_parse_wheel_list_rejects_duplicates_after_normalisation() -> None:
    with pytest.raises(UserError, match=r"list\.txt:2: Python\.Dateutil is already pinned on line 1"):
        inputs.parse_wheel_list("python-dateutil==2.9.0\nPython.Dateutil==2.8.0\n", "list.txt")


def test_parse_wheel_list_rejects_an_empty_list() -> None:
    with pytest.raises(UserError, match="no 'name==version' lines"):
        inputs.parse_wheel_list("# nothing\n\n", "list.txt")


def test_conda_name_explicit_then_rename_table_then_normalised() -> None:
    renames = {"tzdata": "python-tzdata"}
    pin = inputs.WheelPin
    assert inputs.conda_name_for(pin("tzdata", "1", None, 1), renames) == "python-tzdata"
    assert inputs.conda_name_for(pin("tzdata", "1", "tz", 1), renames) == "tz"
    assert inputs.conda_name_for(pin("Scikit_Learn", "1", None, 1), renames) == "scikit-learn"


def test_demo_wheel_list_parses() -> None:
    path = REPO / "templates" / "demo-channel.txt"
    names = {p.name for p in inputs.parse_wheel_list(path.read_text(), str(path))}
    assert {"numpy", "scipy", "pandas", "scikit-learn", "six", "pyyaml", "tzdata"} <= names


# --- input hashing and the up-to-date check


def test_inputs_digest_is_stable_order_independent_and_unambiguous() -> None:
    a = inputs.inputs_digest({"x": "1", "y": b"2"})
    assert a == inputs.inputs_digest({"y": b"2", "x": "1"})
    assert a != inputs.inputs_digest({"x": "1", "y": b"3"})
    assert inputs.inputs_digest({"a": "bc"}) != inputs.inputs_digest({"ab": "c"})
    assert len(a) == 64


def test_collect_inputs_covers_wheel_list_script_host_and_tools() -> None:
    host = inputs.Host(Path("/opt/py"), "3.11.7", "3.11", "311", "x86_64", "linux-64", "3.11.7 (main)")
    base = inputs.collect_inputs(b"six==1.17.0\n", b"script", host, {"whl2conda": "1"})
    digest = inputs.inputs_digest(base)
    changed = [
        inputs.collect_inputs(b"six==1.16.0\n", b"script", host, {"whl2conda": "1"}),
        inputs.collect_inputs(b"six==1.17.0\n", b"script v2", host, {"whl2conda": "1"}),
        inputs.collect_inputs(b"six==1.17.0\n", b"script", host, {"whl2conda": "2"}),
        inputs.collect_inputs(b"six==1.17.0\n", b"script",
                          inputs.Host(Path("/opt/py2"), "3.11.7", "3.11", "311", "x86_64", "linux-64", "x"),
                          {"whl2conda": "1"}),
    ]
    assert all(inputs.inputs_digest(c) != digest for c in changed)


def make_channel(root: Path, digest: str | None, subdirs: tuple[str, ...] = ("noarch", "linux-64")) -> Path:
    out = root / "channel"
    for sd in subdirs:
        (out / sd).mkdir(parents=True)
        (out / sd / "repodata.json").write_text('{"packages": {}}')
    if digest is not None:
        (out / inputs.STAMP).write_text(digest + "\n")
    return out


def test_up_to_date_needs_matching_stamp_and_all_repodata(tmp_path: Path) -> None:
    subdirs = ("noarch", "linux-64")
    assert not inputs.is_up_to_date(tmp_path / "missing", "d", subdirs)
    assert inputs.is_up_to_date(make_channel(tmp_path / "ok", "d"), "d", subdirs)
    assert not inputs.is_up_to_date(make_channel(tmp_path / "other", "e"), "d", subdirs)
    assert not inputs.is_up_to_date(make_channel(tmp_path / "nostamp", None), "d", subdirs)
    assert not inputs.is_up_to_date(make_channel(tmp_path / "half", "d", ("noarch",)), "d", subdirs)


def snapshot(root: Path) -> dict[str, tuple[int, int, int]]:
    """(inode, mtime_ns, size) of every file and folder under root: a rewrite changes one of them."""
    out = {}
    for path in sorted([root, *root.rglob("*")]):
        st = path.lstat()
        out[path.relative_to(root).as_posix()] = (st.st_ino, st.st_mtime_ns, st.st_size)
    return out


def test_up_to_date_channel_is_left_untouched(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    wheel_list = tmp_path / "wheels.txt"
    wheel_list.write_text("six==1.17.0\n")
    host = inputs.host_info()
    digest = inputs.inputs_digest(inputs.collect_inputs(wheel_list.read_bytes(), inputs.builder_source(), host,
                                                        inputs.tool_versions()))
    assert digest == build.input_digest(wheel_list.read_bytes(), host)
    out = make_channel(tmp_path, digest, ("noarch", host.subdir))
    before, beside = snapshot(out), sorted(p.name for p in tmp_path.iterdir())

    def no_build(*_args: object) -> None:
        raise AssertionError("an up-to-date channel was rebuilt")

    monkeypatch.setattr(build, "build", no_build)
    monkeypatch.setattr(build, "find_tools", no_build)
    assert build.build_channel(out, wheel_list) == 0
    assert "channel up to date" in capsys.readouterr().err
    assert snapshot(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == beside  # no staging, work or lock file


def test_builder_code_is_part_of_the_input_hash() -> None:
    code = inputs.builder_source()
    for module in (archive, build, convert, hostpython, index, inputs, wheels):
        assert Path(module.__file__ or "").read_bytes() in code, module.__name__


def test_cached_rebuild_of_the_real_channel_rewrites_no_file(channel: str) -> None:
    out = Path(channel.removeprefix("file://"))
    before = snapshot(out)
    assert any(name.endswith(".conda") for name in before)
    proc = script("build-channel", "--out", str(out), "--wheels", str(REPO / "templates" / "demo-channel.txt"),
                  "--cache", str(REPO / "build" / "wheels"))
    assert proc.returncode == 0, proc.stderr
    assert "channel up to date" in proc.stderr
    assert snapshot(out) == before


def test_unreadable_wheel_list_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="cannot read the wheel list"):
        build.build_channel(tmp_path / "c", tmp_path / "nope.txt")
    assert not (tmp_path / "c").exists()
    proc = script("build-channel", "--out", str(tmp_path / "c"), "--wheels", str(tmp_path / "nope.txt"))
    assert proc.returncode == 1
    assert proc.stderr.startswith("error: build-channel: cannot read the wheel list") and "Traceback" not in proc.stderr
    assert not (tmp_path / "c").exists()


# --- dependency check


def pkg_index(name: str, version: str, build_string: str = "py_0", depends: tuple[str, ...] = (),
              subdir: str = "noarch") -> dict[str, object]:
    return {"name": name, "version": version, "build": build_string, "build_number": 0, "subdir": subdir,
            "depends": list(depends)}


def test_unsatisfied_depends_empty_for_a_closed_channel() -> None:
    indexes = [
        pkg_index("python", "3.11.7", "h1_0_cpython", ("python_abi 3.11.* *_cp311",), "linux-64"),
        pkg_index("python_abi", "3.11", "8_cp311", (), "linux-64"),
        pkg_index("six", "1.17.0", depends=("python >=2.7",)),
        pkg_index("numpy", "2.4.6", "py311_0",
                  ("python >=3.11,<3.12.0a0", "python_abi 3.11.* *_cp311", "__glibc >=2.17"), "linux-64"),
    ]
    assert index.unsatisfied_depends(indexes) == []


def test_unsatisfied_depends_names_the_missing_package_and_version() -> None:
    indexes = [
        pkg_index("python", "3.11.7", "h1_0_cpython"),
        pkg_index("python-dateutil", "2.9.0", depends=("six >=1.5", "python")),
        pkg_index("pandas", "2.3.3", depends=("python-tzdata >=2022.7", "python-dateutil >=3")),
    ]
    problems = index.unsatisfied_depends(indexes)
    assert problems == [
        "python-dateutil-2.9.0 depends on 'six >=1.5', but no package 'six' is in the channel",
        "pandas-2.3.3 depends on 'python-tzdata >=2022.7', but no package 'python-tzdata' is in the channel",
        "pandas-2.3.3 depends on 'python-dateutil >=3', but only python-dateutil 2.9.0 py_0 is in the channel",
    ]


def test_with_python_depends_adds_python_to_noarch_only() -> None:
    assert convert.with_python_depends({"noarch": "python", "depends": []}) == ["python"]
    assert convert.with_python_depends({"noarch": "python", "depends": ["python >=3.9"]}) == ["python >=3.9"]
    with_tzdata = {"noarch": "python", "depends": ["python-tzdata"]}
    assert convert.with_python_depends(with_tzdata) == ["python-tzdata", "python"]
    assert convert.with_python_depends({"depends": ["numpy"]}) == ["numpy"]


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
    assert hostpython.stdlib_excluded(rel) is excluded


@pytest.mark.parametrize(
    ("rel_dir", "excluded"),
    [("json", False), ("lib-dynload", False), ("site-packages", False), ("site-packages/numpy", True),
     ("test", True), ("test/support", True), ("ctypes/test", True), ("lib2to3/tests", True),
     ("idlelib", True), ("email/__pycache__", True), ("unittest", False)],
)
def test_stdlib_dir_excluded(rel_dir: str, excluded: bool) -> None:
    assert hostpython.stdlib_dir_excluded(rel_dir) is excluded


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
    assert hostpython.relocated_rpath(rpath, "/opt/py", file_dir) == expected


def test_paths_entry_marks_placeholder_files_as_text(tmp_path: Path) -> None:
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "conf.py").write_text(f"PREFIX = '{hostpython.PLACEHOLDER}'\n")
    (tmp_path / "lib" / "link").symlink_to("conf.py")
    entry = archive.paths_entry(tmp_path, "lib/conf.py", hostpython.PLACEHOLDER)
    assert entry["prefix_placeholder"] == hostpython.PLACEHOLDER
    assert entry["file_mode"] == "text"
    assert entry["path_type"] == "hardlink"
    assert entry["size_in_bytes"] == (tmp_path / "lib" / "conf.py").stat().st_size
    link = archive.paths_entry(tmp_path, "lib/link")
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
    pin = inputs.WheelPin
    found = wheels.find_cached_wheel(tmp_path, pin("numpy", "2.4.6", None, 1), ranks)
    assert found is not None and found.name.startswith("numpy-2.4.6-cp311-cp311-manylinux_2_27")
    found = wheels.find_cached_wheel(tmp_path, pin("Python-DateUtil", "2.9.0.post0", None, 1), ranks)
    assert found is not None and found.name.startswith("python_dateutil")
    assert wheels.find_cached_wheel(tmp_path, pin("numpy", "2.4.7", None, 1), ranks) is None
    assert wheels.find_cached_wheel(tmp_path / "absent", pin("numpy", "2.4.6", None, 1), ranks) is None


def test_wheel_info_reads_purity_date_and_imports(tmp_path: Path) -> None:
    wheel = tmp_path / "pyyaml-6.0-cp311-cp311-manylinux_2_17_x86_64.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr(zipfile.ZipInfo("yaml/__init__.py", (2024, 1, 2, 3, 4, 6)), "")
        zf.writestr(zipfile.ZipInfo("_yaml/__init__.py", (2023, 1, 1, 0, 0, 0)), "")
        zf.writestr(zipfile.ZipInfo("PyYAML-6.0.dist-info/WHEEL", (2023, 1, 1, 0, 0, 0)),
                    "Wheel-Version: 1.0\nRoot-Is-Purelib: false\n")
    pure, newest, imports = wheels.wheel_info(wheel)
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
    assert wheels.import_names(paths) == expected


def test_short_license_keeps_short_ones_and_cuts_embedded_files() -> None:
    assert convert.short_license("MIT") == "MIT"
    assert convert.short_license(None) is None
    embedded = "BSD 3-Clause License         Copyright (c) 2008 " + "x" * 200
    assert convert.short_license(embedded) == "BSD 3-Clause License"
    assert len(convert.short_license("y" * 300) or "") == 80


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
    archive.write_conda(tree, first / "pkg-1.0-py_0.conda", mtime=1_700_000_000)
    os.utime(tree / "site-packages" / "pkg" / "__init__.py", (1, 1))  # disk mtimes do not matter
    time.sleep(1.1)  # nor the wall clock (zip entries carry a date)
    archive.write_conda(tree, second / "pkg-1.0-py_0.conda", mtime=1_700_000_000)
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
    with pytest.raises(ValueError, match=r"not a \.conda"):
        archive.write_conda(make_tree(tmp_path), tmp_path / "pkg.tar.bz2", mtime=0)


# --- swapping the new channel into place


def test_swap_into_place_replaces_the_old_channel(tmp_path: Path) -> None:
    out, staging = tmp_path / "channel", tmp_path / ".channel.tmp"
    out.mkdir()
    (out / "old").touch()
    staging.mkdir()
    (staging / "new").touch()
    index.swap_into_place(staging, out)
    assert sorted(p.name for p in out.iterdir()) == ["new"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["channel"]


def test_swap_into_place_creates_a_missing_channel(tmp_path: Path) -> None:
    staging = tmp_path / ".tmp"
    staging.mkdir()
    index.swap_into_place(staging, tmp_path / "channel")
    assert (tmp_path / "channel").is_dir() and not staging.exists()


def test_swap_into_place_refuses_to_replace_a_file(tmp_path: Path) -> None:
    (tmp_path / "channel").write_text("not a channel")
    (tmp_path / ".tmp").mkdir()
    with pytest.raises(UserError, match="is not a channel directory"):
        index.swap_into_place(tmp_path / ".tmp", tmp_path / "channel")
