#!/usr/bin/env bash
# Trainer throughput on the System 1 and System 2 shapes (scripts/train-arith-s1.sh, -s2.sh):
# STEPS optimizer steps of batch 8 on the first 4000 items of the arithmetic training set
# (same seed, so every binary sees the same sequences), no eval, no checkpoint but the last.
# Prints wall-clock tokens/s and MFU (mean of the log lines after the first) and tokens per
# CPU-second of the whole process (/usr/bin/time): on a shared machine the first shows the
# load, the second the kernels. TOKENS (the run's token count) is needed for a binary whose
# log lacks "tokens" (before it was added).
# usage: scripts/train-bench.sh s1|s2 THREADS   (env: PONDER, DATA_DIR, STEPS, TOKENS)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PONDER=${PONDER:-$ROOT/build/release/ponder}
DATA_DIR=${DATA_DIR:-$ROOT/build/arith-data}
STEPS=${STEPS:-20}
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
head -n 4000 "$DATA_DIR/train.jsonl" > "$tmp/train.jsonl"
/usr/bin/time -o "$tmp/time" -f "%e %U %S" "$PONDER" train --data "$tmp/train.jsonl" -o "$tmp/m.gguf" \
  --vocab-from "$ROOT/../shared/models/stories260K/stories260K.gguf" "${dims[@]}" --ctx 256 \
  --steps "$STEPS" --batch 8 --lr 1e-3 --warmup 10 --seed 1 --log-every 5 --eval-every 100000 --save-every 0 \
  -t "$threads" --json > "$tmp/log"
python3 - "$shape" "$threads" "$tmp/log" "$tmp/time" "${TOKENS:-0}" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[3]) if '"tokens_per_s"' in l]
tps = sum(r["tokens_per_s"] for r in rows[1:]) / len(rows[1:])
mfu = sum(r["mfu"] for r in rows[1:]) / len(rows[1:])
tokens = sum(r.get("tokens", 0) for r in rows) or int(sys.argv[5])
wall, user, sys_ = map(float, open(sys.argv[4]).read().split()[-3:])
cpu = f", {tokens / (user + sys_):.0f} tokens/CPU-s ({tokens} tokens, {wall:.1f} s wall, {user + sys_:.1f} s CPU)" if tokens else ""
print(f"{sys.argv[1]} -t {sys.argv[2]}: {tps:.0f} tokens/s, MFU {100*mfu:.1f} %{cpu}")
PY
