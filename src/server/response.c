/*
 * response.c — OpenAI response objects and stream chunks.
 *
 * Shapes follow api.openai.com: chat.completion / chat.completion.chunk with
 * message/delta, logprobs.content[{token, logprob, bytes, top_logprobs}], and the legacy
 * text_completion with logprobs {tokens, token_logprobs, top_logprobs, text_offset}.
 * With stream_options.include_usage every chunk carries "usage": null and one last chunk
 * has empty choices and the usage. Ponder's numbers go in one "ponder" object. Numbers
 * are written with the fewest digits that read back exactly (ponder_json_dumps).
 */
#include "server/server_internal.h"

#include "ponder/json.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *srv_finish_reason(ponder_finish f)
{
    return f == PONDER_FINISH_LENGTH ? "length" : "stop";
}

static json_t *usage_json(const srv_stats *st)
{
    json_t *u = json_object();
    json_object_set_new(u, "prompt_tokens", json_integer(st->prompt_tokens));
    json_object_set_new(u, "completion_tokens", json_integer(st->completion_tokens));
    json_object_set_new(u, "total_tokens", json_integer((json_int_t)st->prompt_tokens + st->completion_tokens));
    json_t *d = json_object(); /* OpenAI's name for what the prompt cache supplied */
    json_object_set_new(d, "cached_tokens", json_integer(st->prompt_tokens_cached));
    json_object_set_new(u, "prompt_tokens_details", d);
    return u;
}

/* A measured time or rate to the unit the clock supports: printed shortest, 0.616 ms is
 * "0.616", not the clock difference's 0.6164659997448325. */
static double to_unit(double x, double unit) { return round(x / unit) * unit; }

static json_t *ponder_json(const srv_stats *st)
{
    json_t *p = json_object();
    json_object_set_new(p, "flops", json_integer((json_int_t)(st->flops > (uint64_t)INT64_MAX ? INT64_MAX : st->flops)));
    json_object_set_new(p, "wall_ms", json_real(to_unit(st->wall_ms, 1e-3)));
    json_object_set_new(p, "prompt_tokens_evaluated", json_integer(st->prompt_tokens_evaluated));
    json_object_set_new(p, "prompt_tokens_cached", json_integer(st->prompt_tokens_cached));
    if (st->draft_tokens > 0) { /* speculative decoding: proposals and how many the model kept */
        json_object_set_new(p, "draft_tokens", json_integer(st->draft_tokens));
        json_object_set_new(p, "draft_accepted", json_integer(st->draft_accepted));
    }
    /* generation speed over the decode phase, the number llama.cpp's timings call predicted_per_second */
    double tps = st->gen_ms > 0.0 ? st->completion_tokens * 1000.0 / st->gen_ms : 0.0;
    json_object_set_new(p, "tokens_per_s", json_real(to_unit(tps, 1e-2)));
    const ponder_think_result *t = st->think;
    if (t) {
        /* the strategy's outcome: the content is the winning chain's text; the vote over
         * every chain's extracted answer is here */
        char name[32];
        json_object_set_new(p, "strategy", json_string(ponder_strategy_format(&t->strategy, name, sizeof name)));
        json_object_set_new(p, "answer", t->answer ? http_json_string_lossy(t->answer, strlen(t->answer)) : json_null());
        json_t *votes = json_object();
        for (int32_t i = 0; i < t->n_votes; i++) {
            /* a text answer is cut at PONDER_ANSWER_BYTES, maybe inside a UTF-8 sequence */
            json_t *key = http_json_string_lossy(t->votes[i].answer, strlen(t->votes[i].answer));
            if (key)
                json_object_set_new(votes, json_string_value(key), json_integer(t->votes[i].count));
            json_decref(key);
        }
        json_object_set_new(p, "votes", votes);
        json_object_set_new(p, "agreement", json_real(t->agreement));
        json_object_set_new(p, "samples", json_integer(t->n_samples));
        json_object_set_new(p, "rounds", json_integer(t->n_rounds));
        json_object_set_new(p, "best", json_integer(t->best));
        json_t *chains = json_array();
        for (int32_t i = 0; i < t->n_samples; i++) {
            const ponder_think_sample *c = &t->samples[i];
            json_t *o = json_object();
            json_object_set_new(o, "answer", c->answer[0] ? http_json_string_lossy(c->answer, strlen(c->answer)) : json_null());
            json_object_set_new(o, "tokens", json_integer(c->n_tokens));
            json_object_set_new(o, "mean_logprob", json_real(c->mean_logprob));
            json_array_append_new(chains, o);
        }
        json_object_set_new(p, "chains", chains);
    }
    return p;
}

static json_t *meta_object(const srv_request *r, const srv_meta *m, bool chunk)
{
    json_t *o = json_object();
    json_object_set_new(o, "id", json_string(m->id));
    const char *obj = r->kind == SRV_EP_CHAT ? (chunk ? "chat.completion.chunk" : "chat.completion")
                                             : "text_completion";
    json_object_set_new(o, "object", json_string(obj));
    json_object_set_new(o, "created", json_integer(m->created));
    json_object_set_new(o, "model", http_json_string_lossy(m->model, strlen(m->model)));
    json_object_set_new(o, "system_fingerprint", json_string(m->fingerprint));
    return o;
}

/* A token's bytes as the tokenizer renders it (control tokens as their text). */
static int32_t piece_of(const ponder_tokenizer *tok, ponder_token id, char *buf, int32_t cap)
{
    int32_t n = tok ? ponder_tokenizer_token_to_piece(tok, id, buf, cap, true) : -1;
    if (n < 0 || n > cap) {
        n = snprintf(buf, (size_t)cap, "<%d>", (int)id); /* longer than any real piece: name it */
        if (n < 0)
            n = 0;
        if (n >= cap)
            n = cap - 1;
    }
    return n;
}

#define SRV_PIECE_BYTES 256

/* {"token", "logprob", "bytes"} (chat). */
static json_t *chat_token_json(const ponder_tokenizer *tok, const ponder_gen_token_logprob *t)
{
    char buf[SRV_PIECE_BYTES];
    int32_t n = piece_of(tok, t->token, buf, sizeof buf);
    json_t *o = json_object();
    json_object_set_new(o, "token", http_json_string_lossy(buf, (size_t)n));
    json_object_set_new(o, "logprob", json_real(t->logprob));
    json_t *bytes = json_array();
    for (int32_t i = 0; i < n; i++)
        json_array_append_new(bytes, json_integer((unsigned char)buf[i]));
    json_object_set_new(o, "bytes", bytes);
    return o;
}

static json_t *chat_logprob_json(const ponder_tokenizer *tok, const srv_logprob *lp)
{
    json_t *o = chat_token_json(tok, &lp->chosen);
    json_t *top = json_array();
    for (int32_t i = 0; i < lp->n_top; i++)
        json_array_append_new(top, chat_token_json(tok, &lp->top[i]));
    json_object_set_new(o, "top_logprobs", top);
    return o;
}

static json_t *chat_logprobs_json(const ponder_tokenizer *tok, const srv_logprob *const *lp, int32_t n)
{
    json_t *content = json_array();
    for (int32_t i = 0; i < n; i++)
        json_array_append_new(content, chat_logprob_json(tok, lp[i]));
    json_t *o = json_object();
    json_object_set_new(o, "content", content);
    json_object_set_new(o, "refusal", json_null());
    return o;
}

/* Legacy completions logprobs over tokens lp[0..n), the first at text_offset offset0. */
static json_t *legacy_logprobs_json(const ponder_tokenizer *tok, const srv_logprob *const *lp, int32_t n, int32_t k,
                                    size_t offset0)
{
    json_t *tokens = json_array(), *lps = json_array(), *tops = json_array(), *offs = json_array();
    size_t off = offset0;
    for (int32_t i = 0; i < n; i++) {
        char buf[SRV_PIECE_BYTES];
        int32_t len = piece_of(tok, lp[i]->chosen.token, buf, sizeof buf);
        json_array_append_new(tokens, http_json_string_lossy(buf, (size_t)len));
        json_array_append_new(lps, json_real(lp[i]->chosen.logprob));
        json_array_append_new(offs, json_integer((json_int_t)off));
        off += (size_t)len;
        if (k > 0) {
            json_t *t = json_object();
            for (int32_t j = 0; j < lp[i]->n_top; j++) {
                char b2[SRV_PIECE_BYTES];
                int32_t l2 = piece_of(tok, lp[i]->top[j].token, b2, sizeof b2);
                json_t *key = http_json_string_lossy(b2, (size_t)l2);
                if (key && !json_object_get(t, json_string_value(key))) /* keys: first (best) wins */
                    json_object_set_new(t, json_string_value(key), json_real(lp[i]->top[j].logprob));
                json_decref(key);
            }
            json_array_append_new(tops, t);
        } else {
            json_array_append_new(tops, json_null());
        }
    }
    json_t *o = json_object();
    json_object_set_new(o, "tokens", tokens);
    json_object_set_new(o, "token_logprobs", lps);
    json_object_set_new(o, "top_logprobs", tops);
    json_object_set_new(o, "text_offset", offs);
    return o;
}

static char *dump(json_t *o, bool sse)
{
    if (!o)
        return NULL;
    char *s = ponder_json_dumps(o); /* shortest round-trip numbers: -2.345679, not -2.3456790447235107 */
    json_decref(o);
    if (!s || !sse)
        return s;
    size_t n = strlen(s);
    char *d = malloc(n + 9);
    if (d) {
        memcpy(d, "data: ", 6);
        memcpy(d + 6, s, n);
        memcpy(d + 6 + n, "\n\n", 3);
    }
    free(s);
    return d;
}

char *srv_build_response(const srv_request *r, const srv_meta *m, const ponder_tokenizer *tok,
                         const srv_choice *choices, const srv_stats *st)
{
    /* The object is dumped with an empty "choices" first (the first key of that name in the
     * text: strings before it are escaped, so their quotes are never bare); then each choice
     * is turned into text as soon as it is built and its tree freed, appended after the part
     * before "[]", and the rest follows. The peak holds one choice's JSON tree, not every
     * choice's (a logprobs tree is ~0.7 KB a token), and the text is not copied again. */
    json_t *o = meta_object(r, m, false);
    json_object_set_new(o, "choices", json_array());
    json_object_set_new(o, "usage", usage_json(st));
    json_object_set_new(o, "ponder", ponder_json(st));
    char *head = dump(o, false);
    static const char slot[] = "\"choices\":[]";
    char *at = head ? strstr(head, slot) : NULL;
    if (!at) {
        free(head);
        return NULL;
    }
    http_buf arr = { 0 };
    http_buf_append(&arr, head, (size_t)(at - head) + sizeof slot - 2); /* through "choices":[ */
    for (int32_t i = 0; i < srv_request_n_choices(r); i++) {
        const srv_choice *c = &choices[i];
        json_t *ch = json_object();
        json_object_set_new(ch, "index", json_integer(i));
        json_t *text = http_json_string_lossy(c->text ? c->text : "", c->text_len);
        json_t *lp = json_null();
        if (r->logprobs)
            lp = r->kind == SRV_EP_CHAT ? chat_logprobs_json(tok, c->lp, c->n_lp)
                                        : legacy_logprobs_json(tok, c->lp, c->n_lp, r->top_logprobs, 0);
        const bool calls = r->kind == SRV_EP_CHAT && c->tc && c->n_tc > 0;
        if (calls) { /* the text around the calls, null when there is none (as OpenAI) */
            json_decref(text);
            text = c->tc->content_len ? http_json_string_lossy(c->tc->content, c->tc->content_len) : json_null();
        }
        if (r->kind == SRV_EP_CHAT) {
            json_t *msg = json_object();
            json_object_set_new(msg, "role", json_string("assistant"));
            json_object_set_new(msg, "content", text);
            json_object_set_new(msg, "refusal", json_null());
            if (calls)
                json_object_set_new(msg, "tool_calls", srv_tool_calls_json(c->tc, c->tc_ids, c->n_tc));
            json_object_set_new(ch, "message", msg);
            json_object_set_new(ch, "logprobs", lp);
        } else {
            json_object_set_new(ch, "text", text);
            json_object_set_new(ch, "logprobs", lp);
        }
        json_object_set_new(ch, "finish_reason", json_string(calls ? "tool_calls" : srv_finish_reason(c->finish)));
        char *text_ch = dump(ch, false);
        if (!text_ch || (i > 0 && !http_buf_append(&arr, ",", 1)) || !http_buf_append(&arr, text_ch, strlen(text_ch)))
            arr.oom = true;
        free(text_ch);
        if (arr.oom)
            break;
    }
    http_buf_append(&arr, at + sizeof slot - 2, strlen(at + sizeof slot - 2)); /* ]... */
    free(head);
    if (arr.oom) {
        free(arr.data);
        return NULL;
    }
    char *fit = realloc(arr.data, arr.len + 1); /* the growth's slack (up to half) back, while it is sent */
    return fit ? fit : arr.data;
}

char *srv_build_chunk(const srv_request *r, const srv_meta *m, const ponder_tokenizer *tok, const srv_delta *d,
                      const srv_stats *st)
{
    json_t *o = meta_object(r, m, true);
    json_t *ch = json_object();
    json_object_set_new(ch, "index", json_integer(d->choice));
    bool final = d->finish != PONDER_FINISH_NONE;
    json_t *lp = json_null();
    if (d->lp && r->logprobs)
        lp = r->kind == SRV_EP_CHAT ? chat_logprobs_json(tok, &d->lp, 1)
                                    : legacy_logprobs_json(tok, &d->lp, 1, r->top_logprobs, d->text_offset);
    if (r->kind == SRV_EP_CHAT) {
        json_t *delta = json_object();
        if (d->role) {
            json_object_set_new(delta, "role", json_string("assistant"));
            json_object_set_new(delta, "content", json_string(""));
            json_object_set_new(delta, "refusal", json_null());
        } else if (d->tool_delta) {
            /* OpenAI's shape: the first delta of a call has index, id, type and the name with
             * arguments "", the next ones index and an arguments fragment */
            json_t *fn = json_object();
            if (d->tool_name)
                json_object_set_new(fn, "name", json_string(d->tool_name));
            json_object_set_new(fn, "arguments", json_stringn(d->tool_args ? d->tool_args : "", d->tool_args_len));
            json_t *tc = json_pack("{s:i}", "index", (json_int_t)d->tool_index);
            if (d->tool_id) {
                json_object_set_new(tc, "id", json_string(d->tool_id));
                json_object_set_new(tc, "type", json_string("function"));
            }
            json_object_set_new(tc, "function", fn);
            json_object_set_new(delta, "tool_calls", json_pack("[o]", tc));
        } else if (d->text_len || !final) {
            json_object_set_new(delta, "content", http_json_string_lossy(d->text ? d->text : "", d->text_len));
        }
        json_object_set_new(ch, "delta", delta);
    } else {
        json_object_set_new(ch, "text", http_json_string_lossy(d->text ? d->text : "", d->text_len));
    }
    json_object_set_new(ch, "logprobs", lp);
    json_object_set_new(ch, "finish_reason", !final                ? json_null()
                                             : d->finish_tool_calls ? json_string("tool_calls")
                                                                    : json_string(srv_finish_reason(d->finish)));
    json_t *arr = json_array();
    json_array_append_new(arr, ch);
    json_object_set_new(o, "choices", arr);
    if (r->include_usage)
        json_object_set_new(o, "usage", json_null());
    if (st)
        json_object_set_new(o, "ponder", ponder_json(st));
    return dump(o, true);
}

char *srv_build_usage_chunk(const srv_request *r, const srv_meta *m, const srv_stats *st)
{
    json_t *o = meta_object(r, m, true);
    json_object_set_new(o, "choices", json_array());
    json_object_set_new(o, "usage", usage_json(st));
    json_object_set_new(o, "ponder", ponder_json(st));
    return dump(o, true);
}
