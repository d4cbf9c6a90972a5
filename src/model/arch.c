/*
 * arch.c — the supported architectures: one row each, naming its layer function
 * (arch_<name>.c) and the facts the loader and the shared blocks need. To add an
 * architecture: write its arch_<name>.c from the blocks of blocks.h, add a row here, then
 * teach the loader any new tensor names.
 */
#include "model/model_internal.h"

#include <string.h>

static const arch_desc ARCHS[] = {
    /* Llama 2/3, SmolLM2, Mistral, TinyStories, Mixtral-style MoE (experts via hparams) */
    {.arch = PONDER_ARCH_LLAMA, .name = "llama", .rope_kind = PONDER_ROPE_NORM, .ffn = FFN_SWIGLU,
     .experts = true, .layer = llama_layer},
    /* Qwen2/2.5: Q/K/V biases, NEOX rope */
    {.arch = PONDER_ARCH_QWEN2, .name = "qwen2", .rope_kind = PONDER_ROPE_NEOX, .ffn = FFN_SWIGLU,
     .qkv_bias_required = true, .layer = qwen2_layer},
    /* Gemma 2: sqrt(n_embd) embedding scale, GeGLU, post-norms, soft-capping, SWA on even layers */
    {.arch = PONDER_ARCH_GEMMA2, .name = "gemma2", .rope_kind = PONDER_ROPE_NEOX, .ffn = FFN_GEGLU,
     .post_norms = true, .embd_scale_sqrt = true, .swa_every = 2, .layer = gemma2_layer},
    /* Phi-3: fused QKV and gate/up, NEOX rope, SWA on every layer */
    {.arch = PONDER_ARCH_PHI3, .name = "phi3", .rope_kind = PONDER_ROPE_NEOX, .ffn = FFN_SWIGLU_FUSED,
     .fused_qkv = true, .swa_every = 1, .layer = phi3_layer},
};

const arch_desc *arch_find(const char *name)
{
    for (size_t i = 0; i < sizeof ARCHS / sizeof ARCHS[0]; i++)
        if (strcmp(ARCHS[i].name, name) == 0)
            return &ARCHS[i];
    return NULL;
}

const char *ponder_arch_name(ponder_arch a)
{
    for (size_t i = 0; i < sizeof ARCHS / sizeof ARCHS[0]; i++)
        if (ARCHS[i].arch == a)
            return ARCHS[i].name;
    return "unknown";
}

const char *ponder_arch_supported_list(void)
{
    return "llama, qwen2, gemma2, phi3";
}
