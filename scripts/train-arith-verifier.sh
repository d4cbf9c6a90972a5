#!/usr/bin/env bash
# A verifier for System 1's arithmetic chains (bon:N --verifier, src/think/verify.c): an
# outcome reward model trained on System 1's OWN sampled chains, labelled by whether each
# chain's answer is the gold one. Why: System 1's wrong chains are systematic, so the vote
# of sc:N only repeats its bias, while one of 16 chains is right far more often
# (bench/results/arith/ttc-sampling.md); a judge picks it out.
#
#   1. ITEMS train-split problems (seed 11, not the generator's training seed 1, none of the
#      test split), weighted to the hard difficulties;
#   2. System 1 samples 16 chains each (`ponder eval --sweep sc:16 --temp 0.7 --log`);
#   3. scripts/arith-verifier-data.py: each distinct chain and each of its line prefixes →
#      one prompt/completion pair ("...chain\nVerdict:" → " right" / " wrong"; a prefix is
#      right while it is the gold solution's), every 20th item held out;
#   4. `ponder train` continues from System 1's weights (it already reads the format and
#      knows the arithmetic; fresh Adam moments) on those pairs, loss on the verdict only.
#
# usage: scripts/train-arith-verifier.sh
#   (env: PONDER, GEN (the chain generator, default models/arith-s1.gguf), OUT, DIR, STEPS,
#    THREADS, LR, RESUME=1 to continue OUT)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PONDER=${PONDER:-$ROOT/build/release/ponder}
GEN=${GEN:-$ROOT/models/arith-s1.gguf}
OUT=${OUT:-$ROOT/models/arith-s1-verifier.gguf}
DIR=${DIR:-$ROOT/build/arith-verifier}
STEPS=${STEPS:-1200}
THREADS=${THREADS:-2}
LR=${LR:-5e-4}
mkdir -p "$DIR"
if [[ ! -s "$DIR/items.jsonl" ]]; then
  for spec in 1:400 2:800 3:1600 4:1600; do
    "$PONDER" data arith --difficulty "${spec%%:*}" --count "${spec##*:}" --seed 11 --split train
  done > "$DIR/items.jsonl.tmp"
  mv "$DIR/items.jsonl.tmp" "$DIR/items.jsonl"
fi
if [[ ! -s "$DIR/chains.jsonl" ]]; then
  nice -n 10 "$PONDER" eval -m "$GEN" --task arith --data "$DIR/items.jsonl" --sweep sc:16 --temp 0.7 \
    -t "$THREADS" --log "$DIR/chains.jsonl.tmp"
  mv "$DIR/chains.jsonl.tmp" "$DIR/chains.jsonl"
fi
python3 "$ROOT/scripts/arith-verifier-data.py" "$DIR/chains.jsonl" "$DIR/train.jsonl" "$DIR/test.jsonl" 20 "$DIR/items.jsonl"
if [[ "${RESUME:-0}" != 1 ]]; then
  rm -f "$OUT.optim" # a new run: System 1's weights, fresh optimizer moments
  cp "$GEN" "$OUT.tmp" && mv "$OUT.tmp" "$OUT"
fi
exec nice -n 10 "$PONDER" train --data "$DIR/train.jsonl" --eval-data "$DIR/test.jsonl" -o "$OUT" --resume "$OUT" \
  --steps "$STEPS" --batch 32 --lr "$LR" --lr-min 5e-5 --warmup 50 --wd 0.1 --clip 1.0 --seed 3 \
  --log-every 25 --eval-every 100 --eval-seqs 400 --save-every 100 -t "$THREADS"
