/*
 * context.c — per-request state: the KV cache, the scratch of one micro-batch, the logits.
 * All memory is allocated at create time; decode never allocates.
 */
#include "model/model_internal.h"

#include <stdlib.h>
#include <string.h>

#define N_CTX_DEFAULT 4096  /* llama.cpp's default context when none is asked for */
#define N_UBATCH_MAX 512    /* llama.cpp's default physical batch (n_ubatch) */

ponder_context_params ponder_context_params_default(void)
{
    ponder_context_params p = {
        .n_ctx = 0,
        .type_k = PONDER_TYPE_F16,
        .type_v = PONDER_TYPE_F16,
        .float_activations = false,
    };
    return p;
}

static size_t max_size(size_t a, size_t b) { return a > b ? a : b; }

/* Scratch for one product group (jobs sharing an input), at n_tokens rows. */
static size_t group_work(const ponder_matmul_job *jobs, int n_jobs, int64_t n_tokens, int n_threads)
{
    if (!jobs[0].w->data)
        return 0;
    return ponder_matmul_multi_work_bytes(jobs, n_jobs, n_tokens, n_threads);
}

/* The largest scratch any product of the forward pass needs (see forward.c's groups). */
static size_t model_work_bytes(const ponder_model *m, int64_t n_tokens, int n_threads)
{
    size_t bytes = group_work(&(ponder_matmul_job){&m->output, NULL}, 1, n_tokens, n_threads);
    for (int il = 0; il < m->hp.n_layer; il++) {
        const layer_weights *l = &m->layers[il];
        const ponder_matmul_job qkv[] = {{&l->wq, NULL}, {&l->wk, NULL}, {&l->wv, NULL}};
        const ponder_matmul_job gate_up[] = {{&l->w_gate, NULL}, {&l->w_up, NULL}};
        const ponder_matmul_job experts[] = {{&l->w_gate_exps, NULL}, {&l->w_up_exps, NULL}};
        bytes = max_size(bytes, group_work(qkv, 3, n_tokens, n_threads));
        bytes = max_size(bytes, group_work(gate_up, 2, n_tokens, n_threads));
        bytes = max_size(bytes, group_work(experts, 2, 1, n_threads));
        const ponder_matrix *single[] = {&l->wqkv, &l->wo, &l->w_up, &l->w_down, &l->w_router, &l->w_down_exps};
        for (size_t i = 0; i < sizeof single / sizeof single[0]; i++)
            bytes = max_size(bytes, group_work(&(ponder_matmul_job){single[i], NULL}, 1, n_tokens, n_threads));
    }
    return bytes;
}

void ponder_context_free(ponder_context *ctx)
{
    if (!ctx)
        return;
    if (ctx->k_cache)
        for (int il = 0; il < ctx->model->hp.n_layer; il++)
            free(ctx->k_cache[il]);
    if (ctx->v_cache)
        for (int il = 0; il < ctx->model->hp.n_layer; il++)
            free(ctx->v_cache[il]);
    free(ctx->k_cache);
    free(ctx->v_cache);
    float *bufs[] = {ctx->x, ctx->xb, ctx->xb2, ctx->q, ctx->k, ctx->v, ctx->attn, ctx->hb, ctx->hb2, ctx->scores, ctx->rope_cs,
                     ctx->logits, ctx->router, ctx->moe_acc, ctx->moe_gate, ctx->moe_up, ctx->moe_out};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        free(bufs[i]);
    free(ctx->q16);
    free(ctx->p16);
    free(ctx->work);
    free(ctx);
}

static float *alloc_floats(size_t n, bool *ok)
{
    float *p = calloc(n ? n : 1, sizeof(float));
    if (!p)
        *ok = false;
    return p;
}

ponder_status ponder_context_create(const ponder_model *m, const ponder_context_params *p, ponder_context **out,
                                    ponder_error *err)
{
    if (!m || !out)
        return ponder_error_set(err, PONDER_ERR_INVALID_ARG, "ponder_context_create: model and out are required");
    *out = NULL;
    ponder_context_params params = p ? *p : ponder_context_params_default();
    const ponder_hparams *hp = &m->hp;
    if (params.n_ctx < 0)
        return ponder_error_set(err, PONDER_ERR_INVALID_ARG, "context size %d is negative", params.n_ctx);
    if (params.n_ctx == 0)
        params.n_ctx = hp->n_ctx_train < N_CTX_DEFAULT ? hp->n_ctx_train : N_CTX_DEFAULT;
    if (params.n_ctx <= 0)
        return ponder_error_set(err, PONDER_ERR_INVALID_ARG, "context size must be positive");
    ponder_type kv_types[2] = {params.type_k, params.type_v};
    for (int i = 0; i < 2; i++)
        if (kv_types[i] != PONDER_TYPE_F16 && kv_types[i] != PONDER_TYPE_F32)
            return ponder_error_set(err, PONDER_ERR_UNSUPPORTED, "KV cache type %s is not supported (use f16 or f32)",
                                    ponder_type_name(kv_types[i]));

    ponder_context *ctx = calloc(1, sizeof *ctx);
    if (!ctx)
        return ponder_error_set(err, PONDER_ERR_NOMEM, "out of memory");
    ctx->model = m;
    ctx->params = params;
    ctx->n_ctx = params.n_ctx;
    ctx->n_ubatch = params.n_ctx < N_UBATCH_MAX ? params.n_ctx : N_UBATCH_MAX;

    const size_t n_k = (size_t)hp->n_head_kv * (size_t)hp->head_dim_k;
    const size_t n_v = (size_t)hp->n_head_kv * (size_t)hp->head_dim_v;
    ctx->k_row_bytes = n_k * (params.type_k == PONDER_TYPE_F16 ? sizeof(ponder_f16) : sizeof(float));
    ctx->v_row_bytes = n_v * (params.type_v == PONDER_TYPE_F16 ? sizeof(ponder_f16) : sizeof(float));
    bool ok = true;
    ctx->k_cache = calloc((size_t)hp->n_layer, sizeof(void *));
    ctx->v_cache = calloc((size_t)hp->n_layer, sizeof(void *));
    ok = ctx->k_cache && ctx->v_cache;
    for (int il = 0; ok && il < hp->n_layer; il++) {
        ctx->k_cache[il] = calloc((size_t)ctx->n_ctx, ctx->k_row_bytes);
        ctx->v_cache[il] = calloc((size_t)ctx->n_ctx, ctx->v_row_bytes);
        ok = ctx->k_cache[il] && ctx->v_cache[il];
    }

    const size_t nb = (size_t)ctx->n_ubatch;
    const size_t n_q = (size_t)hp->n_head * (size_t)hp->head_dim_k;
    const size_t n_attn = (size_t)hp->n_head * (size_t)hp->head_dim_v;
    size_t n_ff_rows = (size_t)hp->n_ff * (m->desc->ffn == FFN_SWIGLU_FUSED ? 2 : 1);
    size_t qkv = n_q + n_k + n_v;
    if (ok) {
        ctx->x = alloc_floats(nb * (size_t)hp->n_embd, &ok);
        ctx->xb = alloc_floats(nb * (size_t)hp->n_embd, &ok);
        ctx->xb2 = alloc_floats(nb * (size_t)hp->n_embd, &ok);
        ctx->q = alloc_floats(nb * (m->desc->fused_qkv ? qkv : n_q), &ok);
        ctx->k = alloc_floats(nb * n_k, &ok);
        ctx->v = alloc_floats(nb * n_v, &ok);
        ctx->attn = alloc_floats(nb * n_attn, &ok);
        ctx->hb = alloc_floats(nb * n_ff_rows, &ok);
        ctx->hb2 = alloc_floats(nb * (size_t)hp->n_ff, &ok);
        const size_t n_threads = (size_t)ponder_pool_n_threads(params.pool);
        ctx->scores = alloc_floats(n_threads * (size_t)ctx->n_ctx, &ok);
        ctx->rope_cs = alloc_floats(nb * (size_t)hp->n_rot, &ok);
        ctx->logits = alloc_floats((size_t)hp->n_vocab, &ok);
        ctx->router = alloc_floats((size_t)(hp->n_expert > 0 ? hp->n_expert : 1), &ok);
        ctx->moe_acc = alloc_floats((size_t)hp->n_embd, &ok);
        ctx->moe_gate = alloc_floats((size_t)hp->n_ff, &ok);
        ctx->moe_up = alloc_floats((size_t)hp->n_ff, &ok);
        ctx->moe_out = alloc_floats((size_t)hp->n_embd, &ok);
        ctx->q16 = calloc(n_threads * (size_t)hp->head_dim_k + 1, sizeof(ponder_f16));
        ctx->p16 = calloc(n_threads * (size_t)ctx->n_ctx, sizeof(ponder_f16));
        ok = ok && ctx->q16 && ctx->p16;
        ctx->work_bytes = model_work_bytes(m, (int64_t)nb, (int)n_threads);
        ctx->work = malloc(ctx->work_bytes ? ctx->work_bytes : 1);
        ok = ok && ctx->work;
    }
    if (!ok) {
        ponder_context_free(ctx);
        return ponder_error_set(err, PONDER_ERR_NOMEM, "out of memory creating a context of %d tokens", params.n_ctx);
    }
    *out = ctx;
    return PONDER_OK;
}

ponder_status ponder_context_decode(ponder_context *ctx, const int32_t *tokens, int32_t n, float *all_logits,
                                    ponder_error *err)
{
    if (!ctx || (!tokens && n > 0))
        return ponder_error_set(err, PONDER_ERR_INVALID_ARG, "ponder_context_decode: context and tokens are required");
    if (n <= 0)
        return ponder_error_set(err, PONDER_ERR_INVALID_ARG, "ponder_context_decode: no tokens to decode");
    const int32_t n_vocab = ctx->model->hp.n_vocab;
    for (int32_t i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= n_vocab)
            return ponder_error_set(err, PONDER_ERR_INVALID_ARG, "token id %d at index %d is outside the vocabulary (0..%d)",
                                    tokens[i], i, n_vocab - 1);
    if (n > ctx->n_ctx - ctx->n_past)
        return ponder_error_set(err, PONDER_ERR_RANGE,
                                "%d tokens do not fit: %d of the context's %d positions are used", n, ctx->n_past,
                                ctx->n_ctx);
    for (int32_t done = 0; done < n;) {
        int32_t chunk = n - done < ctx->n_ubatch ? n - done : ctx->n_ubatch;
        forward_ubatch(ctx, tokens + done, chunk, all_logits ? all_logits + (size_t)done * (size_t)n_vocab : NULL);
        ctx->n_past += chunk;
        done += chunk;
    }
    return PONDER_OK;
}

const float *ponder_context_logits(const ponder_context *ctx) { return ctx->logits; }
int32_t ponder_context_n_past(const ponder_context *ctx) { return ctx->n_past; }
int32_t ponder_context_n_ctx(const ponder_context *ctx) { return ctx->n_ctx; }
void ponder_context_reset(ponder_context *ctx) { ctx->n_past = 0; }
