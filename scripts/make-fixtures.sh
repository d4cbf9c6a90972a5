#!/usr/bin/env bash
# Makes the on-demand synthetic models the reference tests need (they are too big to ship
# in shared/) with shared/tools/synth_gguf.py, and checks each against the sha256 that
# shared/models/synthetic/SHA256SUMS.ondemand records. Skips files already present and
# correct. Usage: scripts/make-fixtures.sh [OUT_DIR]   (default: build/fixtures)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
shared=${PONDER_SHARED:-$here/../shared}
out=${1:-$here/build/fixtures}
mkdir -p "$out"

python=python3
if ! "$python" -c 'import numpy' 2>/dev/null; then python=/usr/bin/python3; fi
if ! "$python" -c 'import numpy' 2>/dev/null; then
  echo "make-fixtures: no python3 with numpy (scripts/install-deps.sh installs python3-numpy)" >&2
  exit 1
fi

# name                      preset        type
fixtures='
syn-tiny-qwen2-F32.gguf     tiny-qwen2    F32
syn-tiny-smollm-F16.gguf    tiny-smollm   F16
syn-tiny-gemma2-F32.gguf    tiny-gemma2   F32
syn-tiny-moe-F32.gguf       tiny-moe      F32
'
echo "$fixtures" | while read -r name preset type; do
  [ -n "$name" ] || continue
  want=$(awk -v n="$name" '$2 == n {print $1}' "$shared/models/synthetic/SHA256SUMS.ondemand")
  if [ -f "$out/$name" ] && [ "$(sha256sum "$out/$name" | cut -d' ' -f1)" = "$want" ]; then
    continue
  fi
  "$python" "$shared/tools/synth_gguf.py" --preset "$preset" --type "$type" --seed 11 -o "$out/$name" >/dev/null 2>&1
  got=$(sha256sum "$out/$name" | cut -d' ' -f1)
  if [ "$got" != "$want" ]; then
    echo "make-fixtures: $name has sha256 $got, expected $want" >&2
    exit 1
  fi
  echo "make-fixtures: made $name"
done
