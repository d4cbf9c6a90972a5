/*
 * plan.c — the quantization presets and the per-tensor type choice.
 *
 * The choice reproduces llama.cpp's llama_tensor_get_type (src/llama-quant.cpp at
 * c392e509, Feb 2025) for the file types listed below, so `ponder quantize` and
 * llama-quantize give a model the same tensor types. That function is one long ladder
 * keyed on the file type; here each preset row carries its rules as small enums, one per
 * tensor role (attn_v, ffn_down, attn_output, attn_qkv), and the code per role reads
 * the preset's rule. To add a preset: add a row; a new rule kind also needs a case in
 * the role's switch.
 *
 * What llama.cpp does, in the order it does it:
 *  1. Only "quantizable" tensors are considered (quantizable() below): names ending in
 *     "weight" with at least 2 non-trivial dimensions, minus norms, the MoE router and a
 *     few small tensors. Everything else is copied.
 *  2. Float file types (F32/F16/BF16) and --pure put every quantizable tensor in the base
 *     type. Otherwise tensors are visited in llama-model-loader's order (non-layer
 *     tensors first, then by layer number, names sorted within a layer) and the role
 *     rules apply, with counters of the attn_v / ffn_down / ffn_gate / ffn_up tensors
 *     seen so far standing in for the layer index (MoE models parse it from the name).
 *  3. Fallback when the row length ne[0] is not a multiple of the type's block size.
 * llama.cpp stops with an error where a type has no fallback (Q8_0 on rows of 48, say)
 * and skips the fallback with --pure (then aborts in ggml); ponder uses F16 in the first
 * case and applies the fallback in the second, so every preset gives a writable file.
 */
#include "ponder/quantize.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Rules for attn_v (the else-if chain of llama_tensor_get_type's attn_v branch). */
typedef enum v_rule {
    V_KEEP,
    V_GQA4_Q4_K_ELSE_Q3_K, /* Q2_K: n_gqa >= 4 ? Q4_K : Q3_K */
    V_FIRST2_Q5_K_ELSE_Q4_K, /* Q3_K_M: the first two attn_v Q5_K, the rest Q4_K */
    V_Q5_K,                /* Q3_K_L */
    V_GQA4_Q5_K,           /* IQ4_NL: Q5_K when n_gqa >= 4 */
    V_MORE_BITS_Q6_K,      /* Q4_K_M, Q5_K_M: Q6_K in use_more_bits layers */
    V_FIRST4_Q5_K,         /* Q4_K_S: the first four attn_v Q5_K */
} v_rule;

/* Rules for ffn_down (dense: the layer is the count of ffn_down seen; MoE: from the name). */
typedef enum down_rule {
    D_KEEP,
    D_Q3_K,       /* Q2_K */
    D_Q3_K_M,     /* i < n/16: Q5_K; else Q4_K (falcon: Q4_K only in use_more_bits layers) */
    D_Q3_K_L,     /* Q5_K (falcon: Q4_K) */
    D_Q4_K_M,     /* use_more_bits: Q6_K (falcon: i < n/16 Q6_K, use_more_bits Q5_K) */
    D_FIRST8_Q5_K,          /* IQ4_NL without an importance matrix: i < n/8 -> Q5_K */
    D_MORE_BITS_Q6_K,       /* Q5_K_M */
    D_FIRST8_Q5_K_NOT_FALCON, /* Q4_K_S */
} down_rule;

#define KEEP PONDER_TYPE_COUNT /* "no change" in the type columns below */

typedef struct mix_rules {
    v_rule attn_v;
    down_rule ffn_down;
    ponder_type attn_output;        /* dense models, not falcon */
    ponder_type attn_output_moe8;   /* models with exactly 8 experts, not falcon */
    ponder_type attn_output_falcon;
    ponder_type attn_qkv;           /* fused QKV (phi3, falcon, ...) */
} mix_rules;

typedef struct preset_row {
    ponder_quantize_preset pub;
    mix_rules rules;
} preset_row;

/* llama_ftype numbers from llama.h. Rules not listed are KEEP / V_KEEP / D_KEEP. */
#define T(x) PONDER_TYPE_##x
static const preset_row PRESETS[] = {
    {{"Q4_0", 2, T(Q4_0), false, "4.5 bpw round-to-nearest, output Q6_K"}, {0, 0, KEEP, KEEP, KEEP, KEEP}},
    {{"Q4_1", 3, T(Q4_1), false, "5.0 bpw with a per-block minimum, output Q6_K"}, {0, 0, KEEP, KEEP, KEEP, KEEP}},
    {{"Q5_0", 8, T(Q5_0), false, "5.5 bpw round-to-nearest, output Q6_K"}, {0, 0, KEEP, KEEP, KEEP, KEEP}},
    {{"Q5_1", 9, T(Q5_1), false, "6.0 bpw with a per-block minimum, output Q6_K"}, {0, 0, KEEP, KEEP, KEEP, KEEP}},
    {{"IQ4_NL", 25, T(IQ4_NL), false, "4.5 bpw non-linear, output Q6_K"},
     {V_GQA4_Q5_K, D_FIRST8_Q5_K, KEEP, T(Q5_K), KEEP, KEEP}},
    {{"Q2_K", 10, T(Q2_K), false, "mostly Q2_K; attn_v, ffn_down, attn_output Q3_K"},
     {V_GQA4_Q4_K_ELSE_Q3_K, D_Q3_K, T(Q3_K), T(Q5_K), KEEP, KEEP}},
    {{"Q3_K_S", 11, T(Q3_K), false, "Q3_K throughout, output Q6_K"}, {0, 0, KEEP, T(Q5_K), KEEP, KEEP}},
    {{"Q3_K_M", 12, T(Q3_K), false, "mostly Q3_K; attn_v, ffn_down, attn_output Q4_K/Q5_K"},
     {V_FIRST2_Q5_K_ELSE_Q4_K, D_Q3_K_M, T(Q4_K), T(Q5_K), KEEP, T(Q4_K)}},
    {{"Q3_K_L", 13, T(Q3_K), false, "mostly Q3_K; attn_v, ffn_down, attn_output Q5_K"},
     {V_Q5_K, D_Q3_K_L, T(Q5_K), KEEP, T(Q4_K), T(Q4_K)}},
    {{"Q4_K_S", 14, T(Q4_K), false, "mostly Q4_K; the first layers' attn_v, ffn_down Q5_K"},
     {V_FIRST4_Q5_K, D_FIRST8_Q5_K_NOT_FALCON, KEEP, T(Q5_K), KEEP, KEEP}},
    {{"Q4_K_M", 15, T(Q4_K), false, "mostly Q4_K; half of attn_v, ffn_down Q6_K"},
     {V_MORE_BITS_Q6_K, D_Q4_K_M, KEEP, T(Q5_K), KEEP, T(Q5_K)}},
    {{"Q5_K_S", 16, T(Q5_K), false, "Q5_K throughout, output Q6_K"}, {0, 0, KEEP, KEEP, KEEP, KEEP}},
    {{"Q5_K_M", 17, T(Q5_K), false, "mostly Q5_K; half of attn_v, ffn_down Q6_K"},
     {V_MORE_BITS_Q6_K, D_MORE_BITS_Q6_K, KEEP, KEEP, KEEP, T(Q6_K)}},
    {{"Q6_K", 18, T(Q6_K), false, "6.6 bpw K-quant throughout"}, {0, 0, KEEP, KEEP, KEEP, KEEP}},
    {{"Q8_0", 7, T(Q8_0), false, "8.5 bpw, nearly lossless"}, {0, 0, KEEP, KEEP, KEEP, KEEP}},
    /* Not llama.cpp file types (llama-quantize reads "Q4_K" as Q4_K_M): every weight in
     * that type, as llama-quantize --pure; general.file_type is the _S variant's. */
    {{"Q3_K", 11, T(Q3_K), true, "pure Q3_K (every weight matrix, output included)"}, {0, 0, KEEP, KEEP, KEEP, KEEP}},
    {{"Q4_K", 14, T(Q4_K), true, "pure Q4_K (every weight matrix, output included)"}, {0, 0, KEEP, KEEP, KEEP, KEEP}},
    {{"Q5_K", 16, T(Q5_K), true, "pure Q5_K (every weight matrix, output included)"}, {0, 0, KEEP, KEEP, KEEP, KEEP}},
    {{"F16", 1, T(F16), false, "16-bit float"}, {0, 0, KEEP, KEEP, KEEP, KEEP}},
    {{"BF16", 32, T(BF16), false, "bfloat16"}, {0, 0, KEEP, KEEP, KEEP, KEEP}},
    {{"F32", 0, T(F32), false, "32-bit float"}, {0, 0, KEEP, KEEP, KEEP, KEEP}},
};
#undef T
#define N_PRESETS ((int)(sizeof PRESETS / sizeof PRESETS[0]))

const ponder_quantize_preset *ponder_quantize_preset_at(int i)
{
    return i >= 0 && i < N_PRESETS ? &PRESETS[i].pub : NULL;
}

static const preset_row *find_row(const char *name)
{
    if (!name)
        return NULL;
    for (int i = 0; i < N_PRESETS; i++)
        if (strcasecmp(PRESETS[i].pub.name, name) == 0)
            return &PRESETS[i];
    return NULL;
}

const ponder_quantize_preset *ponder_quantize_preset_find(const char *name)
{
    const preset_row *r = find_row(name);
    return r ? &r->pub : NULL;
}

/* ---- which tensors are quantized ---- */

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && memcmp(s + n - k, suffix, k) == 0;
}

/* ggml_n_dims: trailing dimensions of size 1 do not count. */
static int n_dims_used(const int64_t *ne)
{
    for (int d = PONDER_GGUF_MAX_DIMS - 1; d >= 1; d--)
        if (ne[d] > 1)
            return d + 1;
    return 1;
}

/* Substrings that exclude a "…weight" tensor from quantization in llama-quantize:
 * small or sensitive tensors that stay in their input type. */
static const char *const NEVER_QUANTIZED[] = {
    "_norm.weight",        /* norms */
    "ffn_gate_inp.weight", /* MoE router */
    "ssm_conv1d.weight",   /* Mamba */
    "time_mix_first.weight", "time_mix_w0.weight", "time_mix_w1.weight", "time_mix_w2.weight",
    "time_mix_v0.weight", "time_mix_v1.weight", "time_mix_v2.weight", "time_mix_a0.weight",
    "time_mix_a1.weight", "time_mix_a2.weight", "time_mix_g1.weight", "time_mix_g2.weight",
    "time_mix_decay_w1.weight", "time_mix_decay_w2.weight", "time_mix_lerp_fused.weight", /* RWKV */
    "attn_rel_b.weight",   /* T5 relative position bias */
    ".position_embd.",     /* multimodal projector */
};
/* Whole names excluded (BERT's position embeddings and token types). */
static const char *const NEVER_QUANTIZED_NAMES[] = { "position_embd.weight", "token_types.weight" };

static bool quantizable(const ponder_quantize_tensor_desc *t)
{
    if (!ends_with(t->name, "weight") || n_dims_used(t->ne) < 2)
        return false;
    for (size_t i = 0; i < sizeof NEVER_QUANTIZED / sizeof NEVER_QUANTIZED[0]; i++)
        if (strstr(t->name, NEVER_QUANTIZED[i]))
            return false;
    for (size_t i = 0; i < sizeof NEVER_QUANTIZED_NAMES / sizeof NEVER_QUANTIZED_NAMES[0]; i++)
        if (strcmp(t->name, NEVER_QUANTIZED_NAMES[i]) == 0)
            return false;
    return true;
}

/* ---- roles ---- */

typedef enum role {
    R_OTHER,
    R_OUTPUT,     /* output.weight, or token_embd.weight when the model has no output.weight */
    R_TOKEN_EMBD,
    R_ATTN_V,
    R_ATTN_K,
    R_ATTN_Q,
    R_FFN_DOWN,
    R_ATTN_OUTPUT,
    R_ATTN_QKV,
    R_FFN_GATE,
    R_FFN_UP,
} role;

/* The branch of llama_tensor_get_type a name lands in (first match wins, as there). */
static const struct {
    const char *needle;
    role r;
} ROLE_BY_SUBSTRING[] = {
    {"attn_v.weight", R_ATTN_V},           {"attn_k.weight", R_ATTN_K},
    {"attn_q.weight", R_ATTN_Q},           {"ffn_down", R_FFN_DOWN},
    {"attn_output.weight", R_ATTN_OUTPUT}, {"attn_qkv.weight", R_ATTN_QKV},
    {"ffn_gate", R_FFN_GATE},              {"ffn_up", R_FFN_UP},
};

static role classify(const char *name, bool has_output)
{
    if (strcmp(name, "output.weight") == 0 || (!has_output && strcmp(name, "token_embd.weight") == 0))
        return R_OUTPUT;
    if (strcmp(name, "token_embd.weight") == 0)
        return R_TOKEN_EMBD;
    for (size_t i = 0; i < sizeof ROLE_BY_SUBSTRING / sizeof ROLE_BY_SUBSTRING[0]; i++)
        if (strstr(name, ROLE_BY_SUBSTRING[i].needle))
            return ROLE_BY_SUBSTRING[i].r;
    return R_OTHER;
}

/* Tensors counted in n_attention_wv (llama-quant.cpp's first pass over all tensors). */
static bool counts_as_attn_v(const char *name)
{
    return strstr(name, "attn_v.weight") || strstr(name, "attn_qkv.weight") || strstr(name, "attn_kv_b.weight");
}

/* ---- the choice ---- */

typedef struct plan_state {
    const mix_rules *rules;
    const ponder_quantize_model_info *m;
    bool has_output;
    bool falcon;
    bool is_70b;      /* llama.cpp's LLM_TYPE_70B: 8 query heads share each attn_v */
    int32_t n_gqa;    /* n_head / n_head_kv of layer 0 */
    int32_t n_attention_wv;
    int32_t i_attention_wv, i_ffn_down, i_ffn_gate, i_ffn_up;
} plan_state;

/* llama.cpp's use_more_bits: the first and last eighth of the layers and every third
 * one in between. */
static bool use_more_bits(int32_t i, int32_t n)
{
    return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2;
}

/* "blk.N." → N (as sscanf("blk.%d.")), or -1. */
static int32_t layer_of(const char *name)
{
    if (strncmp(name, "blk.", 4) != 0)
        return -1;
    const char *p = name + 4;
    bool neg = *p == '-';
    if (*p == '-' || *p == '+')
        p++;
    if (*p < '0' || *p > '9')
        return -1;
    int64_t v = 0;
    for (; *p >= '0' && *p <= '9'; p++)
        if ((v = v * 10 + (*p - '0')) > INT32_MAX)
            return -1;
    return (int32_t)(neg ? -v : v);
}

/* layer_info(): dense models use the running counter; with experts the layer comes from
 * the name, because llama.cpp found Mixtral's expert tensors out of order. */
static ponder_status layer_index(const plan_state *s, int32_t counter, const char *name, int32_t *out,
                                 ponder_error *err)
{
    if (s->m->n_expert <= 1) {
        *out = counter;
        return PONDER_OK;
    }
    int32_t il = layer_of(name);
    if (il < 0 || il >= s->m->n_layer)
        return ponder_error_set(err, PONDER_ERR_FORMAT, "tensor '%s': cannot tell its layer (block count %" PRId32
                                ")", name, s->m->n_layer);
    *out = il;
    return PONDER_OK;
}

static ponder_type attn_v_type(const plan_state *s, ponder_type t)
{
    const int32_t i = s->i_attention_wv, n = s->n_attention_wv;
    switch (s->rules->attn_v) {
    case V_KEEP: break;
    case V_GQA4_Q4_K_ELSE_Q3_K: t = s->n_gqa >= 4 ? PONDER_TYPE_Q4_K : PONDER_TYPE_Q3_K; break;
    case V_FIRST2_Q5_K_ELSE_Q4_K: t = i < 2 ? PONDER_TYPE_Q5_K : PONDER_TYPE_Q4_K; break;
    case V_Q5_K: t = PONDER_TYPE_Q5_K; break;
    case V_GQA4_Q5_K: if (s->n_gqa >= 4) t = PONDER_TYPE_Q5_K; break;
    case V_MORE_BITS_Q6_K: if (use_more_bits(i, n)) t = PONDER_TYPE_Q6_K; break;
    case V_FIRST4_Q5_K: if (i < 4) t = PONDER_TYPE_Q5_K; break;
    }
    /* attn_v is 8x smaller than attn_q in a 70B model: more bits cost little */
    if (s->is_70b && (t == PONDER_TYPE_Q3_K || t == PONDER_TYPE_Q4_K))
        t = PONDER_TYPE_Q5_K;
    if (s->m->n_expert == 8)
        t = PONDER_TYPE_Q8_0;
    return t;
}

static ponder_type ffn_down_type(const plan_state *s, ponder_type t, int32_t i, int32_t n)
{
    switch (s->rules->ffn_down) {
    case D_KEEP: break;
    case D_Q3_K: t = PONDER_TYPE_Q3_K; break;
    case D_Q3_K_M:
        t = i < n / 16 ? PONDER_TYPE_Q5_K
          : !s->falcon || use_more_bits(i, n) ? PONDER_TYPE_Q4_K : PONDER_TYPE_Q3_K;
        break;
    case D_Q3_K_L: t = s->falcon ? PONDER_TYPE_Q4_K : PONDER_TYPE_Q5_K; break;
    case D_Q4_K_M:
        if (s->falcon)
            t = i < n / 16 ? PONDER_TYPE_Q6_K : use_more_bits(i, n) ? PONDER_TYPE_Q5_K : PONDER_TYPE_Q4_K;
        else if (use_more_bits(i, n))
            t = PONDER_TYPE_Q6_K;
        break;
    case D_FIRST8_Q5_K: if (i < n / 8) t = PONDER_TYPE_Q5_K; break;
    case D_MORE_BITS_Q6_K: if (use_more_bits(i, n)) t = PONDER_TYPE_Q6_K; break;
    case D_FIRST8_Q5_K_NOT_FALCON: if (!s->falcon && i < n / 8) t = PONDER_TYPE_Q5_K; break;
    }
    return t;
}

static ponder_type or_keep(ponder_type rule, ponder_type t)
{
    return rule == KEEP ? t : rule;
}

static int64_t block_elems(ponder_type t)
{
    const ponder_type_traits *tr = ponder_type_get_traits((int)t);
    return tr ? tr->block_elems : 1;
}

/* The mix's type for one quantizable tensor, before the fallback. Updates the counters. */
static ponder_status mix_type(plan_state *s, const ponder_quantize_tensor_desc *t, ponder_type base,
                              ponder_type *out, ponder_error *err)
{
    ponder_type nt = base;
    int32_t il;
    ponder_status st;
    switch (classify(t->name, s->has_output)) {
    case R_OUTPUT:
        if (s->falcon || t->ne[0] % block_elems(nt) != 0)
            nt = PONDER_TYPE_Q8_0;
        else if (nt != PONDER_TYPE_Q8_0)
            nt = PONDER_TYPE_Q6_K;
        break;
    case R_ATTN_V:
        nt = attn_v_type(s, nt);
        s->i_attention_wv++;
        break;
    case R_ATTN_K:
        if (s->m->n_expert == 8) /* "bumping this to Q8_0 trades just ~128MB" */
            nt = PONDER_TYPE_Q8_0;
        break;
    case R_FFN_DOWN:
        if ((st = layer_index(s, s->i_ffn_down, t->name, &il, err)) != PONDER_OK)
            return st;
        nt = ffn_down_type(s, nt, il, s->m->n_layer);
        s->i_ffn_down++;
        break;
    case R_ATTN_OUTPUT:
        if (s->falcon)
            nt = or_keep(s->rules->attn_output_falcon, nt);
        else
            nt = or_keep(s->m->n_expert == 8 ? s->rules->attn_output_moe8 : s->rules->attn_output, nt);
        break;
    case R_ATTN_QKV:
        nt = or_keep(s->rules->attn_qkv, nt);
        break;
    case R_FFN_GATE: /* only counted (and checked) for the presets here */
        if ((st = layer_index(s, s->i_ffn_gate, t->name, &il, err)) != PONDER_OK)
            return st;
        s->i_ffn_gate++;
        break;
    case R_FFN_UP:
        if ((st = layer_index(s, s->i_ffn_up, t->name, &il, err)) != PONDER_OK)
            return st;
        s->i_ffn_up++;
        break;
    case R_TOKEN_EMBD: /* only the IQ1/IQ2/IQ3/TQ file types change it */
    case R_ATTN_Q:
    case R_OTHER:
        break;
    }
    *out = nt;
    return PONDER_OK;
}

/* llama.cpp's fallback for rows that do not split into blocks of the chosen type. */
static const struct {
    ponder_type from, to;
} FALLBACK[] = {
    {PONDER_TYPE_Q2_K, PONDER_TYPE_IQ4_NL},    {PONDER_TYPE_Q3_K, PONDER_TYPE_IQ4_NL},
    {PONDER_TYPE_IQ4_XS, PONDER_TYPE_IQ4_NL},  {PONDER_TYPE_IQ2_XXS, PONDER_TYPE_IQ4_NL},
    {PONDER_TYPE_IQ2_XS, PONDER_TYPE_IQ4_NL},  {PONDER_TYPE_IQ2_S, PONDER_TYPE_IQ4_NL},
    {PONDER_TYPE_IQ3_XXS, PONDER_TYPE_IQ4_NL}, {PONDER_TYPE_IQ3_S, PONDER_TYPE_IQ4_NL},
    {PONDER_TYPE_IQ1_S, PONDER_TYPE_IQ4_NL},   {PONDER_TYPE_IQ1_M, PONDER_TYPE_IQ4_NL},
    {PONDER_TYPE_TQ1_0, PONDER_TYPE_Q4_0},     {PONDER_TYPE_TQ2_0, PONDER_TYPE_Q4_0},
    {PONDER_TYPE_Q4_K, PONDER_TYPE_Q5_0},      {PONDER_TYPE_Q5_K, PONDER_TYPE_Q5_1},
    {PONDER_TYPE_Q6_K, PONDER_TYPE_Q8_0},
};

/* t if rows of ne0 fit it, else the fallback, else F16. *fell counts the change. */
static ponder_type fit_row(ponder_type t, int64_t ne0, int64_t *fell)
{
    if (ne0 % block_elems(t) == 0)
        return t;
    (*fell)++;
    for (size_t i = 0; i < sizeof FALLBACK / sizeof FALLBACK[0]; i++)
        if (FALLBACK[i].from == t)
            return ne0 % block_elems(FALLBACK[i].to) == 0 ? FALLBACK[i].to : PONDER_TYPE_F16;
    return PONDER_TYPE_F16;
}

typedef struct visit {
    int32_t layer; /* -1 for tensors outside blk.N */
    const char *name;
    int64_t index;
} visit;

/* llama-model-loader's weight_name_comparer: layer number first, then the name. */
static int visit_cmp(const void *a, const void *b)
{
    const visit *x = a, *y = b;
    if (x->layer != y->layer)
        return x->layer < y->layer ? -1 : 1;
    return strcmp(x->name, y->name);
}

static bool arch_is(const ponder_quantize_model_info *m, const char *name)
{
    return strcmp(m->arch, name) == 0;
}

/* llama-model.cpp maps 80 layers to LLM_TYPE_70B for these architectures (llama only
 * with grouped-query attention: without it, 80 layers are the 65B). */
static bool model_is_70b(const ponder_quantize_model_info *m)
{
    if (m->n_layer != 80)
        return false;
    if (arch_is(m, "llama"))
        return m->n_head != m->n_head_kv;
    return arch_is(m, "qwen2") || arch_is(m, "deci");
}

ponder_status ponder_quantize_plan(const ponder_quantize_preset *preset, bool pure,
                                   const ponder_quantize_model_info *model,
                                   const ponder_quantize_tensor_desc *tensors, int64_t n,
                                   ponder_type *out_types, int64_t *n_fallback, ponder_error *err)
{
    if (!preset || !model || (n > 0 && (!tensors || !out_types)) || n < 0)
        return ponder_error_set(err, PONDER_ERR_INVALID_ARG, "ponder_quantize_plan: NULL or negative argument");
    const preset_row *row = find_row(preset->name);
    if (!row)
        return ponder_error_set(err, PONDER_ERR_INVALID_ARG, "unknown quantization preset '%s'",
                                preset->name ? preset->name : "(null)");
    const ponder_type base = row->pub.base_type;
    const ponder_type_traits *base_tr = ponder_type_get_traits((int)base);
    const bool mixed = !(pure || row->pub.pure) && base_tr && base_tr->is_quantized;
    int64_t fell = 0;

    plan_state s = {.rules = &row->rules, .m = model};
    for (int64_t i = 0; i < n; i++) {
        if (!tensors[i].name)
            return ponder_error_set(err, PONDER_ERR_INVALID_ARG, "ponder_quantize_plan: tensor %" PRId64
                                    " has no name", i);
        out_types[i] = tensors[i].type;
        s.has_output |= strcmp(tensors[i].name, "output.weight") == 0;
        s.n_attention_wv += counts_as_attn_v(tensors[i].name);
    }
    if (!mixed) {
        for (int64_t i = 0; i < n; i++)
            if (quantizable(&tensors[i]))
                out_types[i] = base_tr && base_tr->is_quantized ? fit_row(base, tensors[i].ne[0], &fell) : base;
        if (n_fallback)
            *n_fallback = fell;
        return PONDER_OK;
    }

    if (model->n_layer <= 0)
        return ponder_error_set(err, PONDER_ERR_FORMAT, "%s needs the model's block count (%s.block_count), "
                                "which is missing; a pure preset does not", row->pub.name,
                                model->arch[0] ? model->arch : "<arch>");
    s.falcon = arch_is(model, "falcon");
    s.is_70b = model_is_70b(model);
    s.n_gqa = model->n_head_kv > 0 ? model->n_head / model->n_head_kv : 0;

    visit *order = malloc((size_t)(n > 0 ? n : 1) * sizeof *order);
    if (!order)
        return ponder_error_set(err, PONDER_ERR_NOMEM, "quantize plan: out of memory for %" PRId64 " tensors", n);
    int64_t n_visit = 0;
    for (int64_t i = 0; i < n; i++)
        if (quantizable(&tensors[i]))
            order[n_visit++] = (visit){layer_of(tensors[i].name), tensors[i].name, i};
    qsort(order, (size_t)n_visit, sizeof *order, visit_cmp);

    ponder_status st = PONDER_OK;
    for (int64_t k = 0; k < n_visit; k++) {
        const ponder_quantize_tensor_desc *t = &tensors[order[k].index];
        ponder_type nt;
        if ((st = mix_type(&s, t, base, &nt, err)) != PONDER_OK)
            break;
        out_types[order[k].index] = fit_row(nt, t->ne[0], &fell);
    }
    free(order);
    if (st == PONDER_OK && n_fallback)
        *n_fallback = fell;
    return st;
}

/* ---- metadata ---- */

/* An integer key that may also be a per-layer array (llama.cpp then uses layer 0). */
static ponder_status get_i32_or_first(const ponder_gguf *g, const char *key, int32_t *out, bool *found,
                                      ponder_error *err)
{
    *found = false;
    const ponder_gguf_value *v = ponder_gguf_get(g, key);
    if (!v)
        return PONDER_OK;
    int64_t x;
    if (v->type == PONDER_GGUF_ARRAY) {
        const ponder_gguf_array *a = &v->v.arr;
        bool integer = a->elem_type <= PONDER_GGUF_INT32 || a->elem_type == PONDER_GGUF_UINT64 ||
                       a->elem_type == PONDER_GGUF_INT64;
        if (!integer || a->n == 0)
            return ponder_error_set(err, PONDER_ERR_FORMAT, "%s: key '%s' is an array of %s; expected integers",
                                    ponder_gguf_path(g), key, ponder_gguf_type_name(a->elem_type));
        x = ponder_gguf_array_i64(a, 0);
    } else {
        ponder_status st = ponder_gguf_get_i64(g, key, &x, err);
        if (st != PONDER_OK)
            return st;
    }
    if (x < 0 || x > INT32_MAX)
        return ponder_error_set(err, PONDER_ERR_FORMAT, "%s: key '%s' = %" PRId64 " is out of range",
                                ponder_gguf_path(g), key, x);
    *out = (int32_t)x;
    *found = true;
    return PONDER_OK;
}

ponder_status ponder_quantize_model_info_read(const ponder_gguf *g, ponder_quantize_model_info *out,
                                              ponder_error *err)
{
    if (!g || !out)
        return ponder_error_set(err, PONDER_ERR_INVALID_ARG, "ponder_quantize_model_info_read: NULL argument");
    *out = (ponder_quantize_model_info){0};
    ponder_gguf_str arch;
    ponder_status st = ponder_gguf_get_str(g, "general.architecture", &arch, err);
    if (st == PONDER_ERR_NOT_FOUND)
        return PONDER_OK; /* the plan reports it if a preset needs it */
    if (st != PONDER_OK)
        return st;
    if (arch.len == 0 || arch.len >= sizeof out->arch || memchr(arch.data, '\0', (size_t)arch.len))
        return ponder_error_set(err, PONDER_ERR_FORMAT, "%s: general.architecture is empty, too long or not text",
                                ponder_gguf_path(g));
    memcpy(out->arch, arch.data, (size_t)arch.len);
    out->arch[arch.len] = '\0';

    char key[128];
    bool found;
    snprintf(key, sizeof key, "%s.block_count", out->arch);
    if ((st = get_i32_or_first(g, key, &out->n_layer, &found, err)) != PONDER_OK)
        return st;
    snprintf(key, sizeof key, "%s.attention.head_count", out->arch);
    if ((st = get_i32_or_first(g, key, &out->n_head, &found, err)) != PONDER_OK)
        return st;
    snprintf(key, sizeof key, "%s.attention.head_count_kv", out->arch);
    if ((st = get_i32_or_first(g, key, &out->n_head_kv, &found, err)) != PONDER_OK)
        return st;
    if (!found)
        out->n_head_kv = out->n_head; /* llama.cpp's default */
    snprintf(key, sizeof key, "%s.expert_count", out->arch);
    return get_i32_or_first(g, key, &out->n_expert, &found, err);
}
