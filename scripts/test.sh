#!/usr/bin/env bash
# Installs what is missing, builds, and runs every test. Non-zero on failure.
#   1. the asan preset (AddressSanitizer + UndefinedBehaviorSanitizer): every test
#   2. the release preset: every test again, including the install/consumer test
#   3. the decoder fuzzer for a short run (FUZZ_SECONDS, default 30)
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/bootstrap.sh

jobs=$(nproc)
run_preset() {
  local preset=$1
  echo "== $preset: configure and build"
  cmake --preset "$preset" >/dev/null
  cmake --build --preset "$preset" -j "$jobs"
  echo "== $preset: test"
  ctest --preset "$preset" -j "$jobs"
}

start=$(date +%s)
run_preset asan
run_preset release
./scripts/fuzz.sh "${FUZZ_SECONDS:-30}"
echo "== all tests passed in $(( $(date +%s) - start )) s"
