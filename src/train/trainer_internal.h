/*
 * trainer_internal.h — the trainer's struct, shared by trainer.c and checkpoint.c.
 */
#ifndef PONDER_TRAINER_INTERNAL_H
#define PONDER_TRAINER_INTERNAL_H

#include "ponder/train.h"

typedef struct tr_tensor {
    char name[64];  /* GGUF name */
    int64_t offset; /* in the flat arrays */
    int64_t ne0;    /* row length (n_in) */
    int64_t ne1;    /* rows (n_out); 1 for vectors */
} tr_tensor;

/* A piece of one tensor for the parallel optimizer step (fixed at creation, so sums over
 * pieces are the same for every thread count). */
typedef struct tr_piece {
    int64_t offset, n;
    bool decay; /* a matrix (weight decay) rather than a norm vector */
} tr_piece;

typedef struct tr_layer { /* tensor indices */
    int attn_norm, wq, wk, wv, wo, ffn_norm, w_gate, w_up, w_down;
} tr_layer;

/* Saved activations of one layer for one sequence (T = n_ctx rows at most). */
typedef struct tr_acts {
    float *xin;   /* (T, D) residual stream entering the layer */
    float *xn1;   /* (T, D) attn_norm output */
    float *r1;    /* (T) 1/rms */
    float *q;     /* (T, n_head*hd) after RoPE */
    float *k;     /* (T, n_kv*hd) after RoPE */
    float *v;     /* (T, n_kv*hd) */
    float *probs; /* (n_head, T, T) softmax, lower triangle */
    float *att;   /* (T, n_head*hd) attention output */
    float *xmid;  /* (T, D) after the attention residual */
    float *xn2;   /* (T, D) ffn_norm output */
    float *r2;    /* (T) */
    float *gate, *up, *h; /* (T, F) */
} tr_acts;

/* One thread's buffers for the forward and backward pass of one sequence, and the
 * gradient it adds to (the trainer's own for workspace 0, a private one for the others,
 * summed into it after the batch). */
typedef struct tr_ws {
    tr_acts *acts;
    float *x, *xnf, *rf, *logits, *dlogits;
    float *dx, *dtmp, *dtmp2, *dq, *dk, *dv, *dgate, *dup;
    float *attn_scratch; /* tr_attn_scratch_floats(n_ctx, n_kv, hd) */
    double *ce_loss;     /* (n_ctx / TR_CE_ROWS + 1) cross-entropy of each row chunk */
    int64_t *ce_count;
    float *g;   /* (n_params) gradient accumulator */
    bool own_g; /* g is this workspace's (freed with it) */
} tr_ws;

#define TR_CE_ROWS 16 /* logits rows per cross-entropy work unit */

struct ponder_trainer {
    ponder_train_params p;
    tr_tensor *tensors;
    int n_tensors, n_tensors_cap;
    tr_layer *layers;
    int i_embd, i_out_norm;
    int64_t n_params;
    float *w, *g, *m, *v; /* (n_params) weights, gradient, Adam moments */
    float *wt;            /* (n_params) transposed matrices (vectors unused) */
    int64_t step;
    int64_t n_targets_acc; /* target tokens in the accumulated gradient */

    tr_ws *ws;                /* workspace i for thread i of a data-parallel batch */
    int n_ws;
    float *rope_cs;           /* (n_ctx, hd) */
    tr_piece *pieces;         /* the optimizer's work units */
    int64_t n_pieces;
    double *piece_sq;         /* (n_pieces) squared gradient norm of each */
    double *seq_loss;         /* (seq_cap) per-sequence loss and target count of a batch */
    int64_t *seq_count;
    int seq_cap;
};

/* Allocates a zero-weight trainer for p's shape (used by the loader). */
ponder_status tr_trainer_alloc(const ponder_train_params *p, ponder_trainer **out, ponder_error *err);
void tr_refresh_transposes(ponder_trainer *t);
/* Buffers for t's shape; g NULL: a private zeroed gradient. false when out of memory
 * (what was allocated is freed by tr_ws_free). */
bool tr_ws_alloc(const ponder_trainer *t, tr_ws *ws, float *g);
void tr_ws_free(const ponder_trainer *t, tr_ws *ws);

#endif
