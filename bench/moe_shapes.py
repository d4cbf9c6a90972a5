#!/usr/bin/env python3
"""Writes three random-weight llama models for the MoE cost benchmark (issue 9): a
Mixtral-style model with 8 experts (2 used per token), a dense model whose FFN equals the
two active experts (same active parameters), and a dense model whose FFN equals all eight
(same total parameters). If generation speed tracks active parameters, the MoE runs close
to the first dense model and far faster than the second.

Uses ../shared/tools/synth_gguf.py as a library (its presets are the fixtures' recipes; the
shapes here are added beside them, not changed). Needs Debian's python3-numpy.

usage: bench/moe_shapes.py OUT_DIR [--type Q8_0]
"""
import argparse
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
SHARED = os.environ.get("PONDER_SHARED", os.path.join(HERE, "..", "..", "shared"))
sys.path.insert(0, os.path.join(SHARED, "tools"))
import synth_gguf as sg  # noqa: E402

BASE = dict(arch="llama", n_embd=512, n_layer=8, n_head=8, n_head_kv=4, n_ctx=1024,
            rope_base=10000.0, rms_eps=1e-5, tied=False, bias=False,
            tokenizer="stories260k", pre=None, n_vocab=512, row_scale_sigma=0.35)
SHAPES = {
    # 8 experts of n_ff 1024, 2 used: 100.7M expert weights, 25.2M of them active
    "bench-moe-8x2": dict(BASE, n_ff=1024, n_expert=8, n_expert_used=2,
                          name="bench MoE 8 experts, 2 used", size_label="8x13M"),
    "bench-dense-active": dict(BASE, n_ff=2048, name="bench dense, MoE active size", size_label="31M"),
    "bench-dense-total": dict(BASE, n_ff=8192, name="bench dense, MoE total size", size_label="107M"),
}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out_dir")
    ap.add_argument("--type", default="Q8_0")
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    os.makedirs(a.out_dir, exist_ok=True)
    stories = os.path.join(SHARED, "models", "stories260K", "stories260K.gguf")
    for name, shape in SHAPES.items():
        sg.PRESETS[name] = shape
        cfg = sg.preset_config(name)
        path = os.path.join(a.out_dir, "%s-%s.gguf" % (name, a.type))
        if os.path.exists(path):
            continue
        sg.write_gguf(path, cfg, a.type, a.seed, stories_path=stories, quiet=True)
        print(path)


if __name__ == "__main__":
    main()
