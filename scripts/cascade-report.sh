#!/usr/bin/env bash
# The System 1 / System 2 cascade on the arithmetic models. Thresholds are calibrated on a
# validation split (`ponder data arith --split train --seed 3`: disjoint from the test split
# by the generator's construction), then the cascade at those thresholds is measured on the
# test split (seed 2, as scripts/arith-report.sh) next to System 1 alone and System 2 alone
# — offline by `ponder calibrate` (its "configured" row) and through real requests to
# `ponder serve --config` (bench/cascade_serve.mjs), which must agree.
# Writes OUT/auto.yaml, OUT/val*.{csv,svg,png,json}, OUT/test*.{csv,svg,png,json},
# OUT/test-serve.json and OUT/summary.md.
# usage: scripts/cascade-report.sh S1.gguf S2.gguf
#   env: PONDER, OUT, N (items per difficulty, 50), THREADS (1), S1_STRATEGY (cot), S2_STRATEGY (cot)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PONDER=${PONDER:-$ROOT/build/release/ponder}
OUT=${OUT:-$ROOT/bench/results/cascade}
N=${N:-50}
THREADS=${THREADS:-1}
S1_STRATEGY=${S1_STRATEGY:-cot}
S2_STRATEGY=${S2_STRATEGY:-cot}
[ $# -eq 2 ] || { echo "usage: $0 S1.gguf S2.gguf" >&2; exit 2; }
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
rel() { python3 -c 'import os, sys; print(os.path.relpath(os.path.abspath(sys.argv[1]), sys.argv[2]))' "$1" "$OUT"; }
S1=$(rel "$1")
S2=$(rel "$2")
export S1_NAME=$(basename "$1" .gguf) S2_NAME=$(basename "$2" .gguf)

for d in 1 2 3 4; do "$PONDER" data arith --difficulty "$d" --count "$N" --seed 3 --split train; done > "$OUT/val.jsonl"
for d in 1 2 3 4; do "$PONDER" data arith --difficulty "$d" --count "$N" --seed 2 --split test; done > "$OUT/test.jsonl"
python3 - "$OUT/val.jsonl" "$OUT/test.jsonl" <<'EOF'
import json, sys
q = [set(json.loads(l)["question"] for l in open(f)) for f in sys.argv[1:]]
assert not (q[0] & q[1]), "validation and test items overlap"
EOF

config() { # ACCEPT_IF
  cat > "$OUT/auto.yaml" <<EOF
# System 1 / System 2 on the arithmetic models (scripts/cascade-report.sh); paths are
# relative to this file. Prices are illustrative, proportional to the models' parameters.
model_list:
  - model_name: small
    backends: [{local: $S1}]
    price: {input_per_1m: 0.085, output_per_1m: 0.17}
  - model_name: big
    backends: [{local: $S2}]
    price: {input_per_1m: 0.46, output_per_1m: 0.92}
routes:
  auto:
    cascade:
      - model: small
        strategy: "$S1_STRATEGY"
        cue: false
        accept_if: $1
      - model: big
        strategy: "$S2_STRATEGY"
        cue: false
EOF
}

config "{agreement: 0}"
"$PONDER" calibrate --config "$OUT/auto.yaml" --task arith --data "$OUT/val.jsonl" -t "$THREADS" -o "$OUT/val" --json \
  > "$OUT/val.json"
accept=$(python3 -c 'import json, sys; a = json.load(open(sys.argv[1]))["chosen"]["accept_if"]
print("{" + ", ".join("%s: %.6g" % kv for kv in a.items()) + "}" if a else "{agreement: 0}")' "$OUT/val.json")
config "$accept"
"$PONDER" calibrate --config "$OUT/auto.yaml" --task arith --data "$OUT/test.jsonl" -t "$THREADS" -o "$OUT/test" --json \
  > "$OUT/test.json"

# the same cascade through real requests
log=$(mktemp)
"$PONDER" serve --config "$OUT/auto.yaml" --port 0 -t "$THREADS" 2> "$log" &
pid=$!
trap 'kill $pid 2>/dev/null || true; rm -f "$log"' EXIT
for _ in $(seq 100); do grep -q "listening on" "$log" && break; sleep 0.1; done
url=$(grep -o 'http://[^ ]*' "$log" | head -1)
node "$ROOT/bench/cascade_serve.mjs" "$url" auto "$OUT/test.jsonl" --json > "$OUT/test-serve.json"
kill $pid
wait $pid 2>/dev/null || true

python3 - "$OUT" "$accept" <<'EOF' | tee "$OUT/summary.md"
import json, math, sys
out, accept = sys.argv[1], sys.argv[2]
v, t, s = (json.load(open(f"{out}/{n}.json")) for n in ("val", "test", "test-serve"))
def ci(acc, n, z=1.959963984540054):
    k = acc * n
    c = (k + z * z / 2) / (n + z * z); h = z * math.sqrt(k * (n - k) / n + z * z / 4) / (n + z * z)
    return "[%.3f, %.3f]" % (c - h, c + h)
s2 = t["stage2_alone"]["flops_per_item"]
import os
rows = [("System 1 alone (%s, %s)" % (os.environ["S1_NAME"], t["stage1_alone"]["strategy"]), t["stage1_alone"], None),
        ("System 2 alone (%s, %s)" % (os.environ["S2_NAME"], t["stage2_alone"]["strategy"]), t["stage2_alone"], None),
        ("cascade at the calibrated thresholds " + accept, t["configured"], t["configured"]["escalation_rate"])]
print("| arith test split (%d items, -t 1) | accuracy | 95%% CI | FLOPs / item | of System 2's FLOPs | escalated |" % t["n"])
print("| --- | ---: | --- | ---: | ---: | ---: |")
for name, r, esc in rows:
    print("| %s | %.3f | %s | %.3e | %.0f%% | %s |" % (name, r["accuracy"], ci(r["accuracy"], t["n"]), r["flops_per_item"],
          100 * r["flops_per_item"] / s2, "—" if esc is None else "%.0f%%" % (100 * esc)))
c = t["configured"]
gap = 100 * (t["stage2_alone"]["accuracy"] - c["accuracy"])
ok = gap <= 1 + 1e-9 and c["flops_per_item"] <= 0.4 * s2
print()
print("Through `ponder serve --config` (bench/cascade_serve.mjs): accuracy %.3f, %.3e FLOPs/item, answered by stage %s."
      % (s["accuracy"], s["flops_per_item"], json.dumps(s["answered_by_stage"])))
print("Validation split: chosen %s — accuracy %.3f vs System 2 alone %.3f at %.0f%% of its FLOPs (%s)."
      % (json.dumps(v["chosen"]["accept_if"]), v["chosen"]["accuracy"], v["stage2_alone"]["accuracy"],
         100 * v["chosen"]["flops_vs_stage2"], "within the tolerance" if v["within_tolerance"] else "no pair within the tolerance: the most accurate"))
print("Target (System 2's accuracy within 1 point at <= 40%% of its FLOPs) on the test split: %s "
      "(%.1f points below System 2, %.0f%% of its FLOPs)." % ("met" if ok else "NOT met", gap, 100 * c["flops_per_item"] / s2))
EOF
