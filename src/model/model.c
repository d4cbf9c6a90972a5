/*
 * model.c — loading a model: architecture, hyper-parameters from "<arch>.*" metadata, and
 * every weight tensor bound by name with its shape and type checked, so the forward pass
 * never meets a surprise. Errors name the file, the tensor and the numbers.
 */
#include "model/model_internal.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ROPE_FREQ_BASE_DEFAULT 10000.0f /* llama.cpp's default when rope.freq_base is absent */

ponder_model_params ponder_model_params_default(void)
{
    ponder_model_params p = {0};
    return p;
}

typedef struct loader {
    ponder_model *m;
    const char *file; /* for messages */
    ponder_error *err;
} loader;

/* ---- hyper-parameters ---- */

static ponder_status hp_int(loader *ld, const char *suffix, bool required, int64_t def, int32_t *out)
{
    char key[160];
    snprintf(key, sizeof key, "%s.%s", ld->m->arch_name, suffix);
    const ponder_gguf_value *v = ponder_gguf_get(ld->m->gguf, key);
    int64_t val = def;
    if (!v) {
        if (required)
            return ponder_error_set(ld->err, PONDER_ERR_NOT_FOUND, "%s: required key '%s' is missing",
                                    ld->file, key);
    } else if (v->type == PONDER_GGUF_ARRAY) {
        /* per-layer arrays (some converters write them): we support them when uniform */
        const ponder_gguf_array *a = &v->v.arr;
        if (a->n == 0 || a->elem_type == PONDER_GGUF_STRING || a->elem_type == PONDER_GGUF_ARRAY ||
            a->elem_type == PONDER_GGUF_FLOAT32 || a->elem_type == PONDER_GGUF_FLOAT64)
            return ponder_error_set(ld->err, PONDER_ERR_FORMAT, "%s: key '%s' must be an integer", ld->file,
                                    key);
        val = ponder_gguf_array_i64(a, 0);
        for (uint64_t i = 1; i < a->n; i++)
            if (ponder_gguf_array_i64(a, i) != val)
                return ponder_error_set(ld->err, PONDER_ERR_UNSUPPORTED,
                                        "%s: key '%s' varies per layer, which is not supported", ld->file, key);
    } else {
        ponder_status st = ponder_gguf_get_i64(ld->m->gguf, key, &val, ld->err);
        if (st != PONDER_OK)
            return st;
    }
    if (val < 0 || val > INT32_MAX)
        return ponder_error_set(ld->err, PONDER_ERR_FORMAT, "%s: key '%s' = %lld is out of range", ld->file,
                                key, (long long)val);
    *out = (int32_t)val;
    return PONDER_OK;
}

static ponder_status hp_float(loader *ld, const char *suffix, bool required, float def, float *out)
{
    char key[160];
    snprintf(key, sizeof key, "%s.%s", ld->m->arch_name, suffix);
    double val = def;
    ponder_status st = ponder_gguf_get_f64(ld->m->gguf, key, &val, ld->err);
    if (st == PONDER_ERR_NOT_FOUND) {
        if (required)
            return ponder_error_set(ld->err, PONDER_ERR_NOT_FOUND, "%s: required key '%s' is missing",
                                    ld->file, key);
        val = def;
    } else if (st != PONDER_OK) {
        return st;
    }
    if (!isfinite(val))
        return ponder_error_set(ld->err, PONDER_ERR_FORMAT, "%s: key '%s' is not a finite number", ld->file, key);
    *out = (float)val;
    return PONDER_OK;
}

#define TRY(expr)                                                                                                 \
    do {                                                                                                          \
        ponder_status st_ = (expr);                                                                               \
        if (st_ != PONDER_OK)                                                                                     \
            return st_;                                                                                           \
    } while (0)

static ponder_status load_hparams(loader *ld)
{
    ponder_model *m = ld->m;
    ponder_hparams *hp = &m->hp;
    hp->arch = m->desc->arch;
    hp->arch_name = m->desc->name;
    TRY(hp_int(ld, "context_length", true, 0, &hp->n_ctx_train));
    TRY(hp_int(ld, "embedding_length", true, 0, &hp->n_embd));
    TRY(hp_int(ld, "block_count", true, 0, &hp->n_layer));
    TRY(hp_int(ld, "feed_forward_length", true, 0, &hp->n_ff));
    TRY(hp_int(ld, "attention.head_count", true, 0, &hp->n_head));
    TRY(hp_int(ld, "attention.head_count_kv", false, hp->n_head, &hp->n_head_kv));
    if (hp->n_embd <= 0 || hp->n_layer <= 0 || hp->n_head <= 0 || hp->n_head_kv <= 0 || hp->n_ff <= 0)
        return ponder_error_set(ld->err, PONDER_ERR_FORMAT,
                                "%s: hyper-parameters must be positive (n_embd %d, n_layer %d, n_head %d, "
                                "n_head_kv %d, n_ff %d)",
                                ld->file, hp->n_embd, hp->n_layer, hp->n_head, hp->n_head_kv, hp->n_ff);
    if (hp->n_layer > 4096 || hp->n_head > 4096)
        return ponder_error_set(ld->err, PONDER_ERR_FORMAT, "%s: absurd layer or head count (%d, %d)", ld->file,
                                hp->n_layer, hp->n_head);
    if (hp->n_head % hp->n_head_kv != 0)
        return ponder_error_set(ld->err, PONDER_ERR_FORMAT,
                                "%s: head_count %d is not a multiple of head_count_kv %d", ld->file, hp->n_head,
                                hp->n_head_kv);
    int32_t head_dim_default = hp->n_embd % hp->n_head == 0 ? hp->n_embd / hp->n_head : 0;
    TRY(hp_int(ld, "attention.key_length", false, head_dim_default, &hp->head_dim_k));
    TRY(hp_int(ld, "attention.value_length", false, head_dim_default, &hp->head_dim_v));
    if (hp->head_dim_k <= 0 || hp->head_dim_v <= 0)
        return ponder_error_set(ld->err, PONDER_ERR_FORMAT, "%s: head dimension is zero (n_embd %d, n_head %d)",
                                ld->file, hp->n_embd, hp->n_head);
    TRY(hp_int(ld, "rope.dimension_count", false, hp->head_dim_k, &hp->n_rot));
    if (hp->n_rot > hp->head_dim_k || hp->n_rot % 2 != 0)
        return ponder_error_set(ld->err, PONDER_ERR_FORMAT,
                                "%s: rope.dimension_count %d must be even and at most the head size %d", ld->file,
                                hp->n_rot, hp->head_dim_k);
    TRY(hp_float(ld, "rope.freq_base", false, ROPE_FREQ_BASE_DEFAULT, &hp->rope_freq_base));
    hp->rope_freq_scale = 1.0f;
    {
        char key[160];
        snprintf(key, sizeof key, "%s.rope.scaling.type", m->arch_name);
        ponder_gguf_str type;
        if (ponder_gguf_get_str(m->gguf, key, &type, NULL) == PONDER_OK && !ponder_gguf_str_eq(type, "none")) {
            if (!ponder_gguf_str_eq(type, "linear"))
                return ponder_error_set(ld->err, PONDER_ERR_UNSUPPORTED,
                                        "%s: rope scaling type '%.*s' is not supported (supported: none, linear)",
                                        ld->file, (int)(type.len > 32 ? 32 : type.len), type.data);
            float factor = 1.0f;
            TRY(hp_float(ld, "rope.scaling.factor", false, 1.0f, &factor));
            if (factor > 0.0f)
                hp->rope_freq_scale = 1.0f / factor;
        }
    }
    TRY(hp_float(ld, "rope.scaling.attn_factor", false, 1.0f, &hp->rope_attn_factor));
    TRY(hp_int(ld, "rope.scaling.original_context_length", false, hp->n_ctx_train, &hp->rope_n_ctx_orig));
    if (!(hp->rope_attn_factor > 0.0f && hp->rope_attn_factor < 100.0f))
        return ponder_error_set(ld->err, PONDER_ERR_FORMAT, "%s: rope.scaling.attn_factor %g is out of range", ld->file,
                                (double)hp->rope_attn_factor);
    hp->rope_kind = m->desc->rope_kind;
    TRY(hp_float(ld, "attention.layer_norm_rms_epsilon", true, 0.0f, &hp->norm_rms_eps));
    TRY(hp_int(ld, "expert_count", false, 0, &hp->n_expert));
    TRY(hp_int(ld, "expert_used_count", false, 0, &hp->n_expert_used));
    if (hp->n_expert > 0 && (hp->n_expert_used <= 0 || hp->n_expert_used > hp->n_expert || hp->n_expert > MOE_MAX_EXPERTS))
        return ponder_error_set(ld->err, PONDER_ERR_FORMAT, "%s: expert_used_count %d is invalid for expert_count %d",
                                ld->file, hp->n_expert_used, hp->n_expert);
    if (hp->n_expert > 0 && !m->desc->experts)
        return ponder_error_set(ld->err, PONDER_ERR_UNSUPPORTED, "%s: %s with experts (expert_count %d) is not supported",
                                ld->file, m->arch_name, hp->n_expert);
    if (hp->n_expert_used > MOE_MAX_EXPERTS_USED)
        return ponder_error_set(ld->err, PONDER_ERR_UNSUPPORTED, "%s: %d experts per token; at most %d are supported",
                                ld->file, hp->n_expert_used, MOE_MAX_EXPERTS_USED);
    TRY(hp_float(ld, "attn_logit_softcapping", false, 0.0f, &hp->attn_logit_softcap));
    TRY(hp_float(ld, "final_logit_softcapping", false, 0.0f, &hp->final_logit_softcap));
    TRY(hp_int(ld, "attention.sliding_window", false, 0, &hp->sliding_window));
    if (m->desc->swa_every == 0)
        hp->sliding_window = 0;
    return PONDER_OK;
}

/* ---- tensors ---- */

static const ponder_gguf_tensor *find_tensor(loader *ld, const char *name, bool required, ponder_status *st)
{
    const ponder_gguf_tensor *t = ponder_gguf_find_tensor(ld->m->gguf, name);
    if (!t && required)
        *st = ponder_error_set(ld->err, PONDER_ERR_NOT_FOUND, "%s: required tensor '%s' is missing", ld->file, name);
    return t;
}

static ponder_status check_shape(loader *ld, const ponder_gguf_tensor *t, int64_t ne0, int64_t ne1, int64_t ne2)
{
    int64_t want[3] = {ne0, ne1, ne2};
    for (int i = 0; i < 3; i++) {
        if (t->ne[i] != want[i])
            return ponder_error_set(ld->err, PONDER_ERR_FORMAT,
                                    "%s: tensor '%s' has wrong shape; expected [%lld, %lld, %lld], got [%lld, %lld, %lld]",
                                    ld->file, t->name, (long long)ne0, (long long)ne1, (long long)ne2,
                                    (long long)t->ne[0], (long long)t->ne[1], (long long)t->ne[2]);
    }
    if (t->ne[3] != 1)
        return ponder_error_set(ld->err, PONDER_ERR_FORMAT, "%s: tensor '%s' has an unexpected 4th dimension %lld",
                                ld->file, t->name, (long long)t->ne[3]);
    return PONDER_OK;
}

/* A weight matrix of n_rows × n_cols (× n_mat stacked), in any type we can multiply with. */
static ponder_status bind_matrix(loader *ld, const char *name, bool required, int64_t n_cols, int64_t n_rows,
                                 int64_t n_mat, ponder_matrix *out, size_t *mat_stride)
{
    ponder_status st = PONDER_OK;
    const ponder_gguf_tensor *t = find_tensor(ld, name, required, &st);
    if (!t)
        return st;
    TRY(check_shape(ld, t, n_cols, n_rows, n_mat));
    if (!ponder_type_is_supported(t->type))
        return ponder_error_set(ld->err, PONDER_ERR_UNSUPPORTED,
                                "%s: tensor '%s' has type %s, which ponder cannot compute with yet", ld->file, t->name,
                                ponder_type_name(t->type));
    size_t row_bytes;
    TRY(ponder_type_row_bytes(t->type, n_cols, &row_bytes, ld->err));
    out->type = t->type;
    out->n_cols = n_cols;
    out->n_rows = n_rows;
    out->row_bytes = row_bytes;
    out->data = t->data;
    if (mat_stride)
        *mat_stride = row_bytes * (size_t)n_rows;
    ld->m->n_params += (uint64_t)(n_cols * n_rows * n_mat);
    ld->m->n_matrix_elems += (uint64_t)(n_cols * n_rows * n_mat);
    return PONDER_OK;
}

/* A vector (norm weight or bias) of n floats; must be F32, as converters write them. */
static ponder_status bind_vector(loader *ld, const char *name, bool required, int64_t n, const float **out)
{
    ponder_status st = PONDER_OK;
    const ponder_gguf_tensor *t = find_tensor(ld, name, required, &st);
    if (!t)
        return st;
    TRY(check_shape(ld, t, n, 1, 1));
    if (t->type != PONDER_TYPE_F32)
        return ponder_error_set(ld->err, PONDER_ERR_UNSUPPORTED, "%s: tensor '%s' has type %s; expected F32",
                                ld->file, t->name, ponder_type_name(t->type));
    if (((uintptr_t)t->data & 3u) != 0)
        return ponder_error_set(ld->err, PONDER_ERR_FORMAT, "%s: tensor '%s' data is not 4-byte aligned", ld->file,
                                t->name);
    *out = t->data;
    ld->m->n_params += (uint64_t)n;
    return PONDER_OK;
}

static ponder_status bind_layer(loader *ld, int il)
{
    ponder_model *m = ld->m;
    const ponder_hparams *hp = &m->hp;
    const arch_desc *d = m->desc;
    layer_weights *l = &m->layers[il];
    const int64_t n_embd = hp->n_embd;
    const int64_t n_q = (int64_t)hp->n_head * hp->head_dim_k;
    const int64_t n_k = (int64_t)hp->n_head_kv * hp->head_dim_k;
    const int64_t n_v = (int64_t)hp->n_head_kv * hp->head_dim_v;
    const int64_t n_out = (int64_t)hp->n_head * hp->head_dim_v;
    char name[128];
#define NAME(suffix) (snprintf(name, sizeof name, "blk.%d.%s", il, suffix), name)

    TRY(bind_vector(ld, NAME("attn_norm.weight"), true, n_embd, &l->attn_norm));
    if (d->fused_qkv) {
        TRY(bind_matrix(ld, NAME("attn_qkv.weight"), true, n_embd, n_q + n_k + n_v, 1, &l->wqkv, NULL));
    } else {
        TRY(bind_matrix(ld, NAME("attn_q.weight"), true, n_embd, n_q, 1, &l->wq, NULL));
        TRY(bind_matrix(ld, NAME("attn_k.weight"), true, n_embd, n_k, 1, &l->wk, NULL));
        TRY(bind_matrix(ld, NAME("attn_v.weight"), true, n_embd, n_v, 1, &l->wv, NULL));
        TRY(bind_vector(ld, NAME("attn_q.bias"), d->qkv_bias_required, n_q, &l->bq));
        TRY(bind_vector(ld, NAME("attn_k.bias"), d->qkv_bias_required, n_k, &l->bk));
        TRY(bind_vector(ld, NAME("attn_v.bias"), d->qkv_bias_required, n_v, &l->bv));
    }
    TRY(bind_matrix(ld, NAME("attn_output.weight"), true, n_out, n_embd, 1, &l->wo, NULL));
    TRY(bind_vector(ld, NAME("attn_output.bias"), false, n_embd, &l->bo));
    if (d->post_norms) {
        TRY(bind_vector(ld, NAME("post_attention_norm.weight"), true, n_embd, &l->attn_post_norm));
        TRY(bind_vector(ld, NAME("post_ffw_norm.weight"), true, n_embd, &l->ffn_post_norm));
    }
    TRY(bind_vector(ld, NAME("ffn_norm.weight"), true, n_embd, &l->ffn_norm));
    if (hp->n_expert > 0) {
        TRY(bind_matrix(ld, NAME("ffn_gate_inp.weight"), true, n_embd, hp->n_expert, 1, &l->w_router, NULL));
        TRY(bind_matrix(ld, NAME("ffn_gate_exps.weight"), true, n_embd, hp->n_ff, hp->n_expert, &l->w_gate_exps,
                        &l->gate_exps_stride));
        TRY(bind_matrix(ld, NAME("ffn_up_exps.weight"), true, n_embd, hp->n_ff, hp->n_expert, &l->w_up_exps,
                        &l->up_exps_stride));
        TRY(bind_matrix(ld, NAME("ffn_down_exps.weight"), true, hp->n_ff, n_embd, hp->n_expert, &l->w_down_exps,
                        &l->down_exps_stride));
    } else if (d->ffn == FFN_SWIGLU_FUSED) {
        TRY(bind_matrix(ld, NAME("ffn_up.weight"), true, n_embd, 2 * (int64_t)hp->n_ff, 1, &l->w_up, NULL));
        TRY(bind_matrix(ld, NAME("ffn_down.weight"), true, hp->n_ff, n_embd, 1, &l->w_down, NULL));
    } else {
        TRY(bind_matrix(ld, NAME("ffn_gate.weight"), true, n_embd, hp->n_ff, 1, &l->w_gate, NULL));
        TRY(bind_matrix(ld, NAME("ffn_up.weight"), true, n_embd, hp->n_ff, 1, &l->w_up, NULL));
        TRY(bind_matrix(ld, NAME("ffn_down.weight"), true, hp->n_ff, n_embd, 1, &l->w_down, NULL));
    }
#undef NAME
    return PONDER_OK;
}

static ponder_status bind_weights(loader *ld)
{
    ponder_model *m = ld->m;
    ponder_hparams *hp = &m->hp;
    ponder_status st = PONDER_OK;
    const ponder_gguf_tensor *te = find_tensor(ld, "token_embd.weight", true, &st);
    if (!te)
        return st;
    if (te->ne[1] <= 0 || te->ne[1] > INT32_MAX)
        return ponder_error_set(ld->err, PONDER_ERR_FORMAT, "%s: tensor 'token_embd.weight' has %lld rows",
                                ld->file, (long long)te->ne[1]);
    hp->n_vocab = (int32_t)te->ne[1];
    TRY(bind_matrix(ld, "token_embd.weight", true, hp->n_embd, hp->n_vocab, 1, &m->tok_embd, NULL));
    TRY(bind_vector(ld, "output_norm.weight", true, hp->n_embd, &m->output_norm));
    if (ponder_gguf_find_tensor(m->gguf, "output.weight")) {
        TRY(bind_matrix(ld, "output.weight", true, hp->n_embd, hp->n_vocab, 1, &m->output, NULL));
        hp->tied_output = false;
    } else {
        m->output = m->tok_embd;
        hp->tied_output = true;
    }
    TRY(bind_vector(ld, "output.bias", false, hp->n_vocab, &m->output_bias));
    TRY(bind_vector(ld, "rope_freqs.weight", false, hp->n_rot / 2, &m->rope_freqs));
    TRY(bind_vector(ld, "rope_factors_long.weight", false, hp->n_rot / 2, &m->rope_factors_long));
    TRY(bind_vector(ld, "rope_factors_short.weight", false, hp->n_rot / 2, &m->rope_factors_short));
    if (!m->rope_factors_long != !m->rope_factors_short)
        return ponder_error_set(ld->err, PONDER_ERR_FORMAT,
                                "%s: rope_factors_long and rope_factors_short must come together", ld->file);
    hp->rope_long_short = m->rope_factors_long != NULL;
    m->layers = calloc((size_t)hp->n_layer, sizeof *m->layers);
    if (!m->layers)
        return ponder_error_set(ld->err, PONDER_ERR_NOMEM, "%s: out of memory for %d layers", ld->file, hp->n_layer);
    for (int il = 0; il < hp->n_layer; il++)
        TRY(bind_layer(ld, il));
    return PONDER_OK;
}

/* ---- weights repacked for the kernel path's tile layout (ponder_matrix_pack) ----
 * Every dense matrix (expert stacks keep the file layout); the tied output shares
 * token_embd's packed rows. The file stays mapped and untouched: the packed copy
 * replaces its pages in memory. */
static ponder_status for_each_packable(ponder_model *m, ponder_status (*fn)(ponder_matrix *, ponder_error *),
                                       ponder_error *err)
{
    ponder_status st = fn(&m->tok_embd, err);
    if (st == PONDER_OK && !m->hp.tied_output)
        st = fn(&m->output, err);
    for (int il = 0; m->layers && st == PONDER_OK && il < m->hp.n_layer; il++) {
        layer_weights *l = &m->layers[il];
        ponder_matrix *mats[] = {&l->wq, &l->wk, &l->wv, &l->wqkv, &l->wo, &l->w_gate, &l->w_up, &l->w_down,
                                 &l->w_router};
        for (size_t i = 0; st == PONDER_OK && i < sizeof mats / sizeof mats[0]; i++)
            st = fn(mats[i], err);
    }
    if (m->hp.tied_output) {
        m->output.packed = m->tok_embd.packed;
        m->output.packed_rows = m->tok_embd.packed_rows;
        m->output.packed_layout = m->tok_embd.packed_layout;
    }
    return st;
}

static ponder_status pack_one(ponder_matrix *w, ponder_error *err)
{
    return ponder_matrix_pack(w, true, err);
}

static ponder_status unpack_one(ponder_matrix *w, ponder_error *err)
{
    (void)err;
    ponder_matrix_unpack(w);
    return PONDER_OK;
}

static ponder_status pack_weights(ponder_model *m, ponder_error *err)
{
    return for_each_packable(m, pack_one, err);
}

ponder_status ponder_model_load(const char *path, const ponder_model_params *p, ponder_model **out,
                                ponder_error *err)
{
    if (!path || !out)
        return ponder_error_set(err, PONDER_ERR_INVALID_ARG, "ponder_model_load: path and out are required");
    *out = NULL;
    ponder_model *m = calloc(1, sizeof *m);
    if (!m)
        return ponder_error_set(err, PONDER_ERR_NOMEM, "out of memory");
    if (p) {
        m->log = p->log;
        m->log_user = p->log_user;
    }
    loader ld = {.m = m, .err = err};
    ponder_status st = ponder_gguf_open(path, &m->gguf, err);
    if (st != PONDER_OK)
        goto fail;
    ld.file = ponder_gguf_path(m->gguf);

    ponder_gguf_str arch;
    st = ponder_gguf_get_str(m->gguf, "general.architecture", &arch, err);
    if (st == PONDER_ERR_NOT_FOUND) {
        st = ponder_error_set(err, PONDER_ERR_FORMAT, "%s: key 'general.architecture' is missing", ld.file);
        goto fail;
    }
    if (st != PONDER_OK)
        goto fail;
    if (arch.len >= sizeof m->arch_name || memchr(arch.data, '\0', arch.len)) {
        st = ponder_error_set(err, PONDER_ERR_FORMAT, "%s: general.architecture is not a valid name", ld.file);
        goto fail;
    }
    memcpy(m->arch_name, arch.data, arch.len);
    m->arch_name[arch.len] = '\0';
    m->desc = arch_find(m->arch_name);
    if (!m->desc) {
        st = ponder_error_set(err, PONDER_ERR_UNSUPPORTED,
                              "%s: architecture '%s' is not supported (supported: %s)", ld.file, m->arch_name,
                              ponder_arch_supported_list());
        goto fail;
    }
    if ((st = load_hparams(&ld)) != PONDER_OK)
        goto fail;
    if ((st = bind_weights(&ld)) != PONDER_OK)
        goto fail;
    if ((st = pack_weights(m, err)) != PONDER_OK)
        goto fail;

    /* Query scaling, as llama.cpp's graphs do it: 1/sqrt(head_dim), except Gemma-2 27B
     * (46 layers), which scales by 1/sqrt(n_embd / n_head) (query_pre_attn_scalar). */
    float scale_dim = (float)m->hp.head_dim_k;
    if (m->hp.arch == PONDER_ARCH_GEMMA2 && m->hp.n_layer == 46)
        scale_dim = (float)m->hp.n_embd / (float)m->hp.n_head;
    m->q_scale = 1.0f / sqrtf(scale_dim);
    *out = m;
    return PONDER_OK;
fail:
    ponder_model_free(m);
    return st;
}

void ponder_model_free(ponder_model *m)
{
    if (!m)
        return;
    for_each_packable(m, unpack_one, NULL);
    free(m->layers);
    ponder_gguf_free(m->gguf);
    free(m);
}

const ponder_hparams *ponder_model_hparams(const ponder_model *m) { return &m->hp; }
const ponder_gguf *ponder_model_gguf(const ponder_model *m) { return m->gguf; }
uint64_t ponder_model_n_params(const ponder_model *m) { return m->n_params; }

/* Elements of the experts a token does not use: (n_expert - n_expert_used) of each layer's
 * gate, up and down stacks (their shapes were checked at load). */
static uint64_t idle_expert_elems(const ponder_hparams *hp)
{
    if (hp->n_expert <= 0)
        return 0;
    return 3 * (uint64_t)hp->n_embd * (uint64_t)hp->n_ff * (uint64_t)(hp->n_expert - hp->n_expert_used) *
           (uint64_t)hp->n_layer;
}

uint64_t ponder_model_n_params_active(const ponder_model *m) { return m->n_params - idle_expert_elems(&m->hp); }

uint64_t ponder_model_flops_per_token(const ponder_model *m, int32_t n_past)
{
    const ponder_hparams *hp = &m->hp;
    const uint64_t n_embd = (uint64_t)hp->n_embd, n_vocab = (uint64_t)hp->n_vocab;
    /* the matrices a token is multiplied with: every bound matrix but the idle experts and
     * the embedding table (a row lookup), plus the output matrix when it is that table */
    const uint64_t matrix = m->n_matrix_elems - idle_expert_elems(hp) - n_embd * n_vocab +
                            (hp->tied_output ? n_embd * n_vocab : 0);
    /* attention: scores (head_dim_k) and weighted sum (head_dim_v) per head and position seen */
    const uint64_t per_pos = (uint64_t)hp->n_head * (uint64_t)(hp->head_dim_k + hp->head_dim_v);
    const uint64_t seen = (uint64_t)(n_past < 0 ? 0 : n_past) + 1;
    uint64_t attn = 0;
    for (int il = 0; il < hp->n_layer; il++) {
        const bool windowed = hp->sliding_window > 0 && m->desc->swa_every > 0 && il % m->desc->swa_every == 0;
        attn += windowed && seen > (uint64_t)hp->sliding_window ? (uint64_t)hp->sliding_window : seen;
    }
    return 2 * matrix + 2 * per_pos * attn;
}
