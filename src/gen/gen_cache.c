/*
 * gen_cache.c — the prompt cache (ponder_gen_params.cache_prompts, llama-server's
 * cache_prompt): a request of one choice leaves its sequence's KV (prompt and the tokens
 * decoded after it) behind when it finishes, and a later request whose prompt starts the
 * same way takes that sequence, cut back to the common prefix, so only the rest of its
 * prompt is evaluated. `ponder chat` lives on this: each turn's rendering repeats the
 * conversation so far.
 *
 * Invariant: a sequence s is either in use (seq_used[s], cached[s].n == 0) or free, and a
 * free one may still hold cached[s].n positions of KV whose tokens cached[s].tokens lists.
 * Cached positions give way first: to a request that needs the sequence or the cells
 * (least recently cached first), and before a step ends a running choice for want of
 * cells. The logits of a cached prefix are not kept, so at least one prompt token is
 * always evaluated.
 */
#include "gen/gen_internal.h"

#include <stdlib.h>
#include <string.h>

void gen_cache_keep(ponder_gen *g, const gen_req *r, gen_choice *c)
{
    const ponder_seq_id s = c->seq;
    gen_cached *k = &g->cached[s];
    /* in the KV: the prompt and every token but the last sampled (never decoded) */
    const int32_t n_gen = c->n_tokens > 0 ? c->n_tokens - 1 : 0;
    const int32_t n = r->n_prompt + n_gen;
    bool ok = ponder_context_seq_len(g->ctx, s) >= n && ponder_context_seq_truncate(g->ctx, s, n, NULL) == PONDER_OK;
    if (ok && n > k->cap) {
        ponder_token *t = realloc(k->tokens, (size_t)n * sizeof *t);
        ok = t != NULL;
        if (ok) {
            k->tokens = t;
            k->cap = n;
        }
    }
    if (!ok) { /* not what we expected, or out of memory: nothing is cached */
        ponder_context_seq_clear(g->ctx, s, NULL);
        k->n = 0;
    } else {
        memcpy(k->tokens, r->prompt, (size_t)r->n_prompt * sizeof *k->tokens);
        if (n_gen)
            memcpy(k->tokens + r->n_prompt, c->tokens, (size_t)n_gen * sizeof *k->tokens);
        k->n = n;
        k->last_used = ++g->cache_clock;
    }
    g->seq_used[s] = false;
    c->seq = -1;
}

int32_t gen_cache_match(const ponder_gen *g, const ponder_token *prompt, int32_t n_prompt, int32_t *keep)
{
    int32_t best = -1, best_n = 0;
    for (int32_t s = 0; s < g->n_seq_max; s++) {
        const gen_cached *k = &g->cached[s];
        if (g->seq_used[s] || k->n == 0)
            continue;
        int32_t n = 0;
        while (n < k->n && n < n_prompt && k->tokens[n] == prompt[n])
            n++;
        if (n > best_n) {
            best = s;
            best_n = n;
        }
    }
    /* the last prompt token is evaluated again, for its logits */
    *keep = best_n < n_prompt ? best_n : n_prompt - 1;
    return *keep > 0 ? best : -1;
}

void gen_cache_drop(ponder_gen *g, int32_t s)
{
    if (g->cached[s].n == 0)
        return;
    ponder_context_seq_clear(g->ctx, s, NULL);
    g->cached[s].n = 0;
}

bool gen_cache_evict(ponder_gen *g, int32_t except)
{
    int32_t victim = -1;
    for (int32_t s = 0; s < g->n_seq_max; s++)
        if (s != except && !g->seq_used[s] && g->cached[s].n > 0 &&
            (victim < 0 || g->cached[s].last_used < g->cached[victim].last_used))
            victim = s;
    if (victim < 0)
        return false;
    gen_cache_drop(g, victim);
    return true;
}

void ponder_gen_cache_clear(ponder_gen *g)
{
    for (int32_t s = 0; g && s < g->n_seq_max; s++)
        if (!g->seq_used[s])
            gen_cache_drop(g, s);
}
