"""scripts/adopt and portable_env.adopt: a project's lock written from an existing conda
environment's records without solving, trimmed to what the project needs (or `adopt: all`),
differences explicit (missing imports, md5-only records, the target's glibc, pip installs)."""
from __future__ import annotations

import asyncio
import json
import platform
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import CACHE, PKGS, REPO, Repo, run, script
from portable_env import lock as lock_mod
from portable_env.channel.index import index_channel
from portable_env.errors import UserError
from portable_env.settings import resolve

HOST_GLIBC = platform.libc_ver()[1]
WANTED = {"python", "python_abi", "pyyaml"}  # what `import yaml` needs, dependencies included
EXTRA = {"six", "attrs"}  # in the environment, not imported by the project
PACKAGES = ["python_abi", "pyyaml", "six", "attrs"]


@dataclass
class World:
    """A local channel copy, an environment made from it by create-env, a repository with projects."""

    chan: Path
    env: Path
    repo: Repo
    python: str

    def args(self, project: str, glibc: str = HOST_GLIBC) -> list[str]:
        return [f"PROJECT={project}", f"CHANNELS=file://{self.chan}", f"PYTHON={self.python}",
                f"TARGET_GLIBC={glibc}"]

    def kdir(self, project: str) -> Path:
        key = (self.repo.root / "build" / project / "key.txt").read_text().strip()
        return self.repo.root / "build" / project / key

    def adopt(self, project: str, from_: Path | str, *extra: str, glibc: str = HOST_GLIBC
              ) -> subprocess.CompletedProcess:
        """make adopt FROM=... (extra arguments: scripts/adopt called as the Makefile's rule calls it)."""
        if not extra:
            return self.repo.make(*self.args(project, glibc), f"FROM={from_}", "adopt", check=False)
        self.repo.make(*self.args(project, glibc), "env-file")
        k = self.kdir(project)
        return script("adopt", "--from", str(from_), "--env-file", str(k / "environment.yml"),
                      "--deps", str(k / "deps.yml"), "--settings", str(k / "settings.json"),
                      "--lock", str(k / "rattler-lock.yml"), "--explicit", str(k / "conda-linux-64.lock"),
                      "--pkgs", str(PKGS), "--cache-dir", str(CACHE), *extra, cwd=self.repo.root)

    def locked(self, project: str) -> dict[str, tuple[str, str, str]]:
        records = lock_mod.read_records(self.kdir(project) / "rattler-lock.yml", "linux-64")
        return {r.name.normalized: (str(r.url), str(r.build), r.sha256.hex()) for r in records}


def recorded(env: Path) -> dict[str, tuple[str, str, str]]:
    """name -> (url, build, sha256) of an environment's conda-meta records."""
    found = {}
    for path in (env / "conda-meta").glob("*.json"):
        raw = json.loads(path.read_text())
        found[raw["name"]] = (raw["url"], raw["build"], raw.get("sha256", ""))
    return found


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, channel: str, host_python: str) -> World:
    tmp = tmp_path_factory.mktemp("adopt")
    src, chan = Path(channel.removeprefix("file://")), tmp / "chan"
    for subdir in ("linux-64", "noarch"):
        (chan / subdir).mkdir(parents=True)
        for archive in (src / subdir).glob("*.conda"):
            if archive.name.split("-")[0] in ("python", *PACKAGES):
                shutil.copy2(archive, chan / subdir / archive.name)
    index_channel(chan)
    # The environment someone developed with: made by the project's own create-env.
    records = asyncio.run(lock_mod.solve([f"file://{chan}"], [f"python={host_python}", *PACKAGES], "linux-64",
                                         CACHE, {}, "test", lock_mod.Target(glibc=HOST_GLIBC)))
    lock_mod.write_lock(records, [f"file://{chan}"], "linux-64", tmp / "dev-lock.yml")
    env = tmp / "dev"
    script("create-env", "--lock", str(tmp / "dev-lock.yml"), "--prefix", str(env), "--cache-dir", str(PKGS),
           check=True)
    # Two packages pip put there: a plain install and an editable one.
    site = env / "lib" / f"python{host_python}" / "site-packages"
    (site / "tinypip-0.1.dist-info").mkdir()
    (site / "tinypip-0.1.dist-info" / "METADATA").write_text("Metadata-Version: 2.1\nName: tinypip\nVersion: 0.1\n")
    (site / "tinypip.py").write_text("VALUE = 1\n")
    (site / "mylib-0.2.dist-info").mkdir()
    (site / "mylib-0.2.dist-info" / "METADATA").write_text("Metadata-Version: 2.1\nName: mylib\nVersion: 0.2\n")
    (site / "mylib-0.2.dist-info" / "direct_url.json").write_text(
        json.dumps({"url": "file:///home/me/src/mylib", "dir_info": {"editable": True}}))
    repo = Repo(tmp / "repo")
    repo.project("tiny", {"main.py": "import yaml\n\nprint(yaml.safe_dump({'a': 1}))\n"})
    return World(chan, env, repo, host_python)


def meta_copy(world: World, tmp_path: Path, edit: dict[str, dict]) -> Path:
    """A FROM holding a copy of the environment's conda-meta, with fields of some records replaced
    (None removes a field; "*" edits every record): adopt reads only the records and site-packages."""
    env = tmp_path / "from"
    shutil.copytree(world.env / "conda-meta", env / "conda-meta")
    for path in (env / "conda-meta").glob("*.json"):
        raw = json.loads(path.read_text())
        for key, value in {**edit.get("*", {}), **edit.get(raw["name"], {})}.items():
            if value is None:
                raw.pop(key, None)
            else:
                raw[key] = value
        path.write_text(json.dumps(raw))
    return env


def test_adopt_keeps_the_needed_records_and_packs_without_solving(world: World, tmp_path: Path) -> None:
    proc = world.adopt("tiny", world.env)
    assert proc.returncode == 0, proc.stderr
    dev = recorded(world.env)
    assert set(dev) == WANTED | EXTRA
    assert world.locked("tiny") == {n: dev[n] for n in WANTED}, "the environment's own URLs, builds, sha256"
    out = proc.stdout
    assert "adopt: 3 of 5 conda packages" in out
    table = out.split("dropped 2", 1)[1]
    for name in EXTRA:
        assert f"  {name} " in table and "not imported by the project" in table
    assert "tinypip" in out and "editable: /home/me/src/mylib" in out, out
    assert world.repo.make(*world.args("tiny"), "check-lock", check=False).returncode == 0
    for name in ("rattler-lock.yml", "conda-linux-64.lock"):
        head = (world.kdir("tiny") / name).read_text().split("\n", 1)[0]
        assert "adopted from an existing environment by scripts/adopt" in head and "lock-env" not in head, head

    # No channel index: any solve would fail; pack installs the adopted lock's URLs.
    indexes = list(world.chan.glob("*/repodata.json"))
    for p in indexes:
        p.rename(p.with_name("repodata.json.away"))
    try:
        made = world.repo.make(*world.args("tiny"), "pack")
    finally:
        for p in indexes:
            p.with_name("repodata.json.away").rename(p)
    assert "lock: solving" not in made.stderr and "env: installing 3 packages" in made.stderr, made.stderr

    new = tmp_path / "elsewhere" / "tiny"
    new.mkdir(parents=True)
    run(["tar", "-xzf", str(world.repo.root / "dist" / "tiny-linux-64.tar.gz"), "-C", str(new)], check=True)
    run([str(new / "bin" / "python"), str(new / "bin" / "conda-unpack")], check=True)
    probe = run([str(new / "bin" / "python"), "-c", "import sys, yaml; print(yaml.__file__)"], check=True)
    assert probe.stdout.startswith(str(new)), probe.stdout
    assert run([str(new / "bin" / "python"), "-c", "import six"]).returncode != 0, "dropped packages stay out"


def test_adopt_all_keeps_every_conda_record(world: World) -> None:
    world.repo.project("every", {"main.py": "import yaml\n"}, settings="adopt: all\n")
    proc = world.adopt("every", world.env)
    assert proc.returncode == 0, proc.stderr
    dev = recorded(world.env)
    assert world.locked("every") == dev
    assert "dropped" not in proc.stdout and "tinypip" in proc.stdout


def test_an_import_the_environment_lacks_fails_naming_it(world: World) -> None:
    world.repo.project("wants", {"main.py": "import yaml\n",
                                 "calc.py": "import pandas\nimport tinypip\nimport py_six\n"})
    proc = world.adopt("wants", world.env)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr, proc.stderr
    err = proc.stderr
    assert f"error: adopt: FROM={world.env} has no conda package for what the project needs" in err, err
    assert "import 'pandas' (in calc.py:1)" in err
    assert f"conda install -p {world.env} pandas" in err
    assert "projects/wants/project.yml:  imports: {pandas: <package>}" in err
    assert "it is pip-installed in FROM (tinypip 0.1" in err, err
    # a guessed name whose other form FROM has (py-six: six) names it, and only there
    assert "FROM has 'six': if 'py_six' comes from it, add to projects/wants/project.yml:  imports: {py_six: six}" \
        in err, err
    assert err.count("FROM has '") == 1, err
    assert not (world.kdir("wants") / "rattler-lock.yml").exists()


def test_md5_only_records_are_completed_or_named(world: World, tmp_path: Path) -> None:
    """Older conda writes md5 only: the sha256 comes from the package cache (rattler's build/pkgs,
    or an archive in the environment's pkgs/) or the channel's repodata, else the step names the record."""
    want = recorded(world.env)["pyyaml"]
    archive = next(world.chan.glob("linux-64/pyyaml-*.conda"))
    k = world.kdir("tiny")
    empty = tmp_path / "empty"
    empty.mkdir()
    by_hand = ["--env-file", str(k / "environment.yml"), "--settings", str(k / "settings.json"),
               "--lock", str(tmp_path / "l.yml"), "--explicit", str(tmp_path / "e.lock"),
               "--pkgs", str(empty), "--cache-dir", str(tmp_path / "cache")]
    no_cache = {"extracted_package_dir": None, "link": None}  # records that name no package cache
    moved = list(world.chan.glob("*/repodata.json"))
    for p in moved:  # no channel index: only the package caches can complete the record
        p.rename(p.with_name("repodata.json.away"))
    try:
        # rattler's package cache (build/pkgs: the record names its extracted directory there)
        env = meta_copy(world, tmp_path / "a", {"pyyaml": {"sha256": None}})
        proc = world.adopt("tiny", env)
        assert proc.returncode == 0, proc.stderr
        assert world.locked("tiny")["pyyaml"] == want
        assert f"pyyaml: no sha256 in {archive.stem}.json (older conda); completed from {PKGS}" in proc.stdout

        # conda's layout: the archive in the environment's pkgs/
        env = meta_copy(world, tmp_path / "b", {"*": no_cache, "pyyaml": {"sha256": None}})
        (env / "pkgs").mkdir()
        shutil.copy2(archive, env / "pkgs" / archive.name)
        proc = script("adopt", "--from", str(env), *by_hand, cwd=world.repo.root)
        assert proc.returncode == 0, proc.stderr
        assert f"completed from {env / 'pkgs' / archive.name}" in proc.stdout
        assert lock_mod.package_hashes(tmp_path / "e.lock", "linux-64")[archive.name] == want[2]

        (env / "pkgs" / archive.name).unlink()
        (tmp_path / "l.yml").unlink()
        proc = script("adopt", "--from", str(env), *by_hand, cwd=world.repo.root)
        assert proc.returncode != 0, proc.stdout
        assert "error: adopt: cannot pin 1 record(s)" in proc.stderr and "  - pyyaml 6.0.4" in proc.stderr
        assert not (tmp_path / "l.yml").exists()
    finally:
        for p in moved:
            p.with_name("repodata.json.away").rename(p)

    # the channel's repodata (the channel of the record's URL)
    proc = script("adopt", "--from", str(env), *by_hand, cwd=world.repo.root)
    assert proc.returncode == 0, proc.stderr
    assert f"completed from repodata of file://{world.chan}/linux-64" in proc.stdout
    assert lock_mod.package_hashes(tmp_path / "e.lock", "linux-64")[archive.name] == want[2]


def test_a_record_needing_a_newer_glibc_than_the_target_is_an_error(world: World) -> None:
    python = json.loads(next((world.env / "conda-meta").glob("python-3*.json")).read_text())
    needs = next(d for d in python["depends"] if d.startswith("__glibc"))  # the host python's own glibc
    proc = world.adopt("tiny", world.env, glibc="2.17")
    assert proc.returncode != 0, proc.stdout
    assert f"python {python['version']} {python['build']} depends on '{needs}'; the TARGET_GLIBC=2.17" in proc.stderr, \
        proc.stderr


def test_a_dependency_the_environment_lacks_is_an_error(world: World, tmp_path: Path) -> None:
    env = meta_copy(world, tmp_path, {})
    next((env / "conda-meta").glob("python_abi-*.json")).unlink()
    proc = world.adopt("tiny", env)
    assert proc.returncode != 0
    assert "depends on 'python_abi 3.11.* *_cp311', which FROM does not have" in proc.stderr, proc.stderr


@pytest.mark.parametrize("make_from, message", [
    (lambda tmp: "", "adopt needs FROM=/path/to/env"),
    (lambda tmp: str(tmp / "nope"), "is not a conda environment (no conda-meta/ folder in it)"),
    (lambda tmp: str(tmp), "is not a conda environment (no conda-meta/ folder in it)"),
])
def test_from_must_be_a_conda_environment(world: World, tmp_path: Path, make_from, message: str) -> None:
    """make checks FROM before any step runs; scripts/adopt checks it again when called by hand."""
    proc = world.adopt("tiny", make_from(tmp_path))
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert "error: adopt" in proc.stderr and message in proc.stderr, proc.stderr
    assert "[tiny] scan" not in proc.stderr, "no step ran"
    by_hand = script("adopt", "--from", str(tmp_path / "nope"), "--env-file", "x", "--deps", "x", "--settings", "x",
                     "--lock", "x", "--explicit", "x", cwd=world.repo.root)
    assert by_hand.returncode == 1 and by_hand.stderr.startswith("error: adopt: "), by_hand.stderr


@pytest.mark.parametrize("value, message", [
    ("yes", "'adopt' is read as the boolean true; write adopt: all"),
    ("some", "'adopt' must be one of needed, all, not 'some'"),
])
def test_adopt_setting_refuses_other_values(tmp_path: Path, value: str, message: str) -> None:
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "project.yml").write_text(f"adopt: {value}\n")
    with pytest.raises(UserError, match=message):
        resolve(tmp_path / "p", root=REPO)
    (tmp_path / "p" / "project.yml").write_text("adopt: all\n")
    assert resolve(tmp_path / "p", root=REPO).adopt == "all"


def test_a_version_the_project_asks_for_that_the_environment_lacks_is_an_error(world: World) -> None:
    world.repo.project("pinned", {"main.py": "import yaml\n"}, settings='packages: ["six>=99"]\n')
    proc = world.adopt("pinned", world.env)
    assert proc.returncode != 0
    assert "the project asks for 'six>=99'; FROM has six 1.17.0 py_0" in proc.stderr, proc.stderr


def test_pypi_records_and_pip_over_conda_are_listed(world: World, tmp_path: Path) -> None:
    env = meta_copy(world, tmp_path, {})
    (env / "conda-meta" / "requests-2.32.0-pypi_0.json").write_text(
        json.dumps({"name": "requests", "version": "2.32.0", "build": "pypi_0", "channel": "pypi"}))
    site = env / "lib" / f"python{world.python}" / "site-packages" / "PyYAML-7.0.dist-info"
    site.mkdir(parents=True)
    (site / "METADATA").write_text("Metadata-Version: 2.1\nName: PyYAML\nVersion: 7.0\n")
    proc = world.adopt("tiny", env)
    assert proc.returncode == 0, proc.stderr
    rows = {line.split()[0]: line.split(None, 2)[1:] for line in proc.stdout.split("not in the lock", 1)[1]
            .splitlines()[1:] if line.startswith("  ")}
    assert rows["requests"] == ["2.32.0", "conda-meta/requests-2.32.0-pypi_0.json"], rows
    assert rows["PyYAML"][0] == "7.0" and rows["PyYAML"][1].endswith(
        "(over conda's pyyaml 6.0.4 py311_0: the lock has conda's)"), rows
    assert "requests" not in world.locked("tiny")
