"""Build sections: cold and warm `make pack` from the lock against the install bound, and the no-op."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import statistics
import subprocess
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from portable_env.bench.measure import (
    CORES,
    BenchError,
    Sample,
    figure,
    log,
    median_sample,
    rmtree,
    run,
    timed,
    timed_call,
)
from portable_env.bench.workspace import PROJECT, Workspace

STEP_DONE = re.compile(rf"^\[{PROJECT}\] (\w+): done in ([0-9.]+)s$", re.MULTILINE)
# Programs that do pipeline work; a no-op must start none of them.
PIPELINE_TOOLS = {
    "find-deps", "check-settings", "settings", "render-env", "lock-env", "create-env", "pack-env", "verify-pack",
    "gate", "step", "build-step", "project-files", "publish", "locked-shell", "build-channel",
}  # fmt: skip
NOOP_GOAL_S = 0.02  # issue 11: a no-op pack in <= 20 ms, starting no Python
# The steps after env that pack and verify (one "archive" step, or "pack" then "verify").
ARCHIVE_STEPS = ({"archive"}, {"pack", "verify"})
BUILD_GOAL_RATIO = {"cold": 1.25, "warm": 1.35}  # issue 14
MANIFEST_GOAL_S = 0.5  # issue 14: the manifest step of a pack


def one_build(ws: Workspace, pkgs: Path, cache: Path) -> tuple[Sample, dict[str, float]]:
    """One `make pack` from the lock; (time, step -> seconds from make's step lines)."""
    ws.reset_build()
    took, proc = timed(ws.make_cmd("pack", pkgs=pkgs, cache=cache), cwd=ws.repo)
    steps = {name: float(sec) for name, sec in STEP_DONE.findall(proc.stderr)}
    if "env" not in steps or not any(s <= steps.keys() for s in ARCHIVE_STEPS):
        raise BenchError(
            f"build: the env and archive steps did not both run (ran: {', '.join(steps) or 'none'}); make printed:\n"
            + "\n".join(f"    {line}" for line in proc.stderr[-3000:].splitlines())
        )
    if not ws.tarball.is_file():
        raise BenchError(f"build: {ws.tarball} was not made")
    return took, steps


def locked_archives(lock: Path) -> list[Path]:
    """The package archives an @EXPLICIT lock names (file:// URLs)."""
    return [
        Path(line.split("#", 1)[0][len("file://") :]) for line in lock.read_text().splitlines()
        if line.startswith("file://")
    ]  # fmt: skip


def unpack_package(archive: Path, target: Path, zstd_d: str) -> None:
    """Unpack one .conda (zstd + GNU tar) or .tar.bz2 package archive into target."""
    target.mkdir(parents=True)
    if archive.name.endswith(".tar.bz2"):
        run(["tar", "-xjf", str(archive), "-C", str(target)])
        return
    untar = f"{zstd_d} | tar -xf - -C {shlex.quote(str(target))}"
    with zipfile.ZipFile(archive) as zf:
        for member in zf.namelist():
            if not member.endswith(".tar.zst"):
                continue
            with (
                zf.open(member) as src,
                subprocess.Popen(["bash", "-o", "pipefail", "-c", untar], stdin=subprocess.PIPE) as proc,
            ):
                assert proc.stdin is not None
                shutil.copyfileobj(src, proc.stdin, 1 << 20)
                proc.stdin.close()
                if proc.wait() != 0:
                    raise BenchError(f"install bound: cannot unpack {archive}")


def install_bound(ws: Workspace, kind: str) -> Sample:
    """The least an install does. cold: unpack every locked package archive
    with zstd + GNU tar (one package per core at a time); warm: `cp -al`
    of the installed env (rattler hard-links from the cache)."""
    dest = ws.work / "install-bound"
    rmtree(dest)
    if kind == "warm":
        took = timed(["cp", "-al", str(ws.env_dir), str(dest)])[0]
        rmtree(dest)
        return took
    archives = sorted(locked_archives(ws.kdir / "conda-linux-64.lock"), key=lambda a: -a.stat().st_size)

    def all_packages() -> None:
        with ThreadPoolExecutor(CORES) as pool:
            list(pool.map(lambda a: unpack_package(a, dest / a.name, ws.tools.zstd_d), archives))

    took = timed_call(all_packages)
    rmtree(dest)
    return took


def builds(ws: Workspace) -> dict[str, Any]:
    """Cold (fresh package cache each run) then warm (the cold run's cache)
    builds, each followed by its install bound (same moment, same load)."""
    out: dict[str, Any] = {}
    cold_pkgs = ws.out / "pkgs-cold"
    for kind in ("cold", "warm"):
        times: list[Sample] = []
        bounds: list[Sample] = []
        steps: list[dict[str, float]] = []
        for i in range(ws.runs):
            if kind == "cold":
                rmtree(cold_pkgs)
                rmtree(ws.out / "cache-cold")
                took, st = one_build(ws, cold_pkgs, ws.out / "cache-cold")
            else:
                took, st = one_build(ws, ws.pkgs_warm, ws.cache)
            times.append(took)
            steps.append(st)
            bounds.append(install_bound(ws, kind))
            log(f"{kind} build {i + 1}/{ws.runs}: {took.wall:.1f}s ({', '.join(f'{k} {v}s' for k, v in st.items())})")
        if kind == "cold":
            rmtree(ws.pkgs_warm)
            cold_pkgs.rename(ws.pkgs_warm)
        out[kind] = {
            "runs": times,
            "install_bound": bounds,
            "steps_s": {k: statistics.median(s[k] for s in steps) for k in steps[0]},
        }
    return out


def build_figures(builds: dict[str, Any], pack: dict[str, Any], verify: dict[str, Any]) -> dict[str, Any]:
    """Builds against: install bound + pack bound (tar | pigz) + verify bound."""
    gz = pack["tar.gz-4"]
    rest = Sample(gz["bound_s"] + verify["bound_s"], gz["bound_cpu_s"] + verify["bound_cpu_s"])
    what = {"cold": "unpack the locked packages (zstd + GNU tar)", "warm": "cp -al of the env"}
    out = {}
    for kind in ("cold", "warm"):
        b = builds[kind]
        inst = median_sample(b["install_bound"])
        parts = {"install": round(inst.wall, 4), "pack": gz["bound_s"], "verify": verify["bound_s"]}
        goal = BUILD_GOAL_RATIO[kind]
        fig = figure(
            b["runs"], [x + rest for x in b["install_bound"]], f"{what[kind]} + pack bound + verify bound",
            goal=f"<= {goal}x bound", steps_s=b["steps_s"], bound_parts_s=parts,
        )  # fmt: skip
        manifest_s = b["steps_s"].get("manifest")
        fig["met"] = fig["ratio"] is not None and fig["ratio"] <= goal
        fig["manifest_goal_s"] = MANIFEST_GOAL_S
        fig["manifest_met"] = manifest_s is not None and manifest_s <= MANIFEST_GOAL_S
        out[kind] = fig
    return out


def noop(ws: Workspace) -> dict[str, Any]:
    """`make ... pack` with everything up to date, against `make -q` on an empty Makefile."""
    cmd = ws.make_cmd("pack", pkgs=ws.pkgs_warm, cache=ws.cache)
    empty = ws.work / "empty.mk"
    empty.write_text("")
    times: list[Sample] = []
    bound: list[Sample] = []
    outputs = set()
    for _ in range(max(5, 5 * ws.runs)):
        took, proc = timed(cmd, cwd=ws.repo)
        times.append(took)
        outputs.add((proc.stdout + proc.stderr).strip())
        bound.append(timed(["make", "-q", "-f", str(empty)], cwd=ws.work, check=False)[0])
    text = "\n".join(sorted(outputs))
    steps_ran = sorted({line for line in text.splitlines() if line.startswith(f"[{PROJECT}] ")})
    published = "published" in text
    question = run(["make", "-q", *cmd[1:]], cwd=ws.repo, check=False).returncode
    execs = traced_programs(ws, cmd)
    tools_started = sorted(set(execs) & PIPELINE_TOOLS)
    no_step = not steps_ran and not published and question == 0 and not tools_started
    fig = figure(
        times, bound, "make -q on an empty Makefile", goal=f"< {NOOP_GOAL_S} s, no step runs", output=text,
        steps_ran=steps_ran, make_q_exit=question, programs_started=execs, pipeline_tools_started=tools_started,
        no_step_ran=no_step,
    )  # fmt: skip
    fig["met"] = fig["median_s"] < NOOP_GOAL_S and no_step
    return fig


def exec_counts(trace: str) -> dict[str, int]:
    """Programs started (basename -> count) according to `strace -f -e trace=execve` output."""
    pending: dict[str, str] = {}
    counts: dict[str, int] = {}
    for line in trace.splitlines():
        m = re.match(r'(\d+)\s+execve\("([^"]+)"', line)
        if m and "<unfinished" in line:
            pending[m.group(1)] = m.group(2)
            continue
        r = re.match(r"(\d+)\s+<\.\.\. execve resumed>", line)
        path = m.group(2) if m else (pending.pop(r.group(1), None) if r else None)
        if path and line.rstrip().endswith("= 0"):
            name = os.path.basename(path)
            counts[name] = counts.get(name, 0) + 1
    return dict(sorted(counts.items()))


def traced_programs(ws: Workspace, cmd: list[str]) -> dict[str, int]:
    """Programs a command starts (basename -> count), via strace when installed."""
    if not shutil.which("strace"):
        return {}
    trace = ws.work / "noop.strace"
    run(["strace", "-f", "-qq", "-e", "trace=execve", "-o", str(trace), *cmd], cwd=ws.repo, check=False)
    counts = exec_counts(trace.read_text(errors="replace"))
    trace.unlink(missing_ok=True)
    return counts
