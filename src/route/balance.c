/*
 * balance.c — load balancing across a model's deployments (its backends), as LiteLLM's
 * router does: each request orders the model's backends by the model's rule, and the rest
 * of that order is still the request's fallback chain. LiteLLM's order: puts lower values
 * first (a priority); within one order value the rule decides:
 *   simple-shuffle  weighted random (weight:, else rpm, else tpm, else 1);
 *   least-busy      fewest attempts in flight, ties at random;
 *   latency-based   lowest moving average of successful attempts' time; untried first;
 *   usage-based     most headroom left under rpm/tpm this minute.
 * rpm/tpm limits hold for every rule: a backend that has used its minute is skipped.
 */
#include "route/router_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WINDOW_MS 60000.0
#define LATENCY_WEIGHT 0.2 /* of the newest attempt in the moving average */

static uint64_t next_random(ponder_router *r)
{
    uint64_t x = r->rng; /* xorshift64*, under r->mu */
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    r->rng = x;
    return x * 0x2545F4914F6CDD1Dull;
}

static double uniform01(ponder_router *r) { return (double)(next_random(r) >> 11) / 9007199254740992.0; }

rt_be *rt_model_backend(ponder_router *r, const ponder_route_model_cfg *m, int32_t i)
{
    return &r->be[r->model_first[m - r->cfg->models] + i];
}

static void roll_window(rt_be *be, double now)
{
    if (now - be->window_start_ms >= WINDOW_MS) {
        be->window_start_ms = now;
        be->window_requests = 0;
        be->window_tokens = 0;
    }
}

/* The share of the minute's limits used, 0 without limits. */
static double usage_of(const rt_be *be)
{
    double u = 0;
    if (be->cfg->rpm > 0)
        u = fmax(u, (double)be->window_requests / be->cfg->rpm);
    if (be->cfg->tpm > 0)
        u = fmax(u, (double)be->window_tokens / be->cfg->tpm);
    return u;
}

static int order_key(const rt_be *be) { return be->cfg->order > 0 ? be->cfg->order : 1 << 30; }

typedef struct ranked {
    rt_be *be;
    double score; /* lower first */
} ranked;

static int cmp_ranked(const void *a, const void *b)
{
    const ranked *x = a, *y = b;
    int ox = order_key(x->be), oy = order_key(y->be);
    if (ox != oy)
        return ox < oy ? -1 : 1;
    return x->score < y->score ? -1 : x->score > y->score;
}

void rt_order_backends(ponder_router *r, const ponder_route_model_cfg *m, rt_be **out)
{
    const int32_t n = m->n_backends;
    ranked *rk = calloc((size_t)(n > 0 ? n : 1), sizeof *rk);
    if (!rk) { /* out of memory: the listed order, which is always a valid answer */
        for (int32_t i = 0; i < n; i++)
            out[i] = rt_model_backend(r, m, i);
        return;
    }
    pthread_mutex_lock(&r->mu);
    const double now = http_now_ms();
    for (int32_t i = 0; i < n; i++) {
        rk[i].be = rt_model_backend(r, m, i);
        rt_be *be = rk[i].be;
        roll_window(be, now);
        switch (m->balance) {
        case PONDER_BALANCE_SHUFFLE:
            /* Efraimidis–Spirakis: sorting by -u^(1/w) draws a weighted random order */
            rk[i].score = -pow(fmax(uniform01(r), 1e-300), 1.0 / fmax(be->cfg->weight, 1e-9));
            break;
        case PONDER_BALANCE_LEAST_BUSY: rk[i].score = be->in_flight + 0.5 * uniform01(r); break;
        case PONDER_BALANCE_LATENCY: rk[i].score = be->latency_ms + 1e-3 * uniform01(r); break;
        case PONDER_BALANCE_USAGE: rk[i].score = usage_of(be) + 1e-6 * uniform01(r); break;
        default: rk[i].score = i; break;
        }
    }
    pthread_mutex_unlock(&r->mu);
    qsort(rk, (size_t)n, sizeof *rk, cmp_ranked);
    for (int32_t i = 0; i < n; i++)
        out[i] = rk[i].be;
    free(rk);
}

bool rt_within_limits(rt_be *be, double now, char *why, size_t cap)
{
    roll_window(be, now);
    const double left_s = (WINDOW_MS - (now - be->window_start_ms)) / 1000;
    if (be->cfg->rpm > 0 && be->window_requests >= be->cfg->rpm) {
        snprintf(why, cap, "rpm limit: %d requests this minute (%.0f s left)", (int)be->cfg->rpm, left_s);
        return false;
    }
    if (be->cfg->tpm > 0 && be->window_tokens >= be->cfg->tpm) {
        snprintf(why, cap, "tpm limit: %d tokens this minute (%.0f s left)", (int)be->cfg->tpm, left_s);
        return false;
    }
    return true;
}

void rt_count_backend_tokens(ponder_router *r, const rt_be *be, int64_t tokens)
{
    if (!be || tokens <= 0)
        return;
    pthread_mutex_lock(&r->mu);
    rt_be *b = (rt_be *)be;
    roll_window(b, http_now_ms());
    b->window_tokens += tokens;
    pthread_mutex_unlock(&r->mu);
}
