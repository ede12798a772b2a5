"""The CI workflows: linted (actionlint with shellcheck on every run: block),
actions pinned by commit, least-privilege permissions, and what they ship.

The workflows' logic (which projects, the summary) is in scripts/ and tested
elsewhere; these tests check the workflow files themselves.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from conftest import REPO, VENV_BIN, run

WORKFLOWS = REPO / ".github" / "workflows"
FILES = sorted(WORKFLOWS.glob("*.yml"))
# owner/repo[/path]@<full commit sha> # v<major>[.<minor>[.<patch>]]
PINNED = re.compile(r"^\s*(?:-\s+)?uses:\s+([\w.-]+/[\w./-]+)@([0-9a-f]{40}) # v\d+(?:\.\d+){0,2}\s*$")
WHAT_USERS_GET = ["-*.tar.*", "-*.manifest.json", "-*.cdx.json", "-*.sh", "-*.sh.sha256"]


def load(path: Path) -> dict:
    doc = yaml.safe_load(path.read_text())
    doc["on"] = doc.pop(True, doc.get("on"))  # YAML 1.1 reads the key `on` as true
    return doc


def actionlint(*files: Path) -> tuple[int, str]:
    """The pinned actionlint (requirements-dev) with the pinned shellcheck on PATH, verbose."""
    proc = run([str(VENV_BIN / "actionlint"), "-verbose", *map(str, files)])
    return proc.returncode, proc.stdout + proc.stderr


def test_workflows_pass_actionlint_and_shellcheck() -> None:
    assert FILES, f"no workflow in {WORKFLOWS}"
    code, out = actionlint(*FILES)
    assert 'Rule "shellcheck" was disabled' not in out, f"actionlint did not find shellcheck:\n{out}"
    assert code == 0, f"actionlint found problems:\n{out}"


def test_actionlint_fails_on_a_shellcheck_finding(tmp_path: Path) -> None:
    """The check above can fail: a run: block shellcheck objects to is reported."""
    bad = tmp_path / ".github" / "workflows" / "bad.yml"
    bad.parent.mkdir(parents=True)
    bad.write_text("on: push\npermissions: {}\njobs:\n  x:\n    runs-on: ubuntu-latest\n    steps:\n"
                   "      - run: |\n          files=$(ls *.txt)\n          rm $files\n")
    code, out = actionlint(bad)
    assert code != 0 and "shellcheck reported issue" in out and "SC2086" in out, out


def test_actionlint_flags_actions_on_a_deprecated_runtime(tmp_path: Path) -> None:
    """The pinned actionlint knows which action versions run on node20 (the
    old workflows used them): such a workflow fails."""
    old = tmp_path / ".github" / "workflows" / "old.yml"
    old.parent.mkdir(parents=True)
    old.write_text("on: push\npermissions: {}\njobs:\n  x:\n    runs-on: ubuntu-latest\n    steps:\n"
                   "      - uses: actions/checkout@v4\n      - uses: actions/setup-python@v5\n")
    code, out = actionlint(old)
    assert code != 0 and "node20" in out and "actions/checkout@v4" in out, out


def test_every_action_is_pinned_by_commit_with_its_version() -> None:
    for path in FILES:
        for line in path.read_text().splitlines():
            if re.match(r"^\s*(?:-\s+)?uses:", line):
                assert PINNED.match(line), f"{path.name}: not pinned by full commit sha + '# vX.Y.Z': {line.strip()}"


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_permissions_are_least_privilege(path: Path) -> None:
    wf = load(path)
    assert wf.get("permissions") == {}, f"{path.name}: the workflow grants nothing by default"
    for name, job in wf["jobs"].items():
        perms = job.get("permissions")
        assert isinstance(perms, dict), f"{path.name}: job {name} states its permissions"
        writes = {k for k, v in perms.items() if v == "write"}
        if path.name == "release.yml" and name == "publish":
            assert perms == {"contents": "write"}, perms
        else:
            assert writes == set(), f"{path.name}: job {name} may write {writes}"


def test_the_job_that_may_write_runs_no_project_code() -> None:
    publish = load(WORKFLOWS / "release.yml")["jobs"]["publish"]
    uses = [s["uses"].split("@")[0] for s in publish["steps"] if "uses" in s]
    assert uses == ["actions/download-artifact"], "no checkout, no third-party action"
    script = "\n".join(s.get("run", "") for s in publish["steps"])
    assert "make " not in script and "scripts/" not in script
    assert "gh release create" in script and "gh release upload" in script and "sha256sum -c" in script


def test_artifact_and_release_carry_what_users_need() -> None:
    build = load(WORKFLOWS / "build.yml")["jobs"]["build"]
    upload = next(s for s in build["steps"] if s.get("uses", "").startswith("actions/upload-artifact@"))
    paths = upload["with"]["path"].splitlines()
    for suffix in WHAT_USERS_GET:
        assert f"dist/${{{{ matrix.project }}}}{suffix}" in paths, suffix
    assert any('pack installer' in s.get("run", "") for s in build["steps"])
    release = load(WORKFLOWS / "release.yml")["jobs"]["build"]
    upload = next(s for s in release["steps"] if s.get("uses", "").startswith("actions/upload-artifact@"))
    paths = upload["with"]["path"].splitlines()
    for suffix in WHAT_USERS_GET:
        assert f"dist/${{{{ steps.tag.outputs.project }}}}{suffix}" in paths, suffix
    assert any('pack installer' in s.get("run", "") for s in release["steps"])


def test_build_job_writes_a_summary_with_the_lock_change_on_pull_requests() -> None:
    build = load(WORKFLOWS / "build.yml")["jobs"]["build"]
    step = next(s for s in build["steps"] if "scripts/report summary" in s.get("run", ""))
    assert step["env"]["BASE_SHA"] == "${{ github.event.pull_request.base.sha }}"
    assert '--base "$BASE_SHA"' in step["run"] and '>> "$GITHUB_STEP_SUMMARY"' in step["run"]
    checkout = build["steps"][0]
    assert checkout["with"]["fetch-depth"] == 0, "the base commit's lock must be in the clone"


def test_test_job_is_offline_after_its_first_run() -> None:
    test = load(WORKFLOWS / "build.yml")["jobs"]["test"]
    caches = {s["with"]["path"].strip(): s["with"]["key"] for s in test["steps"]
              if s.get("uses", "").startswith("actions/cache@")}
    assert "hashFiles('templates/demo-channel.txt')" in caches["build/wheels"]
    assert "requirements-dev.txt" in caches[".venv"] and "requirements.txt" in caches[".venv"]
    assert any("build/channel" in path and "build/pkgs" in path for path in caches)
    assert [s["run"] for s in test["steps"] if "run" in s] == [".ci/run"]


def test_ci_run_installs_the_tools_the_tests_call() -> None:
    text = (REPO / ".ci" / "run").read_text()
    for tool, package in [("zstd", "zstd"), ("readelf", "binutils"), ("bzip2", "bzip2"), ("xz", "xz-utils"),
                          ("flock", "util-linux"), ("git", "git"), ("jq", "jq"), ("make", "make")]:
        assert f"command -v {tool} >/dev/null || need+=({package})" in text, tool
    assert run(["bash", "-n", str(REPO / ".ci" / "run")]).returncode == 0
