#!/usr/bin/env bash
# Writes the arithmetic task's training and held-out sets (used by train-arith-s1/s2.sh):
#   DIR/train.jsonl  25000 train-split problems of each difficulty 1..4 (seed 1), shuffled
#   DIR/test.jsonl   50 test-split problems of each difficulty 1..4 (seed 2)
# env SEED (train questions' seed, default 1) and PATHS (one, default; mixed: every solution
# line takes one of several equivalent paths, `ponder data arith --paths mixed`).
# usage: scripts/train-arith-data.sh PONDER_BIN DIR
set -euo pipefail
PONDER=${1:?ponder binary}
DIR=${2:?output dir}
mkdir -p "$DIR"
if [[ ! -s "$DIR/train.jsonl" ]]; then
  for d in 1 2 3 4; do "$PONDER" data arith --difficulty "$d" --count 25000 --seed "${SEED:-1}" --paths "${PATHS:-one}"; done |
    shuf --random-source=<(yes) > "$DIR/train.jsonl.tmp"
  mv "$DIR/train.jsonl.tmp" "$DIR/train.jsonl"
fi
if [[ ! -s "$DIR/test.jsonl" ]]; then
  for d in 1 2 3 4; do "$PONDER" data arith --difficulty "$d" --count 50 --seed 2 --split test; done > "$DIR/test.jsonl"
fi
