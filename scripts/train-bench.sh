#!/usr/bin/env bash
# Trainer throughput on the System 1 and System 2 shapes (scripts/train-arith-s1.sh, -s2.sh):
# STEPS optimizer steps of batch 8 on the arithmetic training set, no eval, no checkpoint
# but the last; prints the mean tokens/s and MFU of the log lines after the first (warm-up).
# usage: scripts/train-bench.sh s1|s2 THREADS   (env: PONDER, DATA_DIR, STEPS)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PONDER=${PONDER:-$ROOT/build/release/ponder}
DATA_DIR=${DATA_DIR:-$ROOT/build/arith-data}
STEPS=${STEPS:-40}
shape=${1:?s1 or s2}
threads=${2:?threads}
case "$shape" in
  s1) dims=(--dim 128 --layers 4 --heads 4 --kv-heads 2 --ff 384) ;;
  s2) dims=(--dim 256 --layers 6 --heads 8 --kv-heads 4 --ff 704) ;;
  *) echo "shape: s1 or s2" >&2; exit 2 ;;
esac
"$ROOT/scripts/train-arith-data.sh" "$PONDER" "$DATA_DIR"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$PONDER" train --data "$DATA_DIR/train.jsonl" -o "$tmp/m.gguf" \
  --vocab-from "$ROOT/../shared/models/stories260K/stories260K.gguf" "${dims[@]}" --ctx 256 \
  --steps "$STEPS" --batch 8 --lr 1e-3 --warmup 10 --seed 1 --log-every 5 --eval-every 100000 --save-every 0 \
  -t "$threads" --json | tee "$tmp/log" >/dev/null
python3 - "$shape" "$threads" "$tmp/log" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[3]) if '"tokens_per_s"' in l][1:]
tps = sum(r["tokens_per_s"] for r in rows) / len(rows)
mfu = sum(r["mfu"] for r in rows) / len(rows)
print(f"{sys.argv[1]} -t {sys.argv[2]}: {tps:.0f} tokens/s, MFU {100*mfu:.1f} %")
PY
