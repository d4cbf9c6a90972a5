#!/usr/bin/env bash
# System 2 -> System 1 distillation on the arithmetic task:
#   1. a weak student: System 1's shape (scripts/train-arith-s1.sh) trained for only
#      STUDENT_STEPS steps (default 1000),
#   2. QUESTIONS train-split questions (default 2000; difficulties 1-4 in equal parts, seed 9;
#      their labels ride along for the report only — ponder distill never uses them to choose),
#   3. ponder distill: TEACHER (default models/arith-s2.gguf) with sc:8 at T 0.7 keeps the
#      chains that agree with its vote, the student is fine-tuned on them (STEPS steps, default
#      2000, lr 1e-3 -> 1e-4) and scored greedily on the test split (200 problems) before/after.
# The control (the same fine-tune on the questions' gold solutions) is the command in
# bench/results/arith/distill-s2.md. Niced; ~30 minutes on two busy cores (the teacher's
# 16,000 chains ~17 min, the fine-tune ~10). Prints the --json summary.
# usage: scripts/distill-arith.sh   (env: PONDER, TEACHER, WORK, STUDENT_STEPS, QUESTIONS, STEPS, THREADS)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PONDER=${PONDER:-$ROOT/build/release/ponder}
TEACHER=${TEACHER:-$ROOT/models/arith-s2.gguf}
WORK=${WORK:-$ROOT/build/distill-arith}
STUDENT_STEPS=${STUDENT_STEPS:-1000}
QUESTIONS=${QUESTIONS:-2000}
STEPS=${STEPS:-2000}
THREADS=${THREADS:-2}
DATA_DIR=${DATA_DIR:-$ROOT/build/arith-data}
mkdir -p "$WORK"
"$ROOT/scripts/train-arith-data.sh" "$PONDER" "$DATA_DIR"
STUDENT="$WORK/student-$STUDENT_STEPS.gguf"
if [[ ! -s "$STUDENT" ]]; then
  PONDER="$PONDER" OUT="$STUDENT" STEPS="$STUDENT_STEPS" DATA_DIR="$DATA_DIR" "$ROOT/scripts/train-arith-s1.sh" \
    --save-every 0 --eval-every "$STUDENT_STEPS" --log-every 100 > "$WORK/student-$STUDENT_STEPS.log"
fi
per=$((QUESTIONS / 4))
for d in 1 2 3 4; do "$PONDER" data arith --difficulty "$d" --count "$per" --seed 9; done > "$WORK/questions.jsonl"
exec nice -n 19 "$PONDER" distill --teacher "$TEACHER" --strategy sc:8 --student "$STUDENT" \
  --data "$WORK/questions.jsonl" --eval-data "$DATA_DIR/test.jsonl" -o "$WORK/student-$STUDENT_STEPS-distilled.gguf" \
  --steps "$STEPS" --lr 1e-3 --lr-min 1e-4 --warmup 50 --batch 8 -t "$THREADS" \
  --keep-chains "$WORK/kept.jsonl" --json "$@"
