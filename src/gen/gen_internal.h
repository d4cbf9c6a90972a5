/*
 * gen_internal.h — the text and probability helpers behind gen.c, apart so that tests
 * can check them on hand-made input.
 */
#ifndef PONDER_GEN_INTERNAL_H
#define PONDER_GEN_INTERNAL_H

#include "ponder/gen.h"

/* A request's stop strings (owned copies; none empty). */
typedef struct gen_stops {
    char **s;
    size_t *len;
    int32_t n;
} gen_stops;

/* Start of the earliest occurrence of any stop string in text[from..n) (the whole
 * string inside that range), or SIZE_MAX. */
size_t gen_stop_find(const gen_stops *st, const char *text, size_t n, size_t from);

/* Bytes at the end of text[from..n) that are a proper prefix of some stop string: the
 * longest such suffix, i.e. what must be held back until later text decides. */
size_t gen_stop_holdback(const gen_stops *st, const char *text, size_t n, size_t from);

/* log(sum(exp(l))) over the row (exp within 2 ulp of expf, summed in double); NaN logits
 * count as -inf; -inf if nothing is finite. scratch: n floats. */
double gen_log_sum_exp(const float *l, int32_t n, float *scratch);

/* The k most likely tokens (k <= PONDER_GEN_MAX_TOP_LOGPROBS), best first, ties to the
 * lower id, with logprob l[id] - lse. Returns how many were written (min(k, n)). */
int32_t gen_top_logprobs(const float *l, int32_t n, double lse, int32_t k, ponder_gen_token_logprob *out);

/* ---- speculative decoding (gen_spec.c) ---- */

/* A token drawn from the distribution p[0..n) (non-positive entries never drawn; the sum
 * need not be exactly 1) with the uniform u in [0, 1); -1 if nothing is positive. */
int32_t gen_spec_draw(const float *p, int32_t n, double u);

/* Speculative sampling's rule for a draft token x drawn from q: kept (*accepted) if
 * u_accept < p(x)/q(x), else the token returned is drawn with u_resample from
 * normalize(max(0, p - q)) (from p if that is empty up to rounding). */
int32_t gen_spec_verify(const float *p, const float *q, int32_t n, int32_t x, double u_accept, double u_resample,
                        bool *accepted);

/* The next step's k after a step that proposed k tokens and had n_accepted accepted. */
int32_t gen_spec_next_k(int32_t k, int32_t n_accepted, int32_t k_max);

#endif
