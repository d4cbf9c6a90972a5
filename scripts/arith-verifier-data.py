#!/usr/bin/env python3
"""Turns the chains `ponder eval --log` wrote for arithmetic items into a verifier's training
pairs (prompt/completion JSONL for `ponder train`), in the format src/think/verify.c reads:

    prompt     = the text the chain continued (the item's "prompt" in the log) + the chain
                 + "\\nVerdict:"
    completion = " right" when the chain's answer equals the gold answer, else " wrong"

Each distinct chain of an item is one pair (sampled chains repeat; a repeated chain would
only weigh the easy items more). Items are split by index: every TEST_EVERY-th item goes to
the held-out file, so no question is in both.

With ITEMS.jsonl (the items the log ran, with their gold "solution"), every proper prefix of
a chain (its first k lines) is a pair too, "right" while those lines are the gold
solution's first k lines: the verifier then learns WHERE a chain goes wrong, not only that
it did — four or five labels per chain instead of one.

usage: arith-verifier-data.py LOG.jsonl TRAIN_OUT.jsonl TEST_OUT.jsonl [TEST_EVERY [ITEMS.jsonl]]
"""
import json
import random
import sys

CUE, YES, NO = "\nVerdict:", " right", " wrong"


def main():
    log_path, train_path, test_path = sys.argv[1:4]
    test_every = int(sys.argv[4]) if len(sys.argv) > 4 else 20
    gold_lines = None
    if len(sys.argv) > 5:
        with open(sys.argv[5]) as f:
            gold_lines = [json.loads(line)["solution"].split("\n") for line in f]
    counts = {"train": [0, 0], "test": [0, 0]}
    train, test = [], []
    with open(log_path) as f:
        for line in f:
            r = json.loads(line)
            split = "test" if r["i"] % test_every == 0 else "train"
            seen = set()
            for s in r["samples"]:
                if s["text"] in seen:
                    continue
                seen.add(s["text"])
                ok = s["answer"] is not None and s["answer"] == r["gold"]
                pairs = [(s["text"], ok)]
                if gold_lines is not None:
                    lines, gold = s["text"].split("\n"), gold_lines[r["i"]]
                    for k in range(1, len(lines)):
                        prefix = "\n".join(lines[:k])
                        if prefix not in seen:
                            seen.add(prefix)
                            pairs.append((prefix, lines[:k] == gold[:k]))
                for text, good in pairs:
                    pair = {"prompt": r["prompt"] + text + CUE, "completion": YES if good else NO}
                    (test if split == "test" else train).append(pair)
                    counts[split][0 if good else 1] += 1
    random.Random(1).shuffle(train)
    for path, rows in ((train_path, train), (test_path, test)):
        with open(path + ".tmp", "w") as f:
            for p in rows:
                f.write(json.dumps(p) + "\n")
    import os
    for path in (train_path, test_path):
        os.replace(path + ".tmp", path)
    for split, (right, wrong) in counts.items():
        print(f"{split}: {right} right, {wrong} wrong chains")


if __name__ == "__main__":
    main()
