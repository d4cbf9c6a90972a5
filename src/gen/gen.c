/*
 * gen.c — requests, their choices and the step loop of gen.h over one multi-sequence
 * context.
 *
 * Life of a request: QUEUED (submitted, FIFO) → PROMPT (admitted: it holds n_choices
 * sequences; its prompt is decoded on choice 0's sequence, at most
 * GEN_PROMPT_TOKENS_PER_STEP tokens a step) → RUNNING (the prompt's last logits are in:
 * the other choices fork from choice 0's sequence, every choice samples its first token
 * from those logits, then contributes one token to each later step) → DONE (every choice
 * finished; its sequence was cleared at once so the next queued request can be admitted).
 *
 * Each step is one ponder_context_decode_batch holding the pending token of every live
 * choice plus the next prompt chunks. A choice's token is sampled from its own logits
 * row with its own sampler and detokenized with its own streaming detokenizer, so what
 * a choice produces depends only on its prompt, its parameters and its seed — the model
 * API promises the logits do not depend on the rest of the batch.
 *
 * With a draft model (speculative decoding), a step first runs the draft: its context
 * holds the same sequence ids, each running choice catches its draft sequence up to the
 * committed tokens (prompt included, forked from the request's first choice) and
 * proposes up to k tokens, one draft decode each, batched across choices. The step's
 * batch then holds every choice's pending token followed by its proposals, all with
 * logits; verify_choice walks those rows in order, committing each accepted proposal as
 * an ordinary sampled token (same penalty window, text, stop strings, events), then the
 * model's own token, and truncates both caches to the committed positions. A batch that
 * does not fit in the cells is retried without proposals before anything else gives way.
 * Greedy rows pick with the model's sampler exactly as without a draft, so the tokens
 * are the same; sampled rows use the accept/reject rule of gen_spec.c, drawing from the
 * choice's own generator, so a choice still depends only on its prompt, parameters and
 * seed (sampled ones: as long as the cells suffice; a retry without proposals changes
 * the draws, never the distribution).
 */
#include "gen/gen_internal.h"

#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

/* Prompt tokens decoded per step over all requests: llama.cpp's default micro-batch
 * (n_ubatch 512), so a long prompt delays the running choices' next token by at most
 * one micro-batch's worth of compute. */
#define GEN_PROMPT_TOKENS_PER_STEP 512


const char *ponder_finish_name(ponder_finish f)
{
    switch (f) {
    case PONDER_FINISH_NONE: return "none";
    case PONDER_FINISH_STOP: return "stop";
    case PONDER_FINISH_LENGTH: return "length";
    case PONDER_FINISH_CANCELLED: return "cancelled";
    case PONDER_FINISH_ERROR: return "error";
    }
    return "unknown";
}

ponder_gen_params ponder_gen_params_default(void)
{
    ponder_gen_params p = {
        .n_seq_max = 1,
        .context = ponder_context_params_default(),
    };
    return p;
}

/* ---- requests ---- */

static void req_free(gen_req *r)
{
    if (!r)
        return;
    if (r->choices) {
        for (int32_t i = 0; i < r->n_choices; i++) {
            gen_choice *c = &r->choices[i];
            ponder_sampler_free(c->smp);
            ponder_sampler_free(c->dsmp);
            free(c->q);
            ponder_detokenizer_free(c->detok);
            free(c->tokens);
            free(c->text);
            gen_grammar_detach(c);
        }
    }
    for (int32_t i = 0; i < r->stops.n; i++)
        free(r->stops.s[i]);
    free(r->stops.s);
    free(r->stops.len);
    free(r->choices);
    free(r->prompt);
    free(r);
}

static gen_req *find_req(const ponder_gen *g, int32_t id, int32_t *index)
{
    for (int32_t i = 0; i < g->n_reqs; i++) {
        if (g->reqs[i]->id == id && !g->reqs[i]->released) {
            if (index)
                *index = i;
            return g->reqs[i];
        }
    }
    return NULL;
}

static void emit(gen_req *r, int32_t ci, ponder_token tok, size_t from, const ponder_gen_token_logprob *chosen,
                 const ponder_gen_token_logprob *top, int32_t n_top)
{
    if (!r->on_event)
        return;
    const gen_choice *c = &r->choices[ci];
    ponder_gen_event ev = {
        .request_id = r->id,
        .choice = ci,
        .token = tok,
        .text = c->text ? c->text + from : "",
        .text_len = c->n_final - from,
        .top = top,
        .n_top = n_top,
        .finish = c->finish,
    };
    if (chosen)
        ev.chosen = *chosen;
    r->on_event(&ev, r->user);
}

static void release_seq(ponder_gen *g, gen_choice *c)
{
    if (c->seq < 0)
        return;
    /* Clearing a valid id cannot fail; the sequence is forgotten either way. */
    ponder_context_seq_clear(g->ctx, c->seq, NULL);
    if (g->dctx)
        ponder_context_seq_clear(g->dctx, c->seq, NULL);
    g->seq_used[c->seq] = false;
    c->seq = -1;
}

/* Marks choice ci finished: what was held back (the start of a stop string that will
 * not complete now) becomes final, the sequence is freed; all before the final event, so
 * its callback sees a consistent request. */
static void finish_choice(ponder_gen *g, gen_req *r, int32_t ci, ponder_finish f)
{
    gen_choice *c = &r->choices[ci];
    c->finish = f;
    c->next = PONDER_TOKEN_NULL;
    c->n_final = c->len;
    if (g->cached && r->n_choices == 1 && r->state == REQ_RUNNING && f != PONDER_FINISH_ERROR && c->seq >= 0)
        gen_cache_keep(g, r, c);
    else
        release_seq(g, c);
    if (--r->n_live == 0) {
        r->state = REQ_DONE;
        /* the sequences reserved for choices that never forked are free too */
        for (int32_t i = 0; i < r->n_choices; i++)
            release_seq(g, &r->choices[i]);
    }
}

/* Ends every unfinished choice with f, delivering their final events. */
static void finish_request(ponder_gen *g, gen_req *r, ponder_finish f)
{
    for (int32_t ci = 0; ci < r->n_choices; ci++) {
        gen_choice *c = &r->choices[ci];
        if (c->finish != PONDER_FINISH_NONE)
            continue;
        size_t from = c->n_final;
        finish_choice(g, r, ci, f);
        emit(r, ci, PONDER_TOKEN_NULL, from, NULL, NULL, 0);
    }
    r->state = REQ_DONE;
}

static bool grow(void **p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return true;
    size_t n = *cap ? *cap : 16;
    while (n < need)
        n *= 2;
    void *q = realloc(*p, n * elem);
    if (!q)
        return false;
    *p = q;
    *cap = n;
    return true;
}

/* ---- create ---- */

/* Bytes of every tensor: what a memory-bound decode reads. */
static uint64_t weight_bytes(const ponder_model *m)
{
    const ponder_gguf *f = ponder_model_gguf(m);
    uint64_t n = 0;
    for (int64_t i = 0; i < ponder_gguf_n_tensors(f); i++)
        n += ponder_gguf_tensor_at(f, i)->n_bytes;
    return n ? n : 1;
}

ponder_status ponder_gen_create(const ponder_model *m, const ponder_tokenizer *tok, const ponder_gen_params *p,
                                ponder_gen **out, ponder_error *err)
{
    if (!out)
        return ponder_error_set(err, PONDER_ERR_INVALID_ARG, "ponder_gen_create: out is NULL");
    *out = NULL;
    if (!m || !tok)
        return ponder_error_set(err, PONDER_ERR_INVALID_ARG, "ponder_gen_create: model and tokenizer are required");
    ponder_gen_params prm = p ? *p : ponder_gen_params_default();
    if (prm.n_seq_max < 0)
        return ponder_error_set(err, PONDER_ERR_INVALID_ARG, "gen: n_seq_max must be >= 1, got %d", prm.n_seq_max);
    if (prm.n_seq_max == 0)
        prm.n_seq_max = 1;
    const int32_t n_vocab = ponder_model_hparams(m)->n_vocab;
    if (ponder_tokenizer_n_vocab(tok) > n_vocab)
        return ponder_error_set(err, PONDER_ERR_INVALID_ARG,
                                "gen: the tokenizer has %d tokens but the model's output has %d",
                                ponder_tokenizer_n_vocab(tok), n_vocab);

    ponder_gen *g = calloc(1, sizeof *g);
    if (!g)
        return ponder_error_set(err, PONDER_ERR_NOMEM, "gen: out of memory");
    g->model = m;
    g->tok = tok;
    g->n_vocab = n_vocab;
    g->n_seq_max = prm.n_seq_max;
    g->next_id = 1;
    ponder_status st;
    ponder_context_params cp = prm.context;
    cp.n_seq_max = prm.n_seq_max;
    if ((st = ponder_context_create(m, &cp, &g->ctx, err)) != PONDER_OK)
        goto fail;
    g->n_ctx = ponder_context_n_ctx(g->ctx);
    g->n_cells = ponder_context_n_free_cells(g->ctx);
    if (ponder_context_n_seq_max(g->ctx) < g->n_seq_max) {
        st = ponder_error_set(err, PONDER_ERR_INTERNAL, "gen: asked the context for %d sequences, it holds %d",
                              g->n_seq_max, ponder_context_n_seq_max(g->ctx));
        goto fail;
    }

    if (prm.cache_prompts && prm.draft) {
        st = ponder_error_set(err, PONDER_ERR_INVALID_ARG, "gen: the prompt cache does not combine with a draft model");
        goto fail;
    }
    if (prm.draft) {
        if (prm.draft_k < 0 || prm.draft_k > PONDER_GEN_DRAFT_K_MAX || prm.draft_k_max < 0 ||
            prm.draft_k_max > PONDER_GEN_DRAFT_K_MAX) {
            st = ponder_error_set(err, PONDER_ERR_INVALID_ARG, "gen: draft_k and draft_k_max must be 1..%d, got %d and %d",
                                  PONDER_GEN_DRAFT_K_MAX, prm.draft_k, prm.draft_k_max);
            goto fail;
        }
        if ((st = ponder_gen_check_draft(m, prm.draft, err)) != PONDER_OK)
            goto fail;
        g->draft = prm.draft;
        g->draft_k_max = prm.draft_k_max ? prm.draft_k_max : PONDER_GEN_DRAFT_K_MAX;
        g->draft_k = prm.draft_k ? prm.draft_k : 4;
        g->draft_cost = (float)((double)weight_bytes(prm.draft) / (double)weight_bytes(m));
        if (g->draft_k > g->draft_k_max)
            g->draft_k = g->draft_k_max;
        ponder_context_params dp = cp;
        dp.n_ctx = g->n_ctx;
        if ((st = ponder_context_create(prm.draft, &dp, &g->dctx, err)) != PONDER_OK) {
            ponder_error_prefix(err, "gen: draft model");
            goto fail;
        }
    }

    const size_t ns = (size_t)g->n_seq_max, nv = (size_t)n_vocab;
    /* every live choice's pending token and proposals, plus the prompt chunks */
    g->n_logit_rows = g->n_seq_max * (1 + (g->draft ? g->draft_k_max : 0));
    g->cap_batch = g->n_logit_rows + GEN_PROMPT_TOKENS_PER_STEP;
    const size_t nr = (size_t)g->n_logit_rows;
    g->seq_used = calloc(ns, sizeof *g->seq_used);
    if (prm.cache_prompts)
        g->cached = calloc(ns, sizeof *g->cached);
    g->b_tokens = malloc((size_t)g->cap_batch * sizeof *g->b_tokens);
    g->b_seq = malloc((size_t)g->cap_batch * sizeof *g->b_seq);
    g->b_want = malloc((size_t)g->cap_batch * sizeof *g->b_want);
    g->rows = malloc(ns * sizeof *g->rows);
    g->logits = nr <= SIZE_MAX / sizeof(float) / nv ? malloc(nr * nv * sizeof *g->logits) : NULL;
    g->masked = malloc(nv * sizeof *g->masked);
    g->pool = cp.pool;
    const size_t nth = (size_t)ponder_pool_n_threads(g->pool);
    g->lse_scratch = nth <= SIZE_MAX / sizeof(float) / nv ? malloc(nth * nv * sizeof *g->lse_scratch) : NULL;
    g->row_lse = malloc(nr * sizeof *g->row_lse);
    g->eog = malloc(nv * sizeof *g->eog);
    if (g->draft) {
        g->d_rows = malloc(ns * sizeof *g->d_rows);
        g->d_logits = ns <= SIZE_MAX / sizeof(float) / nv ? malloc(ns * nv * sizeof *g->d_logits) : NULL;
        g->p = malloc(nv * sizeof *g->p);
    }
    if (!g->seq_used || (prm.cache_prompts && !g->cached) || !g->b_tokens || !g->b_seq || !g->b_want || !g->rows || !g->logits || !g->masked || !g->eog ||
        !g->lse_scratch || !g->row_lse ||
        (g->draft && (!g->d_rows || !g->d_logits || !g->p))) {
        st = ponder_error_set(err, PONDER_ERR_NOMEM, "gen: out of memory for %d sequences of a %d-token vocabulary",
                              g->n_seq_max, n_vocab);
        goto fail;
    }
    const int32_t n_tok_vocab = ponder_tokenizer_n_vocab(tok);
    for (int32_t id = 0; id < n_tok_vocab; id++)
        if (ponder_tokenizer_is_eog(tok, id))
            g->eog[g->n_eog++] = id;
    *out = g;
    return PONDER_OK;
fail:
    ponder_gen_free(g);
    return st;
}

void ponder_gen_free(ponder_gen *g)
{
    if (!g)
        return;
    for (int32_t i = 0; i < g->n_reqs; i++)
        req_free(g->reqs[i]);
    free(g->reqs);
    ponder_context_free(g->ctx);
    ponder_context_free(g->dctx);
    free(g->d_tokens);
    free(g->d_seq);
    free(g->d_want);
    free(g->d_rows);
    free(g->d_logits);
    free(g->p);
    for (int32_t s = 0; g->cached && s < g->n_seq_max; s++)
        free(g->cached[s].tokens);
    free(g->cached);
    free(g->seq_used);
    free(g->b_tokens);
    free(g->b_seq);
    free(g->b_want);
    free(g->rows);
    free(g->logits);
    free(g->masked);
    free(g->lse_scratch);
    free(g->row_lse);
    free(g->eog);
    ponder_grammar_vocab_free(g->gvocab);
    free(g);
}

const ponder_context *ponder_gen_context(const ponder_gen *g)
{
    return g ? g->ctx : NULL;
}

/* ---- submit ---- */

static ponder_status copy_stops(gen_req *r, const ponder_gen_request *q, ponder_error *err)
{
    if (q->n_stop < 0 || (q->n_stop > 0 && !q->stop))
        return ponder_error_set(err, PONDER_ERR_INVALID_ARG, "gen: %d stop strings but no array", q->n_stop);
    if (q->n_stop == 0)
        return PONDER_OK;
    r->stops.s = calloc((size_t)q->n_stop, sizeof *r->stops.s);
    r->stops.len = calloc((size_t)q->n_stop, sizeof *r->stops.len);
    if (!r->stops.s || !r->stops.len)
        return ponder_error_set(err, PONDER_ERR_NOMEM, "gen: out of memory");
    for (int32_t i = 0; i < q->n_stop; i++) {
        if (!q->stop[i] || !q->stop[i][0])
            return ponder_error_set(err, PONDER_ERR_INVALID_ARG, "gen: stop string %d is empty", i);
        size_t len = strlen(q->stop[i]);
        r->stops.s[i] = malloc(len + 1);
        if (!r->stops.s[i])
            return ponder_error_set(err, PONDER_ERR_NOMEM, "gen: out of memory");
        memcpy(r->stops.s[i], q->stop[i], len + 1);
        r->stops.len[i] = len;
        r->stops.n = i + 1;
    }
    return PONDER_OK;
}

ponder_status ponder_gen_submit(ponder_gen *g, const ponder_gen_request *q, int32_t *request_id, ponder_error *err)
{
    if (request_id)
        *request_id = 0;
    if (!g || !q)
        return ponder_error_set(err, PONDER_ERR_INVALID_ARG, "ponder_gen_submit: generator and request are required");
    if (!q->prompt || q->n_prompt <= 0)
        return ponder_error_set(err, PONDER_ERR_INVALID_ARG, "gen: the prompt is empty");
    if (q->n_prompt > g->n_ctx)
        return ponder_error_set(err, PONDER_ERR_RANGE, "prompt has %d tokens, context holds %d", q->n_prompt,
                                g->n_ctx);
    if (q->n_choices < 1)
        return ponder_error_set(err, PONDER_ERR_INVALID_ARG, "gen: n_choices must be >= 1, got %d", q->n_choices);
    if (q->n_choices > g->n_seq_max)
        return ponder_error_set(err, PONDER_ERR_RANGE, "%d choices asked, the generator runs at most %d sequences",
                                q->n_choices, g->n_seq_max);
    /* it must fit into an empty context: its prompt once, one token per choice */
    if ((int64_t)q->n_prompt + q->n_choices > g->n_cells)
        return ponder_error_set(err, PONDER_ERR_RANGE,
                                "prompt of %d tokens and %d choices need %d KV cells, the context has %d",
                                q->n_prompt, q->n_choices, q->n_prompt + q->n_choices, g->n_cells);
    if (q->top_logprobs < 0 || q->top_logprobs > PONDER_GEN_MAX_TOP_LOGPROBS)
        return ponder_error_set(err, PONDER_ERR_RANGE, "gen: top_logprobs must be 0..%d, got %d",
                                PONDER_GEN_MAX_TOP_LOGPROBS, q->top_logprobs);
    for (int32_t i = 0; i < q->n_prompt; i++)
        if (q->prompt[i] < 0 || q->prompt[i] >= g->n_vocab)
            return ponder_error_set(err, PONDER_ERR_INVALID_ARG,
                                    "gen: prompt token %d at index %d is outside the vocabulary (0..%d)", q->prompt[i],
                                    i, g->n_vocab - 1);

    ponder_status st;
    gen_req *r = calloc(1, sizeof *r);
    if (!r)
        return ponder_error_set(err, PONDER_ERR_NOMEM, "gen: out of memory");
    r->n_choices = q->n_choices;
    r->n_prompt = q->n_prompt;
    r->prompt = malloc((size_t)q->n_prompt * sizeof *r->prompt);
    r->choices = calloc((size_t)q->n_choices, sizeof *r->choices);
    if (!r->prompt || !r->choices) {
        st = ponder_error_set(err, PONDER_ERR_NOMEM, "gen: out of memory");
        goto fail;
    }
    memcpy(r->prompt, q->prompt, (size_t)q->n_prompt * sizeof *r->prompt);
    if ((st = copy_stops(r, q, err)) != PONDER_OK)
        goto fail;
    r->max_tokens = q->max_tokens;
    r->ignore_eos = q->ignore_eos;
    r->no_cache = q->no_cache_prompt;
    r->logprobs = q->logprobs;
    r->top_logprobs = q->top_logprobs;
    r->repeat_last_n = q->sampling.repeat_last_n;
    r->on_event = q->on_event;
    r->user = q->user;
    r->usage.prompt_tokens = q->n_prompt;

    ponder_sampler_params sp = q->sampling;
    if (q->presence_penalty != 0.0f)
        sp.presence_penalty = q->presence_penalty;
    if (q->frequency_penalty != 0.0f)
        sp.frequency_penalty = q->frequency_penalty;
    for (int32_t i = 0; i < r->n_choices; i++) {
        gen_choice *c = &r->choices[i];
        c->seq = -1;
        c->next = PONDER_TOKEN_NULL;
        if (q->seeds)
            sp.seed = q->seeds[i];
        else if (i > 0) /* a random seed is drawn once, for choice 0; the others follow it */
            sp.seed = ponder_sampler_seed(r->choices[0].smp) + (uint64_t)i;
        if ((st = ponder_sampler_create(&sp, g->n_vocab, &c->smp, err)) != PONDER_OK)
            goto fail;
        c->seed = ponder_sampler_seed(c->smp);
        for (int32_t t = 0; q->penalize_prompt && t < q->n_prompt; t++)
            ponder_sampler_accept(c->smp, q->prompt[t]);
        if ((st = ponder_detokenizer_create(g->tok, false, &c->detok, err)) != PONDER_OK)
            goto fail;
        if (g->draft) {
            c->k = g->draft_k;
            c->acceptance = 1.0f;
            if ((st = ponder_sampler_create(&sp, g->n_vocab, &c->dsmp, err)) != PONDER_OK)
                goto fail;
            if (sp.temp > 0.0f) {
                c->q = malloc((size_t)g->draft_k_max * (size_t)g->n_vocab * sizeof *c->q);
                if (!c->q) {
                    st = ponder_error_set(err, PONDER_ERR_NOMEM, "gen: out of memory for the draft's distributions");
                    goto fail;
                }
            }
        }
    }
    if ((st = gen_grammar_attach(g, r, q, err)) != PONDER_OK)
        goto fail;
    size_t cap = (size_t)g->cap_reqs;
    if (!grow((void **)&g->reqs, &cap, (size_t)g->n_reqs + 1, sizeof *g->reqs)) {
        st = ponder_error_set(err, PONDER_ERR_NOMEM, "gen: out of memory");
        goto fail;
    }
    g->cap_reqs = (int32_t)cap;
    r->id = g->next_id++;
    if (g->next_id <= 0) /* ids stay positive: 0 is "none" */
        g->next_id = 1;
    r->n_live = r->n_choices;
    r->state = REQ_QUEUED;
    g->reqs[g->n_reqs++] = r;
    if (request_id)
        *request_id = r->id;
    return PONDER_OK;
fail:
    req_free(r);
    return st;
}

/* ---- step ---- */

static int32_t n_free_seqs(const ponder_gen *g)
{
    int32_t n = 0;
    for (int32_t i = 0; i < g->n_seq_max; i++)
        n += !g->seq_used[i];
    return n;
}


static int64_t cells_available(const ponder_gen *g)
{
    int64_t avail = ponder_context_n_free_cells(g->ctx);
    for (int32_t i = 0; i < g->n_reqs; i++) {
        const gen_req *r = g->reqs[i];
        if (r->state == REQ_PROMPT)
            avail -= (r->n_prompt - r->n_prompt_done) + r->n_choices;
        else if (r->state == REQ_RUNNING)
            for (int32_t c = 0; c < r->n_choices; c++)
                avail -= r->choices[c].next != PONDER_TOKEN_NULL;
    }
    return avail;
}

/* A free sequence, one holding no cached prompt if there is one (else its cache goes). */
static int32_t free_seq(ponder_gen *g)
{
    int32_t s = -1;
    for (int32_t i = 0; i < g->n_seq_max; i++)
        if (!g->seq_used[i] && (s < 0 || !g->cached || g->cached[i].n == 0)) {
            s = i;
            if (!g->cached || g->cached[i].n == 0)
                break;
        }
    if (g->cached)
        gen_cache_drop(g, s);
    return s;
}

/* Admits queued requests in submit order while sequences and cells last: a request needs
 * n_choices sequences and cells for its prompt (stored once) and one token per choice.
 * Strict FIFO: a request that does not fit holds back the ones behind it. */
static void admit(ponder_gen *g)
{
    int64_t avail = cells_available(g);
    int32_t free_seqs = n_free_seqs(g);
    for (int32_t i = 0; i < g->n_reqs; i++) {
        gen_req *r = g->reqs[i];
        if (r->state != REQ_QUEUED || r->released)
            continue;
        /* the prompt cache: the free sequence sharing the longest prefix, cut back to it */
        int32_t keep = 0, hit = g->cached && r->n_choices == 1 && !r->no_cache
                                    ? gen_cache_match(g, r->prompt, r->n_prompt, &keep)
                                    : -1;
        if (hit >= 0 && g->cached[hit].n > keep) {
            ponder_context_seq_truncate(g->ctx, hit, keep, NULL);
            avail += g->cached[hit].n - keep;
            g->cached[hit].n = keep;
        }
        const int64_t need = (int64_t)r->n_prompt - keep + r->n_choices;
        while (need > avail && g->cached && gen_cache_evict(g, hit))
            avail = cells_available(g);
        if (r->n_choices > free_seqs || need > avail)
            break;
        int32_t s = 0;
        for (int32_t c = 0; c < r->n_choices; c++) {
            if (c == 0 && hit >= 0) {
                g->cached[hit].n = 0; /* its KV is the request's now */
                g->seq_used[hit] = true;
                r->choices[c].seq = hit;
                continue;
            }
            s = free_seq(g);
            g->seq_used[s] = true;
            r->choices[c].seq = s;
        }
        free_seqs -= r->n_choices;
        avail -= need;
        r->n_prompt_done = keep;
        r->state = REQ_PROMPT;
    }
}

static bool append_token(gen_choice *c, ponder_token t)
{
    size_t cap = (size_t)c->cap_tokens;
    if (!grow((void **)&c->tokens, &cap, (size_t)c->n_tokens + 1, sizeof *c->tokens))
        return false;
    c->cap_tokens = (int32_t)cap;
    c->tokens[c->n_tokens++] = t;
    return true;
}

static bool append_text(gen_choice *c, const char *s, size_t n)
{
    if (!grow((void **)&c->text, &c->cap, c->len + n + 1, 1))
        return false;
    memcpy(c->text + c->len, s, n);
    c->len += n;
    c->text[c->len] = '\0';
    return true;
}

/* The normalisers of a step's rows, one row at a time per thread (each row's sum is the
 * same whichever thread computes it): with several sequences they were a step's largest
 * work done by one thread while the others waited. */
typedef struct lse_task {
    ponder_gen *g;
    int32_t n;
    _Atomic int32_t next, done;
} lse_task;

static void lse_slice(void *arg, int ith, int nth)
{
    (void)nth;
    lse_task *t = arg;
    ponder_gen *g = t->g;
    const size_t nv = (size_t)g->n_vocab;
    for (int32_t i; (i = atomic_fetch_add_explicit(&t->next, 1, memory_order_relaxed)) < t->n;) {
        g->row_lse[i] = gen_log_sum_exp(g->logits + (size_t)i * nv, g->n_vocab, g->lse_scratch + (size_t)ith * nv);
        atomic_fetch_add_explicit(&t->done, 1, memory_order_release);
    }
    if (ith == 0) /* the caller returns when every row is done, by whichever thread */
        while (atomic_load_explicit(&t->done, memory_order_acquire) < t->n)
            ;
}

void gen_prepare_rows(ponder_gen *g, int32_t n)
{
    lse_task t = {.g = g, .n = n};
    atomic_init(&t.next, 0);
    atomic_init(&t.done, 0);
    if (n > 1)
        ponder_pool_run_dynamic(g->pool, lse_slice, &t);
    else if (n == 1)
        lse_slice(&t, 0, 1);
    g->n_row_lse = n;
}

/* Log-softmax normaliser (from gen_prepare_rows, else computed here) and top
 * alternatives of a logits row, from the raw logits; then, for ignore_eos, the
 * end-of-generation tokens are banned in the row itself (it is ours, and every choice
 * reading it belongs to the same request). */
double gen_prepare_row(ponder_gen *g, const gen_req *r, float *row, int32_t *n_top)
{
    const size_t at = (size_t)(row - g->logits) / (size_t)g->n_vocab;
    const double lse = at < (size_t)g->n_row_lse ? g->row_lse[at] : gen_log_sum_exp(row, g->n_vocab, g->masked);
    *n_top = r->top_logprobs > 0 ? gen_top_logprobs(row, g->n_vocab, lse, r->top_logprobs, g->top) : 0;
    if (r->ignore_eos) /* as llama.cpp's ignore_eos: a -inf bias on every such token */
        for (int32_t i = 0; i < g->n_eog; i++)
            row[g->eog[i]] = -INFINITY;
    return lse;
}

/* Token t becomes choice ci's next token, chosen from the logits row after its last one
 * (prepared by prepare_row): penalty window, logprobs, text, stop strings, finish, event. */
ponder_status gen_commit_token(ponder_gen *g, gen_req *r, int32_t ci, ponder_token t, const float *logits,
                                double lse, int32_t n_top, ponder_error *err)
{
    gen_choice *c = &r->choices[ci];
    ponder_sampler_accept(c->smp, t);
    /* a banned token is drawn only if every logit is -inf: its raw logit is lost then */
    ponder_gen_token_logprob chosen = {t, (float)((double)logits[t] - lse)};
    c->sum_logprob += (double)chosen.logprob;
    if (!append_token(c, t))
        return ponder_error_set(err, PONDER_ERR_NOMEM, "gen: out of memory for the tokens of request %d", r->id);
    r->usage.completion_tokens++;

    const size_t from = c->n_final;
    ponder_finish f = PONDER_FINISH_NONE;
    const bool grammar_final = gen_grammar_commit(c, t);
    if (!r->ignore_eos && ponder_tokenizer_is_eog(g->tok, t)) {
        f = PONDER_FINISH_STOP; /* its text is not part of the answer */
    } else {
        const char *piece;
        size_t n_piece;
        ponder_detokenizer_push(c->detok, t, &piece, &n_piece);
        if (!append_text(c, piece, n_piece))
            return ponder_error_set(err, PONDER_ERR_NOMEM, "gen: out of memory for the text of request %d", r->id);
        /* under a grammar the grammar decides the end: stop strings are not applied */
        size_t at = c->gm ? SIZE_MAX : gen_stop_find(&r->stops, c->text, c->len, c->n_final);
        if (at != SIZE_MAX) {
            c->len = at;
            c->text[at] = '\0';
            c->n_final = at;
            f = PONDER_FINISH_STOP;
        } else {
            c->n_final = c->len - (c->gm ? 0 : gen_stop_holdback(&r->stops, c->text, c->len, c->n_final));
        }
        if (grammar_final)
            f = PONDER_FINISH_STOP; /* complete, and nothing else may follow */
    }
    if (f == PONDER_FINISH_NONE && r->max_tokens > 0 && c->n_tokens >= r->max_tokens)
        f = PONDER_FINISH_LENGTH;
    /* the token just sampled would go after the prompt and the tokens before it (the
     * positions the KV cache keeps once unverified proposals are dropped): none is left */
    if (f == PONDER_FINISH_NONE && r->n_prompt + c->n_tokens - 1 >= g->n_ctx)
        f = PONDER_FINISH_LENGTH;
    if (f != PONDER_FINISH_NONE)
        finish_choice(g, r, ci, f);
    else
        c->next = t;
    emit(r, ci, t, from, r->logprobs ? &chosen : NULL, n_top ? g->top : NULL, n_top);
    return PONDER_OK;
}

/* One choice, given the logits after its last token (prepared by prepare_row): samples
 * and commits. */
static ponder_status advance_choice(ponder_gen *g, gen_req *r, int32_t ci, const float *logits, double lse,
                                    int32_t n_top, ponder_error *err)
{
    gen_choice *c = &r->choices[ci];
    if (c->finish != PONDER_FINISH_NONE) /* cancelled by a callback earlier in this step */
        return PONDER_OK;
    if (!gen_grammar_restrict(g, r, c, c->smp, 0)) { /* the grammar allows nothing: it cannot go on */
        const size_t from = c->n_final;
        finish_choice(g, r, ci, PONDER_FINISH_ERROR);
        emit(r, ci, PONDER_TOKEN_NULL, from, NULL, NULL, 0);
        return PONDER_OK;
    }
    const ponder_token t = ponder_sampler_sample(c->smp, logits);
    gen_grammar_unrestrict(c->smp);
    return gen_commit_token(g, r, ci, t, logits, lse, n_top, err);
}

/* Adds token t of sequence s to the batch. */
static void batch_add(ponder_gen *g, int32_t *n, ponder_token t, ponder_seq_id s, bool want)
{
    g->b_tokens[*n] = t;
    g->b_seq[*n] = s;
    g->b_want[*n] = want;
    (*n)++;
}

static void purge_released(ponder_gen *g)
{
    int32_t w = 0;
    for (int32_t i = 0; i < g->n_reqs; i++) {
        if (g->reqs[i]->released)
            req_free(g->reqs[i]);
        else
            g->reqs[w++] = g->reqs[i];
    }
    g->n_reqs = w;
}

/* Fills the batch: every live choice's pending token, then (with_prompts) the next prompt
 * chunks in admission order. Returns the token count; g->rows gets the wanted rows. */
static int32_t build_batch(ponder_gen *g, bool with_prompts, int32_t *n_rows)
{
    int32_t n = 0;
    *n_rows = 0;
    for (int32_t i = 0; i < g->n_reqs; i++) {
        gen_req *r = g->reqs[i];
        r->n_take = 0;
        if (r->state != REQ_RUNNING)
            continue;
        for (int32_t ci = 0; ci < r->n_choices; ci++) {
            const gen_choice *c = &r->choices[ci];
            if (c->next == PONDER_TOKEN_NULL)
                continue;
            batch_add(g, &n, c->next, c->seq, true);
            for (int32_t k = 0; k < c->n_draft; k++)
                batch_add(g, &n, c->draft[k], c->seq, true);
            g->rows[(*n_rows)++] = (gen_row){r, ci, 1 + c->n_draft};
        }
    }
    int32_t budget = with_prompts ? GEN_PROMPT_TOKENS_PER_STEP : 0;
    for (int32_t i = 0; i < g->n_reqs && budget > 0; i++) {
        gen_req *r = g->reqs[i];
        if (r->state != REQ_PROMPT)
            continue;
        int32_t take = r->n_prompt - r->n_prompt_done;
        take = take < budget ? take : budget;
        for (int32_t k = 0; k < take; k++) {
            const int32_t pos = r->n_prompt_done + k;
            const bool last = pos == r->n_prompt - 1;
            batch_add(g, &n, r->prompt[pos], r->choices[0].seq, last);
            if (last)
                g->rows[(*n_rows)++] = (gen_row){r, -1, 1};
        }
        r->n_take = take;
        budget -= take;
    }
    return n;
}

/* The running choice holding the most positions (ties: the latest submitted), or NULL. */
static gen_req *longest_choice(ponder_gen *g, int32_t *choice)
{
    gen_req *best = NULL;
    int32_t best_len = -1;
    for (int32_t i = 0; i < g->n_reqs; i++) {
        gen_req *r = g->reqs[i];
        if (r->state != REQ_RUNNING)
            continue;
        for (int32_t ci = 0; ci < r->n_choices; ci++) {
            const gen_choice *c = &r->choices[ci];
            const int32_t len = c->next != PONDER_TOKEN_NULL ? ponder_context_seq_len(g->ctx, c->seq) : -1;
            if (len >= 0 && len >= best_len) {
                best = r;
                best_len = len;
                *choice = ci;
            }
        }
    }
    return best;
}

static ponder_status step(ponder_gen *g, bool *did_work, ponder_error *err)
{
    g->n_row_lse = 0; /* this step's rows are not computed yet */
    admit(g);
    gen_spec_plan(g);
    gen_spec_run_draft(g);

    /* The context checks cells before touching anything, so a batch that does not fit
     * can be retried smaller: first without prompt chunks (those requests wait for
     * cells), then without the longest running choice, which ends as at the context's
     * end. Only when n_kv_cells is below what the sequences can hold at once. */
    bool with_prompts = true;
    int32_t n, n_rows;
    ponder_status st;
    for (;;) {
        n = build_batch(g, with_prompts, &n_rows);
        if (n == 0)
            return PONDER_OK;
        *did_work = true;
        ponder_batch b = {.n_tokens = n, .tokens = g->b_tokens, .seq = g->b_seq, .want_logits = g->b_want};
        st = ponder_context_decode_batch(g->ctx, &b, g->logits, err);
        if (st != PONDER_ERR_RANGE)
            break;
        bool had_prompt = false, had_gen = false;
        for (int32_t i = 0; i < g->n_reqs; i++)
            had_prompt |= g->reqs[i]->n_take > 0;
        for (int32_t k = 0; k < n_rows; k++)
            had_gen |= g->rows[k].choice >= 0;
        int32_t ci = 0;
        gen_req *victim = NULL;
        bool had_draft = false;
        for (int32_t k = 0; k < n_rows; k++)
            had_draft |= g->rows[k].n > 1;
        if (!had_gen) /* prompts alone do not fit: waiting would not free anything */
            break;
        if (had_draft) { /* first without proposals: their cells are what speculation adds */
            for (int32_t k = 0; k < n_rows; k++) {
                if (g->rows[k].choice < 0)
                    continue;
                gen_req *r = g->rows[k].r;
                gen_choice *c = &r->choices[g->rows[k].choice];
                c->n_draft = 0;
                /* the draft decoded proposals that will not be verified */
                if (ponder_context_seq_len(g->dctx, c->seq) > r->n_prompt + c->n_tokens - 1)
                    ponder_context_seq_truncate(g->dctx, c->seq, r->n_prompt + c->n_tokens - 1, NULL);
            }
        } else if (g->cached && gen_cache_evict(g, -1)) {
            /* cached prompts give way first */
        } else if (had_prompt)
            with_prompts = false;
        else if ((victim = longest_choice(g, &ci)) != NULL) {
            const size_t from = victim->choices[ci].n_final;
            finish_choice(g, victim, ci, PONDER_FINISH_LENGTH);
            emit(victim, ci, PONDER_TOKEN_NULL, from, NULL, NULL, 0);
        } else
            break;
        ponder_error_clear(err);
    }
    if (st != PONDER_OK) {
        /* The context is unchanged, so stepping again would fail the same way: the
         * requests in this batch end with an error instead. */
        ponder_error_prefix(err, "gen: decoding a batch of %d tokens", n);
        for (int32_t i = 0; i < g->n_reqs; i++)
            if (g->reqs[i]->state == REQ_RUNNING || g->reqs[i]->state == REQ_PROMPT)
                finish_request(g, g->reqs[i], PONDER_FINISH_ERROR);
        return st;
    }

    /* usage: every position run, at its position (rejected proposals included) */
    for (int32_t k = 0; k < n_rows; k++) {
        if (g->rows[k].choice < 0)
            continue;
        gen_req *r = g->rows[k].r;
        const int32_t len = ponder_context_seq_len(g->ctx, r->choices[g->rows[k].choice].seq);
        for (int32_t pos = len - g->rows[k].n; pos < len; pos++)
            r->usage.flops += ponder_model_flops_per_token(g->model, pos);
    }
    for (int32_t i = 0; i < g->n_reqs; i++) {
        gen_req *r = g->reqs[i];
        for (int32_t k = 0; k < r->n_take; k++)
            r->usage.flops += ponder_model_flops_per_token(g->model, r->n_prompt_done + k);
        r->n_prompt_done += r->n_take;
        r->usage.prompt_tokens_evaluated += r->n_take;
        r->n_take = 0;
    }

    int32_t n_logit_rows = 0;
    for (int32_t k = 0; k < n_rows; k++)
        n_logit_rows += g->rows[k].n;
    gen_prepare_rows(g, n_logit_rows);
    size_t row_at = 0; /* logits row of rows[k]: the rows before it span that many */
    for (int32_t k = 0; k < n_rows; k++) {
        gen_req *r = g->rows[k].r;
        float *row = g->logits + row_at * (size_t)g->n_vocab;
        row_at += (size_t)g->rows[k].n;
        if (r->state == REQ_DONE) /* cancelled by a callback earlier in this step */
            continue;
        if (g->rows[k].n > 1) {
            if ((st = gen_spec_verify_choice(g, r, g->rows[k].choice, row, err)) != PONDER_OK)
                return st;
            continue;
        }
        int32_t n_top;
        const double lse = gen_prepare_row(g, r, row, &n_top);
        if (g->rows[k].choice >= 0) {
            if ((st = advance_choice(g, r, g->rows[k].choice, row, lse, n_top, err)) != PONDER_OK)
                return st;
            continue;
        }
        /* prompt complete: the other choices start from a copy of choice 0's sequence */
        r->state = REQ_RUNNING;
        for (int32_t ci = 1; ci < r->n_choices; ci++) {
            if ((st = ponder_context_seq_fork(g->ctx, r->choices[0].seq, r->choices[ci].seq, err)) != PONDER_OK) {
                ponder_error_prefix(err, "gen: request %d", r->id);
                finish_request(g, r, PONDER_FINISH_ERROR);
                return st;
            }
        }
        for (int32_t ci = 0; ci < r->n_choices && r->state != REQ_DONE; ci++)
            if ((st = advance_choice(g, r, ci, row, lse, n_top, err)) != PONDER_OK)
                return st;
    }
    return PONDER_OK;
}

ponder_status ponder_gen_step(ponder_gen *g, bool *did_work, ponder_error *err)
{
    bool dummy;
    if (!did_work)
        did_work = &dummy;
    *did_work = false;
    if (!g)
        return ponder_error_set(err, PONDER_ERR_INVALID_ARG, "ponder_gen_step: generator is NULL");
    if (g->in_step)
        return ponder_error_set(err, PONDER_ERR_INVALID_ARG, "ponder_gen_step: called from inside an event callback");
    g->in_step = true;
    ponder_status st = step(g, did_work, err);
    g->in_step = false;
    purge_released(g);
    return st;
}

void ponder_gen_cancel(ponder_gen *g, int32_t request_id)
{
    if (!g)
        return;
    gen_req *r = find_req(g, request_id, NULL);
    if (!r || r->state == REQ_DONE)
        return;
    finish_request(g, r, PONDER_FINISH_CANCELLED);
}

int32_t ponder_gen_n_pending(const ponder_gen *g)
{
    int32_t n = 0;
    for (int32_t i = 0; g && i < g->n_reqs; i++)
        n += g->reqs[i]->state != REQ_DONE && !g->reqs[i]->released;
    return n;
}

int32_t ponder_gen_n_queued(const ponder_gen *g)
{
    int32_t n = 0;
    for (int32_t i = 0; g && i < g->n_reqs; i++)
        n += g->reqs[i]->state == REQ_QUEUED && !g->reqs[i]->released;
    return n;
}

bool ponder_gen_done(const ponder_gen *g, int32_t request_id)
{
    const gen_req *r = g ? find_req(g, request_id, NULL) : NULL;
    return !r || r->state == REQ_DONE;
}

ponder_status ponder_gen_result(const ponder_gen *g, int32_t request_id, int32_t choice,
                                ponder_gen_choice_result *out, ponder_error *err)
{
    if (!g || !out)
        return ponder_error_set(err, PONDER_ERR_INVALID_ARG, "ponder_gen_result: generator and out are required");
    const gen_req *r = find_req(g, request_id, NULL);
    if (!r)
        return ponder_error_set(err, PONDER_ERR_NOT_FOUND, "gen: no request %d", request_id);
    if (choice < 0 || choice >= r->n_choices)
        return ponder_error_set(err, PONDER_ERR_RANGE, "gen: request %d has %d choices, asked for choice %d",
                                request_id, r->n_choices, choice);
    const gen_choice *c = &r->choices[choice];
    *out = (ponder_gen_choice_result){
        .text = c->text ? c->text : "",
        .text_len = c->n_final,
        .tokens = c->tokens,
        .n_tokens = c->n_tokens,
        .sum_logprob = c->sum_logprob,
        .finish = c->finish,
        .seed = c->seed,
    };
    return PONDER_OK;
}

ponder_status ponder_gen_usage_of(const ponder_gen *g, int32_t request_id, ponder_gen_usage *out, ponder_error *err)
{
    if (!g || !out)
        return ponder_error_set(err, PONDER_ERR_INVALID_ARG, "ponder_gen_usage_of: generator and out are required");
    const gen_req *r = find_req(g, request_id, NULL);
    if (!r)
        return ponder_error_set(err, PONDER_ERR_NOT_FOUND, "gen: no request %d", request_id);
    *out = r->usage;
    return PONDER_OK;
}

void ponder_gen_release(ponder_gen *g, int32_t request_id)
{
    int32_t i;
    gen_req *r = g ? find_req(g, request_id, &i) : NULL;
    if (!r)
        return;
    if (r->state != REQ_DONE) {
        r->on_event = NULL; /* forgetting it: nobody wants its events */
        finish_request(g, r, PONDER_FINISH_CANCELLED);
    }
    if (g->in_step) {
        r->released = true; /* the step may still hold pointers to it */
        return;
    }
    req_free(r);
    memmove(g->reqs + i, g->reqs + i + 1, (size_t)(g->n_reqs - i - 1) * sizeof *g->reqs);
    g->n_reqs--;
}

ponder_status ponder_gen_run(ponder_gen *g, const ponder_gen_request *r, int32_t *request_id, ponder_error *err)
{
    int32_t id = 0;
    ponder_status st = ponder_gen_submit(g, r, &id, err);
    if (request_id)
        *request_id = id;
    if (st != PONDER_OK)
        return st;
    while (!ponder_gen_done(g, id)) {
        bool did_work = false;
        if ((st = ponder_gen_step(g, &did_work, err)) != PONDER_OK)
            return st;
        if (!did_work && !ponder_gen_done(g, id))
            return ponder_error_set(err, PONDER_ERR_INTERNAL, "gen: request %d is stuck: nothing to decode", id);
    }
    return PONDER_OK;
}
