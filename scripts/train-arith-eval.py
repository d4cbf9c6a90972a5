#!/usr/bin/env python3
"""Greedy accuracy of a model on arithmetic test problems (JSONL from `ponder data arith`).

For N problems (the first ones of each difficulty in turn): `ponder run` with the question plus a newline as the
prompt (the training format), temperature 0; correct iff the first "The answer is K."
in the output has K == answer. Difficulty = the number of solution lines before the
answer line. Prints one line per difficulty and the total (or JSON with --json).

usage: scripts/train-arith-eval.py PONDER MODEL TEST.jsonl [N] [--json]
"""
import json
import re
import subprocess
import sys


def main():
    args = [a for a in sys.argv[1:] if a != "--json"]
    as_json = "--json" in sys.argv
    if len(args) < 3:
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        return 2
    ponder, model, path = args[:3]
    limit = int(args[3]) if len(args) > 3 else 50
    groups = {}
    for line in open(path):
        if line.strip():
            it = json.loads(line)
            groups.setdefault(it["solution"].count("\n"), []).append(it)
    # the first problems of each difficulty in turn, so N covers every difficulty
    items, k = [], 0
    while len(items) < limit and any(k < len(g) for g in groups.values()):
        items += [g[k] for _, g in sorted(groups.items()) if k < len(g)]
        k += 1
    items = items[:limit]
    per = {}
    for it in items:
        d = it["solution"].count("\n")
        out = subprocess.run([ponder, "run", "-m", model, "-p", it["question"] + "\n", "--temp", "0",
                              "-n", "160", "-t", "1"], capture_output=True, text=True).stdout
        m = re.search(r"The answer is (-?\d+)\.", out)
        ok = bool(m) and int(m.group(1)) == it["answer"]
        c = per.setdefault(d, [0, 0, 0])
        c[0] += ok
        c[1] += 1
        c[2] += bool(m)
    total = sum(c[0] for c in per.values()), sum(c[1] for c in per.values())
    if as_json:
        print(json.dumps({"model": model, "n": total[1], "accuracy": total[0] / max(total[1], 1),
                          "by_difficulty": {str(d): {"correct": c[0], "n": c[1], "answered": c[2]}
                                            for d, c in sorted(per.items())}}))
    else:
        for d, c in sorted(per.items()):
            print(f"difficulty {d}: {c[0]}/{c[1]} correct ({c[2]} in 'The answer is N.' form)")
        print(f"total: {total[0]}/{total[1]} = {total[0] / max(total[1], 1):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
