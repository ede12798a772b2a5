#!/usr/bin/env bash
# Self-extracting installer of @@PROJECT@@ (@@PLATFORM@@, python @@PYTHON@@), made by portable-env
# (scripts/make-installer from templates/installer.sh). Run `bash @@FILE@@ --help`.
#
# Layout: this bash header, the line __PORTABLE_ENV_PAYLOAD__, then the
# payload: the verified conda-pack archive (@@FORMAT@@), starting at byte
# HEADER_SIZE + 1. The payload is streamed with tail -c, never read whole.
# The format's values and the import probe come from scripts/portable_env
# (formats.py, probe.py), filled in by make-installer.
if [ -z "${BASH_VERSION:-}" ]; then
  echo "error: run this installer with bash: bash $0 --help" >&2
  exit 2
fi
set -euo pipefail

PROJECT='@@PROJECT@@'
PLATFORM='@@PLATFORM@@'
PYTHON_VERSION='@@PYTHON@@'
TARGET_OS='@@OS@@'
TARGET_ARCH='@@ARCH@@'
MIN_GLIBC='@@MIN_GLIBC@@'
TARGET_GLIBC='@@TARGET_GLIBC@@'
TARGET_CPU='@@TARGET_CPU@@'
TARGET_CUDA='@@TARGET_CUDA@@'
FORMAT='@@FORMAT@@'
DECOMPRESS='@@DECOMPRESS@@'
DECOMPRESSOR='@@DECOMPRESSOR@@'
HEADER_SIZE=@@HEADER_SIZE@@
PAYLOAD_SIZE=@@PAYLOAD_SIZE@@
PAYLOAD_SHA256='@@PAYLOAD_SHA256@@'
UNPACKED_KB=@@UNPACKED_KB@@
IMPORTS='@@IMPORTS@@'
LAUNCHERS='@@LAUNCHERS@@'
SMOKE_TEST=@@SMOKE_TEST@@
SELF=${BASH_SOURCE[0]}
case "$SELF" in
  /*) ;;
  *) SELF=$PWD/$SELF ;;
esac
ME=${SELF##*/}

usage() {
  cat <<EOF
usage: bash $ME [-p DIR] [-f] [--check] [--list] [--manifest] [--help]

Installs $PROJECT ($PLATFORM, python $PYTHON_VERSION) into DIR: checks this machine
and the payload's sha256, unpacks, runs conda-unpack, imports the project's
modules, and prints how to activate the environment.

  -p, --prefix DIR  install into DIR (default: ./$PROJECT)
  -f, --force       install into DIR even if it is not empty: files of the
                    same name are replaced, nothing else is removed (for a
                    clean reinstall remove DIR first)
  --check           only check: OS, CPU (level), glibc, CUDA driver, tools, free space, target
                    directory and the payload's checksum; unpack nothing
  --list            list the packages inside; unpack nothing
  --manifest        print the manifest (JSON) of the packed environment
  -h, --help        show this help

Needs: $TARGET_OS $TARGET_ARCH${TARGET_CPU:+ ($TARGET_CPU)}${TARGET_GLIBC:+, glibc >= $TARGET_GLIBC}${TARGET_CUDA:+, an NVIDIA driver for CUDA >= $TARGET_CUDA}; bash, tail, tar, ${DECOMPRESSOR:+$DECOMPRESSOR, }sha256sum.
EOF
}

say() { printf '%s\n' "$*" >&2; }
die() { printf 'error: %s installer: %s\n' "$PROJECT" "$*" >&2; exit 1; }
usage_error() { printf 'error: %s installer: %s\n  run: bash %s --help\n' "$PROJECT" "$*" "$ME" >&2; exit 2; }

list_packages() {
  cat <<'PORTABLE_ENV_LIST_END'
@@PACKAGE_LIST@@
PORTABLE_ENV_LIST_END
}

print_manifest() {
  cat <<'PORTABLE_ENV_MANIFEST_END'
@@MANIFEST_JSON@@
PORTABLE_ENV_MANIFEST_END
}

payload() { tail -c +"$((10#$HEADER_SIZE + 1))" "$SELF"; }

sha256_stream() {
  if command -v sha256sum >/dev/null 2>&1; then sha256sum | cut -d' ' -f1
  elif command -v shasum >/dev/null 2>&1; then shasum -a 256 | cut -d' ' -f1
  else openssl dgst -sha256 -r | cut -d' ' -f1
  fi
}

# The glibc version of this machine; PORTABLE_ENV_GLIBC_VERSION stands in for
# the detected one (for tests). Empty when there is no glibc (e.g. musl).
glibc_version() {
  if [ -n "${PORTABLE_ENV_GLIBC_VERSION:-}" ]; then
    printf '%s\n' "$PORTABLE_ENV_GLIBC_VERSION"
    return
  fi
  local v
  v=$(getconf GNU_LIBC_VERSION 2>/dev/null | awk '$1 == "glibc" {print $2}') || v=
  if [ -z "$v" ]; then
    v=$(ldd --version 2>&1 | head -n 1 | grep -i -E 'glibc|gnu libc' | grep -o -E '[0-9]+\.[0-9]+' | tail -n 1) || v=
  fi
  printf '%s\n' "$v"
}

# version_ge A B: whether version A (x.y) >= B (x.y).
version_ge() {
  local a1 a2 b1 b2
  IFS=. read -r a1 a2 _ <<<"$1.0"
  IFS=. read -r b1 b2 _ <<<"$2.0"
  a1=${a1//[!0-9]/} a2=${a2//[!0-9]/} b1=${b1//[!0-9]/} b2=${b2//[!0-9]/}
  (( 10#${a1:-0} > 10#${b1:-0} || (10#${a1:-0} == 10#${b1:-0} && 10#${a2:-0} >= 10#${b2:-0}) ))
}

# The CPU flags of this machine (/proc/cpuinfo); PORTABLE_ENV_CPU_FLAGS stands in (for tests).
cpu_flags() {
  if [ -n "${PORTABLE_ENV_CPU_FLAGS+set}" ]; then
    printf '%s\n' "$PORTABLE_ENV_CPU_FLAGS"
    return
  fi
  awk -F: '$1 ~ /^flags/ {print $2; exit}' /proc/cpuinfo 2>/dev/null || true
}

# The flags each x86_64 microarchitecture level adds (the x86-64 psABI levels,
# as /proc/cpuinfo names them: abm is LZCNT).
level_flags() {
  case "$1" in
    2) echo cx16 lahf_lm popcnt sse4_1 sse4_2 ssse3 ;;
    3) echo avx avx2 bmi1 bmi2 f16c fma abm movbe xsave ;;
    4) echo avx512f avx512bw avx512cd avx512dq avx512vl ;;
  esac
}

# The flags an x86_64_vN target needs that this CPU lacks (nothing for x86_64).
missing_cpu_flags() {
  local level=${TARGET_CPU#x86_64_v} have n flag missing=()
  case "$level" in 2 | 3 | 4) ;; *) return 0 ;; esac
  have=" $(cpu_flags | tr -s '[:space:]' ' ') "
  for ((n = 2; n <= level; n++)); do
    for flag in $(level_flags "$n"); do
      case "$have" in *" $flag "*) ;; *) missing+=("$flag") ;; esac
    done
  done
  printf '%s\n' "${missing[*]:-}"
}

# The CUDA version this machine's NVIDIA driver supports (nvidia-smi), empty
# without one; PORTABLE_ENV_CUDA_VERSION stands in (for tests).
cuda_version() {
  if [ -n "${PORTABLE_ENV_CUDA_VERSION+set}" ]; then
    printf '%s\n' "$PORTABLE_ENV_CUDA_VERSION"
    return
  fi
  command -v nvidia-smi >/dev/null 2>&1 || return 0
  { nvidia-smi 2>/dev/null || true; } | grep -o -E 'CUDA Version: *[0-9]+\.[0-9]+' | grep -o -E '[0-9]+\.[0-9]+' | head -n 1 || true
}

arch_ok() {
  local m=$1
  case "$TARGET_ARCH" in
    aarch64 | arm64) [ "$m" = aarch64 ] || [ "$m" = arm64 ] ;;
    x86_64) [ "$m" = x86_64 ] || [ "$m" = amd64 ] ;;
    *) [ "$m" = "$TARGET_ARCH" ] ;;
  esac
}

# The nearest existing directory at or above $1.
existing_parent() {
  local d=$1
  while [ ! -d "$d" ]; do d=$(dirname "$d"); done
  printf '%s\n' "$d"
}

is_empty_dir() { [ -d "$1" ] && [ -z "$(ls -A "$1")" ]; }

# Every check that needs no unpacking; all problems are reported together.
preflight() {
  local dir=$1 problems=() os arch have need missing size parent free
  os=$(uname -s)
  arch=$(uname -m)
  [ "$os" = "$TARGET_OS" ] || problems+=("built for $TARGET_OS, this machine runs $os")
  arch_ok "$arch" || problems+=("built for $TARGET_ARCH CPUs, this machine is $arch")
  # The target it was built for (target: in its project.yml): glibc, CPU level, CUDA.
  need=${TARGET_GLIBC:-$MIN_GLIBC}
  if [ -n "$need" ] && [ "$os" = Linux ]; then
    have=$(glibc_version)
    if [ -z "$have" ]; then
      problems+=("built for glibc >= $need, and this machine has no glibc (getconf GNU_LIBC_VERSION and ldd --version name none; musl systems such as Alpine cannot run it)")
    elif ! version_ge "$have" "$need"; then
      problems+=("built for glibc >= $need (its target glibc${MIN_GLIBC:+; its files need $MIN_GLIBC}), this machine has $have: build it for this machine (target: {glibc: \"$have\"} in its project.yml) or use a newer machine")
    fi
  fi
  if [ -n "$TARGET_CPU" ] && [ "$TARGET_CPU" != "$TARGET_ARCH" ] && arch_ok "$arch"; then
    missing=$(missing_cpu_flags)
    [ -z "$missing" ] \
      || problems+=("built for $TARGET_CPU CPUs (its target cpu), this CPU lacks $missing: build it for target: {cpu: $TARGET_ARCH} in its project.yml, or use a newer CPU")
  fi
  if [ -n "$TARGET_CUDA" ]; then
    have=$(cuda_version)
    if [ -z "$have" ]; then
      problems+=("built for CUDA >= $TARGET_CUDA (its target cuda), and this machine has no NVIDIA driver (nvidia-smi finds none): install the driver, or build it without CUDA (target: {cuda: null})")
    elif ! version_ge "$have" "$TARGET_CUDA"; then
      problems+=("built for CUDA >= $TARGET_CUDA (its target cuda), this machine's NVIDIA driver supports CUDA $have: update the driver, or build it for target: {cuda: \"$have\"}")
    fi
  fi
  command -v tail >/dev/null 2>&1 || problems+=("needs tail (coreutils)")
  command -v tar >/dev/null 2>&1 || problems+=("needs tar")
  if [ -n "$DECOMPRESSOR" ]; then
    command -v "$DECOMPRESSOR" >/dev/null 2>&1 \
      || problems+=("needs $DECOMPRESSOR to unpack a $FORMAT payload: install it with the system's package manager (e.g. apt-get install $DECOMPRESSOR)")
  fi
  command -v sha256sum >/dev/null 2>&1 || command -v shasum >/dev/null 2>&1 || command -v openssl >/dev/null 2>&1 \
    || problems+=("needs sha256sum (coreutils), shasum or openssl to check the payload")
  size=$(wc -c <"$SELF" | tr -d ' ')
  if [ "$size" -ne "$((10#$HEADER_SIZE + PAYLOAD_SIZE))" ]; then
    problems+=("$SELF is $size bytes, expected $((10#$HEADER_SIZE + PAYLOAD_SIZE)): it is truncated or damaged; download it again")
  fi
  if [ -e "$dir" ] && [ ! -d "$dir" ]; then
    problems+=("$dir exists and is not a directory; choose another with -p DIR")
  elif [ -d "$dir" ] && ! is_empty_dir "$dir" && [ "$FORCE" != 1 ]; then
    problems+=("$dir is not empty; choose another with -p DIR, or pass -f to install over it (files of the same name are replaced)")
  fi
  parent=$(existing_parent "$dir")
  [ -w "$parent" ] || problems+=("cannot write to $parent; choose another directory with -p DIR")
  free=$(df -Pk "$parent" 2>/dev/null | awk 'NR == 2 {print $4}') || free=
  if [ -n "$free" ] && [ "$free" -lt "$UNPACKED_KB" ]; then
    problems+=("needs $((UNPACKED_KB / 1024)) MiB free in $parent, it has $((free / 1024)) MiB")
  fi
  if [ ${#problems[@]} -gt 0 ]; then
    say "error: $PROJECT installer: this machine cannot run $PROJECT ($PLATFORM):"
    printf '  - %s\n' "${problems[@]}" >&2
    exit 1
  fi
  say "$PROJECT: checking the payload's sha256 ..."
  have=$(payload | sha256_stream)
  [ "$have" = "$PAYLOAD_SHA256" ] \
    || die "the payload's sha256 is $have, expected $PAYLOAD_SHA256: $SELF is corrupt or was changed; download it again"
}

extract() {
  local dir=$1
  if [ -n "$DECOMPRESS" ]; then
    # shellcheck disable=SC2086 # DECOMPRESS is a program and its options
    payload | $DECOMPRESS | tar -xf - -C "$dir" --no-same-owner
  else
    payload | tar -xf - -C "$dir" --no-same-owner
  fi
}

# THE import probe (scripts/portable_env/probe.py, the one verify-pack runs):
# every import name imports, and sys.prefix is the install directory.
probe_source() {
  cat <<'PORTABLE_ENV_PROBE_END'
@@PROBE@@
PORTABLE_ENV_PROBE_END
}

# Run the environment's python without the caller's python settings.
env_python() {
  env -u PYTHONPATH -u PYTHONHOME -u PYTHONSTARTUP PYTHONNOUSERSITE=1 PYTHONDONTWRITEBYTECODE=1 \
    "$DIR/bin/python" "$@"
}

CREATED=0
FINISHED=0
# shellcheck disable=SC2329 # run by the EXIT trap
cleanup() {
  if [ "$FINISHED" != 1 ] && [ "$CREATED" = 1 ] && [ -n "${DIR:-}" ]; then
    rm -rf -- "$DIR"
    say "$PROJECT: removed the incomplete $DIR"
  fi
}

install() {
  local out
  preflight "$DIR"
  if [ ! -d "$DIR" ]; then
    mkdir -p -- "$DIR" || die "cannot create $DIR"
    CREATED=1
  fi
  trap cleanup EXIT
  trap 'exit 130' INT TERM
  say "$PROJECT: unpacking into $DIR ..."
  extract "$DIR" || die "unpacking into $DIR failed (see above); check free space and permissions"
  [ -x "$DIR/bin/python" ] && [ -f "$DIR/bin/conda-unpack" ] \
    || die "the payload has no bin/python or bin/conda-unpack: it is not a conda-pack archive"
  (cd "$DIR" && env_python "$DIR/bin/conda-unpack") \
    || die "bin/conda-unpack failed in $DIR (see above)"
  say "$PROJECT: checking imports: ${IMPORTS:-(none)}"
  # shellcheck disable=SC2086 # IMPORTS is a list of dotted names, dist:<name>, bin/<program>
  out=$(cd "$DIR" && env_python -c "$(probe_source)" "$DIR" $IMPORTS 2>&1) \
    || die "the installed environment does not work:"$'\n'"$out"
  if [ -n "$SMOKE_TEST" ]; then
    say "$PROJECT: smoke test: $SMOKE_TEST"
    (cd "$DIR" && env -u PYTHONPATH -u PYTHONHOME PATH="$DIR/bin:$PATH" bash -c "$SMOKE_TEST") \
      || die "the smoke test failed in $DIR: $SMOKE_TEST"
  fi
  FINISHED=1
  cat <<EOF
$PROJECT installed in $DIR
  activate:   source $DIR/bin/activate      (leave: source $DIR/bin/deactivate)
  or run:     $DIR/bin/python ...
  manifest:   $DIR/share/portable-env/manifest.json (when built with make pack)
EOF
  local name
  for name in $LAUNCHERS; do
    printf '  launcher:   %s\n' "$DIR/bin/$name"
  done
}

main() {
  local mode=install
  DIR=
  FORCE=0
  while [ $# -gt 0 ]; do
    case "$1" in
      -p | --prefix)
        [ $# -ge 2 ] || usage_error "$1 needs a directory"
        DIR=$2
        shift 2
        ;;
      --prefix=*) DIR=${1#--prefix=}; shift ;;
      -f | --force) FORCE=1; shift ;;
      --check) mode=check; shift ;;
      --list) mode=list; shift ;;
      --manifest) mode=manifest; shift ;;
      -h | --help) mode=help; shift ;;
      *) usage_error "unknown argument: $1" ;;
    esac
  done
  case "$mode" in
    help) usage; return 0 ;;
    list) list_packages; return 0 ;;
    manifest) print_manifest; return 0 ;;
  esac
  [ -f "$SELF" ] || die "run the installer as a file (bash $PROJECT-$PLATFORM.sh), not through a pipe"
  DIR=${DIR:-./$PROJECT}
  case "$DIR" in
    /*) ;;
    *) DIR=$PWD/${DIR#./} ;;
  esac
  while [ "${DIR%/}" != "$DIR" ] && [ "$DIR" != / ]; do DIR=${DIR%/}; done
  case "$DIR" in
    *[[:space:]]*) usage_error "the directory '$DIR' contains white space, which breaks conda environments; choose another" ;;
  esac
  if [ "$mode" = check ]; then
    preflight "$DIR"
    say "$PROJECT: this machine can run $PROJECT ($PLATFORM); install with: bash $ME -p $DIR"
    return 0
  fi
  install
}

main "$@"
exit
# shellcheck disable=SC2317 # the payload marker: never run
__PORTABLE_ENV_PAYLOAD__
