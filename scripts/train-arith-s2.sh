#!/usr/bin/env bash
# System 2 for the arithmetic task: ~4.6M parameters (dim 256, 6 layers, 8 heads / 4 KV
# heads, ff 704), stories260K's 512-token vocabulary. The trainer runs ~2800 tokens per
# CPU-second on this shape (bench/results/arith/trainer-bench.md), ~0.3 s a step per free
# core; -t 2 runs the batch's sequences data-parallel. Checkpoints every SAVE steps; RESUME=1
# continues from OUT (optimizer state from OUT.optim when it exists; without it, from the
# weights alone with fresh Adam moments: beta2 0.95 forgets within ~20 steps, so LR/WARMUP
# below should then warm up again).
#
# History. The shipped models/arith-s2.gguf (F16 of the F32 checkpoint: `ponder quantize OUT
# models/arith-s2.gguf F16`) came from 1500 steps at lr 1e-3, then RESUME=1 runs at lr 2e-3 to
# step 4000 and on to 5200: ~4 M tokens, about one per parameter (the issue asks for ~20).
# Note the old runs' --eval-seqs 100 read only difficulties 1-2 of test.jsonl (it is sorted by
# difficulty), so their held-out loss said nothing about 3-4; EVAL_SEQS is now 200 (all four).
#
# 2026-12-07: continued from the shipped weights (F16 widened exactly; no .optim, so fresh
# Adam moments). lr 1e-3 raised the training loss 0.021 -> 0.042 in 75 steps; lr 4e-4 raised
# the held-out loss 0.0267 -> 0.0309 (step 100) -> 0.0345 (step 200): too high for
# weights this far along. lr 1e-4 constant brought it to 0.0192 at step 100:
#   cp models/arith-s2.gguf build/s2-run3/arith-s2.gguf
#   OUT=build/s2-run3/arith-s2.gguf RESUME=1 LR=1e-4 LR_MIN=1e-4 WARMUP=20 STEPS=20000 \
#     scripts/train-arith-s2.sh
#   ponder quantize build/s2-run3/arith-s2.gguf models/arith-s2.gguf F16
# models/arith-s2.gguf is that run's checkpoint at step 300 (held-out loss 0.0194; bench/results/arith/
# s2-continued.md). TO RESUME in the next session: the same three commands (the F32
# checkpoint's .optim is 36 MB, over the repo's 32 MB, so the run restarts from the shipped
# F16 weights with fresh moments, which costs nothing measurable at lr 1e-4 with 20 warm-up
# steps). Then, for the issue's +20 points, System 2 needs ~20 tokens per parameter (~90 M;
# the run so far added ~0.2 M): scripts/train-arith-sweep.sh first, to pick the size.
#
# 2026-12-07, second session: a new cosine from the shipped step-300 weights (fresh moments):
#   cp models/arith-s2.gguf build/s2-run4/arith-s2.gguf
#   OUT=build/s2-run4/arith-s2.gguf RESUME=1 LR=1.5e-4 LR_MIN=1.5e-5 WARMUP=50 STEPS=N SAVE=250 \
#     scripts/train-arith-s2.sh
# resumed (with the .optim sidecar, same OUT) with a shorter STEPS whenever the shared machine
# was slower than planned: STEPS 24000 → 14000 (at step 2000) → 8000 (at 3000) → 6500 (at
# 4250); --resume takes the schedule from the flags, so the cosine shortens from there. The
# held-out loss fell 0.0194 → ~0.012 by step 3000. Greedy chains on difficulty 3–4 at step
# 3750: 0.806 (seed 7, 160 items) and 0.780 (seed 13, 200 items), System 1 0.606 / 0.585.
# usage: scripts/train-arith-s2.sh [extra ponder train flags]
#   (env: PONDER, OUT, DATA_DIR, THREADS, STEPS, RESUME, LR, LR_MIN, WARMUP, SAVE, EVAL_SEQS)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PONDER=${PONDER:-$ROOT/build/release/ponder}
OUT=${OUT:-$ROOT/models/arith-s2.gguf}
DATA_DIR=${DATA_DIR:-$ROOT/build/arith-data}
THREADS=${THREADS:-2}
STEPS=${STEPS:-5200}
LR=${LR:-2e-3}
LR_MIN=${LR_MIN:-2e-4}
WARMUP=${WARMUP:-100}
SAVE=${SAVE:-50}
EVAL_SEQS=${EVAL_SEQS:-200}
"$ROOT/scripts/train-arith-data.sh" "$PONDER" "$DATA_DIR"
extra=()
[[ "${RESUME:-0}" == 1 ]] && extra=(--resume "$OUT")
exec nice -n 19 "$PONDER" train --data "$DATA_DIR/train.jsonl" --eval-data "$DATA_DIR/test.jsonl" -o "$OUT" \
  --vocab-from "$ROOT/../shared/models/stories260K/stories260K.gguf" \
  --dim 256 --layers 6 --heads 8 --kv-heads 4 --ff 704 --ctx 256 \
  --steps "$STEPS" --batch 8 --lr "$LR" --lr-min "$LR_MIN" --warmup "$WARMUP" --wd 0.1 --clip 1.0 --seed 2 \
  --log-every 25 --eval-every 100 --eval-seqs "$EVAL_SEQS" --save-every "$SAVE" -t "$THREADS" "${extra[@]}" "$@"
