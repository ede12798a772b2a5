"""Unit tests of the small pipeline scripts (no channel needed)."""
from __future__ import annotations

import io
import json
import os
import tarfile
import time
from pathlib import Path

import yaml

from conftest import REPO, load_script, run, script


def test_write_if_changed_keeps_mtime_on_same_content(tmp_path: Path) -> None:
    f = tmp_path / "sub" / "f.txt"
    run(f"printf 'x\\n' | {REPO}/scripts/write-if-changed {f}", check=True)
    os.utime(f, (1, 1))
    run(f"printf 'x\\n' | {REPO}/scripts/write-if-changed {f}", check=True)
    assert f.stat().st_mtime == 1
    run(f"printf 'y\\n' | {REPO}/scripts/write-if-changed {f}", check=True)
    assert f.read_text() == "y\n" and f.stat().st_mtime > 1
    assert list(f.parent.iterdir()) == [f], "no temporary file left"


def test_list_sources_sorted_skips_hidden_and_caches(tmp_path: Path) -> None:
    for rel in ["b.py", "a.ipynb", "pkg/c.py", ".hidden/d.py", "__pycache__/e.py", "notes.txt", "with space.py"]:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("")
    proc = script("list-sources", str(tmp_path), check=True)
    assert proc.stdout.split() == [f"{tmp_path}/{n}" for n in ["a.ipynb", "b.py", "pkg/c.py"]]
    assert "with space.py" in proc.stderr


def test_step_reports_duration_and_failure() -> None:
    ok = script("step", "foo", "scan", "true")
    assert ok.returncode == 0 and "[foo] scan: done in" in ok.stderr
    bad = script("step", "foo", "lock", "sh", "-c", "exit 3")
    assert bad.returncode == 3 and "[foo] lock: FAILED after" in bad.stderr and "(exit 3)" in bad.stderr


def render(tmp_path: Path, deps: dict, settings: str | None = None, *extra: str) -> dict:
    (tmp_path / "deps.yml").write_text(yaml.safe_dump(deps))
    args = ["--name", "demo", "--template", str(REPO / "templates/environment.yml"), "--deps",
            str(tmp_path / "deps.yml")]
    if settings is not None:
        (tmp_path / "project.yml").write_text(settings)
        args += ["--settings", str(tmp_path / "project.yml")]
    return yaml.safe_load(script("render-env", *args, *extra, check=True).stdout)


def test_render_env_defaults_from_template(tmp_path: Path) -> None:
    env = render(tmp_path, {"required": ["numpy", "scikit-learn"], "optional": ["ujson"],
                            "on_demand": ["h5py"]})
    assert env == {"name": "demo", "channels": ["conda-forge"],
                   "dependencies": ["python=3.12", "h5py", "numpy", "scikit-learn"]}, \
        "on-demand packages are installed by default, optional ones are not"


def test_render_env_can_leave_on_demand_packages_out(tmp_path: Path) -> None:
    env = render(tmp_path, {"required": ["numpy"], "on_demand": ["h5py"]},
                 "install_on_demand: false\n")
    assert env["dependencies"] == ["python=3.12", "numpy"]


def test_render_env_settings_and_overrides(tmp_path: Path) -> None:
    settings = ('python: "3.11"\nchannels: [https://mirror/x]\npackages: ["numpy>=1.26", ipykernel]\n'
                "exclude: [scipy]\ninstall_optional: true\n")
    deps = {"required": ["numpy", "scipy", "pandas"], "optional": ["ujson"]}
    env = render(tmp_path, deps, settings)
    assert env["channels"] == ["https://mirror/x"]
    assert env["dependencies"] == ["python=3.11", "pandas", "ujson", "numpy>=1.26", "ipykernel"]
    env = render(tmp_path, deps, settings, "--channels", "file:///a file:///b", "--python", "3.10")
    assert env["channels"] == ["file:///a", "file:///b"] and env["dependencies"][0] == "python=3.10"


def test_render_env_empty_settings_file(tmp_path: Path) -> None:
    env = render(tmp_path, {"required": ["six"]}, "# all commented out\n")
    assert env["dependencies"] == ["python=3.12", "six"]


def test_check_settings_names_every_problem(tmp_path: Path) -> None:
    f = tmp_path / "project.yml"
    f.write_text("python: 3.10\nchanels: [x]\npackages: numpy\ninclude_tests: yes please\n")
    proc = script("check-settings", str(f))
    assert proc.returncode == 1
    assert "read as the number 3.1" in proc.stderr
    assert "unknown key 'chanels'; valid keys: python, channels," in proc.stderr
    assert "'packages' must be a list" in proc.stderr and "'include_tests' must be true or false" in proc.stderr
    f.write_text("channels: [a\n")
    proc = script("check-settings", str(f))
    assert proc.returncode == 1 and "not valid YAML" in proc.stderr and str(f) in proc.stderr
    f.write_text(open(REPO / "templates/project.yml").read())
    assert script("check-settings", str(f)).returncode == 0, "the all-commented template is valid"
    assert script("check-settings", str(tmp_path / "absent.yml")).returncode == 0


def test_check_settings_keys_come_from_the_template() -> None:
    keys = load_script("check-settings").documented_keys()
    assert {"python", "channels", "packages", "exclude", "imports", "include_tests", "install_optional",
            "install_on_demand"} <= set(keys)


def make_tar(path: Path, members: list[tarfile.TarInfo]) -> None:
    with tarfile.open(path, "w:gz") as tf:
        for m in members:
            tf.addfile(m, io.BytesIO(b"x" * m.size) if m.isfile() else None)


def test_verify_refuses_unsafe_and_corrupt_archives(tmp_path: Path) -> None:
    deps = tmp_path / "deps.yml"
    deps.write_text("required: []\n")
    evil = tarfile.TarInfo("../escape.txt")
    evil.size = 1
    make_tar(tmp_path / "evil.tar.gz", [evil])
    proc = script("verify-pack", str(tmp_path / "evil.tar.gz"), "--deps", str(deps), "--workdir", str(tmp_path / "w"))
    assert proc.returncode == 1 and "unsafe entry, refused" in proc.stderr
    assert not (tmp_path / "w" / "escape.txt").exists()
    link = tarfile.TarInfo("bin/link")
    link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
    make_tar(tmp_path / "link.tar.gz", [link])
    proc = script("verify-pack", str(tmp_path / "link.tar.gz"), "--deps", str(deps))
    assert proc.returncode == 1 and "unsafe entry" in proc.stderr
    good = tarfile.TarInfo("bin/file")
    good.size = 100000
    make_tar(tmp_path / "ok.tar.gz", [good])
    data = (tmp_path / "ok.tar.gz").read_bytes()
    (tmp_path / "cut.tar.gz").write_bytes(data[: len(data) // 2])
    proc = script("verify-pack", str(tmp_path / "cut.tar.gz"), "--deps", str(deps))
    assert proc.returncode == 1 and "corrupt or truncated" in proc.stderr
    sha = tmp_path / "ok.tar.gz.sha256"
    sha.write_text("0" * 64 + "  ok.tar.gz\n")
    proc = script("verify-pack", str(tmp_path / "ok.tar.gz"), "--deps", str(deps), "--sha256", str(sha))
    assert proc.returncode == 1 and "does not match" in proc.stderr
    proc = script("verify-pack", str(tmp_path / "absent.tar.gz"), "--deps", str(deps))
    assert proc.returncode == 1 and "no such archive" in proc.stderr


def test_verify_import_names_only_required_and_in_env(tmp_path: Path) -> None:
    verify = load_script("verify-pack")
    deps = tmp_path / "deps.yml"
    deps.write_text(yaml.safe_dump({"required": ["scikit-learn", "scipy"], "optional": ["ujson"],
                                    "imports": {"scikit-learn": {"sklearn": ["a.py:1"]},
                                                "scipy": {"scipy": ["a.py:2"]}, "ujson": {"ujson": ["b.py:1"]}}}))
    assert verify.import_names(deps, None) == ["scipy", "sklearn"]
    env = tmp_path / "environment.yml"
    env.write_text("dependencies: [python=3.11, scikit-learn>=1]\n")
    assert verify.import_names(deps, env) == ["sklearn"]


def test_publish_links_archive_and_checksum(tmp_path: Path) -> None:
    src = tmp_path / "build" / "p-linux-64.tar.gz"
    src.parent.mkdir()
    src.write_bytes(b"data")
    assert script("publish", str(src), str(tmp_path / "dist")).returncode == 1, "no checksum yet"
    run(f"cd {src.parent} && sha256sum {src.name} > {src.name}.sha256", check=True)
    script("publish", str(src), str(tmp_path / "dist"), check=True)
    run("sha256sum -c p-linux-64.tar.gz.sha256", cwd=tmp_path / "dist", check=True)
    assert sorted(p.name for p in (tmp_path / "dist").iterdir()) == ["p-linux-64.tar.gz", "p-linux-64.tar.gz.sha256"]


def test_shell_scripts_are_shellcheck_clean() -> None:
    shell = [p for p in (REPO / "scripts").iterdir() if p.is_file() and p.read_text().startswith("#!/usr/bin/env bash")]
    assert shell
    proc = run(["shellcheck", *map(str, shell)])
    assert proc.returncode == 0, proc.stdout


def test_python_scripts_have_main_and_help() -> None:
    py = [p for p in (REPO / "scripts").iterdir() if p.is_file() and p.read_text().startswith("#!/usr/bin/env python3")]
    assert py
    for p in py:
        assert "def main(" in p.read_text() and "argparse" in p.read_text(), p
        proc = run([str(p), "--help"])
        assert proc.returncode == 0 and "usage:" in proc.stdout, p


def test_pack_env_normalises_entries_and_scrubs_build_paths() -> None:
    pack_env = load_script("pack-env")
    info = tarfile.TarInfo("bin/tool")
    info.mtime, info.uid, info.gid, info.uname, info.gname, info.mode = 123, 1000, 1000, "me", "us", 0o700
    out = pack_env.normaliser(42)(info)
    assert (out.mtime, out.uid, out.gid, out.uname, out.gname, out.mode) == (42, 0, 0, "", "", 0o755)
    data = pack_env.scrub_record(json.dumps({
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


def test_pack_env_default_mtime_is_the_newest_package(tmp_path: Path, monkeypatch) -> None:
    pack_env = load_script("pack-env")
    meta = tmp_path / "conda-meta"
    meta.mkdir()
    (meta / "a.json").write_text('{"timestamp": 1700000000000}')
    (meta / "b.json").write_text('{"timestamp": 1600000000}')
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    assert pack_env.default_mtime(tmp_path) == 1700000000
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "5")
    assert pack_env.default_mtime(tmp_path) == 5


def test_no_tracked_file_names_this_machine() -> None:
    tracked = run(["git", "ls-files", "-z"], check=True).stdout.split("\0")
    leaks = []
    for name in filter(None, tracked):
        path = REPO / name
        if path.is_file() and not path.is_symlink():
            text = path.read_bytes()
            if str(REPO).encode() in text or b"/tmp/pytest" + b"-of-" in text:
                leaks.append(name)
    assert leaks == []
