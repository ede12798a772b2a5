"""Archive sections: pack-env per format against tar | compressor, verify-pack against GNU tar + the probe.

Both run the executables of the repository copy (what `make` runs); the
bounds reuse the pipeline's own code (the slim patterns of pack, the import
probe and the prefix scan of verify), imported from portable_env.
"""

from __future__ import annotations

import shlex
from typing import Any

from portable_env import probe as import_probe
from portable_env.bench.measure import Sample, clean_env, figure, log, median_sample, rmtree, run, timed, timed_call
from portable_env.bench.workspace import PROJECT, Workspace
from portable_env.pack import SLIM_EXCLUDES
from portable_env.verify import import_names, leftover_prefix, safe_extract

PACK_GOAL_RATIO = 1.1  # issue 14
VERIFY_PARTS = ("gnu_tar_extract", "python_tarfile_extract", "conda_unpack", "import_probe", "prefix_scan", "cleanup")


def pack_configs(ws: Workspace) -> list[tuple[str, list[str], str, str]]:
    """(name, pack-env options, bound command, the bound as shown) per measured format."""
    gz = shlex.join([*ws.tools.gzip, "-4"])
    excludes = " ".join(shlex.quote(f"--exclude=./{p}") for p in SLIM_EXCLUDES)
    env = shlex.quote(str(ws.env_dir))
    zstd_c, zstd_name = ws.tools.zstd_c, ws.tools.zstd_name
    return [
        ("tar.gz-4", ["--format", "tar.gz", "--level", "4"], f"tar -cf - -C {env} . | {gz}",
         f"tar -cf - -C env . | {gz}"),
        ("tar.zst-3", ["--format", "tar.zst", "--level", "3"], f"tar -cf - -C {env} . | {zstd_c}",
         f"tar -cf - -C env . | {zstd_name}"),
        ("tar.gz-4-slim", ["--format", "tar.gz", "--level", "4", "--slim"],
         f"tar -cf - --anchored --wildcards {excludes} -C {env} . | {gz}",
         f"tar -cf - --exclude=(slim patterns) -C env . | {gz}"),
    ]  # fmt: skip


def pack(ws: Workspace) -> dict[str, Any]:
    """pack-env per format/level (and --slim) against tar | pigz / zstd of the same env."""
    pdir = ws.work / "pack"
    pdir.mkdir(parents=True, exist_ok=True)
    out: dict[str, Any] = {}
    for name, opts, bound_cmd, shown in pack_configs(ws):
        target = pdir / f"{name}.{opts[1]}"
        bound_target = pdir / f"bound-{name}.{opts[1]}"
        times: list[Sample] = []
        bounds: list[Sample] = []
        size = bound_size = 0
        slim_note = ""
        for _ in range(ws.runs):
            rmtree(target)
            took, proc = timed(
                ["scripts/pack-env", "--prefix", str(ws.env_dir), "--out", str(target), *opts], cwd=ws.repo
            )
            times.append(took)
            size = target.stat().st_size
            slim_note = next((ln for ln in proc.stderr.splitlines() if "slim:" in ln), "")
            bounds.append(timed(f"{bound_cmd} > {shlex.quote(str(bound_target))}")[0])
            bound_size = bound_target.stat().st_size
        fig = figure(
            times, bounds, shown, goal=f"<= {PACK_GOAL_RATIO}x bound", size_bytes=size, bound_size_bytes=bound_size,
            size_ratio=round(size / bound_size, 3), options=" ".join(opts),
        )  # fmt: skip
        fig["met"] = fig["ratio"] is not None and fig["ratio"] <= PACK_GOAL_RATIO
        if slim_note:
            fig["slim_note"] = slim_note.split("pack: ", 1)[-1]
        out[name] = fig
        log(f"pack {name}: {fig['median_s']:.2f}s vs bound {fig['bound_s']:.2f}s, {size / 2**20:.1f} MiB")
        rmtree(target)
        rmtree(bound_target)
    return out


def verify(ws: Workspace) -> dict[str, Any]:
    """verify-pack on the built tarball, against GNU tar -x + conda-unpack + the import probe."""
    vdir = ws.work / "verify"
    vdir.mkdir(parents=True, exist_ok=True)
    deps = ws.deps
    env_file = ws.kdir / "environment.yml"
    names = import_names(deps, env_file)
    cmd = [
        "scripts/verify-pack", str(ws.tarball), "--deps", str(deps), "--env-file", str(env_file),
        "--build-prefix", str(ws.env_dir), "--workdir", str(vdir), "--project", PROJECT,
    ]  # fmt: skip
    times: list[Sample] = []
    bounds: list[Sample] = []
    parts: dict[str, list[Sample]] = {k: [] for k in VERIFY_PARTS}
    root = vdir / "bound"
    probe = [str(root / "bin" / "python"), "-c", import_probe.source(), "--json", str(root), *names]
    for _ in range(ws.runs):
        times.append(timed(cmd, cwd=ws.repo)[0])
        rmtree(root)
        t_tar = timed_call(lambda: ws.tools.gnu_extract(ws.tarball, root))
        t_unpack = timed_call(lambda: ws.conda_unpack(root))
        t_probe = timed_call(lambda: run(probe, env=clean_env(ws.work), cwd=root))
        bounds.append(t_tar + t_unpack + t_probe)
        parts["gnu_tar_extract"].append(t_tar)
        parts["conda_unpack"].append(t_unpack)
        parts["import_probe"].append(t_probe)
        parts["prefix_scan"].append(timed_call(lambda: leftover_prefix(root, str(ws.env_dir).encode())))
        parts["cleanup"].append(timed_call(lambda: rmtree(root)))
        root.mkdir()
        parts["python_tarfile_extract"].append(timed_call(lambda: safe_extract(ws.tarball, root)))
        rmtree(root)
    fig = figure(
        times, bounds, "GNU tar -x + conda-unpack + the same import probe", imports=names,
        parts_s={k: round(median_sample(v).wall, 4) for k, v in parts.items()},
        parts_cpu_s={k: round(median_sample(v).cpu, 4) for k, v in parts.items()},
    )  # fmt: skip
    p = fig["parts_s"]
    fig["python_vs_gnu_extract_ratio"] = round(p["python_tarfile_extract"] / p["gnu_tar_extract"], 3)
    log(f"verify: {fig['median_s']:.2f}s vs bound {fig['bound_s']:.2f}s")
    return fig
