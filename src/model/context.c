/*
 * context.c — per-request state: the KV cache, the scratch of one micro-batch, the logits.
 * All memory is allocated at create time; decode never allocates.
 */
#include "model/model_internal.h"
#include "tensor/kernels.h" /* the attention kernels' scratch size */

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
        bytes = max_size(bytes, group_work(experts, 2, n_tokens, n_threads));
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
                     ctx->logits, ctx->router, ctx->moe_w, ctx->moe_in, ctx->moe_out, ctx->moe_gate, ctx->moe_up, ctx->moe_slots};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        free(bufs[i]);
    free(ctx->moe_ids);
    free(ctx->moe_rows);
    free(ctx->attn_qc);
    free(ctx->attn_m);
    free(ctx->attn_l);
    free(ctx->attn_tiles);
    free(ctx->p16);
    free(ctx->work);
    free(ctx->ub_seq);
    free(ctx->ub_pos);
    free(ctx->ub_out);
    free(ctx->seq_count);
    free(ctx->seq_next);
    free(ctx->seq_last);
    kv_pages_free(&ctx->kv);
    free(ctx);
}

/* The KV cache types: the float ones and the 32-element block types llama.cpp offers. */
static bool kv_type_known(ponder_type t)
{
    return t == PONDER_TYPE_F16 || t == PONDER_TYPE_F32 || t == PONDER_TYPE_Q8_0 || t == PONDER_TYPE_Q4_0;
}

/* Bytes of a cache row of n elements (n a multiple of the type's block, checked). */
static size_t kv_row_bytes(ponder_type t, size_t n)
{
    const ponder_type_traits *tr = ponder_type_get_traits(t);
    return n / (size_t)tr->block_elems * tr->block_bytes;
}

uint64_t ponder_kv_bytes_per_token(const ponder_model *m, ponder_type type_k, ponder_type type_v)
{
    const ponder_hparams *hp = &m->hp;
    if (!kv_type_known(type_k) || !kv_type_known(type_v) ||
        hp->head_dim_k % ponder_type_get_traits(type_k)->block_elems != 0 ||
        hp->head_dim_v % ponder_type_get_traits(type_v)->block_elems != 0)
        return 0;
    const size_t n_k = (size_t)hp->n_head_kv * (size_t)hp->head_dim_k, n_v = (size_t)hp->n_head_kv * (size_t)hp->head_dim_v;
    return (uint64_t)hp->n_layer * (kv_row_bytes(type_k, n_k) + kv_row_bytes(type_v, n_v));
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
    if (params.n_seq_max < 0 || params.n_kv_cells < 0)
        return ponder_error_set(err, PONDER_ERR_INVALID_ARG, "n_seq_max (%d) and n_kv_cells (%d) must not be negative",
                                params.n_seq_max, params.n_kv_cells);
    if (params.n_seq_max == 0)
        params.n_seq_max = 1;
    if (params.n_kv_cells == 0) {
        const int64_t cells = (int64_t)params.n_ctx * params.n_seq_max;
        if (cells > INT32_MAX - KV_BLOCK_CELLS)
            return ponder_error_set(err, PONDER_ERR_RANGE, "%d sequences of %d positions need too many KV cells",
                                    params.n_seq_max, params.n_ctx);
        params.n_kv_cells = (int32_t)cells;
    }
    if (params.n_kv_cells > INT32_MAX - KV_BLOCK_CELLS)
        return ponder_error_set(err, PONDER_ERR_RANGE, "n_kv_cells %d is too large", params.n_kv_cells);
    const ponder_type kv_types[2] = {params.type_k, params.type_v};
    const int32_t head_dims[2] = {hp->head_dim_k, hp->head_dim_v};
    for (int i = 0; i < 2; i++) {
        if (!kv_type_known(kv_types[i]))
            return ponder_error_set(err, PONDER_ERR_UNSUPPORTED,
                                    "KV cache type %s is not supported (use f16, f32, q8_0 or q4_0)",
                                    ponder_type_name(kv_types[i]));
        if (head_dims[i] % ponder_type_get_traits(kv_types[i])->block_elems != 0)
            return ponder_error_set(err, PONDER_ERR_UNSUPPORTED,
                                    "a %s %s cache needs a head dimension that is a multiple of %d; this model's is %d",
                                    ponder_type_name(kv_types[i]), i == 0 ? "K" : "V",
                                    (int)ponder_type_get_traits(kv_types[i])->block_elems, head_dims[i]);
    }
    if (params.flash_attn < PONDER_FLASH_ATTN_AUTO || params.flash_attn > PONDER_FLASH_ATTN_ON)
        return ponder_error_set(err, PONDER_ERR_INVALID_ARG, "flash_attn %d is not auto, off or on", (int)params.flash_attn);
    const bool v_quantized = params.type_v != PONDER_TYPE_F16 && params.type_v != PONDER_TYPE_F32;
    if (v_quantized && params.flash_attn == PONDER_FLASH_ATTN_OFF)
        return ponder_error_set(err, PONDER_ERR_UNSUPPORTED,
                                "a quantized V cache (%s) needs flash attention; it cannot be turned off",
                                ponder_type_name(params.type_v));

    ponder_context *ctx = calloc(1, sizeof *ctx);
    if (!ctx)
        return ponder_error_set(err, PONDER_ERR_NOMEM, "out of memory");
    ctx->model = m;
    ctx->params = params;
    ctx->n_ctx = params.n_ctx;
    /* LongRoPE (llama.cpp's get_rope_factors): the long factors once a sequence may run past
     * the original context, the short ones within it */
    ctx->rope_divisors = m->rope_freqs                          ? m->rope_freqs
                         : params.n_ctx > hp->rope_n_ctx_orig ? m->rope_factors_long
                                                               : m->rope_factors_short;
    ctx->n_ubatch = params.n_ctx < N_UBATCH_MAX ? params.n_ctx : N_UBATCH_MAX;

    const size_t n_k = (size_t)hp->n_head_kv * (size_t)hp->head_dim_k;
    const size_t n_v = (size_t)hp->n_head_kv * (size_t)hp->head_dim_v;
    ctx->k_row_bytes = kv_row_bytes(params.type_k, n_k);
    ctx->v_row_bytes = kv_row_bytes(params.type_v, n_v);
    ctx->flash = v_quantized || params.flash_attn == PONDER_FLASH_ATTN_ON;
    bool ok = kv_pages_init(&ctx->kv, params.n_seq_max, params.n_kv_cells, params.n_ctx) == PONDER_OK;
    const size_t n_cells = (size_t)ctx->kv.n_blocks * KV_BLOCK_CELLS;
    ctx->k_cache = calloc((size_t)hp->n_layer, sizeof(void *));
    ctx->v_cache = calloc((size_t)hp->n_layer, sizeof(void *));
    ok = ok && ctx->k_cache && ctx->v_cache;
    for (int il = 0; ok && il < hp->n_layer; il++) {
        ctx->k_cache[il] = calloc(n_cells, ctx->k_row_bytes);
        ctx->v_cache[il] = calloc(n_cells, ctx->v_row_bytes);
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
        const size_t flash_q = (size_t)ATTN_TILE_TOKENS * (size_t)(hp->n_head / hp->n_head_kv);
        const size_t n_pos = ((size_t)ctx->n_ctx + KV_BLOCK_CELLS - 1) / KV_BLOCK_CELLS * KV_BLOCK_CELLS;
        const size_t n_scores = max_size(max_size((size_t)ctx->n_ctx, flash_q * KV_BLOCK_CELLS),
                                         ponder_attn_scratch_floats(n_pos, hp->head_dim_k, hp->head_dim_v));
        ctx->scores = alloc_floats(n_threads * n_scores, &ok);
        ctx->n_scores = n_scores;
        ctx->rope_cs = alloc_floats(nb * (size_t)hp->n_rot, &ok);
        ctx->logits = alloc_floats((size_t)hp->n_vocab, &ok);
        const bool moe = hp->n_expert > 0;
        const size_t n_choices = moe ? nb * (size_t)hp->n_expert_used : 1;
        ctx->router = alloc_floats(moe ? nb * (size_t)hp->n_expert : 1, &ok);
        ctx->moe_w = alloc_floats(n_choices, &ok);
        ctx->moe_in = alloc_floats(moe ? nb * (size_t)hp->n_embd : 1, &ok);
        ctx->moe_out = alloc_floats(moe ? nb * (size_t)hp->n_embd : 1, &ok);
        ctx->moe_gate = alloc_floats(moe ? nb * (size_t)hp->n_ff : 1, &ok);
        ctx->moe_up = alloc_floats(moe ? nb * (size_t)hp->n_ff : 1, &ok);
        ctx->moe_slots = alloc_floats(n_choices * (moe ? (size_t)hp->n_embd : 1), &ok);
        ctx->moe_ids = calloc(n_choices, sizeof(int32_t));
        ctx->moe_rows = calloc(n_choices, sizeof(int32_t));
        ok = ok && ctx->moe_ids && ctx->moe_rows;
        /* one 64-byte-aligned slot per query of a flash unit (the exact form uses the first) */
        const size_t qc_slot = ((size_t)hp->head_dim_k * sizeof(float) + 63) / 64 * 64;
        ctx->attn_qc_bytes = flash_q * qc_slot;
        ctx->attn_qc = aligned_alloc(64, n_threads * ctx->attn_qc_bytes);
        ctx->attn_m = alloc_floats(n_threads * flash_q, &ok);
        ctx->attn_l = calloc(n_threads * flash_q, sizeof(double));
        ctx->attn_tiles = calloc(nb + 1, sizeof(int32_t));
        ctx->p16 = calloc(n_threads * (size_t)ctx->n_ctx, sizeof(ponder_f16));
        ok = ok && ctx->attn_qc && ctx->attn_l && ctx->attn_tiles && ctx->p16;
        ctx->work_bytes = model_work_bytes(m, (int64_t)nb, (int)n_threads);
        ctx->work = malloc(ctx->work_bytes ? ctx->work_bytes : 1);
        ok = ok && ctx->work;
        ctx->ub_seq = calloc(nb, sizeof(ponder_seq_id));
        ctx->ub_pos = calloc(nb, sizeof(int32_t));
        ctx->ub_out = calloc(nb, sizeof(int32_t));
        ctx->seq_count = calloc((size_t)params.n_seq_max, sizeof(int32_t));
        ctx->seq_next = calloc((size_t)params.n_seq_max, sizeof(int32_t));
        ctx->seq_last = calloc((size_t)params.n_seq_max, sizeof(int32_t));
        ok = ok && ctx->ub_seq && ctx->ub_pos && ctx->ub_out && ctx->seq_count && ctx->seq_next && ctx->seq_last;
    }
    if (!ok) {
        ponder_context_free(ctx);
        return ponder_error_set(err, PONDER_ERR_NOMEM, "out of memory creating a context of %d tokens", params.n_ctx);
    }
    *out = ctx;
    return PONDER_OK;
}

/* Checks the batch and the room for it; changes nothing but the seq_count scratch. */
static ponder_status batch_check(ponder_context *ctx, const int32_t *tokens, const ponder_seq_id *seq, int32_t n,
                                 ponder_error *err)
{
    kv_pages *kv = &ctx->kv;
    const int32_t n_vocab = ctx->model->hp.n_vocab;
    memset(ctx->seq_count, 0, (size_t)kv->n_seq * sizeof(int32_t));
    for (int32_t i = 0; i < n; i++) {
        if (tokens[i] < 0 || tokens[i] >= n_vocab)
            return ponder_error_set(err, PONDER_ERR_INVALID_ARG, "token id %d at index %d is outside the vocabulary (0..%d)",
                                    tokens[i], i, n_vocab - 1);
        const ponder_seq_id s = seq ? seq[i] : 0;
        if (s < 0 || s >= kv->n_seq)
            return ponder_error_set(err, PONDER_ERR_INVALID_ARG,
                                    "sequence id %d at index %d is outside the context's sequences (0..%d)", s, i,
                                    kv->n_seq - 1);
        ctx->seq_count[s]++;
    }
    for (int32_t s = 0; s < kv->n_seq; s++)
        if (ctx->seq_count[s] > ctx->n_ctx - kv->seq_len[s]) {
            if (kv->n_seq == 1)
                return ponder_error_set(err, PONDER_ERR_RANGE,
                                        "%d tokens do not fit: %d of the context's %d positions are used",
                                        ctx->seq_count[s], kv->seq_len[s], ctx->n_ctx);
            return ponder_error_set(err, PONDER_ERR_RANGE,
                                    "%d tokens of sequence %d do not fit: %d of its %d positions are used",
                                    ctx->seq_count[s], s, kv->seq_len[s], ctx->n_ctx);
        }
    const int32_t need = kv_blocks_needed(kv, ctx->seq_count);
    if (need > kv->n_free)
        return ponder_error_set(err, PONDER_ERR_RANGE,
                                "the batch needs %d KV cells, %d of the context's %d are free (blocks of %d)",
                                need * KV_BLOCK_CELLS, kv->n_free * KV_BLOCK_CELLS, kv->n_blocks * KV_BLOCK_CELLS,
                                KV_BLOCK_CELLS);
    return PONDER_OK;
}

/* The one decode path. want: NULL for the default (last token of each sequence), all:
 * every token (want ignored). logits: NULL computes only the last wanted row, kept in
 * ctx->logits. */
static ponder_status decode(ponder_context *ctx, const int32_t *tokens, const ponder_seq_id *seq, int32_t n,
                            const bool *want, bool all, float *logits, ponder_error *err)
{
    ponder_status st = batch_check(ctx, tokens, seq, n, err);
    if (st != PONDER_OK)
        return st;
    kv_pages *kv = &ctx->kv;
    const size_t n_vocab = (size_t)ctx->model->hp.n_vocab;
    for (int32_t s = 0; s < kv->n_seq; s++) {
        kv_seq_reserve(ctx, s, ctx->seq_count[s]);
        ctx->seq_next[s] = kv->seq_len[s];
        ctx->seq_last[s] = -1;
    }
    for (int32_t i = 0; i < n; i++)
        ctx->seq_last[seq ? seq[i] : 0] = i;
    /* the last wanted token: the only row computed when the caller takes no logits */
    int32_t last_wanted = -1;
    for (int32_t i = 0; i < n; i++)
        if (all || (want ? want[i] : ctx->seq_last[seq ? seq[i] : 0] == i))
            last_wanted = i;

    float *row = logits;
    for (int32_t done = 0; done < n;) {
        const int32_t chunk = n - done < ctx->n_ubatch ? n - done : ctx->n_ubatch;
        int32_t n_out = 0;
        for (int32_t t = 0; t < chunk; t++) {
            const int32_t i = done + t;
            const ponder_seq_id s = seq ? seq[i] : 0;
            ctx->ub_seq[t] = s;
            ctx->ub_pos[t] = ctx->seq_next[s]++;
            const bool wanted = all || (want ? want[i] : ctx->seq_last[s] == i);
            if (wanted && (logits || i == last_wanted))
                ctx->ub_out[n_out++] = t;
        }
        forward_ubatch(ctx, tokens + done, chunk, n_out, logits ? row : ctx->logits);
        if (logits)
            row += (size_t)n_out * n_vocab;
        done += chunk;
    }
    for (int32_t s = 0; s < kv->n_seq; s++)
        kv->seq_len[s] = ctx->seq_next[s];
    if (logits && row > logits)
        memcpy(ctx->logits, row - n_vocab, n_vocab * sizeof(float));
    return PONDER_OK;
}

ponder_status ponder_context_decode(ponder_context *ctx, const int32_t *tokens, int32_t n, float *all_logits,
                                    ponder_error *err)
{
    if (!ctx || (!tokens && n > 0))
        return ponder_error_set(err, PONDER_ERR_INVALID_ARG, "ponder_context_decode: context and tokens are required");
    if (n <= 0)
        return ponder_error_set(err, PONDER_ERR_INVALID_ARG, "ponder_context_decode: no tokens to decode");
    return decode(ctx, tokens, NULL, n, NULL, all_logits != NULL, all_logits, err);
}

ponder_status ponder_context_decode_batch(ponder_context *ctx, const ponder_batch *b, float *logits,
                                          ponder_error *err)
{
    if (!ctx || !b || (!b->tokens && b->n_tokens > 0))
        return ponder_error_set(err, PONDER_ERR_INVALID_ARG, "ponder_context_decode_batch: context and tokens are required");
    if (b->n_tokens <= 0)
        return ponder_error_set(err, PONDER_ERR_INVALID_ARG, "ponder_context_decode_batch: no tokens to decode");
    return decode(ctx, b->tokens, b->seq, b->n_tokens, b->want_logits, false, logits, err);
}

const float *ponder_context_logits(const ponder_context *ctx) { return ctx->logits; }
int32_t ponder_context_n_past(const ponder_context *ctx) { return ctx->kv.seq_len[0]; }
int32_t ponder_context_n_ctx(const ponder_context *ctx) { return ctx->n_ctx; }
bool ponder_context_flash_attn(const ponder_context *ctx) { return ctx->flash; }

void ponder_context_reset(ponder_context *ctx)
{
    for (int32_t s = 0; s < ctx->kv.n_seq; s++)
        kv_seq_keep(&ctx->kv, s, 0);
}

int32_t ponder_context_n_seq_max(const ponder_context *ctx) { return ctx->kv.n_seq; }

int32_t ponder_context_seq_len(const ponder_context *ctx, ponder_seq_id seq)
{
    return seq >= 0 && seq < ctx->kv.n_seq ? ctx->kv.seq_len[seq] : -1;
}

int32_t ponder_context_n_free_cells(const ponder_context *ctx) { return ctx->kv.n_free * KV_BLOCK_CELLS; }

static ponder_status check_seq(const ponder_context *ctx, ponder_seq_id seq, const char *what, ponder_error *err)
{
    if (!ctx)
        return ponder_error_set(err, PONDER_ERR_INVALID_ARG, "%s: context is required", what);
    if (seq < 0 || seq >= ctx->kv.n_seq)
        return ponder_error_set(err, PONDER_ERR_INVALID_ARG, "%s: sequence id %d is outside the context's sequences (0..%d)",
                                what, seq, ctx->kv.n_seq - 1);
    return PONDER_OK;
}

ponder_status ponder_context_seq_clear(ponder_context *ctx, ponder_seq_id seq, ponder_error *err)
{
    ponder_status st = check_seq(ctx, seq, "ponder_context_seq_clear", err);
    if (st == PONDER_OK)
        kv_seq_keep(&ctx->kv, seq, 0);
    return st;
}

ponder_status ponder_context_seq_fork(ponder_context *ctx, ponder_seq_id src, ponder_seq_id dst, ponder_error *err)
{
    ponder_status st = check_seq(ctx, src, "ponder_context_seq_fork", err);
    if (st == PONDER_OK)
        st = check_seq(ctx, dst, "ponder_context_seq_fork", err);
    if (st != PONDER_OK || src == dst)
        return st;
    kv_seq_keep(&ctx->kv, dst, 0);
    kv_seq_share(&ctx->kv, src, dst);
    return PONDER_OK;
}

ponder_status ponder_context_seq_truncate(ponder_context *ctx, ponder_seq_id seq, int32_t n_keep, ponder_error *err)
{
    ponder_status st = check_seq(ctx, seq, "ponder_context_seq_truncate", err);
    if (st != PONDER_OK)
        return st;
    if (n_keep < 0 || n_keep > ctx->kv.seq_len[seq])
        return ponder_error_set(err, PONDER_ERR_RANGE, "cannot keep %d positions of sequence %d, which has %d", n_keep,
                                seq, ctx->kv.seq_len[seq]);
    kv_seq_keep(&ctx->kv, seq, n_keep);
    return PONDER_OK;
}
