"""Unit tests of the small pipeline scripts (no channel needed)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml
from conftest import REPO, run, script
from portable_env.settings import Overrides, resolve


def test_step_reports_duration_and_failure() -> None:
    ok = script("step", "foo", "scan", "true")
    assert ok.returncode == 0 and "[foo] scan: done in" in ok.stderr
    bad = script("step", "foo", "lock", "sh", "-c", "exit 3")
    assert bad.returncode == 3 and "[foo] lock: FAILED after" in bad.stderr and "(exit 3)" in bad.stderr


def render(tmp_path: Path, deps: dict, settings: str | None = None, channels: str = "", python: str = "") -> dict:
    """Render environment.yml for deps with project.yml text and overrides, through the settings model."""
    pdir = tmp_path / "demo"
    pdir.mkdir(exist_ok=True)
    (tmp_path / "deps.yml").write_text(yaml.safe_dump(deps))
    if settings is not None:
        (pdir / "project.yml").write_text(settings)
    s = resolve(pdir, overrides=Overrides(channels=channels, python=python))
    (tmp_path / "settings.json").write_text(s.to_json())
    args = ["--template", str(REPO / "templates/environment.yml"), "--deps", str(tmp_path / "deps.yml"),
            "--settings", str(tmp_path / "settings.json")]
    out = yaml.safe_load(script("render-env", *args, check=True).stdout)
    script("render-env", *args, "--out", str(tmp_path / "env.yml"), check=True)
    assert yaml.safe_load((tmp_path / "env.yml").read_text()) == out
    return out


def test_render_env_defaults_from_template(tmp_path: Path) -> None:
    env = render(tmp_path, {"required": ["numpy", "scikit-learn"], "optional": ["ujson"],
                            "on_demand": ["h5py"]})
    assert env == {"name": "demo", "channels": ["conda-forge"],
                   "dependencies": ["python=3.12", "pip", "h5py", "numpy", "scikit-learn"]}, \
        "on-demand packages are installed by default, optional ones are not"


def test_render_env_can_leave_on_demand_packages_out(tmp_path: Path) -> None:
    env = render(tmp_path, {"required": ["numpy"], "on_demand": ["h5py"]},
                 "install_on_demand: false\n")
    assert env["dependencies"] == ["python=3.12", "pip", "numpy"]


def test_render_env_settings_and_overrides(tmp_path: Path) -> None:
    settings = ('python: "3.11"\nchannels: [https://mirror/x]\npackages: ["numpy>=1.26", ipykernel]\n'
                "exclude: [scipy]\ninstall_optional: true\n")
    deps = {"required": ["numpy", "scipy", "pandas"], "optional": ["ujson"]}
    env = render(tmp_path, deps, settings)
    assert env["channels"] == ["https://mirror/x"]
    assert env["dependencies"] == ["python=3.11", "pip", "pandas", "ujson", "numpy>=1.26", "ipykernel"]
    env = render(tmp_path, deps, settings, channels="file:///a  file:///b", python="3.10")
    assert env["channels"] == ["file:///a", "file:///b"] and env["dependencies"][0] == "python=3.10"


def test_render_env_empty_settings_file(tmp_path: Path) -> None:
    env = render(tmp_path, {"required": ["six"]}, "# all commented out\n")
    assert env["dependencies"] == ["python=3.12", "pip", "six"]


def test_render_env_adds_pip_as_conda_does_unless_told_not_to(tmp_path: Path) -> None:
    assert render(tmp_path, {"required": ["six"]}, "pip: false\n")["dependencies"] == ["python=3.12", "six"]
    pinned = render(tmp_path, {"required": ["six"]}, 'packages: ["pip>=24"]\n')["dependencies"]
    assert pinned == ["python=3.12", "six", "pip>=24"], "a pinned pip is not added twice"


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


def test_exit_now_flushes_what_was_printed_and_keeps_the_code() -> None:
    """pack-env ends without the interpreter's teardown: its output, block
    buffered into a pipe, must still arrive, and the exit code must be kept."""
    code = ("import sys; from portable_env.errors import exit_now; "
            "print('out'); print('err', file=sys.stderr); exit_now(int(sys.argv[1]))")
    for rc in (0, 1, 130):
        proc = subprocess.run([sys.executable, "-u" if rc == 130 else "-B", "-c", code, str(rc)], cwd=REPO / "scripts",
                              capture_output=True, text=True,
                              env={k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"})
        assert (proc.returncode, proc.stdout, proc.stderr) == (rc, "out\n", "err\n")


def test_python_executables_are_thin_mains_over_the_package() -> None:
    """Each Python executable in scripts/ is a thin main(): at most an
    argparse main() over a portable_env module (the logic lives there), and
    it answers --help."""
    import ast

    py = [p for p in (REPO / "scripts").iterdir() if p.is_file() and p.read_text().startswith("#!/usr/bin/env python3")]
    assert py
    for p in py:
        text = p.read_text()
        tree = ast.parse(text)
        defs = [n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))]
        assert set(defs) <= {"main", "parse_args"}, f"{p.name}: logic belongs in scripts/portable_env/, not {defs}"
        assert len(text.splitlines()) <= 120, f"{p.name} is not thin"
        mods = [n.module for n in tree.body if isinstance(n, ast.ImportFrom) and (n.module or "").startswith(
            "portable_env")]
        assert mods, f"{p.name} imports no portable_env module"
        assert "argparse" in text or defs == [], p.name
        proc = run([str(p), "--help"])
        assert proc.returncode == 0 and "usage:" in proc.stdout, p


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
