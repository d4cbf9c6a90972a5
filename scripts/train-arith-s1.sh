#!/usr/bin/env bash
# System 1 for the arithmetic task: ~0.85M parameters (dim 128, 4 layers, 4 heads / 2 KV
# heads, ff 384), stories260K's 512-token vocabulary. About an hour on one core of the
# 2-core dev machine with the old trainer; ~11700 tokens per CPU-second now (-t 2 runs the
# batch data-parallel). Checkpoints every 250 steps, so a partial
# run leaves a usable model; rerun with RESUME=1 to continue from OUT.
# usage: scripts/train-arith-s1.sh   (env: PONDER, OUT, DATA_DIR, THREADS, STEPS, RESUME)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PONDER=${PONDER:-$ROOT/build/release/ponder}
OUT=${OUT:-$ROOT/models/arith-s1.gguf}
DATA_DIR=${DATA_DIR:-$ROOT/build/arith-data}
THREADS=${THREADS:-2}
STEPS=${STEPS:-6000}
"$ROOT/scripts/train-arith-data.sh" "$PONDER" "$DATA_DIR"
extra=()
[[ "${RESUME:-0}" == 1 ]] && extra=(--resume "$OUT")
exec nice -n 19 "$PONDER" train --data "$DATA_DIR/train.jsonl" --eval-data "$DATA_DIR/test.jsonl" -o "$OUT" \
  --vocab-from "$ROOT/../shared/models/stories260K/stories260K.gguf" \
  --dim 128 --layers 4 --heads 4 --kv-heads 2 --ff 384 --ctx 256 \
  --steps "$STEPS" --batch 8 --lr 2e-3 --lr-min 2e-4 --warmup 200 --wd 0.1 --clip 1.0 --seed 1 \
  --log-every 25 --eval-every 250 --eval-seqs 200 --save-every 250 -t "$THREADS" "${extra[@]}" "$@"
