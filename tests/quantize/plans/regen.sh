#!/bin/sh
# Regenerates the type-plan fixtures from shared/tools/synth_gguf.py --plan, whose mixes
# were checked against llama-quantize (llama.cpp c392e509) tensor by tensor. One file per
# preset: a "model" line with the hyper-parameters the choice depends on, a "columns"
# line naming the targets (":pure" = every weight in the base type, as --pure), then one
# line per tensor: name, shape, the type for each column. For the three big presets the
# 1-D tensors (norms, biases: always F32) are left out to keep the files small.
# Usage: sh regen.sh [path/to/shared]   (run from this folder)
set -eu
SHARED=${1:-../../../../shared}
TOOL="/usr/bin/python3 $SHARED/tools/synth_gguf.py"
COLS="Q4_K_M Q4_K_S Q5_K_M Q5_K_S Q6_K Q8_0 Q2_K:pure Q5_K:pure"
for preset in smollm2-135m qwen2-0.5b tiny-gemma2 tiny tiny-qwen2 tiny-phi3 tiny-moe; do
    out=$preset.txt
    tmp=$(mktemp -d)
    for c in $COLS; do
        $TOOL --preset "$preset" --type "${c%:pure}" --plan | grep -v '^#' > "$tmp/$c"
    done
    $TOOL --list-presets | awk -v p="$preset" '$1 == p {
        line = "model"
        for (i = 2; i <= NF; i++) {
            split($i, kv, "=")
            if (kv[1] == "arch") line = line " arch=" kv[2]
            if (kv[1] == "n_layer") line = line " n_layer=" kv[2]
            if (kv[1] == "n_head") line = line " n_head=" kv[2]
            if (kv[1] == "n_head_kv") line = line " n_head_kv=" kv[2]
            if (kv[1] == "experts") line = line " n_expert=" kv[2]
        }
        print line
    }' > "$out"
    echo "columns $COLS" >> "$out"
    first=$(echo $COLS | cut -d' ' -f1)
    paste -d' ' "$tmp/$first" $(for c in $COLS; do [ "$c" = "$first" ] || echo "$tmp/$c"; done) |
        awk -v big="$(case $preset in smollm2-135m|qwen2-0.5b|tiny-gemma2) echo 1;; *) echo 0;; esac)" '{
            if (big == 1 && $2 !~ /x/) next
            line = $1 " " $2 " " $3
            for (i = 6; i <= NF; i += 3) line = line " " $i
            print line
        }' >> "$out"
    rm -r "$tmp"
done
