"""The projects as a set: discovery, change detection, `make new/list/all`, CI workflows.

scripts/projects is what the Makefile and the CI workflows call, so these tests
exercise the code CI runs. They use throwaway repository copies with their
own fixture projects (projects/example may be deleted from a copy).
"""
from __future__ import annotations

import json
import py_compile
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from conftest import REPO, Repo, run, script

WORKFLOWS = REPO / ".github" / "workflows"
INVALID_NAMES = ["..", "a/b", "a b", "", "-x", ".hidden", "a:b", "naïve"]


def projects(root: Path, *args: str, stdin: str | None = None) -> list[str]:
    """scripts/projects --json output (a list of names) for the repository at ROOT."""
    cmd, *rest = args
    proc = script("projects", cmd, "--root", str(root), "--json", *rest, input=stdin, check=True)
    return json.loads(proc.stdout)


@pytest.fixture
def two(repo: Repo) -> Repo:
    """A repository copy with the projects a and b."""
    repo.project("a", {"main.py": "import json\n"})
    repo.project("b", {"b.py": "import csv\n"})
    return repo


# --- discovery --------------------------------------------------------------

def test_list_follows_the_project_folders(repo: Repo) -> None:
    assert projects(repo.root, "list") == []
    repo.project("b", {"main.py": ""})
    repo.project("a", {"main.py": ""})
    (repo.root / "projects" / ".scratch").mkdir()  # hidden: not a project
    (repo.root / "projects" / "README.md").write_text("not a project\n")
    assert projects(repo.root, "list") == ["a", "b"]
    plain = script("projects", "list", "--root", str(repo.root), check=True).stdout
    assert plain == "a\nb\n"
    shutil.rmtree(repo.root / "projects" / "b")
    assert projects(repo.root, "list") == ["a"]
    shutil.rmtree(repo.root / "projects")
    assert projects(repo.root, "list") == []


def test_list_fails_on_a_folder_make_cannot_build(two: Repo) -> None:
    (two.root / "projects" / "my project").mkdir()
    proc = script("projects", "list", "--root", str(two.root))
    assert proc.returncode == 1
    assert "projects/my project/" in proc.stderr and "rename the folder" in proc.stderr


def test_list_selects_named_projects_or_all(two: Repo) -> None:
    assert projects(two.root, "list", "all") == ["a", "b"]
    assert projects(two.root, "list", "b") == ["b"]
    missing = script("projects", "list", "--root", str(two.root), "--", "nope")
    assert missing.returncode == 1 and "no project 'nope'" in missing.stderr and "a, b" in missing.stderr
    unsafe = script("projects", "list", "--root", str(two.root), "--", "-x")
    assert unsafe.returncode == 1 and "not a valid project name" in unsafe.stderr


@pytest.mark.parametrize(("changed", "expected"), [
    ("projects/a/x.py", ["a"]),
    ("./projects/a/sub/nb.ipynb\nprojects/b/project.yml\n", ["a", "b"]),
    ("projects/a/rattler-lock.yml", ["a"]),
    ("scripts/foo", ["a", "b"]),
    ("Makefile", ["a", "b"]),
    ("templates/project.yml", ["a", "b"]),
    ("requirements.txt", ["a", "b"]),
    ("requirements.in", ["a", "b"]),
    (".github/workflows/build.yml", ["a", "b"]),
    ("README.md", []),
    ("docs/Makefile\nscripts-old/x\n.github/workflows/release.yml", []),
    ("projects/README.md", []),
    ("projects/gone/main.py", []),  # a deleted project
    ("", []),
])
def test_changed_paths_map_to_projects(two: Repo, changed: str, expected: list[str]) -> None:
    assert projects(two.root, "changed", stdin=changed) == expected


def test_changed_since_a_git_base(two: Repo) -> None:
    def git(*args: str) -> str:
        return run(["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid", *args],
                   cwd=two.root, check=True).stdout

    git("init", "-q")
    git("add", "-A")
    git("commit", "-qm", "base")
    base = git("rev-parse", "HEAD").strip()
    assert projects(two.root, "changed", "--base", base) == []
    (two.root / "projects" / "a" / "main.py").write_text("import json, csv\n")
    shutil.rmtree(two.root / "projects" / "b")
    two.project("c", {"c.py": ""})
    git("add", "-A")
    git("commit", "-qm", "change a, delete b, add c")
    assert projects(two.root, "changed", "--base", base) == ["a", "c"]
    (two.root / "scripts" / "new-tool").write_text("#!/bin/sh\n")
    git("add", "-A")
    git("commit", "-qm", "a shared input")
    assert projects(two.root, "changed", "--base", base) == ["a", "c"], "all current projects; b is gone"
    bad = script("projects", "changed", "--root", str(two.root), "--base", "no-such-ref")
    assert bad.returncode == 1 and "no-such-ref" in bad.stderr


def test_release_tag_names_a_project(two: Repo) -> None:
    two.project("my-tool", {"main.py": ""})

    def tag(t: str) -> subprocess.CompletedProcess:
        return script("projects", "tag", "--root", str(two.root), "--", t)

    assert tag("a-v1.2").stdout == "a\n"
    assert tag("my-tool-v2.0.1rc1").stdout == "my-tool\n"
    for wrong, message in [("a-1.2", "is not <project>-v<version>"), ("a-v", "is not <project>-v<version>"),
                           ("nope-v1", "no project 'nope'")]:
        proc = tag(wrong)
        assert proc.returncode == 1 and message in proc.stderr, (wrong, proc.stderr)


# --- make new / list / all ----------------------------------------------------

def test_make_new_creates_a_project_from_the_templates(repo: Repo) -> None:
    proc = repo.make("new", "PROJECT=bar")
    pdir = repo.root / "projects" / "bar"
    assert sorted(p.name for p in pdir.iterdir()) == ["main.py", "project.yml"]
    assert (pdir / "project.yml").read_text() == (REPO / "templates" / "project.yml").read_text()
    assert (pdir / "main.py").read_text() == (REPO / "templates" / "new-project" / "main.py").read_text()
    py_compile.compile(str(pdir / "main.py"), cfile=str(repo.root / "main.pyc"), doraise=True)
    script("settings", str(pdir), "--check", check=True)
    assert "make PROJECT=bar pack" in proc.stderr
    assert repo.make("list").stdout == "bar\n"
    assert [p.name for p in (repo.root / "projects").iterdir()] == ["bar"], "no temporary folder left"


@pytest.mark.parametrize("name", INVALID_NAMES)
def test_make_new_rejects_unsafe_names(repo: Repo, name: str) -> None:
    proc = repo.make("new", f"PROJECT={name}", check=False)
    assert proc.returncode != 0
    expected = "PROJECT is not set" if not name.strip() else f"'{name}' is not a valid project name"
    assert expected in proc.stderr, proc.stderr
    assert "letters, digits" in proc.stderr or not name
    assert list((repo.root / "projects").iterdir()) == []


def test_make_new_refuses_an_existing_project(repo: Repo) -> None:
    repo.project("bar", {"main.py": "import mine\n"})
    proc = repo.make("new", "PROJECT=bar", check=False)
    assert proc.returncode != 0 and "projects/bar already exists" in proc.stderr
    assert [p.name for p in (repo.root / "projects" / "bar").iterdir()] == ["main.py"]
    assert (repo.root / "projects" / "bar" / "main.py").read_text() == "import mine\n"


@pytest.mark.parametrize("name", ["..", "a/b", "a b", "-x", ".hidden"])
def test_make_pack_refuses_unsafe_names_with_the_same_rule(repo: Repo, name: str) -> None:
    """PROJECT=... on the pipeline goals is checked by scripts/projects too."""
    proc = repo.make(f"PROJECT={name}", "pack", check=False)
    assert proc.returncode != 0 and "not a valid project name" in proc.stderr


def test_a_copy_without_projects_still_works(repo: Repo) -> None:
    """projects/example may be deleted: list, all and help work with no projects."""
    assert repo.make("list").stdout == ""
    assert "no projects" in repo.make("all").stderr
    assert "projects: none" in repo.make("help").stdout


def test_make_all_runs_one_sub_make_per_project_with_the_overrides(two: Repo) -> None:
    out = two.make("-n", "all", "CHANNELS=file:///nowhere", "PYTHON=3.99").stdout
    assert "PROJECT=a pack" in out and "PROJECT=b pack" in out
    # The overrides reach each sub-make as data (settings.json), not as recipe text.
    proc = two.make("-k", "all", "CHANNELS=file:///nowhere", "PYTHON=3.99", check=False)
    assert proc.returncode != 0 and "file:///nowhere" in proc.stderr, "the channel is unreachable"
    for name in ("a", "b"):
        (found,) = (two.root / "build" / name).glob("override-*/settings.json")
        s = json.loads(found.read_text())
        assert (s["channels"], s["python"], s["project"]) == (["file:///nowhere"], "3.99", name)


def test_make_all_stops_on_a_folder_with_an_unsafe_name(two: Repo) -> None:
    (two.root / "projects" / "my project").mkdir()
    proc = two.make("all", check=False)
    assert proc.returncode != 0 and "projects/my project/" in proc.stderr


def test_make_j2_all_packs_every_project(repo: Repo, channel: str, host_python: str) -> None:
    """End to end against the local channel: a `make new` project and a numpy one, two at a time."""
    repo.make("new", "PROJECT=hello")
    repo.project("sci", {"calc.py": "import numpy as np\nprint(np.arange(3).sum())\n"})
    args = ("-j2", "all", f"CHANNELS={channel}", f"PYTHON={host_python}")
    repo.make(*args)
    dist = repo.root / "dist"
    tarballs = {name: list(dist.glob(f"{name}-*.tar.gz")) for name in ("hello", "sci")}
    assert all(len(found) == 1 for found in tarballs.values()), sorted(p.name for p in dist.iterdir())
    for (tarball,) in tarballs.values():
        run(["sha256sum", "-c", f"{tarball.name}.sha256"], cwd=dist, check=True)
    mtimes = {p: p.stat().st_mtime_ns for p in dist.iterdir()}
    repo.make(*args)
    assert {p: p.stat().st_mtime_ns for p in dist.iterdir()} == mtimes, "a second make all rebuilds nothing"


# --- CI workflows ---------------------------------------------------------------

# actionlint + shellcheck, pins and permissions: tests/test_workflows.py

def load_workflow(name: str) -> dict:
    doc = yaml.safe_load((WORKFLOWS / name).read_text())
    doc["on"] = doc.pop(True, doc.get("on"))  # YAML 1.1 reads the key `on` as true
    return doc


def run_blocks(job: dict) -> str:
    return "\n".join(step.get("run", "") for step in job["steps"])


def test_build_workflow_fans_out_over_the_discovered_projects() -> None:
    wf = load_workflow("build.yml")
    assert {"pull_request", "push", "workflow_dispatch"} <= set(wf["on"])
    assert wf["on"]["workflow_dispatch"]["inputs"]["project"]["default"] == "all"
    plan, build, test = wf["jobs"]["plan"], wf["jobs"]["build"], wf["jobs"]["test"]
    assert "scripts/projects changed --json --base" in run_blocks(plan)
    assert "scripts/projects list --json" in run_blocks(plan)
    assert build["strategy"]["matrix"]["project"] == "${{ fromJSON(needs.plan.outputs.projects) }}"
    assert 'make PROJECT="$NAME" pack installer' in run_blocks(build) and "make tools" in run_blocks(build)
    upload = next(s for s in build["steps"] if s.get("uses", "").startswith("actions/upload-artifact@"))
    assert upload["with"]["name"] == "${{ matrix.project }}"
    for path in ["dist/${{ matrix.project }}-*.tar.*",  # any format, and its .sha256
                 "dist/${{ matrix.project }}-*.manifest.json", "dist/${{ matrix.project }}-*.cdx.json",
                 "dist/${{ matrix.project }}-*.sh", "dist/${{ matrix.project }}-*.sh.sha256",
                 "projects/${{ matrix.project }}/rattler-lock.yml", "projects/${{ matrix.project }}/conda-*.lock"]:
        assert path in upload["with"]["path"].splitlines()
    caches = {s["with"]["path"]: s["with"]["key"] for s in build["steps"]
              if s.get("uses", "").startswith("actions/cache@")}
    assert "hashFiles('requirements.txt')" in caches[".venv"]
    assert "rattler-lock.yml" in caches["build/pkgs"] and "conda-*.lock" in caches["build/pkgs"]
    assert run_blocks(test).strip() == ".ci/run" and "needs" not in test  # .ci/run: the tools, then make test


def test_release_workflow_builds_the_tagged_project() -> None:
    wf = load_workflow("release.yml")
    assert wf["on"]["push"]["tags"] == ["*-v*"] and "tag" in wf["on"]["workflow_dispatch"]["inputs"]
    build, publish = wf["jobs"]["build"], wf["jobs"]["publish"]
    assert "scripts/projects tag" in run_blocks(build) and 'make PROJECT="$NAME" pack installer' in run_blocks(build)
    assert "git status --porcelain" in run_blocks(build), "a lock solved at release time fails the release"
    assert publish["needs"] == "build"
    step = next(s for s in publish["steps"] if "gh release upload" in s.get("run", ""))
    assert step["env"]["TAG"] == "${{ needs.build.outputs.tag }}"
    assert step["env"]["NAME"] == "${{ needs.build.outputs.project }}"


def test_workflows_name_no_repository_and_no_project() -> None:
    """A copy of the template builds its own projects: nothing is hard-coded."""
    for wf in WORKFLOWS.glob("*.yml"):
        text = wf.read_text()
        assert "github.com/" not in text and "repository:" not in text, wf.name
        assert "example" not in text, f"{wf.name} names a project; use scripts/projects"
