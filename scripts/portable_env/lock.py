"""Locks: solve an environment.yml with py-rattler, write and read the lock files.

Two files per lock, each written through a temporary name:

- the rattler lock (``rattler-lock.yml``: name, version, build, URL, sha256,
  depends), written and read only through ``rattler.LockFile`` (``read_records``
  is the one reader);
- an ``@EXPLICIT`` spec (``conda-<platform>.lock``: url#sha256 lines) that conda
  and micromamba install from without solving; its header records the spec hash
  it was solved from (``recorded_hash``).

The solve is for the declared target machine (``Target``: the settings'
``target: {glibc, cpu, cuda}``), never for the build host: exactly the virtual
packages ``Target.virtual_packages`` lists (``__unix``, ``__linux``, ``__glibc``,
``__archspec``, ``__cuda`` when set). Both files record them as
``# virtual-package: NAME=VERSION=BUILD`` comment lines (``recorded_target``
reads them back), and the spec hash covers the environment.yml bytes and them.
Solving is skipped when the recorded hash equals the current one, so a fresh
clone or a touched file never re-solves, and a changed target always does.

environment.yml's ``pip:`` section (PyPI packages) is locked beside them, by
``portable_env.pypi``, into ``pypi-<platform>.txt`` with the same spec hash
(the section is part of the environment.yml bytes the hash covers).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from portable_env import pypi
from portable_env.errors import UserError
from portable_env.files import spec_name, write_atomic
from portable_env.settings import PYPI_INDEX_DEFAULT, TARGET_DEFAULTS

HASH_LINE = "# spec-sha256: "
VP_LINE = "# virtual-package: "
EXPLICIT_MARK = "@EXPLICIT"
# __linux: the kernel of the oldest mainstream system (RHEL/CentOS) that ships
# each glibc; a target glibc picks the highest entry at or below it. Kernel
# and glibc come together on the machines this is for (glibc 2.17 = CentOS 7
# = kernel 3.10), and conda-forge packages rarely ask for a kernel at all.
LINUX_FOR_GLIBC = (((2, 0), "2.6.32"), ((2, 17), "3.10"), ((2, 28), "4.18"), ((2, 34), "5.14"))
# What each virtual package of a failed solve means, and the setting that changes it.
VP_SETTING = {"__glibc": "glibc", "__linux": "glibc", "__archspec": "cpu", "__cuda": "cuda"}


# ---------------------------------------------------------------- the target


def _version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", version))


@dataclass(frozen=True)
class Target:
    """The machine a lock is solved for (settings.target), as virtual packages."""

    glibc: str = str(TARGET_DEFAULTS["glibc"])
    cpu: str = str(TARGET_DEFAULTS["cpu"])
    cuda: str | None = None

    @classmethod
    def of(cls, target: Mapping[str, str | None] | None) -> Target:
        """From a settings.target mapping (missing keys take the defaults)."""
        merged = {**TARGET_DEFAULTS, **(target or {})}
        return cls(str(merged["glibc"]), str(merged["cpu"]), merged["cuda"] or None)

    @property
    def linux(self) -> str:
        """The __linux (kernel) version declared for this glibc."""
        have = _version_tuple(self.glibc)
        return [kernel for glibc, kernel in LINUX_FOR_GLIBC if glibc <= have][-1]

    def virtual_packages(self, platform: str = "linux-64") -> list[tuple[str, str, str]]:
        """(name, version, build) of every virtual package the solve may use."""
        if not platform.startswith("linux-"):
            raise UserError(f"platform {platform}: a target (glibc, cpu) is only defined for linux-* platforms")
        found = [
            ("__unix", "0", "0"),
            ("__linux", self.linux, "0"),
            ("__glibc", self.glibc, "0"),
            ("__archspec", "1", self.cpu),
        ]
        if self.cuda:
            found.append(("__cuda", self.cuda, "0"))
        return found

    def as_dict(self) -> dict[str, str | None]:
        return {"glibc": self.glibc, "cpu": self.cpu, "cuda": self.cuda}

    def describe(self) -> str:
        """'glibc 2.17, cpu x86_64, no CUDA'."""
        return f"glibc {self.glibc}, cpu {self.cpu}, " + (f"CUDA {self.cuda}" if self.cuda else "no CUDA")


def vp_lines(target: Target, platform: str) -> list[str]:
    """The ``# virtual-package: NAME=VERSION=BUILD`` lines both lock files carry."""
    return [f"{VP_LINE}{n}={v}={b}" for n, v, b in target.virtual_packages(platform)]


def rattler_virtual_packages(target: Target, platform: str) -> list[Any]:
    """The target's virtual packages as rattler.GenericVirtualPackage s (what solve passes)."""
    import rattler

    return [
        rattler.GenericVirtualPackage(rattler.PackageName(n), rattler.Version(v), rattler.BuildString(b))
        for n, v, b in target.virtual_packages(platform)
    ]


# ---------------------------------------------------------------- the spec hash


def spec_hash(env_file: Path, target: Target | None = None, platform: str = "linux-64") -> str:
    """sha256 of the environment.yml bytes and the target's virtual packages (what decides re-solving)."""
    h = hashlib.sha256(env_file.read_bytes())
    for line in vp_lines(target or Target(), platform):
        h.update(f"\0{line}".encode())
    return h.hexdigest()


def _header(path: Path) -> list[str]:
    """The comment lines at the top of a lock file (up to @EXPLICIT or the first other line)."""
    lines = []
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if not line.startswith("#"):
                    break
                lines.append(line.rstrip("\n"))
    except OSError:
        return []
    return lines


def recorded_hash(explicit: Path) -> str | None:
    """The spec hash recorded in an explicit lock's header, if any."""
    for line in _header(explicit):
        if line.startswith(HASH_LINE):
            return line[len(HASH_LINE) :].strip()
    return None


def recorded_virtual_packages(lock: Path) -> list[tuple[str, str, str]]:
    """(name, version, build) of the virtual packages a lock file (either kind) records."""
    found = []
    for line in _header(lock):
        if line.startswith(VP_LINE):
            parts = line[len(VP_LINE) :].strip().split("=")
            if len(parts) == 3:
                found.append((parts[0], parts[1], parts[2]))
    return found


def recorded_target(lock: Path) -> Target | None:
    """The target a lock file (either kind) was solved for; None when it records none."""
    vps = {name: (version, build) for name, version, build in recorded_virtual_packages(lock)}
    if "__glibc" not in vps:
        return None
    return Target(
        glibc=vps["__glibc"][0],
        cpu=vps["__archspec"][1] if "__archspec" in vps else "",
        cuda=vps["__cuda"][0] if "__cuda" in vps else None,
    )


def target_changes(old: Target, new: Target) -> list[str]:
    """'target glibc changed 2.17 -> 2.28', one per differing key."""
    before, after = old.as_dict(), new.as_dict()
    return [f"target {k} changed {before[k] or 'none'} -> {after[k] or 'none'}" for k in after if before[k] != after[k]]


# ---------------------------------------------------------------- reading locks


def read_records(lock: Path, platform: str) -> list[Any]:
    """The locked ``rattler.RepoDataRecord`` s of the lock's default environment for platform.

    The one reader of a rattler lock. Raises UserError when the file is missing,
    unreadable or has no packages for platform.
    """
    import rattler
    from rattler.exceptions import ParseCondaLockError

    try:
        env = rattler.LockFile.from_path(lock).default_environment()
    except (ParseCondaLockError, OSError) as exc:
        raise UserError(
            f"{lock} is not a readable lock file ({exc}); restore it "
            f"(git checkout -- {lock}) or re-solve it with make lock"
        ) from None
    # conda_repodata_records_for_platform() panicked in py-rattler 0.28: take the mapping.
    records = (env.conda_repodata_records() if env else {}).get(platform)
    if not records:
        raise UserError(f"{lock} has no packages for {platform}; re-solve with make lock")
    return list(records)


def _hex(digest: bytes | str | None) -> str:
    """A record's sha256 as hex ('' when absent)."""
    if digest is None:
        return ""
    return digest.hex() if isinstance(digest, bytes) else str(digest)


def package_hashes(lock: Path, platform: str) -> dict[str, str]:
    """Package file name -> sha256 of the platform's packages, from a rattler lock or an @EXPLICIT lock."""
    try:
        text = lock.read_text()
    except OSError as exc:
        raise UserError(f"{lock}: cannot read the lock ({exc.strerror}); re-solve with make lock") from None
    if EXPLICIT_MARK not in text:
        return {r.file_name: _hex(r.sha256) for r in read_records(lock, platform)}
    found: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith(("#", "@")) and "#" in line:
            url, digest = line.rsplit("#", 1)
            found[url.rsplit("/", 1)[-1]] = digest
    return found


# ---------------------------------------------------------------- solving


@dataclass(frozen=True)
class EnvSpec:
    """What lock-env reads from an environment.yml."""

    name: str
    channels: list[str]
    specs: list[str]
    pip: pypi.PipSpec = field(default_factory=pypi.PipSpec)


def read_env_file(env_file: Path) -> EnvSpec:
    """The name, channels and match specs of an environment.yml."""
    try:
        data = yaml.safe_load(env_file.read_text()) or {}
    except OSError as exc:
        raise UserError(f"{env_file}: cannot read it ({exc.strerror}); run make env-file") from None
    except yaml.YAMLError as exc:
        raise UserError(f"{env_file}: not valid YAML ({exc}); run make env-file to render it again") from None
    if not isinstance(data, dict):
        raise UserError(f"{env_file}: must be a mapping (name, channels, dependencies); run make env-file")
    deps = data.get("dependencies") or []
    pip_lines = [x for d in deps if isinstance(d, dict) and list(d) == ["pip"] for x in (d["pip"] or [])]
    bad = [s for s in deps if not isinstance(s, str) and not (isinstance(s, dict) and list(s) == ["pip"])]
    if bad or any(isinstance(d, dict) and not isinstance(d["pip"], list) for d in deps):
        raise UserError(
            f"{env_file}: only conda match specs and a pip: list of PyPI requirements are supported in "
            f"dependencies, not {(bad or [d for d in deps if isinstance(d, dict)])[0]!r}"
        )
    channels = data.get("channels") or []
    if not channels:
        raise UserError(f"{env_file}: no channels; set 'channels:' in the project's project.yml or CHANNELS=...")
    specs = [s for s in deps if isinstance(s, str)]
    return EnvSpec(
        str(data.get("name", "")), [str(c) for c in channels], specs, pypi.parse_pip_section(pip_lines, env_file)
    )


def read_deps(deps: Path) -> dict[str, Any]:
    """The scan's results (deps.yml: required/optional/on_demand/unresolved
    lists, imports: package -> import name -> ["file:line", ...]); UserError
    naming the file and the fix when it cannot be read."""
    try:
        data = yaml.safe_load(deps.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise UserError(f"{deps}: cannot read the scan results ({exc}); run make deps") from None
    if not isinstance(data, dict):
        raise UserError(f"{deps}: not a scan result (mapping expected); run make deps")
    return data


def scan_results(deps_file: Path | None) -> dict[str, Any]:
    """read_deps, or {} when there is none or it cannot be read: it only explains a failure."""
    try:
        return read_deps(deps_file) if deps_file and deps_file.exists() else {}
    except UserError:
        return {}


def missing_message(
    missing: list[str],
    channels: list[str],
    scan: dict[str, Any],
    settings: str,
    pypi_index: str | None = None,
    similar: dict[str, list[str]] | None = None,
) -> str:
    """Explain packages absent from every channel, with the fix for each: `similar` names the
    channel packages of its other name forms (radiomics: pyradiomics). With pypi_index, say
    where a PyPI project of that name exists there and print the line that declares it (never
    adding one: an import resolved to PyPI by its name alone is a dependency-confusion hole)."""
    similar = similar or {}
    lines = [f"no package of that name in the channels ({', '.join(channels)}):"]
    for name in missing:
        imports = (scan.get("imports") or {}).get(name) or {}
        if name == "pip" and not imports:
            lines.append(
                f"  - 'pip': added to every python environment, as conda adds it (setting pip: true); the "
                f"channels have none: add a pip package to them, or set pip: false in {settings}"
            )
            continue
        on_pypi = pypi.project_exists(name, pypi_index) if pypi_index else None
        pypi_name = pypi.canonical_pypi(name)
        found_on = (
            f"a PyPI project '{pypi_name}' exists on {pypi_index} (check it is the one meant: a name alone "
            "proves nothing)"
        )
        if imports:
            for imp, where in imports.items():
                lines.append(
                    f"  - '{name}': import '{imp}' (in {', '.join(where[:3])}){' ...' if len(where) > 3 else ''}"
                )
                for other in similar.get(name, []):
                    lines.append(
                        f"      the channels have '{other}': if '{imp}' comes from it, add to {settings}:"
                        f"  imports: {{{imp}: {other}}}"
                    )
                if on_pypi:
                    lines.append(
                        f"      {found_on}; if '{imp}' comes from it, add to {settings}:"
                        f'  imports: {{{imp}: "pypi:{pypi_name}"}}'
                    )
                lines.append(
                    f"      if '{imp}' comes from another conda package, add to {settings}:"
                    f"  imports: {{{imp}: <package>}}"
                )
                lines.append(f'      if it is not needed, add:  imports: {{{imp}: ""}}')
            if name in (scan.get("on_demand") or []):
                lines.append(
                    f"      it is only imported on demand: `install_on_demand: false` in "
                    f"{settings} leaves out every such package"
                )
        else:
            lines.append(f"  - '{name}': listed in 'packages:' of {settings} (or the template); fix or remove it")
            if on_pypi:
                lines.append(f'      {found_on}; if it is meant, move it from packages: to  pypi: ["{name}"]')
    return "\n".join(lines)


async def _missing_names(channels: list[str], platform: str, names: list[str], gateway: Any) -> list[str]:
    """Names that no channel has a package for (on platform or noarch)."""
    found = await _found_names(channels, platform, names, gateway)
    return [n for n in names if n.lower() not in found]


async def _found_names(channels: list[str], platform: str, names: list[str], gateway: Any) -> set[str]:
    """The names (lower case) that some channel has a package for (on platform or noarch)."""
    result = await gateway.query(channels, [platform, "noarch"], [n.lower() for n in names], recursive=False)
    return {r.name.normalized for group in result for r in group} & {n.lower() for n in names}


# How a conda package is often named after its import (radiomics: pyradiomics, dateutil: python-dateutil).
NAME_FORMS = ("py{}", "py-{}", "python-{}", "{}-python", "{}-py", "{}-base", "{}-core")


def name_forms(name: str) -> list[str]:
    """Other names the package of a guessed name may go by, NAME_FORMS both ways."""
    out = [f.format(name) for f in NAME_FORMS]
    for f in NAME_FORMS:
        head, _, tail = f.partition("{}")
        if name.startswith(head) and name.endswith(tail) and len(name) > len(head) + len(tail):
            out.append(name[len(head) : len(name) - len(tail)])
    return list(dict.fromkeys(n for n in out if n != name))


async def similar_names(channels: list[str], platform: str, missing: list[str], gateway: Any) -> dict[str, list[str]]:
    """For each missing name, the packages of its other NAME_FORMS that the channels have."""
    forms = {m: name_forms(m.lower()) for m in missing}
    found = await _found_names(channels, platform, sorted({f for fs in forms.values() for f in fs}), gateway)
    return {m: hits for m, fs in forms.items() if (hits := [f for f in fs if f in found])}


# Resolvo's explanation: "pkg 1.2 would require" then, deeper, "__glibc >=2.28, for which no candidates were found".
REQUIRER = re.compile(r"^(?P<indent>[\s│├└─]*)(?P<pkg>\S+) (?P<version>\S+) would require\s*$")
NO_CANDIDATES = re.compile(r"^(?P<indent>[\s│├└─]*)(?P<vp>__[\w-]+)(?:\s+(?P<spec>.*?))?, for which no candidates")


def unmet_virtual(message: str) -> list[tuple[str, str, str]]:
    """(virtual package, its spec, the package that needs it) from a solver error's explanation."""
    found: list[tuple[str, str, str]] = []
    requirers: list[tuple[int, str]] = []  # (indent, "name version"), innermost last
    for line in message.splitlines():
        if m := REQUIRER.match(line):
            depth = len(m["indent"])
            requirers = [r for r in requirers if r[0] < depth] + [(depth, f"{m['pkg']} {m['version']}")]
        elif m := NO_CANDIDATES.match(line):
            depth = len(m["indent"])
            parent = next((name for d, name in reversed(requirers) if d < depth), "the specs")
            item = (m["vp"], (m["spec"] or "").strip(), parent)
            if item not in found:
                found.append(item)
    return found


def _lower_bound(spec: str) -> str | None:
    m = re.search(r">=?\s*(\d+(?:\.\d+)*)", spec)
    return m[1] if m else None


def target_message(unmet: list[tuple[str, str, str]], target: Target, settings: str) -> str:
    """Explain a solve the target machine makes impossible: which virtual package, needed by what, and the fix."""
    lines = [f"the target machine ({target.describe()}) cannot run what the specs need:"]
    fixes: list[str] = []
    for vp, spec, needer in unmet:
        want = f"{vp} {spec}".strip()
        if vp in ("__glibc", "__linux"):
            have = f"the target glibc is {target.glibc}" + (f" (kernel {target.linux})" if vp == "__linux" else "")
            bound = _lower_bound(spec) if vp == "__glibc" else None
            value = f'"{bound}"' if bound else '"2.X"'
            fixes.append(
                f"if the machine has a newer glibc, set  target: {{glibc: {value}}}  in {settings} "
                f"(or TARGET_GLIBC={bound or '2.X'} for one build); otherwise pin an older {needer.split()[0]} "
                "in 'packages:'"
            )
        elif vp == "__archspec":
            have = f"the target cpu is {target.cpu}"
            fixes.append(
                f"if the machine's CPU has it, set  target: {{cpu: x86_64_v3}}  (or the level it has) in {settings}; "
                f"otherwise pin another build of {needer.split()[0]} in 'packages:'"
            )
        elif vp == "__cuda":
            have = f"the target CUDA is {target.cuda}" if target.cuda else "the target has no CUDA"
            bound = _lower_bound(spec)
            fixes.append(
                f'if the machine has an NVIDIA driver for it, set  target: {{cuda: "{bound or "12.X"}"}}  in '
                f"{settings}; otherwise ask for a CPU build (e.g. a '*cpu*' build string in 'packages:')"
            )
        else:
            have = "not a virtual package of a linux target"
            fixes.append(f"{needer.split()[0]} is for another operating system: pin another build in 'packages:'")
        lines.append(f"  - {want} needed by {needer} ({have})")
    lines += [f"  {fix}" for fix in dict.fromkeys(fixes)]
    return "\n".join(lines)


async def solve(
    channels: list[str],
    specs: list[str],
    platform: str,
    cache_dir: Path,
    scan: dict[str, Any],
    settings: str,
    target: Target | None = None,
    pypi_index: str | None = None,
) -> list[Any]:
    """Solve specs against channels for one platform and the target machine; UserError when impossible
    (a missing package's hint names a PyPI project of that name on pypi_index)."""
    import rattler
    from rattler.exceptions import FetchRepoDataError, GatewayError, InvalidMatchSpecError, SolverError

    target = target or Target()
    gateway = rattler.Gateway(cache_dir=cache_dir)
    try:
        missing = await _missing_names(channels, platform, sorted({spec_name(s) for s in specs}), gateway)
        if missing:
            similar = await similar_names(channels, platform, missing, gateway)
            raise UserError(missing_message(missing, channels, scan, settings, pypi_index, similar))
        return list(
            await rattler.solve(
                sources=channels,
                specs=specs,
                gateway=gateway,
                platforms=[rattler.Subdir(platform), rattler.Subdir("noarch")],
                virtual_packages=rattler_virtual_packages(target, platform),
            )
        )
    except (FetchRepoDataError, GatewayError) as exc:
        raise UserError(
            f"cannot read the channels {channels}: {exc}\n"
            "  check the channel URL (a local channel needs <dir>/<subdir>/repodata.json) "
            "and the network, or set CHANNELS=..."
        ) from None
    except InvalidMatchSpecError as exc:
        raise UserError(f"invalid package spec: {exc}\n  fix it in {settings} ('packages:')") from None
    except SolverError as exc:
        unmet = unmet_virtual(str(exc))
        if unmet:
            solver = "\n".join(f"    {line}" for line in str(exc).splitlines())
            raise UserError(f"{target_message(unmet, target, settings)}\n  the solver said:\n{solver}") from None
        raise UserError(
            f"the specs cannot be satisfied together: {exc}\n"
            f"  relax the pins in {settings} ('packages:', 'python:') or PYTHON=..."
        ) from None


# ---------------------------------------------------------------- writing locks


def explicit_text(
    records: list[Any],
    platform: str,
    name: str,
    digest: str,
    target: Target | None = None,
    origin: str = "solved by scripts/lock-env",
) -> str:
    """The @EXPLICIT lock: a header (where it comes from, platform, the target's virtual packages,
    the spec hash), then url#sha256 in install order. Takes any rattler.RepoDataRecord s (solved
    here or adopted); without a target the header records none (check-lock then calls the lock stale)."""
    import rattler

    by_name = {r.name.normalized: r for r in records}
    ordered = [by_name[p.name.normalized] for p in rattler.RepoDataRecord.sort_topologically(records)]
    lines = [
        f"# Exact environment of project '{name}', {origin} (portable-env).",
        f"# Install without solving:  conda create -n {name} --file <this file>",
        f"#                      or:  micromamba create -n {name} -f <this file>",
        "# (the url#sha256 lines need conda >= 24.9)",
        f"# platform: {platform}",
    ]
    if target is not None:
        lines.append(f"# solved for the target machine: {target.describe()}")
        lines += vp_lines(target, platform)
    lines += [f"{HASH_LINE}{digest}", EXPLICIT_MARK]
    lines += [f"{r.url}#{_hex(r.sha256)}" for r in ordered]
    return "\n".join(lines) + "\n"


def write_lock(
    records: list[Any],
    channels: list[str],
    platform: str,
    path: Path,
    target: Target | None = None,
    origin: str = "solved by scripts/lock-env",
) -> None:
    """Write the rattler lock file through a temporary name; with a target, its virtual packages
    head the file as comment lines (rattler.LockFile has no field for them)."""
    import rattler

    lock = rattler.LockFile([rattler.LockPlatform(platform)])
    lock.set_channels("default", [rattler.LockChannel(c) for c in channels])
    for r in sorted(records, key=lambda r: r.name.normalized):
        lock.add_conda_package("default", rattler.LockPlatform(platform), r)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        lock.to_path(tmp)
        if target is not None:
            header = [f"# {origin} for the target machine: {target.describe()}"]
            header += vp_lines(target, platform)
            tmp.write_text("\n".join(header) + "\n" + tmp.read_text())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


# ---------------------------------------------------------------- the step


def _current_hash(env_file: Path, target: Target, platform: str) -> str:
    """spec_hash of the environment.yml being locked; UserError when it cannot be read."""
    try:
        return spec_hash(env_file, target, platform)
    except OSError as exc:
        raise UserError(f"{env_file}: cannot read it ({exc.strerror}); run make env-file") from None


def check(
    env_file: Path,
    lock: Path,
    explicit: Path,
    target: Target | None = None,
    platform: str = "linux-64",
    project: str | None = None,
) -> int:
    """Whether the lock is current for env_file and target: 0 (current) or 1 (stale), with a message."""
    target = target or Target()
    fix = f"run make PROJECT={project} lock" if project else "run make lock"
    digest = _current_hash(env_file, target, platform)
    pypi_file = pypi.lock_path(explicit, platform)
    pip = read_env_file(env_file).pip
    pypi_ok = pypi.is_current(pypi_file, pip, digest)
    if recorded_hash(explicit) == digest and lock.exists() and pypi_ok:
        print(f"lock is current: {explicit} was solved from this {env_file} for {target.describe()}")
        return 0
    old = recorded_target(explicit)
    if recorded_hash(explicit) == digest and lock.exists():
        why = (
            f"is current, but {pypi_file} "
            + ("is missing" if pip.requirements and not pypi_file.exists() else "")
            + ("was locked from a different environment.yml" if pip.requirements and pypi_file.exists() else "")
            + ("is left from PyPI requirements environment.yml no longer has" if not pip.requirements else "")
        )
    elif not explicit.exists():
        why = "is missing"
    elif old is None:
        why = "records no target machine (solved for the build host)"
    elif changes := target_changes(old, target):
        why = f"is stale: {'; '.join(changes)}"
    elif not lock.exists():
        why = f"has no {lock} beside it"
    else:
        why = "was solved from a different environment.yml"
    print(f"lock is stale: {explicit} {why}: {fix}", file=sys.stderr)
    return 1


def lock_env(
    env_file: Path,
    lock: Path,
    explicit: Path,
    platform: str,
    cache_dir: Path,
    deps: Path | None,
    settings_file: str,
    force: bool = False,
    target: Target | None = None,
    pypi_index: str | None = None,
) -> None:
    """Solve env_file for target into lock + explicit (and its pip: section into the PyPI lock
    beside them), unless they were solved from the same content and target (and not force).
    pypi_index (the settings') is where the hint for a missing package looks for a PyPI project."""
    target = target or Target()
    digest = _current_hash(env_file, target, platform)
    spec = read_env_file(env_file)
    pypi_file = pypi.lock_path(explicit, platform)
    conda_current = recorded_hash(explicit) == digest and lock.exists() and not force
    if conda_current and pypi.is_current(pypi_file, spec.pip, digest):
        for p in (lock, explicit, pypi_file):
            if p.exists():
                os.utime(p)
        print(
            f"lock: {env_file} and the target unchanged since the lock was solved; kept {explicit} "
            "(make lock re-solves)",
            file=sys.stderr,
        )
        return
    if conda_current:  # only the PyPI lock is missing or stale: resolve it against the locked conda packages
        pypi.lock(
            spec.pip,
            read_records(lock, platform),
            pypi_file,
            spec.name,
            platform,
            target.glibc,
            digest,
            cache_dir,
            settings_file,
        )
        for p in (lock, explicit):
            os.utime(p)
        return
    old = recorded_target(explicit)
    changed = target_changes(old, target) if old else []
    print(
        f"lock: solving {len(spec.specs)} specs for {platform} ({target.describe()}) against "
        f"{', '.join(spec.channels)}" + (f" ({'; '.join(changed)})" if changed else ""),
        file=sys.stderr,
        flush=True,
    )
    index = spec.pip.index if spec.pip.requirements else (pypi_index or PYPI_INDEX_DEFAULT)
    records = asyncio.run(
        solve(spec.channels, spec.specs, platform, cache_dir, scan_results(deps), settings_file, target, index)
    )
    # The PyPI lock first: a conflict with the conda side leaves the old conda lock in place.
    pypi.lock(spec.pip, records, pypi_file, spec.name, platform, target.glibc, digest, cache_dir, settings_file)
    write_lock(records, spec.channels, platform, lock, target)
    write_atomic(explicit, explicit_text(records, platform, spec.name, digest, target))
    local = [c for c in spec.channels if c.startswith("file:")]
    if local and "build" not in explicit.parts:
        print(
            f"lock: warning: {explicit} records local paths ({', '.join(local)}); it only installs "
            "where that channel exists. For a local channel prefer CHANNELS=..., which keeps its lock "
            "under build/",
            file=sys.stderr,
        )
    print(f"lock: {len(records)} packages -> {explicit}, {lock}", file=sys.stderr)
