/*
 * pass.c — the trainer's forward and backward pass over a batch of sequences, and the
 * per-thread workspaces it runs in.
 *
 * With one thread (or one sequence) each layer runs its products and element-wise parts
 * on the pool. With N > 1 threads, the batch is data-parallel instead: thread i runs
 * sequences i, i + N, ... whole, in its own workspace with its own gradient, and the
 * gradients are summed into the trainer's in thread order after the batch. One pool
 * synchronisation per batch instead of a few hundred per sequence: on a machine where
 * the other threads are often descheduled, that is the difference between 1.9x and
 * 0.5x. Results are bit-for-bit the same for a given thread count.
 */
#include "train/train_internal.h"

#include <stdlib.h>
#include <string.h>

#include "train/trainer_internal.h"

/* ---- workspaces ---- */

static void *wcalloc(size_t n, size_t size, bool *ok)
{
    void *p = calloc(n ? n : 1, size);
    if (!p)
        *ok = false;
    return p;
}

bool tr_ws_alloc(const ponder_trainer *t, tr_ws *ws, float *g)
{
    const ponder_train_shape *s = &t->p.shape;
    const size_t T = (size_t)s->n_ctx, D = (size_t)s->n_embd, F = (size_t)s->n_ff, V = (size_t)s->n_vocab;
    const size_t hd = D / (size_t)s->n_head, Q = (size_t)s->n_head * hd, K = (size_t)s->n_head_kv * hd;
    bool ok = true;
    memset(ws, 0, sizeof *ws);
    ws->g = g;
    if (!g) {
        ws->g = wcalloc((size_t)t->n_params, sizeof(float), &ok);
        ws->own_g = true;
    }
    ws->acts = wcalloc((size_t)s->n_layer, sizeof *ws->acts, &ok);
    for (int il = 0; ok && il < s->n_layer; il++) {
        tr_acts *a = &ws->acts[il];
        a->xin = wcalloc(T * D, sizeof(float), &ok);
        a->xn1 = wcalloc(T * D, sizeof(float), &ok);
        a->r1 = wcalloc(T, sizeof(float), &ok);
        a->q = wcalloc(T * Q, sizeof(float), &ok);
        a->k = wcalloc(T * K, sizeof(float), &ok);
        a->v = wcalloc(T * K, sizeof(float), &ok);
        a->probs = wcalloc((size_t)s->n_head * T * T, sizeof(float), &ok);
        a->att = wcalloc(T * Q, sizeof(float), &ok);
        a->xmid = wcalloc(T * D, sizeof(float), &ok);
        a->xn2 = wcalloc(T * D, sizeof(float), &ok);
        a->r2 = wcalloc(T, sizeof(float), &ok);
        a->gate = wcalloc(T * F, sizeof(float), &ok);
        a->up = wcalloc(T * F, sizeof(float), &ok);
        a->h = wcalloc(T * F, sizeof(float), &ok);
    }
    size_t wide = D > F ? D : F;
    wide = wide > V ? wide : V;
    wide = wide > Q ? wide : Q;
    ws->x = wcalloc(T * D, sizeof(float), &ok);
    ws->xnf = wcalloc(T * D, sizeof(float), &ok);
    ws->rf = wcalloc(T, sizeof(float), &ok);
    ws->logits = wcalloc(T * V, sizeof(float), &ok);
    ws->dlogits = wcalloc(T * V, sizeof(float), &ok);
    ws->dx = wcalloc(T * D, sizeof(float), &ok);
    ws->dtmp = wcalloc(T * wide, sizeof(float), &ok);
    ws->dtmp2 = wcalloc(T * wide, sizeof(float), &ok);
    ws->dq = wcalloc(T * Q, sizeof(float), &ok);
    ws->dk = wcalloc(T * K, sizeof(float), &ok);
    ws->dv = wcalloc(T * K, sizeof(float), &ok);
    ws->dgate = wcalloc(T * F, sizeof(float), &ok);
    ws->dup = wcalloc(T * F, sizeof(float), &ok);
    ws->attn_scratch = wcalloc(tr_attn_scratch_floats((int)T, s->n_head_kv, (int)hd), sizeof(float), &ok);
    ws->ce_loss = wcalloc(T / TR_CE_ROWS + 1, sizeof *ws->ce_loss, &ok);
    ws->ce_count = wcalloc(T / TR_CE_ROWS + 1, sizeof *ws->ce_count, &ok);
    return ok;
}

void tr_ws_free(const ponder_trainer *t, tr_ws *ws)
{
    if (ws->acts)
        for (int il = 0; il < t->p.shape.n_layer; il++) {
            tr_acts *a = &ws->acts[il];
            free(a->xin), free(a->xn1), free(a->r1), free(a->q), free(a->k), free(a->v), free(a->probs);
            free(a->att), free(a->xmid), free(a->xn2), free(a->r2), free(a->gate), free(a->up), free(a->h);
        }
    free(ws->acts);
    free(ws->x), free(ws->xnf), free(ws->rf), free(ws->logits), free(ws->dlogits), free(ws->dx), free(ws->dtmp);
    free(ws->dtmp2), free(ws->dq), free(ws->dk), free(ws->dv), free(ws->dgate), free(ws->dup);
    free(ws->attn_scratch), free(ws->ce_loss), free(ws->ce_count);
    if (ws->own_g)
        free(ws->g);
    memset(ws, 0, sizeof *ws);
}

/* ---- layers ---- */

/* One pass: the trainer (weights), the workspace (activations, gradient) and the pool the
 * products run on (NULL when the pool's threads each run whole sequences). */
typedef struct pass {
    const ponder_trainer *t;
    tr_ws *ws;
    ponder_pool *pool;
} pass;

#define W(i) (c->t->w + c->t->tensors[(i)].offset)
#define WT(i) (c->t->wt + c->t->tensors[(i)].offset)
#define G(i) (c->ws->g + c->t->tensors[(i)].offset)

/* Y (n, n_out) = X (n, n_in) . W^T, reading the cached W^T (n_in, n_out). */
static void lin_fwd(const pass *c, float *y, const float *x, int iw, int n, int n_in, int n_out)
{
    const tr_gemm_args g = {.C = y, .A = x, .B = WT(iw), .M = n, .N = n_out, .K = n_in, .ldc = n_out,
                            .ldb = n_out, .sam = n_in, .sak = 1};
    tr_gemm(&g, c->pool);
}

/* dX (n, n_in) = dY (n, n_out) . W (n_out, n_in). */
static void lin_bwd_x(const pass *c, float *dx, const float *dy, int iw, int n, int n_in, int n_out)
{
    const tr_gemm_args g = {.C = dx, .A = dy, .B = W(iw), .M = n, .N = n_in, .K = n_out, .ldc = n_in,
                            .ldb = n_in, .sam = n_out, .sak = 1};
    tr_gemm(&g, c->pool);
}

/* dW (n_out, n_in) += dY^T . X over n tokens: dY is read transposed through its strides. */
static void lin_bwd_w(const pass *c, int iw, const float *dy, const float *x, int n, int n_in, int n_out)
{
    const tr_gemm_args g = {.C = G(iw), .A = dy, .B = x, .M = n_out, .N = n_in, .K = n, .ldc = n_in,
                            .ldb = n_in, .sam = 1, .sak = n_out, .accumulate = true};
    tr_gemm(&g, c->pool);
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

static void par_rmsnorm_fwd(const pass *c, float *y, float *rinv, const float *x, const float *w, int n_tok,
                            int n)
{
    par_args a = {.y = y, .r = rinv, .x = x, .w = w, .n = n, .eps = c->t->p.shape.norm_eps};
    tr_parallel_for(c->pool, n_tok, 16, rmsnorm_range, &a);
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

static void par_swiglu_fwd(const pass *c, float *h, const float *g, const float *u, int64_t n)
{
    par_args a = {.y = h, .g = g, .u = u};
    tr_parallel_for(c->pool, n, 8192, swiglu_fwd_range, &a);
}

static void par_swiglu_bwd(const pass *c, float *dg, float *du, const float *dh, const float *g, const float *u,
                           int64_t n)
{
    par_args a = {.dg = dg, .du = du, .dh = dh, .g = g, .u = u};
    tr_parallel_for(c->pool, n, 8192, swiglu_bwd_range, &a);
}

typedef struct ce_args {
    const pass *c;
    const int32_t *tokens;
    const uint8_t *mask;
    int n;
} ce_args;

static void ce_range(void *ctx, int64_t k, int64_t i0, int64_t i1)
{
    const ce_args *a = ctx;
    tr_ws *ws = a->c->ws;
    ws->ce_loss[k] = tr_cross_entropy_rows(ws->dlogits, ws->logits, a->tokens, a->mask, a->n,
                                           a->c->t->p.shape.n_vocab, (int)i0, (int)i1, &ws->ce_count[k]);
}

/* tr_cross_entropy over TR_CE_ROWS-row chunks, summed in chunk order. */
static double par_cross_entropy(const pass *c, const int32_t *tokens, const uint8_t *mask, int n,
                                int64_t *n_targets)
{
    ce_args a = {.c = c, .tokens = tokens, .mask = mask, .n = n};
    tr_parallel_for(c->pool, n, TR_CE_ROWS, ce_range, &a);
    double loss = 0.0;
    int64_t count = 0;
    for (int k = 0; k < (n + TR_CE_ROWS - 1) / TR_CE_ROWS; k++)
        loss += c->ws->ce_loss[k], count += c->ws->ce_count[k];
    *n_targets = count;
    return loss;
}

/* Forward over tokens[0..n): fills the saved activations and c->ws->logits (n rows). */
static void forward(const pass *c, const int32_t *tokens, int n)
{
    const ponder_train_shape *s = &c->t->p.shape;
    const int D = s->n_embd, F = s->n_ff, hd = D / s->n_head, Q = s->n_head * hd, K = s->n_head_kv * hd;
    ponder_pool *pool = c->pool;
    float *x = c->ws->x;

    /* token embeddings */
    for (int i = 0; i < n; i++)
        memcpy(x + (size_t)i * D, W(c->t->i_embd) + (size_t)tokens[i] * D, (size_t)D * sizeof(float));

    for (int il = 0; il < s->n_layer; il++) {
        const tr_layer *l = &c->t->layers[il];
        tr_acts *a = &c->ws->acts[il];
        memcpy(a->xin, x, (size_t)n * D * sizeof(float));
        /* attention: norm, Q/K/V, RoPE, causal attention, output projection, residual */
        par_rmsnorm_fwd(c, a->xn1, a->r1, x, W(l->attn_norm), n, D);
        lin_fwd(c, a->q, a->xn1, l->wq, n, D, Q);
        lin_fwd(c, a->k, a->xn1, l->wk, n, D, K);
        lin_fwd(c, a->v, a->xn1, l->wv, n, D, K);
        tr_rope_fwd(a->q, n, s->n_head, hd, c->t->rope_cs);
        tr_rope_fwd(a->k, n, s->n_head_kv, hd, c->t->rope_cs);
        tr_attn_fwd(a->att, a->probs, a->q, a->k, a->v, n, s->n_head, s->n_head_kv, hd,
                    c->ws->attn_scratch, pool);
        lin_fwd(c, c->ws->dtmp, a->att, l->wo, n, Q, D);
        add_rows(x, c->ws->dtmp, (size_t)n * D);
        memcpy(a->xmid, x, (size_t)n * D * sizeof(float));
        /* feed-forward: norm, SwiGLU, down projection, residual */
        par_rmsnorm_fwd(c, a->xn2, a->r2, x, W(l->ffn_norm), n, D);
        lin_fwd(c, a->gate, a->xn2, l->w_gate, n, D, F);
        lin_fwd(c, a->up, a->xn2, l->w_up, n, D, F);
        par_swiglu_fwd(c, a->h, a->gate, a->up, (int64_t)n * F);
        lin_fwd(c, c->ws->dtmp, a->h, l->w_down, n, F, D);
        add_rows(x, c->ws->dtmp, (size_t)n * D);
    }
    /* final norm, tied output */
    par_rmsnorm_fwd(c, c->ws->xnf, c->ws->rf, x, W(c->t->i_out_norm), n, D);
    lin_fwd(c, c->ws->logits, c->ws->xnf, c->t->i_embd, n, D, s->n_vocab);
}

/* Backward from c->ws->dlogits; adds every weight gradient. */
static void backward(const pass *c, const int32_t *tokens, int n)
{
    const ponder_train_shape *s = &c->t->p.shape;
    const int D = s->n_embd, F = s->n_ff, V = s->n_vocab, hd = D / s->n_head, Q = s->n_head * hd,
              K = s->n_head_kv * hd;
    ponder_pool *pool = c->pool;
    float *dx = c->ws->dx, *d1 = c->ws->dtmp, *d2 = c->ws->dtmp2;

    /* tied output and final norm */
    lin_bwd_x(c, d1, c->ws->dlogits, c->t->i_embd, n, D, V);
    lin_bwd_w(c, c->t->i_embd, c->ws->dlogits, c->ws->xnf, n, D, V);
    const float *x_last = c->ws->x; /* the residual stream after the last layer */
    tr_rmsnorm_bwd(dx, G(c->t->i_out_norm), d1, x_last, W(c->t->i_out_norm), c->ws->rf, n, D);

    for (int il = s->n_layer - 1; il >= 0; il--) {
        const tr_layer *l = &c->t->layers[il];
        const tr_acts *a = &c->ws->acts[il];
        /* x_out = xmid + down(swiglu(gate(xn2), up(xn2))) */
        lin_bwd_x(c, d1, dx, l->w_down, n, F, D); /* dh */
        lin_bwd_w(c, l->w_down, dx, a->h, n, F, D);
        par_swiglu_bwd(c, c->ws->dgate, c->ws->dup, d1, a->gate, a->up, (int64_t)n * F);
        lin_bwd_x(c, d1, c->ws->dgate, l->w_gate, n, D, F);
        lin_bwd_x(c, d2, c->ws->dup, l->w_up, n, D, F);
        add_rows(d1, d2, (size_t)n * D); /* dxn2 */
        lin_bwd_w(c, l->w_gate, c->ws->dgate, a->xn2, n, D, F);
        lin_bwd_w(c, l->w_up, c->ws->dup, a->xn2, n, D, F);
        tr_rmsnorm_bwd(d2, G(l->ffn_norm), d1, a->xmid, W(l->ffn_norm), a->r2, n, D);
        add_rows(dx, d2, (size_t)n * D); /* dxmid */

        /* xmid = xin + wo(attention(rope(q), rope(k), v)) */
        lin_bwd_x(c, d1, dx, l->wo, n, Q, D); /* datt */
        lin_bwd_w(c, l->wo, dx, a->att, n, Q, D);
        tr_attn_bwd(c->ws->dq, c->ws->dk, c->ws->dv, d1, a->probs, a->q, a->k, a->v, n, s->n_head, s->n_head_kv, hd,
                    c->ws->attn_scratch, pool);
        tr_rope_bwd(c->ws->dq, n, s->n_head, hd, c->t->rope_cs);
        tr_rope_bwd(c->ws->dk, n, s->n_head_kv, hd, c->t->rope_cs);
        lin_bwd_x(c, d1, c->ws->dq, l->wq, n, D, Q);
        lin_bwd_x(c, d2, c->ws->dk, l->wk, n, D, K);
        add_rows(d1, d2, (size_t)n * D);
        lin_bwd_x(c, d2, c->ws->dv, l->wv, n, D, K);
        add_rows(d1, d2, (size_t)n * D); /* dxn1 */
        lin_bwd_w(c, l->wq, c->ws->dq, a->xn1, n, D, Q);
        lin_bwd_w(c, l->wk, c->ws->dk, a->xn1, n, D, K);
        lin_bwd_w(c, l->wv, c->ws->dv, a->xn1, n, D, K);
        tr_rmsnorm_bwd(d2, G(l->attn_norm), d1, a->xin, W(l->attn_norm), a->r1, n, D);
        add_rows(dx, d2, (size_t)n * D); /* dxin */
    }
    /* embedding rows */
    float *ge = G(c->t->i_embd);
    for (int i = 0; i < n; i++)
        add_rows(ge + (size_t)tokens[i] * D, dx + (size_t)i * D, (size_t)D);
}

/* ---- batches ---- */

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

/* Sequence i in workspace c: its loss and target count go to the trainer's arrays. */
static void run_one(const pass *c, const ponder_train_seq *q, int i, bool train)
{
    ponder_trainer *t = (ponder_trainer *)c->t;
    forward(c, q->tokens, q->n);
    int64_t n = 0;
    t->seq_loss[i] = par_cross_entropy(c, q->tokens, q->loss_mask, q->n, &n);
    t->seq_count[i] = n;
    if (train && n > 0)
        backward(c, q->tokens, q->n);
}

typedef struct batch_task {
    ponder_trainer *t;
    const ponder_train_seq *seqs;
    int n_seqs, n_par;
    bool train;
} batch_task;

static void batch_slice(void *arg, int ith, int nth)
{
    (void)nth;
    const batch_task *b = arg;
    if (ith >= b->n_par)
        return;
    const pass c = {.t = b->t, .ws = &b->t->ws[ith], .pool = NULL};
    for (int i = ith; i < b->n_seqs; i += b->n_par)
        run_one(&c, &b->seqs[i], i, b->train);
}

static void sum_grads_range(void *ctx, int64_t k, int64_t i0, int64_t i1)
{
    (void)k;
    const batch_task *b = ctx;
    ponder_trainer *t = b->t;
    for (int64_t p = i0; p < i1; p++) {
        const tr_piece *pc = &t->pieces[p];
        float *g = t->g + pc->offset;
        for (int w = 1; w < b->n_par; w++) { /* thread order: the same sum every time */
            float *gw = t->ws[w].g + pc->offset;
            for (int64_t j = 0; j < pc->n; j++) {
                g[j] += gw[j];
                gw[j] = 0.0f;
            }
        }
    }
}

/* Workspaces 1..n-1 and room for n_seqs results. */
static ponder_status reserve(ponder_trainer *t, int n_ws, int n_seqs, ponder_error *err)
{
    if (n_seqs > t->seq_cap) {
        double *l = realloc(t->seq_loss, (size_t)n_seqs * sizeof *l);
        if (l)
            t->seq_loss = l;
        int64_t *n = realloc(t->seq_count, (size_t)n_seqs * sizeof *n);
        if (n)
            t->seq_count = n;
        if (!l || !n)
            return ponder_error_set(err, PONDER_ERR_NOMEM, "train: out of memory for a batch of %d", n_seqs);
        t->seq_cap = n_seqs;
    }
    if (n_ws > t->n_ws) {
        tr_ws *ws = realloc(t->ws, (size_t)n_ws * sizeof *ws);
        if (!ws)
            return ponder_error_set(err, PONDER_ERR_NOMEM, "train: out of memory for %d threads' buffers", n_ws);
        t->ws = ws;
        while (t->n_ws < n_ws) {
            const bool ok = tr_ws_alloc(t, &t->ws[t->n_ws], NULL);
            t->n_ws++;
            if (!ok)
                return ponder_error_set(err, PONDER_ERR_NOMEM, "train: out of memory for %d threads' buffers",
                                        n_ws);
        }
    }
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
    ponder_pool *pool = t->p.pool;
    const int nth = ponder_pool_n_threads(pool);
    const int n_par = nth < n_seqs ? nth : n_seqs;
    ponder_status st = reserve(t, n_par, n_seqs, err);
    if (st != PONDER_OK)
        return st;
    batch_task b = {.t = t, .seqs = seqs, .n_seqs = n_seqs, .n_par = n_par, .train = train};
    if (n_par > 1) {
        ponder_pool_run(pool, batch_slice, &b);
        if (train)
            tr_parallel_for(pool, t->n_pieces, 8, sum_grads_range, &b);
    } else {
        const pass c = {.t = t, .ws = &t->ws[0], .pool = pool};
        for (int i = 0; i < n_seqs; i++)
            run_one(&c, &seqs[i], i, train);
    }
    double loss = 0.0;
    int64_t count = 0;
    for (int i = 0; i < n_seqs; i++) /* sequence order: the same sum for every thread count */
        loss += t->seq_loss[i], count += t->seq_count[i];
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
    const pass c = {.t = t, .ws = &t->ws[0], .pool = t->p.pool};
    forward(&c, tokens, n);
    memcpy(logits, t->ws[0].logits, (size_t)n * t->p.shape.n_vocab * sizeof(float));
    return PONDER_OK;
}
