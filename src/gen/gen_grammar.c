/*
 * gen_grammar.c — grammar-constrained choices (ponder_gen_request.grammar).
 *
 * Each choice has a matcher (choices of one request are clones sharing one cache of
 * states and masks). Before every draw the choice's sampler gets the matcher's mask, so
 * its chain — greedy, sampling, the distribution speculative decoding compares — only
 * sees tokens the grammar allows; end-of-generation tokens are in the mask exactly when
 * the text so far is complete. Each committed token advances the matcher. Near the end of
 * the choice's budget (max_tokens, the context) the mask keeps only tokens that leave
 * room to complete (ponder_grammar_matcher_mask_within), so a cut-short text is still
 * a whole sentence of the grammar. The draft's
 * proposals are drawn under the same masks: during the draft pass the matcher advances
 * along the proposals and is rolled back at the end, so the verification sees, at each
 * position, the mask after the tokens accepted so far. The vocabulary's byte strings
 * (ponder_grammar_vocab) are made once per generator, on the first grammar request.
 */
#include "gen/gen_internal.h"

#include <stdlib.h>

ponder_status gen_grammar_attach(ponder_gen *g, gen_req *r, const ponder_gen_request *q, ponder_error *err)
{
    if (!q->grammar)
        return PONDER_OK;
    ponder_status st;
    if (!g->gvocab && (st = ponder_grammar_vocab_from_tokenizer(g->tok, &g->gvocab, err)) != PONDER_OK)
        return st;
    for (int32_t i = 0; i < r->n_choices; i++) {
        gen_choice *c = &r->choices[i];
        st = i == 0 ? ponder_grammar_matcher_create(q->grammar, g->gvocab, &c->gm, err)
                    : ponder_grammar_matcher_clone(r->choices[0].gm, &c->gm, err);
        if (st != PONDER_OK)
            return st;
    }
    return PONDER_OK;
}

void gen_grammar_detach(gen_choice *c)
{
    ponder_grammar_matcher_free(c->gm);
    c->gm = NULL;
}

/* The mask of the choice's grammar state within its token budget, NULL when nothing may
 * follow (or memory ran out): the mask's bits all zero. */
static const uint32_t *usable_mask(ponder_gen *g, gen_choice *c, int32_t budget)
{
    const uint32_t *mask = ponder_grammar_matcher_mask_within(c->gm, budget, NULL);
    if (!mask)
        return NULL;
    const int32_t words = (g->n_vocab + 31) / 32;
    for (int32_t w = 0; w < words; w++)
        if (mask[w])
            return mask;
    return NULL;
}

/* Tokens choice c may still draw after the `ahead` ones past its committed tokens: what
 * max_tokens and the context leave. */
static int32_t budget_of(const ponder_gen *g, const gen_req *r, const gen_choice *c, int32_t ahead)
{
    int32_t left = g->n_ctx - r->n_prompt - c->n_tokens - ahead;
    if (r->max_tokens > 0 && r->max_tokens - c->n_tokens - ahead < left)
        left = r->max_tokens - c->n_tokens - ahead;
    return left > 0 ? left : 1;
}

bool gen_grammar_restrict(ponder_gen *g, const gen_req *r, gen_choice *c, ponder_sampler *s, int32_t ahead)
{
    if (!c->gm)
        return true;
    const uint32_t *mask = usable_mask(g, c, budget_of(g, r, c, ahead));
    ponder_sampler_set_mask(s, mask);
    return mask != NULL;
}

void gen_grammar_unrestrict(ponder_sampler *s)
{
    ponder_sampler_set_mask(s, NULL);
}

bool gen_grammar_commit(gen_choice *c, ponder_token t)
{
    if (!c->gm)
        return false;
    /* the token came from the mask, so the matcher takes it */
    ponder_grammar_matcher_accept(c->gm, t);
    return ponder_grammar_matcher_is_final(c->gm);
}

bool gen_grammar_draft_accept(gen_choice *c, ponder_token t)
{
    if (!c->gm)
        return true;
    if (!ponder_grammar_matcher_accept(c->gm, t))
        return false;
    c->n_gm_draft++;
    return true;
}

void gen_grammar_draft_rollback(gen_choice *c)
{
    if (c->gm && c->n_gm_draft > 0)
        ponder_grammar_matcher_rollback(c->gm, c->n_gm_draft);
    c->n_gm_draft = 0;
}
