"""Import section: numpy+scipy+pandas+sklearn in the unpacked env, without .pyc and built with --compile."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from portable_env.bench.measure import Sample, clean_env, figure, log, rmtree, run, timed
from portable_env.bench.workspace import Workspace

IMPORTS = ["numpy", "scipy", "pandas", "sklearn"]
CODE = "import " + ", ".join(IMPORTS)
BOUND = "the same import, .pyc already cached"


def pycs(root: Path) -> set[str]:
    """Every .pyc file under root."""
    return {os.path.join(d, f) for d, _s, fs in os.walk(root) for f in fs if f.endswith(".pyc")}


def unpacked(ws: Workspace, tarball: Path, dest: Path) -> Path:
    """tarball unpacked with GNU tar into dest and relocated with conda-unpack."""
    ws.tools.gnu_extract(tarball, dest)
    ws.conda_unpack(dest)
    return dest


def compiled_build(ws: Workspace, idir: Path) -> tuple[Sample, Path]:
    """The same lock installed with create-env --compile and packed as tar.zst -3 (quicker than
    the default tar.gz; its size compares with the pack section's): (create-env's time, the tarball)."""
    env = idir / "env-compiled"
    cmd = [
        "scripts/create-env", "--lock", str(ws.kdir / "rattler-lock.yml"), "--prefix", str(env),
        "--cache-dir", str(ws.pkgs_warm), "--compile",
    ]  # fmt: skip
    t_create = timed(cmd, cwd=ws.repo)[0]
    tarball = idir / "compiled.tar.zst"
    pack = ["scripts/pack-env", "--prefix", str(env), "--out", str(tarball), "--format", "tar.zst", "--level", "3"]
    run(pack, cwd=ws.repo)
    rmtree(env)
    return t_create, tarball


def time_imports(ws: Workspace, root: Path, home: Path, shipped: set[str], keep: str = "none",
                 **extra: str) -> list[Sample]:  # fmt: skip
    """Time the imports, removing the .pyc each start wrote, except with
    keep="last" (the last start's stay) or keep="all"."""
    times = []
    for i in range(ws.runs):
        times.append(timed([str(root / "bin" / "python"), "-c", CODE], env=clean_env(home, **extra), cwd=home)[0])
        if keep == "none" or (keep == "last" and i < ws.runs - 1):
            for path in pycs(root) - shipped:
                os.unlink(path)
    return times


def imports(ws: Workspace, plain_zst_bytes: int) -> dict[str, Any]:
    """Import time in the unpacked env: no .pyc (first start; read-only) and with --compile.
    plain_zst_bytes: size of the tar.zst -3 of the env without --compile."""
    idir = ws.work / "imports"
    rmtree(idir)
    idir.mkdir(parents=True)
    home = idir / "home"
    home.mkdir()
    plain = unpacked(ws, ws.tarball, idir / "plain")
    t_create, compiled_tar = compiled_build(ws, idir)
    compiled = unpacked(ws, compiled_tar, idir / "compiled")
    shipped = {plain: pycs(plain), compiled: pycs(compiled)}

    with_compile = time_imports(ws, compiled, home, shipped[compiled])
    read_only = time_imports(ws, plain, home, shipped[plain], PYTHONDONTWRITEBYTECODE="1")  # writes nothing
    first = time_imports(ws, plain, home, shipped[plain], keep="last")  # leaves its .pyc for the bound
    cached = time_imports(ws, plain, home, shipped[plain], keep="all")
    pyc_cached = len(pycs(plain) - shipped[plain])  # the bound ran with these in place
    out = {
        "no_pyc_first_start": figure(first, cached, BOUND, pyc_in_tarball=len(shipped[plain]), pyc_written=pyc_cached),
        "no_pyc_read_only": figure(
            read_only, cached, BOUND, note="PYTHONDONTWRITEBYTECODE=1: every start compiles, as on a read-only install"
        ),
        "compile_first_start": figure(with_compile, cached, BOUND, pyc_in_tarball=len(shipped[compiled])),
        "compile_cost": {
            "create_env_compile_s": round(t_create.wall, 3),
            "create_env_compile_cpu_s": round(t_create.cpu, 3),
            "format": "tar.zst -3",
            "tarball_bytes": compiled_tar.stat().st_size,
            "tarball_bytes_without_compile": plain_zst_bytes,
        },
    }
    cost = out["compile_cost"]
    cost["size_ratio"] = round(cost["tarball_bytes"] / cost["tarball_bytes_without_compile"], 3)
    for k in ("no_pyc_first_start", "no_pyc_read_only", "compile_first_start"):
        log(f"imports {k}: {out[k]['median_s']:.2f}s vs cached {out[k]['bound_s']:.2f}s")
    rmtree(idir)
    return out
