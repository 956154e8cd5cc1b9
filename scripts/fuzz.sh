#!/usr/bin/env bash
# Usage: scripts/fuzz.sh [SECONDS [TARGET...]]
#
# Builds the libFuzzer targets (fuzz preset, clang) and runs every fuzz_*
# binary (or only the TARGETs named, e.g. fuzz_server_session) for SECONDS
# each (default 60), one after the other, starting from a scratch copy of its
# seed corpus tests/fuzz/corpus/<name>/, so the committed corpus never grows.
# Crash inputs are kept in tests/fuzz/artifacts/<target>/ (git-ignored).
# Exits non-zero if any target fails. TESSENGER_FUZZ_BUILD_DIR overrides the
# preset's build directory.
set -euo pipefail

seconds="${1:-60}"
[[ "$seconds" =~ ^[0-9]+$ ]] || { echo "fuzz.sh: SECONDS must be a whole number, got '$seconds'" >&2; exit 2; }
shift || true
only=("$@")

root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
if [ -x scripts/bootstrap.sh ]; then
  scripts/bootstrap.sh
fi

export CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-2}"
build="${TESSENGER_FUZZ_BUILD_DIR:-}"
if [ -n "$build" ]; then
  cmake --preset fuzz -B "$build" >/dev/null
  cmake --build "$build" --target tessenger_fuzzers
else
  build="$root/build/fuzz"
  cmake --preset fuzz >/dev/null
  # Only the fuzzers and what they link: the rest of the tree is not needed.
  cmake --build --preset fuzz --target tessenger_fuzzers
fi

scratch="$(mktemp -d "${TMPDIR:-/tmp}/tessenger-fuzz.XXXXXX")"
trap 'rm -rf "$scratch"' EXIT

shopt -s nullglob
if [ ${#only[@]} -gt 0 ]; then
  targets=()
  for name in "${only[@]}"; do
    [ -x "$build/tests/fuzz/$name" ] || { echo "fuzz.sh: no fuzz target '$name' in $build/tests/fuzz" >&2; exit 2; }
    targets+=("$build/tests/fuzz/$name")
  done
else
  targets=("$build"/tests/fuzz/fuzz_*)
fi
[ ${#targets[@]} -gt 0 ] || { echo "fuzz.sh: no fuzz_* binaries in $build/tests/fuzz" >&2; exit 1; }

failed=0
for bin in "${targets[@]}"; do
  [ -x "$bin" ] || continue
  target="$(basename "$bin")"
  corpus="$scratch/corpus/$target"
  artifacts="$scratch/artifacts/$target"
  mkdir -p "$corpus" "$artifacts"
  seeds="tests/fuzz/corpus/${target#fuzz_}"
  if [ -d "$seeds" ]; then
    cp -R "$seeds/." "$corpus/"
  fi
  echo "== $target: ${seconds}s from $(ls "$corpus" | wc -l) seeds"
  status=0
  "$bin" -max_total_time="$seconds" -print_final_stats=1 -timeout=10 \
    -artifact_prefix="$artifacts/" "$corpus" >"$scratch/$target.log" 2>&1 || status=$?
  grep -E '^stat::number_of_executed_units' "$scratch/$target.log" | sed "s/^/$target: /" || true
  if [ "$status" -ne 0 ]; then
    failed=1
    kept="tests/fuzz/artifacts/$target"
    mkdir -p "$kept"
    cp -R "$artifacts/." "$kept/"
    echo "== $target FAILED (exit $status); inputs kept in $kept:" >&2
    ls "$kept" >&2
    grep -E 'ERROR|SUMMARY|property violated' "$scratch/$target.log" | head -20 >&2 || true
  fi
done
exit "$failed"
