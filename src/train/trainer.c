/*
 * trainer.c — the trainer: parameter layout, initialisation, forward and backward over a
 * sequence, AdamW with warm-up + cosine schedule, gradient clipping and accumulation.
 *
 * All weights live in one flat float array `w` (gradients `g`, Adam moments `m`, `v` in
 * the same layout), one tensor after another in GGUF naming. Matrices are stored as the
 * GGUF/engine stores them, (n_out, n_in) row-major, and `wt` caches their transposes
 * (refreshed after every step), so all three products of a linear layer (Y = X . W^T,
 * dX = dY . W, dW += dY^T . X) are one row-major GEMM form (tr_gemm) without packing.
 */
#include "train/train_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ponder/tensor.h"
#include "train/trainer_internal.h"

ponder_train_params ponder_train_params_default(void)
{
    return (ponder_train_params){
        .shape = {.n_vocab = 512, .n_embd = 64, .n_layer = 2, .n_head = 4, .n_head_kv = 2, .n_ff = 172,
                  .n_ctx = 256, .norm_eps = 1e-5f, .rope_base = 10000.0f},
        .lr = 1e-3f, .lr_min = 1e-4f, .warmup_steps = 100, .total_steps = 1000,
        .beta1 = 0.9f, .beta2 = 0.95f, .adam_eps = 1e-8f, /* the GPT-3 / llama.c settings */
        .weight_decay = 0.1f, .grad_clip = 1.0f, .init_std = 0.02f, .seed = 1234, .pool = NULL,
    };
}

#define PIECE 16384 /* elements per optimizer work unit */
#define CE_ROWS 16   /* logits rows per cross-entropy work unit */

static double uniform01(uint64_t *s) { return ((double)(tr_splitmix64(s) >> 11) + 0.5) * (1.0 / 9007199254740992.0); }

static ponder_status check_shape(const ponder_train_shape *s, ponder_error *err)
{
    if (s->n_vocab <= 0 || s->n_embd <= 0 || s->n_layer <= 0 || s->n_head <= 0 || s->n_head_kv <= 0 ||
        s->n_ff <= 0 || s->n_ctx <= 1)
        return ponder_error_set(err, PONDER_ERR_INVALID_ARG,
                                "train: shape values must be positive (vocab %d, dim %d, layers %d, heads %d, "
                                "kv heads %d, ff %d, ctx %d > 1)",
                                s->n_vocab, s->n_embd, s->n_layer, s->n_head, s->n_head_kv, s->n_ff, s->n_ctx);
    if (s->n_embd % s->n_head != 0 || (s->n_embd / s->n_head) % 2 != 0)
        return ponder_error_set(err, PONDER_ERR_INVALID_ARG,
                                "train: dim %d must be a multiple of heads %d with an even head size (RoPE pairs)",
                                s->n_embd, s->n_head);
    if (s->n_head % s->n_head_kv != 0)
        return ponder_error_set(err, PONDER_ERR_INVALID_ARG, "train: heads %d must be a multiple of kv heads %d",
                                s->n_head, s->n_head_kv);
    if (s->n_embd > 65536 || s->n_ff > 262144 || s->n_layer > 256 || s->n_ctx > 65536 || s->n_vocab > 1 << 20)
        return ponder_error_set(err, PONDER_ERR_RANGE, "train: shape too large for a CPU trainer");
    if (!(s->norm_eps > 0.0f) || !(s->rope_base > 1.0f))
        return ponder_error_set(err, PONDER_ERR_INVALID_ARG, "train: norm eps must be > 0 and rope base > 1");
    return PONDER_OK;
}

static int add_tensor(ponder_trainer *t, const char *name, int64_t ne0, int64_t ne1)
{
    tr_tensor *x = &t->tensors[t->n_tensors];
    snprintf(x->name, sizeof x->name, "%s", name);
    x->offset = t->n_params;
    x->ne0 = ne0;
    x->ne1 = ne1;
    t->n_params += ne0 * ne1;
    return t->n_tensors++;
}

static void layout(ponder_trainer *t)
{
    const ponder_train_shape *s = &t->p.shape;
    const int hd = s->n_embd / s->n_head, nq = s->n_head * hd, nk = s->n_head_kv * hd;
    char name[64];
    t->n_params = 0;
    t->n_tensors = 0;
    t->i_embd = add_tensor(t, "token_embd.weight", s->n_embd, s->n_vocab);
    for (int il = 0; il < s->n_layer; il++) {
        tr_layer *l = &t->layers[il];
#define ADD(field, suffix, ne0, ne1)                                                                                \
    snprintf(name, sizeof name, "blk.%d." suffix, il);                                                              \
    l->field = add_tensor(t, name, ne0, ne1)
        ADD(attn_norm, "attn_norm.weight", s->n_embd, 1);
        ADD(wq, "attn_q.weight", s->n_embd, nq);
        ADD(wk, "attn_k.weight", s->n_embd, nk);
        ADD(wv, "attn_v.weight", s->n_embd, nk);
        ADD(wo, "attn_output.weight", nq, s->n_embd);
        ADD(ffn_norm, "ffn_norm.weight", s->n_embd, 1);
        ADD(w_gate, "ffn_gate.weight", s->n_embd, s->n_ff);
        ADD(w_up, "ffn_up.weight", s->n_embd, s->n_ff);
        ADD(w_down, "ffn_down.weight", s->n_ff, s->n_embd);
#undef ADD
    }
    t->i_out_norm = add_tensor(t, "output_norm.weight", s->n_embd, 1);
}

static void *xcalloc(size_t n, size_t size, bool *ok)
{
    void *p = calloc(n ? n : 1, size);
    if (!p)
        *ok = false;
    return p;
}

/* Allocates everything for a validated shape; weights are left zero. */
static ponder_status trainer_alloc(const ponder_train_params *p, ponder_trainer **out, ponder_error *err)
{
    *out = NULL;
    ponder_status st = check_shape(&p->shape, err);
    if (st != PONDER_OK)
        return st;
    ponder_trainer *t = calloc(1, sizeof *t);
    if (!t)
        return ponder_error_set(err, PONDER_ERR_NOMEM, "train: out of memory");
    t->p = *p;
    const ponder_train_shape *s = &t->p.shape;
    bool ok = true;
    t->n_tensors_cap = 2 + 9 * s->n_layer;
    t->tensors = xcalloc((size_t)t->n_tensors_cap, sizeof *t->tensors, &ok);
    t->layers = xcalloc((size_t)s->n_layer, sizeof *t->layers, &ok);
    if (!ok) {
        ponder_trainer_free(t);
        return ponder_error_set(err, PONDER_ERR_NOMEM, "train: out of memory");
    }
    layout(t);
    const size_t np = (size_t)t->n_params;
    t->w = xcalloc(np, sizeof(float), &ok);
    t->g = xcalloc(np, sizeof(float), &ok);
    t->m = xcalloc(np, sizeof(float), &ok);
    t->v = xcalloc(np, sizeof(float), &ok);
    t->wt = xcalloc(np, sizeof(float), &ok);

    /* activations for one sequence of up to n_ctx tokens */
    const size_t T = (size_t)s->n_ctx, D = (size_t)s->n_embd, F = (size_t)s->n_ff, V = (size_t)s->n_vocab;
    const size_t hd = D / (size_t)s->n_head, Q = (size_t)s->n_head * hd, K = (size_t)s->n_head_kv * hd;
    t->acts = xcalloc((size_t)s->n_layer, sizeof *t->acts, &ok);
    for (int il = 0; ok && il < s->n_layer; il++) {
        tr_acts *a = &t->acts[il];
        a->xin = xcalloc(T * D, sizeof(float), &ok);
        a->xn1 = xcalloc(T * D, sizeof(float), &ok);
        a->r1 = xcalloc(T, sizeof(float), &ok);
        a->q = xcalloc(T * Q, sizeof(float), &ok);
        a->k = xcalloc(T * K, sizeof(float), &ok);
        a->v = xcalloc(T * K, sizeof(float), &ok);
        a->probs = xcalloc((size_t)s->n_head * T * T, sizeof(float), &ok);
        a->att = xcalloc(T * Q, sizeof(float), &ok);
        a->xmid = xcalloc(T * D, sizeof(float), &ok);
        a->xn2 = xcalloc(T * D, sizeof(float), &ok);
        a->r2 = xcalloc(T, sizeof(float), &ok);
        a->gate = xcalloc(T * F, sizeof(float), &ok);
        a->up = xcalloc(T * F, sizeof(float), &ok);
        a->h = xcalloc(T * F, sizeof(float), &ok);
    }
    size_t wide = D > F ? D : F;
    wide = wide > V ? wide : V;
    wide = wide > Q ? wide : Q;
    t->x = xcalloc(T * D, sizeof(float), &ok);
    t->xnf = xcalloc(T * D, sizeof(float), &ok);
    t->rf = xcalloc(T, sizeof(float), &ok);
    t->logits = xcalloc(T * V, sizeof(float), &ok);
    t->dlogits = xcalloc(T * V, sizeof(float), &ok);
    t->dx = xcalloc(T * D, sizeof(float), &ok);
    t->dtmp = xcalloc(T * wide, sizeof(float), &ok);
    t->dtmp2 = xcalloc(T * wide, sizeof(float), &ok);
    t->dq = xcalloc(T * Q, sizeof(float), &ok);
    t->dk = xcalloc(T * K, sizeof(float), &ok);
    t->dv = xcalloc(T * K, sizeof(float), &ok);
    t->dgate = xcalloc(T * F, sizeof(float), &ok);
    t->dup = xcalloc(T * F, sizeof(float), &ok);
    t->rope_cs = xcalloc(T * hd, sizeof(float), &ok);
    t->attn_scratch = xcalloc(tr_attn_scratch_floats((int)T, s->n_head_kv, (int)hd), sizeof(float), &ok);
    if (!ok) {
        ponder_trainer_free(t);
        return ponder_error_set(err, PONDER_ERR_NOMEM, "train: out of memory for %lld parameters and n_ctx %d",
                                (long long)np, s->n_ctx);
    }
    /* the optimizer's pieces: every tensor cut into PIECE-element parts */
    for (int i = 0; i < t->n_tensors; i++)
        t->n_pieces += (t->tensors[i].ne0 * t->tensors[i].ne1 + PIECE - 1) / PIECE;
    t->pieces = xcalloc((size_t)t->n_pieces, sizeof *t->pieces, &ok);
    t->piece_sq = xcalloc((size_t)t->n_pieces, sizeof *t->piece_sq, &ok);
    t->ce_loss = xcalloc(T / CE_ROWS + 1, sizeof *t->ce_loss, &ok);
    t->ce_count = xcalloc(T / CE_ROWS + 1, sizeof *t->ce_count, &ok);
    if (!ok) {
        ponder_trainer_free(t);
        return ponder_error_set(err, PONDER_ERR_NOMEM, "train: out of memory");
    }
    int64_t np_ = 0;
    for (int i = 0; i < t->n_tensors; i++) {
        const tr_tensor *x = &t->tensors[i];
        const int64_t n = x->ne0 * x->ne1;
        for (int64_t o = 0; o < n; o += PIECE)
            t->pieces[np_++] = (tr_piece){.offset = x->offset + o, .n = n - o < PIECE ? n - o : PIECE,
                                          .decay = x->ne1 > 1};
    }
    tr_rope_cache(t->rope_cs, s->n_ctx, (int)hd, s->rope_base);
    *out = t;
    return PONDER_OK;
}

static void transpose_range(void *ctx, int64_t c, int64_t i0, int64_t i1)
{
    (void)c;
    ponder_trainer *t = ctx;
    for (int64_t i = i0; i < i1; i++) {
        const tr_tensor *x = &t->tensors[i];
        if (x->ne1 > 1)
            tr_transpose(t->wt + x->offset, t->w + x->offset, x->ne1, x->ne0);
    }
}

void tr_refresh_transposes(ponder_trainer *t)
{
    tr_parallel_for(t->p.pool, t->n_tensors, 1, transpose_range, t);
}

ponder_status tr_trainer_alloc(const ponder_train_params *p, ponder_trainer **out, ponder_error *err)
{
    return trainer_alloc(p, out, err);
}

ponder_status ponder_trainer_create(const ponder_train_params *p, ponder_trainer **out, ponder_error *err)
{
    ponder_trainer *t = NULL;
    ponder_status st = trainer_alloc(p, &t, err);
    if (st != PONDER_OK)
        return st;
    /* N(0, std) matrices (Box-Muller), residual outputs scaled by 1/sqrt(2 n_layer) as GPT-2 */
    uint64_t rng = p->seed;
    const float resid_scale = 1.0f / sqrtf(2.0f * (float)p->shape.n_layer);
    for (int i = 0; i < t->n_tensors; i++) {
        const tr_tensor *x = &t->tensors[i];
        float *w = t->w + x->offset;
        const int64_t n = x->ne0 * x->ne1;
        if (x->ne1 == 1) {
            for (int64_t j = 0; j < n; j++)
                w[j] = 1.0f;
            continue;
        }
        const bool resid = strstr(x->name, "attn_output") || strstr(x->name, "ffn_down");
        const float std = p->init_std * (resid ? resid_scale : 1.0f);
        for (int64_t j = 0; j < n; j++) {
            const double u1 = uniform01(&rng), u2 = uniform01(&rng);
            w[j] = (float)(std * sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
        }
    }
    tr_refresh_transposes(t);
    *out = t;
    return PONDER_OK;
}

void ponder_trainer_free(ponder_trainer *t)
{
    if (!t)
        return;
    if (t->acts)
        for (int il = 0; il < t->p.shape.n_layer; il++) {
            tr_acts *a = &t->acts[il];
            free(a->xin), free(a->xn1), free(a->r1), free(a->q), free(a->k), free(a->v), free(a->probs);
            free(a->att), free(a->xmid), free(a->xn2), free(a->r2), free(a->gate), free(a->up), free(a->h);
        }
    free(t->acts);
    free(t->x), free(t->xnf), free(t->rf), free(t->logits), free(t->dlogits), free(t->dx), free(t->dtmp);
    free(t->dtmp2), free(t->dq), free(t->dk), free(t->dv), free(t->dgate), free(t->dup), free(t->rope_cs);
    free(t->attn_scratch), free(t->pieces), free(t->piece_sq), free(t->ce_loss), free(t->ce_count);
    free(t->w), free(t->g), free(t->m), free(t->v), free(t->wt);
    free(t->tensors), free(t->layers);
    free(t);
}

const ponder_train_params *ponder_trainer_params(const ponder_trainer *t) { return &t->p; }
void ponder_trainer_set_pool(ponder_trainer *t, ponder_pool *pool) { t->p.pool = pool; }

void ponder_trainer_reset_optimizer(ponder_trainer *t)
{
    memset(t->m, 0, (size_t)t->n_params * sizeof *t->m);
    memset(t->v, 0, (size_t)t->n_params * sizeof *t->v);
    t->step = 0;
    ponder_trainer_zero_grad(t);
}
int64_t ponder_trainer_n_params(const ponder_trainer *t) { return t->n_params; }
int64_t ponder_trainer_step_count(const ponder_trainer *t) { return t->step; }
float *ponder_trainer_weights(ponder_trainer *t) { return t->w; }
float *ponder_trainer_grads(ponder_trainer *t) { return t->g; }
int ponder_trainer_n_tensors(const ponder_trainer *t) { return t->n_tensors; }

const char *ponder_trainer_tensor_name(const ponder_trainer *t, int i, int64_t *offset, int64_t *n_elems)
{
    if (i < 0 || i >= t->n_tensors)
        return NULL;
    if (offset)
        *offset = t->tensors[i].offset;
    if (n_elems)
        *n_elems = t->tensors[i].ne0 * t->tensors[i].ne1;
    return t->tensors[i].name;
}

void ponder_trainer_set_schedule(ponder_trainer *t, float lr, float lr_min, int32_t warmup_steps,
                                 int32_t total_steps, float weight_decay, float grad_clip)
{
    t->p.lr = lr;
    t->p.lr_min = lr_min;
    t->p.warmup_steps = warmup_steps;
    t->p.total_steps = total_steps;
    t->p.weight_decay = weight_decay;
    t->p.grad_clip = grad_clip;
}

void ponder_trainer_sync_weights(ponder_trainer *t) { tr_refresh_transposes(t); }

void ponder_trainer_zero_grad(ponder_trainer *t)
{
    memset(t->g, 0, (size_t)t->n_params * sizeof(float));
    t->n_targets_acc = 0;
}

double ponder_trainer_flops_per_token(const ponder_trainer *t, int32_t n_pos)
{
    const ponder_train_shape *s = &t->p.shape;
    const double D = s->n_embd, F = s->n_ff, hd = D / s->n_head, Q = s->n_head * hd, K = s->n_head_kv * hd;
    const double per_layer = 2.0 * (D * Q + 2.0 * D * K + Q * D + 3.0 * D * F) + 2.0 * 2.0 * Q * n_pos;
    const double fwd = s->n_layer * per_layer + 2.0 * D * s->n_vocab;
    return 3.0 * fwd;
}

/* ---- the pass ---- */

#define W(i) (t->w + t->tensors[(i)].offset)
#define WT(i) (t->wt + t->tensors[(i)].offset)
#define G(i) (t->g + t->tensors[(i)].offset)

/* Y (n, n_out) = X (n, n_in) . W^T, reading the cached W^T (n_in, n_out). */
static void lin_fwd(ponder_trainer *t, float *y, const float *x, int iw, int n, int n_in, int n_out)
{
    const tr_gemm_args g = {.C = y, .A = x, .B = WT(iw), .M = n, .N = n_out, .K = n_in, .ldc = n_out,
                            .ldb = n_out, .sam = n_in, .sak = 1};
    tr_gemm(&g, t->p.pool);
}

/* dX (n, n_in) = dY (n, n_out) . W (n_out, n_in). */
static void lin_bwd_x(ponder_trainer *t, float *dx, const float *dy, int iw, int n, int n_in, int n_out)
{
    const tr_gemm_args g = {.C = dx, .A = dy, .B = W(iw), .M = n, .N = n_in, .K = n_out, .ldc = n_in,
                            .ldb = n_in, .sam = n_out, .sak = 1};
    tr_gemm(&g, t->p.pool);
}

/* dW (n_out, n_in) += dY^T . X over n tokens: dY is read transposed through its strides. */
static void lin_bwd_w(ponder_trainer *t, int iw, const float *dy, const float *x, int n, int n_in, int n_out)
{
    const tr_gemm_args g = {.C = G(iw), .A = dy, .B = x, .M = n_out, .N = n_in, .K = n, .ldc = n_in,
                            .ldb = n_in, .sam = 1, .sak = n_out, .accumulate = true};
    tr_gemm(&g, t->p.pool);
}

static void add_rows(float *y, const float *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        y[i] += x[i];
}

/* ---- row-parallel element-wise layers (each row or element computed as the serial op) ---- */

typedef struct par_args {
    float *y, *r, *dg, *du;
    const float *x, *w, *g, *u, *dh;
    int n;
    float eps;
} par_args;

static void rmsnorm_range(void *ctx, int64_t c, int64_t i0, int64_t i1)
{
    (void)c;
    const par_args *a = ctx;
    tr_rmsnorm_fwd(a->y + i0 * a->n, a->r + i0, a->x + i0 * a->n, a->w, (int)(i1 - i0), a->n, a->eps);
}

static void par_rmsnorm_fwd(ponder_trainer *t, float *y, float *rinv, const float *x, const float *w, int n_tok,
                            int n)
{
    par_args a = {.y = y, .r = rinv, .x = x, .w = w, .n = n, .eps = t->p.shape.norm_eps};
    tr_parallel_for(t->p.pool, n_tok, 16, rmsnorm_range, &a);
}

static void swiglu_fwd_range(void *ctx, int64_t c, int64_t i0, int64_t i1)
{
    (void)c;
    const par_args *a = ctx;
    tr_swiglu_fwd(a->y + i0, a->g + i0, a->u + i0, i1 - i0);
}

static void swiglu_bwd_range(void *ctx, int64_t c, int64_t i0, int64_t i1)
{
    (void)c;
    const par_args *a = ctx;
    tr_swiglu_bwd(a->dg + i0, a->du + i0, a->dh + i0, a->g + i0, a->u + i0, i1 - i0);
}

static void par_swiglu_fwd(ponder_trainer *t, float *h, const float *g, const float *u, int64_t n)
{
    par_args a = {.y = h, .g = g, .u = u};
    tr_parallel_for(t->p.pool, n, 8192, swiglu_fwd_range, &a);
}

static void par_swiglu_bwd(ponder_trainer *t, float *dg, float *du, const float *dh, const float *g, const float *u,
                           int64_t n)
{
    par_args a = {.dg = dg, .du = du, .dh = dh, .g = g, .u = u};
    tr_parallel_for(t->p.pool, n, 8192, swiglu_bwd_range, &a);
}

typedef struct ce_args {
    ponder_trainer *t;
    const int32_t *tokens;
    const uint8_t *mask;
    int n;
} ce_args;

static void ce_range(void *ctx, int64_t c, int64_t i0, int64_t i1)
{
    const ce_args *a = ctx;
    ponder_trainer *t = a->t;
    t->ce_loss[c] = tr_cross_entropy_rows(t->dlogits, t->logits, a->tokens, a->mask, a->n, t->p.shape.n_vocab,
                                          (int)i0, (int)i1, &t->ce_count[c]);
}

/* tr_cross_entropy over CE_ROWS-row chunks, summed in chunk order. */
static double par_cross_entropy(ponder_trainer *t, const int32_t *tokens, const uint8_t *mask, int n,
                                int64_t *n_targets)
{
    ce_args a = {.t = t, .tokens = tokens, .mask = mask, .n = n};
    tr_parallel_for(t->p.pool, n, CE_ROWS, ce_range, &a);
    double loss = 0.0;
    int64_t count = 0;
    for (int c = 0; c < (n + CE_ROWS - 1) / CE_ROWS; c++)
        loss += t->ce_loss[c], count += t->ce_count[c];
    *n_targets = count;
    return loss;
}

/* Forward over tokens[0..n): fills the saved activations and t->logits (n rows). */
static void forward(ponder_trainer *t, const int32_t *tokens, int n)
{
    const ponder_train_shape *s = &t->p.shape;
    const int D = s->n_embd, F = s->n_ff, hd = D / s->n_head, Q = s->n_head * hd, K = s->n_head_kv * hd;
    ponder_pool *pool = t->p.pool;
    float *x = t->x;

    /* token embeddings */
    for (int i = 0; i < n; i++)
        memcpy(x + (size_t)i * D, W(t->i_embd) + (size_t)tokens[i] * D, (size_t)D * sizeof(float));

    for (int il = 0; il < s->n_layer; il++) {
        const tr_layer *l = &t->layers[il];
        tr_acts *a = &t->acts[il];
        memcpy(a->xin, x, (size_t)n * D * sizeof(float));
        /* attention: norm, Q/K/V, RoPE, causal attention, output projection, residual */
        par_rmsnorm_fwd(t, a->xn1, a->r1, x, W(l->attn_norm), n, D);
        lin_fwd(t, a->q, a->xn1, l->wq, n, D, Q);
        lin_fwd(t, a->k, a->xn1, l->wk, n, D, K);
        lin_fwd(t, a->v, a->xn1, l->wv, n, D, K);
        tr_rope_fwd(a->q, n, s->n_head, hd, t->rope_cs);
        tr_rope_fwd(a->k, n, s->n_head_kv, hd, t->rope_cs);
        tr_attn_fwd(a->att, a->probs, a->q, a->k, a->v, n, s->n_head, s->n_head_kv, hd, t->attn_scratch, pool);
        lin_fwd(t, t->dtmp, a->att, l->wo, n, Q, D);
        add_rows(x, t->dtmp, (size_t)n * D);
        memcpy(a->xmid, x, (size_t)n * D * sizeof(float));
        /* feed-forward: norm, SwiGLU, down projection, residual */
        par_rmsnorm_fwd(t, a->xn2, a->r2, x, W(l->ffn_norm), n, D);
        lin_fwd(t, a->gate, a->xn2, l->w_gate, n, D, F);
        lin_fwd(t, a->up, a->xn2, l->w_up, n, D, F);
        par_swiglu_fwd(t, a->h, a->gate, a->up, (int64_t)n * F);
        lin_fwd(t, t->dtmp, a->h, l->w_down, n, F, D);
        add_rows(x, t->dtmp, (size_t)n * D);
    }
    /* final norm, tied output */
    par_rmsnorm_fwd(t, t->xnf, t->rf, x, W(t->i_out_norm), n, D);
    lin_fwd(t, t->logits, t->xnf, t->i_embd, n, D, s->n_vocab);
}

/* Backward from t->dlogits; adds every weight gradient. */
static void backward(ponder_trainer *t, const int32_t *tokens, int n)
{
    const ponder_train_shape *s = &t->p.shape;
    const int D = s->n_embd, F = s->n_ff, V = s->n_vocab, hd = D / s->n_head, Q = s->n_head * hd,
              K = s->n_head_kv * hd;
    ponder_pool *pool = t->p.pool;
    float *dx = t->dx, *d1 = t->dtmp, *d2 = t->dtmp2;

    /* tied output and final norm */
    lin_bwd_x(t, d1, t->dlogits, t->i_embd, n, D, V);
    lin_bwd_w(t, t->i_embd, t->dlogits, t->xnf, n, D, V);
    const float *x_last = t->x; /* the residual stream after the last layer */
    tr_rmsnorm_bwd(dx, G(t->i_out_norm), d1, x_last, W(t->i_out_norm), t->rf, n, D);

    for (int il = s->n_layer - 1; il >= 0; il--) {
        const tr_layer *l = &t->layers[il];
        const tr_acts *a = &t->acts[il];
        /* x_out = xmid + down(swiglu(gate(xn2), up(xn2))) */
        lin_bwd_x(t, d1, dx, l->w_down, n, F, D); /* dh */
        lin_bwd_w(t, l->w_down, dx, a->h, n, F, D);
        par_swiglu_bwd(t, t->dgate, t->dup, d1, a->gate, a->up, (int64_t)n * F);
        lin_bwd_x(t, d1, t->dgate, l->w_gate, n, D, F);
        lin_bwd_x(t, d2, t->dup, l->w_up, n, D, F);
        add_rows(d1, d2, (size_t)n * D); /* dxn2 */
        lin_bwd_w(t, l->w_gate, t->dgate, a->xn2, n, D, F);
        lin_bwd_w(t, l->w_up, t->dup, a->xn2, n, D, F);
        tr_rmsnorm_bwd(d2, G(l->ffn_norm), d1, a->xmid, W(l->ffn_norm), a->r2, n, D);
        add_rows(dx, d2, (size_t)n * D); /* dxmid */

        /* xmid = xin + wo(attention(rope(q), rope(k), v)) */
        lin_bwd_x(t, d1, dx, l->wo, n, Q, D); /* datt */
        lin_bwd_w(t, l->wo, dx, a->att, n, Q, D);
        tr_attn_bwd(t->dq, t->dk, t->dv, d1, a->probs, a->q, a->k, a->v, n, s->n_head, s->n_head_kv, hd,
                    t->attn_scratch, pool);
        tr_rope_bwd(t->dq, n, s->n_head, hd, t->rope_cs);
        tr_rope_bwd(t->dk, n, s->n_head_kv, hd, t->rope_cs);
        lin_bwd_x(t, d1, t->dq, l->wq, n, D, Q);
        lin_bwd_x(t, d2, t->dk, l->wk, n, D, K);
        add_rows(d1, d2, (size_t)n * D);
        lin_bwd_x(t, d2, t->dv, l->wv, n, D, K);
        add_rows(d1, d2, (size_t)n * D); /* dxn1 */
        lin_bwd_w(t, l->wq, t->dq, a->xn1, n, D, Q);
        lin_bwd_w(t, l->wk, t->dk, a->xn1, n, D, K);
        lin_bwd_w(t, l->wv, t->dv, a->xn1, n, D, K);
        tr_rmsnorm_bwd(d2, G(l->attn_norm), d1, a->xin, W(l->attn_norm), a->r1, n, D);
        add_rows(dx, d2, (size_t)n * D); /* dxin */
    }
    /* embedding rows */
    float *ge = G(t->i_embd);
    for (int i = 0; i < n; i++)
        add_rows(ge + (size_t)tokens[i] * D, dx + (size_t)i * D, (size_t)D);
}

static ponder_status check_seq(const ponder_trainer *t, const ponder_train_seq *q, int idx, ponder_error *err)
{
    if (!q->tokens || q->n < 1 || q->n > t->p.shape.n_ctx)
        return ponder_error_set(err, PONDER_ERR_INVALID_ARG, "train: sequence %d has %d tokens (1..%d allowed)", idx,
                                q->n, t->p.shape.n_ctx);
    for (int i = 0; i < q->n; i++)
        if (q->tokens[i] < 0 || q->tokens[i] >= t->p.shape.n_vocab)
            return ponder_error_set(err, PONDER_ERR_INVALID_ARG,
                                    "train: sequence %d: token %d at position %d is outside the vocabulary (%d)",
                                    idx, q->tokens[i], i, t->p.shape.n_vocab);
    return PONDER_OK;
}

static ponder_status run_seqs(ponder_trainer *t, const ponder_train_seq *seqs, int n_seqs, bool train,
                              double *loss_sum, int64_t *n_targets, ponder_error *err)
{
    if (!t || (!seqs && n_seqs > 0) || n_seqs < 0)
        return ponder_error_set(err, PONDER_ERR_INVALID_ARG, "train: bad arguments");
    for (int i = 0; i < n_seqs; i++) {
        ponder_status st = check_seq(t, &seqs[i], i, err);
        if (st != PONDER_OK)
            return st;
    }
    double loss = 0.0;
    int64_t count = 0;
    for (int i = 0; i < n_seqs; i++) {
        const ponder_train_seq *q = &seqs[i];
        forward(t, q->tokens, q->n);
        int64_t c = 0;
        loss += par_cross_entropy(t, q->tokens, q->loss_mask, q->n, &c);
        count += c;
        if (train && c > 0)
            backward(t, q->tokens, q->n);
    }
    if (train)
        t->n_targets_acc += count;
    if (loss_sum)
        *loss_sum = loss;
    if (n_targets)
        *n_targets = count;
    return PONDER_OK;
}

ponder_status ponder_trainer_accumulate(ponder_trainer *t, const ponder_train_seq *seqs, int n_seqs,
                                        double *loss_sum, int64_t *n_targets, ponder_error *err)
{
    return run_seqs(t, seqs, n_seqs, true, loss_sum, n_targets, err);
}

ponder_status ponder_trainer_eval(ponder_trainer *t, const ponder_train_seq *seqs, int n_seqs, double *loss_sum,
                                  int64_t *n_targets, ponder_error *err)
{
    return run_seqs(t, seqs, n_seqs, false, loss_sum, n_targets, err);
}

ponder_status ponder_trainer_logits(ponder_trainer *t, const int32_t *tokens, int32_t n, float *logits,
                                    ponder_error *err)
{
    ponder_train_seq q = {.tokens = tokens, .n = n};
    ponder_status st = check_seq(t, &q, 0, err);
    if (st != PONDER_OK)
        return st;
    forward(t, tokens, n);
    memcpy(logits, t->logits, (size_t)n * t->p.shape.n_vocab * sizeof(float));
    return PONDER_OK;
}

/* ---- optimizer ---- */

float ponder_trainer_lr(const ponder_trainer *t)
{
    const ponder_train_params *p = &t->p;
    const int64_t s = t->step;
    if (p->warmup_steps > 0 && s < p->warmup_steps)
        return p->lr * (float)(s + 1) / (float)p->warmup_steps;
    if (s >= p->total_steps)
        return p->lr_min;
    const int64_t span = p->total_steps - p->warmup_steps;
    const double frac = span > 0 ? (double)(s - p->warmup_steps) / (double)span : 1.0;
    return (float)(p->lr_min + 0.5 * (p->lr - p->lr_min) * (1.0 + cos(3.14159265358979323846 * frac)));
}

typedef struct adam_args {
    ponder_trainer *t;
    float inv, clip, lr, bc1, bc2;
} adam_args;

static void gnorm_range(void *ctx, int64_t c, int64_t i0, int64_t i1)
{
    (void)i1;
    const adam_args *a = ctx;
    const tr_piece *pc = &a->t->pieces[i0];
    float *g = a->t->g + pc->offset;
    double sq = 0.0;
    for (int64_t i = 0; i < pc->n; i++) {
        g[i] *= a->inv;
        sq += (double)g[i] * g[i];
    }
    a->t->piece_sq[c] = sq;
}

static void adam_range(void *ctx, int64_t c, int64_t i0, int64_t i1)
{
    (void)c, (void)i1;
    const adam_args *a = ctx;
    const ponder_train_params *p = &a->t->p;
    const tr_piece *pc = &a->t->pieces[i0];
    const float wd = pc->decay ? p->weight_decay : 0.0f; /* no decay on norm weights */
    float *w = a->t->w + pc->offset, *g = a->t->g + pc->offset, *m = a->t->m + pc->offset,
          *v = a->t->v + pc->offset;
    for (int64_t i = 0; i < pc->n; i++) {
        const float gi = g[i] * a->clip;
        m[i] = p->beta1 * m[i] + (1.0f - p->beta1) * gi;
        v[i] = p->beta2 * v[i] + (1.0f - p->beta2) * gi * gi;
        const float mh = m[i] / a->bc1, vh = v[i] / a->bc2;
        w[i] -= a->lr * (mh / (sqrtf(vh) + p->adam_eps) + wd * w[i]);
        g[i] = 0.0f; /* the next step's accumulator */
    }
}

/* AdamW over the pieces on the pool; the gradient norm sums the pieces in order. */
ponder_status ponder_trainer_step(ponder_trainer *t, float *grad_norm, ponder_error *err)
{
    if (t->n_targets_acc <= 0)
        return ponder_error_set(err, PONDER_ERR_INVALID_ARG, "train: step without any target token accumulated");
    const ponder_train_params *p = &t->p;
    adam_args a = {.t = t, .inv = 1.0f / (float)t->n_targets_acc};
    tr_parallel_for(p->pool, t->n_pieces, 1, gnorm_range, &a);
    double sq = 0.0;
    for (int64_t i = 0; i < t->n_pieces; i++)
        sq += t->piece_sq[i];
    const float norm = (float)sqrt(sq);
    if (grad_norm)
        *grad_norm = norm;
    a.clip = p->grad_clip > 0.0f && norm > p->grad_clip ? p->grad_clip / norm : 1.0f;
    a.lr = ponder_trainer_lr(t);
    t->step++;
    a.bc1 = 1.0f - powf(p->beta1, (float)t->step), a.bc2 = 1.0f - powf(p->beta2, (float)t->step);
    tr_parallel_for(p->pool, t->n_pieces, 1, adam_range, &a);
    tr_refresh_transposes(t);
    t->n_targets_acc = 0; /* adam_range zeroed the gradient */
    return PONDER_OK;
}

/* ---- peak ---- */

#include <time.h>

double ponder_train_peak_flops_1core(void)
{
#ifdef PONDER_TRAIN_AVX2
    /* the peak of the path the matrix products take (PONDER_ISA can narrow it) */
    if (tr_gemm_path() == 2)
        return tr_peak_flops_avx512();
    if (tr_gemm_path() == 1)
        return tr_peak_flops_avx2();
#endif
    /* baseline: four independent scalar multiply-adds (what the scalar kernels reach) */
    volatile float seed = 0.999999f;
    float a = seed, acc[4] = {1e-7f, 2e-7f, 3e-7f, 4e-7f};
    const long iters = 20000000L;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (long it = 0; it < iters; it++)
        for (int i = 0; i < 4; i++)
            acc[i] = acc[i] * a + 1e-7f;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    seed = acc[0] + acc[1] + acc[2] + acc[3];
    const double dt = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    return (double)iters * 4 * 2 / (dt > 0 ? dt : 1e-9);
}
