#!/usr/bin/env bash
# The arithmetic models' report: accuracy by difficulty (cot = the greedy chain, and sc:8)
# and the test-time-compute curve (accuracy against FLOPs per item over a strategy sweep)
# on the test split, with `ponder eval`. Writes OUT/<model>-by-difficulty.md,
# OUT/<model>-sweep.csv and OUT/<model>-sweep.svg.
# usage: scripts/arith-report.sh MODEL.gguf...   (env: PONDER, OUT, N per difficulty, THREADS, SWEEP)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PONDER=${PONDER:-$ROOT/build/release/ponder}
OUT=${OUT:-$ROOT/bench/results/arith}
N=${N:-50}
THREADS=${THREADS:-1}
SWEEP=${SWEEP:-direct,cot,sc:4,sc:8,asc:16,sc:16}
data=$(mktemp -d)
trap 'rm -rf "$data"' EXIT
mkdir -p "$OUT"
for d in 1 2 3 4; do
  "$PONDER" data arith --difficulty "$d" --count "$N" --seed 2 --split test > "$data/d$d.jsonl"
done
cat "$data"/d[1-4].jsonl > "$data/all.jsonl"

for model in "$@"; do
  name=$(basename "$model" .gguf)
  table="$OUT/$name-by-difficulty.md"
  {
    echo "| difficulty | items | cot (greedy) | 95% CI | sc:8 | 95% CI | sc:8 FLOPs / cot FLOPs |"
    echo "| ---: | ---: | ---: | --- | ---: | --- | ---: |"
    for d in 1 2 3 4; do
      "$PONDER" eval -m "$model" --task arith --data "$data/d$d.jsonl" --sweep cot,sc:8 -t "$THREADS" --json |
        python3 -c '
import json, sys
rows = [json.loads(l) for l in sys.stdin if l.startswith("{")]
c, s = rows[0], rows[1]
ci = lambda r: "[%.2f, %.2f]" % tuple(r["ci95"])
print("| %s | %d | %.2f | %s | %.2f | %s | %.1f |" % (sys.argv[1], c["n"], c["accuracy"], ci(c), s["accuracy"], ci(s),
      s["mean_flops"] / c["mean_flops"]))' "$d"
    done
  } > "$table"
  echo "$table"; cat "$table"
  "$PONDER" eval -m "$model" --task arith --data "$data/all.jsonl" --sweep "$SWEEP" -t "$THREADS" \
    --csv "$OUT/$name-sweep.csv" --plot "$OUT/$name-sweep.svg" > /dev/null
  cat "$OUT/$name-sweep.csv"
done
