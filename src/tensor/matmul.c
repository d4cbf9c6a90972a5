/*
 * matmul.c — row conversions and the matrix product over the traits table.
 *
 * ponder_matmul is the scalar, single-thread reference: it converts the activations to
 * the weight type's vec_dot_type once (as llama.cpp's mul_mat does), then takes one
 * vec_dot per (token, row). Faster kernels and threading slot in later behind the same
 * traits; this file stays the oracle they are tested against.
 */
#include "tensor/quants.h"

#include <stdint.h>

/* Checks t is computable for the given kernel need and n is block-aligned. */
static ponder_status row_check(int t, int64_t n, bool need_from, const ponder_type_traits **out,
                               ponder_error *err)
{
    const ponder_type_traits *tr = ponder_type_get_traits(t);
    if (!tr)
        return ponder_error_set(err, PONDER_ERR_UNSUPPORTED, "unknown tensor type id %d", t);
    if (need_from ? !tr->from_float : !tr->to_float)
        return ponder_error_set(err, PONDER_ERR_UNSUPPORTED, "type %s: %s not implemented", tr->name,
                                need_from ? "quantization" : "dequantization");
    if (n < 0 || n % tr->block_elems != 0)
        return ponder_error_set(err, PONDER_ERR_FORMAT,
                                "row of %lld elements is not a multiple of the %s block size %lld",
                                (long long)n, tr->name, (long long)tr->block_elems);
    *out = tr;
    return PONDER_OK;
}

ponder_status ponder_dequantize_row(int t, const void *src, float *dst, int64_t n, ponder_error *err)
{
    const ponder_type_traits *tr = NULL;
    ponder_status st = row_check(t, n, false, &tr, err);
    if (st != PONDER_OK)
        return st;
    if (n > 0 && (!src || !dst))
        return ponder_error_set(err, PONDER_ERR_INVALID_ARG, "dequantize %s: NULL buffer", tr->name);
    if (n > 0)
        tr->to_float(src, dst, n);
    return PONDER_OK;
}

ponder_status ponder_quantize_row(int t, const float *src, void *dst, int64_t n, ponder_error *err)
{
    const ponder_type_traits *tr = NULL;
    ponder_status st = row_check(t, n, true, &tr, err);
    if (st != PONDER_OK)
        return st;
    if (n > 0 && (!src || !dst))
        return ponder_error_set(err, PONDER_ERR_INVALID_ARG, "quantize %s: NULL buffer", tr->name);
    if (n > 0)
        tr->from_float(src, dst, n);
    return PONDER_OK;
}

/* Bytes of one activation row in the vec_dot_type of w; 0 if w cannot be multiplied. */
static size_t act_row_bytes(const ponder_matrix *w)
{
    const ponder_type_traits *tr = ponder_type_get_traits(w->type);
    if (!tr || !tr->vec_dot || w->n_cols < 0)
        return 0;
    const ponder_type_traits *vt = ponder_type_get_traits(tr->vec_dot_type);
    if (!vt || !vt->from_float || w->n_cols % vt->block_elems != 0)
        return 0;
    return (size_t)(w->n_cols / vt->block_elems) * vt->block_bytes;
}

size_t ponder_matmul_work_bytes(const ponder_matrix *w, int64_t n_tokens)
{
    const size_t row = act_row_bytes(w);
    if (row == 0 || n_tokens < 0)
        return 0;
    if ((uint64_t)n_tokens > SIZE_MAX / row)
        return SIZE_MAX; /* an allocation of this fails, which is the right outcome */
    const size_t act = (size_t)n_tokens * row;
    const size_t floats = (size_t)w->n_cols * sizeof(float); /* float_activations mode */
    return act > floats ? act : floats;
}

void ponder_matmul(const ponder_matrix *w, int64_t n_tokens, const float *x, float *y, void *work,
                   bool float_activations)
{
    const ponder_type_traits *tr = ponder_type_get_traits(w->type);
    /* preconditions (the caller checked the type when loading the weights) */
    assert(tr && tr->to_float && tr->vec_dot);
    assert(w->n_cols % tr->block_elems == 0);
    assert(w->row_bytes >= (size_t)(w->n_cols / tr->block_elems) * tr->block_bytes);
    const int64_t n_cols = w->n_cols, n_rows = w->n_rows;
    const uint8_t *wdata = w->data;

    if (float_activations) {
        /* dequantize each weight row once, dot it with every token in float */
        float *row = work;
        for (int64_t r = 0; r < n_rows; r++) {
            tr->to_float(wdata + (size_t)r * w->row_bytes, row, n_cols);
            for (int64_t t = 0; t < n_tokens; t++)
                ponder_vec_dot_f32(n_cols, &y[t * n_rows + r], row, x + t * n_cols);
        }
        return;
    }

    const ponder_type_traits *vt = ponder_type_get_traits(tr->vec_dot_type);
    assert(vt && vt->from_float);
    const size_t arow = act_row_bytes(w);
    uint8_t *act = work;
    for (int64_t t = 0; t < n_tokens; t++)
        vt->from_float(x + t * n_cols, act + (size_t)t * arow, n_cols);
    for (int64_t t = 0; t < n_tokens; t++)
        for (int64_t r = 0; r < n_rows; r++)
            tr->vec_dot(n_cols, &y[t * n_rows + r], wdata + (size_t)r * w->row_bytes,
                        act + (size_t)t * arow);
}
