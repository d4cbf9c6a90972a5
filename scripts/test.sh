#!/usr/bin/env bash
# The whole test suite, as CI runs it: installs what is needed, builds a Release and an
# ASan+UBSan configuration, makes the on-demand test models, and runs CTest on both.
#   scripts/test.sh            # everything (default labels; the slow "fuzz" label runs too)
#   PONDER_TEST_QUICK=1 scripts/test.sh   # Release build only
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
jobs=$(nproc 2>/dev/null || echo 2)

"$root/scripts/install-deps.sh"
"$root/scripts/install-node-deps.sh"   # npm packages of tests/integration (skips without node)
"$root/scripts/make-fixtures.sh" "$root/build/fixtures"

configure_and_test() {
  local dir=$1; shift
  cmake -S "$root" -B "$dir" -DPONDER_WERROR=ON "$@" >/dev/null
  cmake --build "$dir" -j "$jobs"
  ln -sfn "$root/build/fixtures" "$dir/fixtures"
  (cd "$dir" && ctest --output-on-failure -j "$jobs")
}

configure_and_test "$root/build/release" -DCMAKE_BUILD_TYPE=Release
if [ -z "${PONDER_TEST_QUICK:-}" ]; then
  # clang builds the fuzz harness (label "fuzz", bounded time) and the sanitized suite
  # optimized (-O2 -g) so the reference suites finish in minutes under the sanitizers
  CC=clang configure_and_test "$root/build/asan" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPONDER_SANITIZE=ON -DPONDER_FUZZ=ON
fi
