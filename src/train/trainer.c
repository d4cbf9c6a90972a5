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

    /* activations for one sequence of up to n_ctx tokens: workspace 0 (more for threads) */
    const size_t T = (size_t)s->n_ctx, hd = (size_t)(s->n_embd / s->n_head);
    t->ws = xcalloc(1, sizeof *t->ws, &ok);
    if (ok) {
        t->n_ws = 1;
        ok = tr_ws_alloc(t, &t->ws[0], t->g);
    }
    t->rope_cs = xcalloc(T * hd, sizeof(float), &ok);
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
    for (int i = 0; i < t->n_ws; i++)
        tr_ws_free(t, &t->ws[i]);
    free(t->ws), free(t->rope_cs), free(t->pieces), free(t->piece_sq), free(t->seq_loss), free(t->seq_count);
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
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t0);
    for (long it = 0; it < iters; it++)
        for (int i = 0; i < 4; i++)
            acc[i] = acc[i] * a + 1e-7f;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t1);
    seed = acc[0] + acc[1] + acc[2] + acc[3];
    const double dt = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    return (double)iters * 4 * 2 / (dt > 0 ? dt : 1e-9);
}
