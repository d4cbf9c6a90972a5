/*
 * arch.c — the supported architectures and how each differs from llama's block.
 * To add an architecture: add a row, then teach the loader any new tensor names.
 */
#include "model/model_internal.h"

#include <string.h>

static const arch_desc ARCHS[] = {
    /* Llama 2/3, SmolLM2, Mistral, TinyStories, Mixtral-style MoE (experts via hparams) */
    {.arch = PONDER_ARCH_LLAMA, .name = "llama", .rope_kind = PONDER_ROPE_NORM, .ffn = FFN_SWIGLU},
    /* Qwen2/2.5: Q/K/V biases, NEOX rope */
    {.arch = PONDER_ARCH_QWEN2, .name = "qwen2", .rope_kind = PONDER_ROPE_NEOX, .ffn = FFN_SWIGLU,
     .qkv_bias_required = true},
    /* Gemma 2: sqrt(n_embd) embedding scale, GeGLU, post-norms, soft-capping, SWA on even layers */
    {.arch = PONDER_ARCH_GEMMA2, .name = "gemma2", .rope_kind = PONDER_ROPE_NEOX, .ffn = FFN_GEGLU,
     .post_norms = true, .embd_scale_sqrt = true, .q_prescale = true, .swa_every = 2},
    /* Phi-3: fused QKV and gate/up, NEOX rope, SWA on every layer */
    {.arch = PONDER_ARCH_PHI3, .name = "phi3", .rope_kind = PONDER_ROPE_NEOX, .ffn = FFN_SWIGLU_FUSED,
     .fused_qkv = true, .q_prescale = true, .swa_every = 1},
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
