"""The settings model (portable_env.settings): one reader of project.yml,
the template documents it, and Make's project-name rule agrees with it."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from conftest import REPO, run
from portable_env import formats, projects, settings
from portable_env.errors import UserError
from portable_env.settings import FIELDS, Overrides, resolve


def project(tmp_path: Path, text: str | None) -> Path:
    pdir = tmp_path / "demo"
    pdir.mkdir(exist_ok=True)
    if text is not None:
        (pdir / "project.yml").write_text(text)
    return pdir


def problems_of(tmp_path: Path, text: str) -> str:
    with pytest.raises(UserError) as exc:
        resolve(project(tmp_path, text))
    return str(exc.value)


def test_every_problem_is_named_with_file_key_and_form(tmp_path: Path) -> None:
    msg = problems_of(tmp_path, "python: 3.10\nchanels: [x]\npackages: numpy\ninclude_tests: yes please\n")
    assert "read as the number 3.1" in msg
    assert "unknown key 'chanels'; valid keys: python, channels," in msg
    assert "'packages' must be a list" in msg and "'include_tests' must be true or false" in msg
    assert all(line.startswith(str(tmp_path / "demo" / "project.yml")) for line in msg.splitlines())
    assert "not valid YAML" in problems_of(tmp_path, "channels: [a\n")


def test_defaults_without_a_file_and_with_the_all_commented_template(tmp_path: Path) -> None:
    bare = resolve(project(tmp_path, None))
    (tmp_path / "demo" / "project.yml").write_text((REPO / "templates/project.yml").read_text())
    assert resolve(tmp_path / "demo") == bare
    assert (bare.python, bare.channels, bare.format, bare.compression_level) == ("3.12", ["conda-forge"],
                                                                                 "tar.gz", 4)
    assert bare.key == "default" and bare.install_on_demand and not bare.slim


def test_template_documents_every_key_with_its_default() -> None:
    """templates/project.yml and FIELDS cannot drift: every key is documented
    once as `# key: value`, in the model's order, with the model's default."""
    text = (REPO / "templates/project.yml").read_text()
    documented = re.findall(r"^# ([a-z_]+):(.*)$", text, flags=re.M)
    assert [k for k, _ in documented] == list(FIELDS)
    for key, value in documented:
        default = FIELDS[key].default
        if default in (None, [], {}) or key == "format":
            continue  # examples (python: "3.12", packages: [...]) or the table's default
        assert yaml.safe_load(value) == default, f"templates/project.yml documents {key}:{value}, model: {default}"
    assert f"# format: {formats.DEFAULT}" in text
    for name in formats.names():
        assert name in text, f"templates/project.yml does not mention format {name}"


def test_overrides_apply_and_key_the_build(tmp_path: Path) -> None:
    pdir = project(tmp_path, 'python: "3.11"\nchannels: [https://mirror/x]\nformat: tar.zst\n')
    plain = resolve(pdir)
    assert (plain.python, plain.channels, plain.format, plain.key) == ("3.11", ["https://mirror/x"], "tar.zst",
                                                                       "default")
    ov = resolve(pdir, overrides=Overrides(channels=" file:///a   file:///b ", python="3.10", format="tar"))
    assert (ov.python, ov.channels, ov.format) == ("3.10", ["file:///a", "file:///b"], "tar")
    assert ov.key.startswith("override-") and ov.key == resolve(pdir, overrides=Overrides(
        channels="file:///a file:///b", python="3.10")).key, "FORMAT does not key the build; spacing neither"


def test_compression_level_range_follows_the_format(tmp_path: Path) -> None:
    assert resolve(project(tmp_path, "format: tar.zst\ncompression_level: 19\n")).compression_level == 19
    assert "valid levels 1-9" in problems_of(tmp_path, "compression_level: 19\n")
    assert "none (leave it out)" in problems_of(tmp_path, "format: tar\ncompression_level: 3\n")


def test_settings_json_round_trips_canonically(tmp_path: Path) -> None:
    s = resolve(project(tmp_path, "slim: yes\nimports: {cv3: opencv, noise: }\nentry_points: {t: 'm:f'}\n"))
    assert s.imports == {"cv3": "opencv", "noise": ""}
    (tmp_path / "s.json").write_text(s.to_json())
    assert settings.load(tmp_path / "s.json") == s
    assert json.loads(s.to_json()) == json.loads(settings.load(tmp_path / "s.json").to_json())
    (tmp_path / "old.json").write_text(json.dumps({"schema": 0}))
    with pytest.raises(UserError, match="another version"):
        settings.load(tmp_path / "old.json")


NAMES = ["ok", "a.b", "x_1", "A-B", "9lives", "..", ".x", "-x", "a b", "a/b", "a;b", "a$b", "a'b", "é", "a*",
         "a\tb", "a,b", "a(b", "a:b", "a#b", "a=b", "a%b"]


def test_make_and_the_model_agree_on_project_names(tmp_path: Path) -> None:
    """The Makefile checks PROJECT without Python; its rule is the model's."""
    for name in NAMES:
        ok_model = projects.name_problem(name) is None
        proc = run(["make", "-C", str(REPO), "--no-print-directory", f"PROJECT={name}", "clean", "-n"])
        ok_make = "not a valid project name" not in proc.stderr
        assert ok_make == ok_model, f"{name!r}: make says {ok_make}, the model {ok_model}: {proc.stderr}"


def test_target_defaults_settings_and_override(tmp_path: Path) -> None:
    """The target machine: conda-forge's baseline by default, project.yml
    per key, TARGET_GLIBC= per build (which keys the build like CHANNELS)."""
    assert resolve(project(tmp_path, None)).target == {"glibc": "2.17", "cpu": "x86_64", "cuda": None}
    pdir = project(tmp_path, 'target: {glibc: "2.28", cuda: "12.4"}\n')
    assert resolve(pdir).target == {"glibc": "2.28", "cpu": "x86_64", "cuda": "12.4"}
    ov = resolve(pdir, overrides=Overrides(target_glibc="2.36"))
    assert ov.target["glibc"] == "2.36" and ov.key.startswith("override-") and ov.key != resolve(pdir).key
