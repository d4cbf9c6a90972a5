#!/usr/bin/env bash
# Scaling sweep for System 2's size: held-out loss against training tokens for three shapes
# on the arithmetic task (same data, schedule and seed), to pick the size a given token
# budget trains best (the issue's "loss vs tokens for 2-3 sizes"). Each run logs JSON; the
# sweep writes OUT/scaling-sweep.csv (shape, params, step, tokens, eval_loss) and
# OUT/scaling-sweep.svg (gnuplot). The held-out loss is over all 200 test.jsonl items
# (difficulties 1-4).
# usage: scripts/train-arith-sweep.sh   (env: PONDER, OUT, DATA_DIR, THREADS, STEPS, EVAL_EVERY, SHAPES)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PONDER=${PONDER:-$ROOT/build/release/ponder}
OUT=${OUT:-$ROOT/bench/results/arith}
DATA_DIR=${DATA_DIR:-$ROOT/build/arith-data}
THREADS=${THREADS:-2}
STEPS=${STEPS:-2000}
EVAL_EVERY=${EVAL_EVERY:-100}
# name:dim:layers:heads:kv_heads:ff
SHAPES=${SHAPES:-"s1:128:4:4:2:384 m:192:6:6:3:512 s2:256:6:8:4:704"}
"$ROOT/scripts/train-arith-data.sh" "$PONDER" "$DATA_DIR"
mkdir -p "$OUT"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for shape in $SHAPES; do
  IFS=: read -r name dim layers heads kv ff <<< "$shape"
  nice -n 19 "$PONDER" train --data "$DATA_DIR/train.jsonl" --eval-data "$DATA_DIR/test.jsonl" -o "$tmp/$name.gguf" \
    --vocab-from "$ROOT/../shared/models/stories260K/stories260K.gguf" \
    --dim "$dim" --layers "$layers" --heads "$heads" --kv-heads "$kv" --ff "$ff" --ctx 256 \
    --steps "$STEPS" --batch 8 --lr 2e-3 --lr-min 2e-4 --warmup 100 --wd 0.1 --clip 1.0 --seed 2 \
    --log-every 10 --eval-every "$EVAL_EVERY" --eval-seqs 200 --save-every 0 -t "$THREADS" --json > "$tmp/$name.log"
done
python3 - "$tmp" "$OUT/scaling-sweep.csv" $SHAPES <<'PY'
import json, sys
tmp, out, shapes = sys.argv[1], sys.argv[2], sys.argv[3:]
with open(out, "w") as f:
    f.write("shape,params,step,tokens,eval_loss\n")
    for s in shapes:
        name = s.split(":")[0]
        params, tokens = 0, 0
        for line in open(f"{tmp}/{name}.log"):
            r = json.loads(line)
            if r.get("event") == "start":
                params = r["n_params"]
            elif r.get("event") == "step":
                tokens += r.get("tokens", 0)
            elif r.get("event") == "eval":
                f.write(f"{name},{params},{r['step']},{tokens},{r['eval_loss']}\n")
PY
plots=()
for shape in $SHAPES; do
  name=${shape%%:*}
  grep "^$name," "$OUT/scaling-sweep.csv" | tr ',' ' ' > "$tmp/$name.dat"
  plots+=("'$tmp/$name.dat' using 4:5 with linespoints title '$name'")
done
gnuplot <<GP
set terminal svg size 720,480
set output '$OUT/scaling-sweep.svg'
set logscale xy
set xlabel 'training tokens'
set ylabel 'held-out loss (test.jsonl, difficulties 1-4)'
set title 'arith: held-out loss against tokens, by model size'
plot $(IFS=,; echo "${plots[*]}")
GP
cat "$OUT/scaling-sweep.csv"
