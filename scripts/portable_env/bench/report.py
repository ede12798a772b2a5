"""The results as a readable markdown report (OUT/results.md)."""

from __future__ import annotations

from typing import Any


def secs(x: float) -> str:
    """Seconds as ms below 1 s."""
    return f"{x * 1000:.0f} ms" if x < 1 else f"{x:.2f} s"


def mib(n: int) -> str:
    """Bytes as MiB."""
    return f"{n / 2**20:.1f} MiB"


def ratio(x: float | None) -> str:
    """A ratio, or n/a."""
    return "n/a" if x is None else f"{x:.2f}x"


def cell(text: str) -> str:
    """Text for a markdown table cell (a '|' would end the cell)."""
    return text.replace("|", "\\|")


PACK_LABELS = {
    "tar.gz-4": "Pack tar.gz -4 (default)",
    "tar.zst-3": "Pack tar.zst -3",
    "tar.gz-4-slim": "Pack tar.gz -4 --slim",
}
VERIFY_PART_LABELS = [
    ("python_tarfile_extract", "Python tarfile extraction (verify-pack's safe_extract)"),
    ("gnu_tar_extract", "GNU tar -x of the same tarball (the bound)"),
    ("conda_unpack", "bin/conda-unpack"),
    ("import_probe", "import probe (no .pyc yet)"),
    ("prefix_scan", "build-prefix scan of every file (leftover_prefix)"),
    ("cleanup", "removing the unpacked tree"),
]


def row(label: str, f: dict[str, Any]) -> str:
    """One line of the measurement table."""
    met = "" if f.get("met") is None else ("yes" if f["met"] else "**no**")
    return (
        f"| {cell(label)} | {secs(f['median_s'])} | {cell(f['bound'])} | {secs(f['bound_s'])} | "
        f"{ratio(f['ratio'])} | {secs(f['cpu_s'])} | {secs(f['bound_cpu_s'])} | "
        f"{ratio(f['cpu_ratio'])} | {cell(f.get('goal') or '')} | {met} |"
    )


def measurements(r: dict[str, Any]) -> list[str]:
    """The title, the workload and the table of every figure against its bound."""
    m, s = r["machine"], r["settings"]
    lines = [
        "# portable-env benchmark",
        "",
        f"{m['date']} · {m['cores']} cores ({m['cpu']}) · {m['ram_gib']} GiB RAM · Python {m['python']} · "
        f"{m['os']} · load average at start {m['load_average_start'][0]:.2f}",
        "",
        f"Workload: `{s['command']}` (projects/{s['project']}: numpy, scipy, pandas, scikit-learn; env "
        f"{mib(s['env_bytes'])}), scan of a synthetic project of {r['scan']['files']} files "
        f"({mib(r['scan']['bytes'])}). Median of {s['runs']} run(s); ratio = median / lower bound, both measured "
        "in this run on the same bytes.",
        "",
        "| Measurement | Median | Lower bound | Bound | Ratio | CPU | Bound CPU | CPU ratio | Goal | Met |",
        "| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | --- | --- |",
        row("No-op `make ... pack` (up to date)", r["noop"]),
        row(f"Scan, {r['scan']['files']} files (scripts/find-deps)", r["scan"]),
        row("Cold build: lock → verified tarball, empty PKGS", r["build"]["cold"]),
        row("Warm build: lock → verified tarball, cache filled", r["build"]["warm"]),
    ]
    lines += [row(label, r["pack"][key]) for key, label in PACK_LABELS.items()]
    im = r["imports"]
    lines += [
        row("Unpack + conda-unpack + verify (scripts/verify-pack)", r["verify"]),
        row("Import numpy+scipy+pandas+sklearn, no .pyc, first start", im["no_pyc_first_start"]),
        row("Import, no .pyc, read-only install (every start)", im["no_pyc_read_only"]),
        row("Import, built with create-env --compile, first start", im["compile_first_start"]),
    ]
    return lines


def sizes(r: dict[str, Any]) -> list[str]:
    """Archive sizes against plain tar + compressor; what --slim saves and --compile costs."""
    lines = [
        "",
        "## Sizes",
        "",
        "| Archive | Size | Bound (same bytes, plain tar + compressor) | Ratio |",
        "| --- | ---: | ---: | ---: |",
    ]
    for key, label in PACK_LABELS.items():
        p = r["pack"][key]
        lines.append(f"| {label} | {mib(p['size_bytes'])} | {mib(p['bound_size_bytes'])} | {p['size_ratio']:.2f}x |")
    sl, cc = r["slim"], r["imports"]["compile_cost"]
    note = f" ({sl['note']})" if sl.get("note") else ""
    return [
        *lines,
        "",
        f"--slim saves {mib(sl['saved_bytes'])} ({sl['saved_pct']}%) of the tar.gz: {mib(sl['slim_bytes'])} "
        f"instead of {mib(sl['full_bytes'])}{note}.",
        "",
        f"--compile: create-env takes {secs(cc['create_env_compile_s'])} (incl. compileall; CPU "
        f"{secs(cc['create_env_compile_cpu_s'])}) and the {cc['format']} grows from "
        f"{mib(cc['tarball_bytes_without_compile'])} to {mib(cc['tarball_bytes'])} "
        f"({cc['size_ratio']:.2f}x).",
        "",
    ]


def time_breakdown(r: dict[str, Any]) -> list[str]:
    """Where the build time goes (make's steps) and verify-pack's parts."""
    steps = list(r["build"]["cold"]["steps_s"])
    lines = [
        "## Where the time goes",
        "",
        f"| Build | {' | '.join(steps)} | make total | bound: install + pack + verify |",
        f"| --- |{' ---: |' * len(steps)} ---: | --- |",
    ]
    for kind in ("cold", "warm"):
        b = r["build"][kind]
        st, bp = b["steps_s"], b["bound_parts_s"]
        took = " | ".join(f"{st[s]:.1f} s" if s in st else "-" for s in steps)
        lines.append(
            f"| {kind} | {took} | {secs(b['median_s'])} | "
            f"{secs(bp['install'])} + {secs(bp['pack'])} + {secs(bp['verify'])} |"
        )
    for kind in ("cold", "warm"):
        b = r["build"][kind]
        if "manifest" in b["steps_s"] and "manifest_goal_s" in b:
            lines.append(
                f"\n{kind}: the manifest step took {b['steps_s']['manifest']:.1f} s "
                f"(goal <= {b['manifest_goal_s']} s: {'met' if b['manifest_met'] else '**not met**'})."
            )
    v, vc = r["verify"]["parts_s"], r["verify"]["parts_cpu_s"]
    lines += ["", "| verify-pack's work, measured part by part | Median | CPU |", "| --- | ---: | ---: |"]
    lines += [f"| {label} | {secs(v[key])} | {secs(vc[key])} |" for key, label in VERIFY_PART_LABELS]
    return [*lines, ""]


def noop_check(r: dict[str, Any]) -> list[str]:
    """What the no-op ran and started."""
    n = r["noop"]
    progs = ", ".join(f"{k}×{c}" for k, c in n["programs_started"].items()) or "(strace not installed)"
    return [
        "## No-op check",
        "",
        f"`make -q ... pack` exit {n['make_q_exit']}; steps run: {', '.join(n['steps_ran']) or 'none'}; "
        f"pipeline tools started: {', '.join(n['pipeline_tools_started']) or 'none'}.",
        "",
        f"Output: `{n['output']}`",
        "",
        f"Programs started by one no-op (strace): {progs}.",
        "",
    ]


def markdown(r: dict[str, Any]) -> str:
    """The results as a readable markdown report."""
    s = r["settings"]
    lines = measurements(r) + sizes(r) + time_breakdown(r) + noop_check(r)
    if r["notes"]:
        lines += ["## Notes", "", *[f"- {note}" for note in r["notes"]], ""]
    lines += [
        f"Total benchmark time {r['total_s']:.0f} s. Reproduce: `make bench` "
        f"(or `scripts/bench --runs {s['runs']}{' --quick' if s['quick'] else ''}`).",
        "",
    ]
    return "\n".join(lines)
