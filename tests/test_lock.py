"""lock-env and portable_env.lock: the spec hash recorded in the lock, check mode, the
unsolvable-import message, and the one lock reader (rattler.LockFile). The target
machine's part (virtual packages) is in test_target.py."""
from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from conftest import CACHE, HOST_GLIBC, script
from portable_env import lock as lock_mod
from portable_env.errors import UserError
from portable_env.files import spec_name
from portable_env.settings import Overrides, resolve


def test_lock_env_records_and_reads_spec_hash(tmp_path: Path) -> None:
    spec = tmp_path / "environment.yml"
    spec.write_text("name: x\nchannels: [c]\ndependencies: [python=3.11]\n")
    explicit = tmp_path / "conda-linux-64.lock"

    digest = lock_mod.spec_hash(spec)
    # The environment.yml bytes and the target's virtual packages (default: glibc 2.17, x86_64).
    assert digest == lock_mod.spec_hash(spec, lock_mod.Target(glibc="2.17", cpu="x86_64"))
    assert digest != hashlib.sha256(spec.read_bytes()).hexdigest()
    assert digest != lock_mod.spec_hash(spec, lock_mod.Target(glibc="2.28"))
    assert digest != lock_mod.spec_hash(spec, lock_mod.Target(cuda="12.4"))
    lines = ["# platform: linux-64", f"{lock_mod.HASH_LINE}{digest}", "@EXPLICIT"]
    explicit.write_text("\n".join(lines) + "\nhttps://x/a.conda#" + "0" * 64 + "\n")
    assert lock_mod.recorded_hash(explicit) == digest
    assert lock_mod.recorded_hash(tmp_path / "missing") is None
    assert lock_mod.package_hashes(explicit, "linux-64") == {"a.conda": "0" * 64}
    assert spec_name("numpy>=1.26") == "numpy" and spec_name("python=3.11") == "python"


def test_lock_env_check_mode(tmp_path: Path) -> None:
    spec = tmp_path / "environment.yml"
    spec.write_text("name: x\nchannels: [c]\ndependencies: [python=3.11]\n")
    lock, explicit = tmp_path / "rattler-lock.yml", tmp_path / "conda-linux-64.lock"
    args = ["--env-file", str(spec), "--lock", str(lock), "--explicit", str(explicit), "--check"]
    proc = script("lock-env", *args)
    assert proc.returncode == 1 and "is missing" in proc.stderr
    digest = lock_mod.spec_hash(spec)
    vps = "".join(f"{line}\n" for line in lock_mod.vp_lines(lock_mod.Target(), "linux-64"))
    explicit.write_text(f"{vps}# spec-sha256: {digest}\n@EXPLICIT\n")
    lock.write_text("version: 6\n")
    assert script("lock-env", *args).returncode == 0
    spec.write_text("name: x\nchannels: [c]\ndependencies: [python=3.12]\n")
    proc = script("lock-env", *args)
    assert proc.returncode == 1 and "different environment.yml" in proc.stderr


def test_lock_env_missing_message_names_import_files_and_fix() -> None:
    scan = {"imports": {"cv3": {"cv3": ["a.py:3"]}, "h6py": {"h6py": ["b/c.py:9"]}},
            "on_demand": ["h6py"]}
    msg = lock_mod.missing_message(["cv3", "h6py"], ["conda-forge"], scan, "projects/p/project.yml")
    assert "import 'cv3' (in a.py:3)" in msg
    assert "projects/p/project.yml:  imports: {cv3: <package>}" in msg
    assert msg.count("only imported on demand: `install_on_demand: false`") == 1, msg


def test_a_missing_guess_names_the_channel_package_of_another_name_form(tmp_path: Path, channel: str) -> None:
    """`import dateutil` guessed as 'dateutil', which the channel lacks: the error names the
    channel's python-dateutil, and the settings line that picks it, for that import; a name
    with no other form in the channel gets no such line."""
    import asyncio

    import rattler

    assert "python-dateutil" in lock_mod.name_forms("dateutil") and "dateutil" in lock_mod.name_forms("pydateutil")
    missing = ["dateutil", "tzdata", "nosuchthing"]
    similar = asyncio.run(lock_mod.similar_names([channel], "linux-64", missing,
                                                 rattler.Gateway(cache_dir=tmp_path / "cache")))
    assert similar == {"dateutil": ["python-dateutil"], "tzdata": ["python-tzdata"]}
    scan = {"imports": {"dateutil": {"dateutil": ["a.py:1"]}, "nosuchthing": {"nosuchthing": ["b.py:2"]}}}
    msg = lock_mod.missing_message(["dateutil", "nosuchthing"], [channel], scan, "p/project.yml", similar=similar)
    assert "the channels have 'python-dateutil': if 'dateutil' comes from it, add to p/project.yml:" \
           "  imports: {dateutil: python-dateutil}" in msg
    assert msg.count("the channels have") == 1


def test_solve_names_the_other_name_form_of_a_missing_package(tmp_path: Path, channel: str) -> None:
    """Through the real solve: a spec the channel lacks fails with the hint of its other form."""
    import asyncio

    scan = {"imports": {"dateutil": {"dateutil": ["a.py:1"]}}}
    with pytest.raises(UserError, match=r"the channels have 'python-dateutil'"):
        asyncio.run(lock_mod.solve([channel], ["dateutil"], "linux-64", tmp_path / "cache", scan, "p/project.yml"))


@pytest.mark.parametrize("text, message", [
    ("dependencies: [python]\n", "no channels"),
    ("channels: [c]\ndependencies: [{conda: [x]}]\n", "only conda match specs"),
    ("channels: [a\n", "not valid YAML"),
    ("- a list\n", "must be a mapping"),
])
def test_lock_env_refuses_a_bad_environment_file(tmp_path: Path, text: str, message: str) -> None:
    spec = tmp_path / "environment.yml"
    spec.write_text(text)
    with pytest.raises(UserError, match=message):
        lock_mod.read_env_file(spec)
    proc = script("lock-env", "--env-file", str(spec), "--lock", str(tmp_path / "l.yml"),
                  "--explicit", str(tmp_path / "e.lock"))
    assert proc.returncode == 1 and proc.stderr.startswith("error: lock: ") and message in proc.stderr
    assert "Traceback" not in proc.stderr


def test_read_records_refuses_an_unreadable_lock(tmp_path: Path) -> None:
    bad = tmp_path / "rattler-lock.yml"
    bad.write_text("version: 6\n")
    with pytest.raises(UserError, match="not a readable lock file"):
        lock_mod.read_records(bad, "linux-64")
    with pytest.raises(UserError, match="not a readable lock file"):
        lock_mod.read_records(tmp_path / "absent.yml", "linux-64")


def test_solve_write_and_read_back_through_rattler_lockfile(tmp_path: Path, channel: str, host_python: str) -> None:
    """A real solve: the rattler lock read back (the one reader) gives the same packages and
    sha256 as the @EXPLICIT lock; a second run keeps both files without solving."""
    spec = tmp_path / "environment.yml"
    spec.write_text(f"name: t\nchannels: [{channel}]\ndependencies: [python={host_python}, six]\n")
    (tmp_path / "t").mkdir()
    s = resolve(tmp_path / "t", overrides=Overrides(target_glibc=HOST_GLIBC))  # the local channel suits this OS only
    settings = tmp_path / "settings.json"
    settings.write_text(s.to_json())
    lock, explicit = tmp_path / "out" / "rattler-lock.yml", tmp_path / "out" / "conda-linux-64.lock"
    args = ["--env-file", str(spec), "--lock", str(lock), "--explicit", str(explicit), "--cache-dir", str(CACHE),
            "--settings", str(settings)]
    script("lock-env", *args, check=True)
    records = lock_mod.read_records(lock, "linux-64")
    names = sorted(r.name.normalized for r in records)
    assert "six" in names and "python" in names
    assert lock_mod.package_hashes(lock, "linux-64") == lock_mod.package_hashes(explicit, "linux-64")
    target = lock_mod.Target.of(s.target)
    assert lock_mod.recorded_hash(explicit) == lock_mod.spec_hash(spec, target)
    assert lock_mod.recorded_target(explicit) == lock_mod.recorded_target(lock) == target
    assert sorted(p.name for p in lock.parent.iterdir()) == ["conda-linux-64.lock", "rattler-lock.yml"]
    before = lock.read_bytes()
    again = script("lock-env", *args, check=True)
    assert "unchanged since the lock was solved" in again.stderr and lock.read_bytes() == before
    assert script("lock-env", *args, "--check").returncode == 0
    # An unknown package: named with the fix, no traceback, no lock written.
    spec.write_text(f"name: t\nchannels: [{channel}]\ndependencies: [python={host_python}, nosuchpkg]\n")
    proc = script("lock-env", *args[:2], "--lock", str(tmp_path / "l2.yml"), "--explicit",
                  str(tmp_path / "e2.lock"), "--cache-dir", str(CACHE), "--settings", str(settings))
    assert proc.returncode == 1 and f"'nosuchpkg': listed in 'packages:' of {s.settings_file}" in proc.stderr, \
        proc.stderr
    assert not (tmp_path / "l2.yml").exists() and not (tmp_path / "e2.lock").exists()
