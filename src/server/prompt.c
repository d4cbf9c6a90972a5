/*
 * prompt.c — from a request body to a job the engine can run: parse and validate it, match
 * the model name (the served id, or a strategy prefix before it), check and set up a think
 * strategy, render and tokenize each prompt against the context. Everything a request can
 * be refused for before it reaches the engine is decided here.
 */
#include "server/server_state.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- admission: cheap limits before the expensive work ---- */

bool srv_admit_body(const struct ponder_server *s, const char *body, size_t len, http_api_error *e)
{
    /* a count, not a parse (http_json_body counts again against the generic limits; the
     * objects allowed here follow --max-messages) */
    size_t values, objects;
    http_json_count(body, len, &values, &objects);
    const size_t max_objects = (size_t)s->p.max_messages * SRV_JSON_OBJECTS_PER_MESSAGE + 1024;
    if (values > SRV_MAX_JSON_VALUES || objects > max_objects)
        return http_fail(e, HTTP_ERR_BAD_REQUEST, NULL, "request_too_complex",
                         "The request body holds too many JSON values (%zu values, %zu objects; the limits are %d "
                         "and %zu).",
                         values, objects, SRV_MAX_JSON_VALUES, max_objects);
    return true;
}

/* After parsing, before rendering and tokenizing: the message count, and text far too long
 * for the context whatever its tokens (each token covers at most max_piece bytes). Text
 * merely too long is tokenized, so its 400 gives the exact count: tokenizing up to four
 * contexts' worth of text costs milliseconds. */
static bool check_sizes(const struct ponder_server *s, const srv_request *r, http_api_error *e)
{
    const int64_t cap = 4 * (int64_t)s->n_ctx * s->max_piece + 64;
    const bool chat = r->kind == SRV_EP_CHAT;
    int64_t bytes = 0;
    if (chat) {
        size_t nm = json_array_size(r->messages);
        if (nm > (size_t)s->p.max_messages)
            return http_fail(e, HTTP_ERR_BAD_REQUEST, "messages", "array_above_max_length",
                             "Invalid 'messages': array too long. Expected an array with maximum length %d, but got "
                             "an array with length %zu instead.",
                             (int)s->p.max_messages, nm);
        for (size_t i = 0; i < nm; i++)
            bytes += (int64_t)json_string_length(json_object_get(json_array_get(r->messages, i), "content"));
        if (r->assistant_prefix)
            bytes += (int64_t)strlen(r->assistant_prefix);
        if (bytes <= cap)
            return true;
    } else {
        for (int32_t i = 0; i < r->n_prompts; i++) {
            bytes = r->prompts[i].text ? (int64_t)r->prompts[i].len : 0;
            if (bytes > cap)
                break;
        }
        if (bytes <= cap)
            return true;
    }
    const char *what = chat ? "messages" : "prompt";
    return http_fail(e, HTTP_ERR_BAD_REQUEST, what, "context_length_exceeded",
                     "This model's maximum context length is %d tokens. However, your %s %s %lld bytes of text, "
                     "more than %d tokens can cover (at most %d bytes each). Please reduce the length of the %s.",
                     (int)s->n_ctx, what, chat ? "hold" : "holds", (long long)bytes, (int)s->n_ctx, (int)s->max_piece,
                     what);
}

/* ---- the prompt ---- */

/* A forced tool call's opening control token ([TOOL_CALLS]), which no grammar over token
 * texts can produce, goes at the end of the prompt: the model goes on from there. */
static bool append_prefill(struct ponder_server *s, const srv_request *r, srv_sub *out, http_api_error *e)
{
    const char *pre = srv_tools_prefill(s, r);
    if (!pre)
        return true;
    ponder_token *ids = NULL;
    size_t n = 0;
    ponder_error err;
    if (ponder_tokenizer_encode(s->tok, pre, strlen(pre), false, true, &ids, &n, &err) != PONDER_OK)
        return http_fail(e, HTTP_ERR_INTERNAL, NULL, NULL, "the tool-call prefix cannot be tokenized: %s", err.msg);
    ponder_token *t = realloc(out->prompt, ((size_t)out->n_prompt + n) * sizeof *t);
    if (!t) {
        free(ids);
        return http_fail(e, HTTP_ERR_INTERNAL, NULL, NULL, "out of memory");
    }
    memcpy(t + out->n_prompt, ids, n * sizeof *ids);
    free(ids);
    out->prompt = t;
    out->n_prompt += (int32_t)n;
    return true;
}

/* The tokens of prompt ip (completions) or of the rendered conversation (chat). */
static bool build_one(struct ponder_server *s, const srv_request *r, int32_t ip, srv_sub *out, http_api_error *e)
{
    char *text = NULL;
    const char *src;
    size_t len;
    bool add_special, parse_special;
    ponder_error err;
    ponder_text_span *plain = NULL; /* --chatml: the contents, whose special texts are text */
    size_t n_plain = 0;
    const srv_prompt *pr = r->kind == SRV_EP_COMPLETION ? &r->prompts[ip] : NULL;
    if (pr && pr->ids) {
        int32_t n_vocab = ponder_tokenizer_n_vocab(s->tok);
        for (int32_t i = 0; i < pr->n_ids; i++)
            if (pr->ids[i] >= n_vocab)
                return http_fail(e, HTTP_ERR_BAD_REQUEST, "prompt", "invalid_value",
                                 "Invalid 'prompt': token id %d at %d is outside the vocabulary (%d tokens).",
                                 (int)pr->ids[i], (int)i, (int)n_vocab);
        out->prompt = malloc((size_t)pr->n_ids * sizeof *out->prompt);
        if (!out->prompt)
            return http_fail(e, HTTP_ERR_INTERNAL, NULL, NULL, "out of memory");
        memcpy(out->prompt, pr->ids, (size_t)pr->n_ids * sizeof *out->prompt);
        out->n_prompt = pr->n_ids;
        return true;
    }
    if (pr) {
        /* as `ponder run`: the vocabulary's BOS rule, special-token texts not parsed */
        src = pr->text;
        len = pr->len;
        add_special = true;
        parse_special = false;
#ifdef PONDER_SERVER_HAVE_CHAT
    } else if (s->tmpl) {
        char *vars = srv_chat_vars_json(r, r->tools_in_template ? r->tools : NULL, s->bos_text, s->eos_text);
        if (!vars)
            return http_fail(e, HTTP_ERR_INTERNAL, NULL, NULL, "out of memory");
        /* the template writes bos_token itself (HF's apply_chat_template adds no specials);
         * contents (and continue_final_message's answer so far) are text, not specials */
        ponder_token *ids = NULL;
        size_t n = 0;
        ponder_status st = ponder_chat_tokenize(s->tmpl, s->tok, vars, strlen(vars), r->assistant_prefix, false,
                                                s->p.parse_special_in_content, &ids, &n, &err);
        free(vars);
        if (st == PONDER_ERR_INVALID_ARG)
            return http_fail(e, HTTP_ERR_BAD_REQUEST, "messages", "invalid_value", "%s", err.msg);
        if (st != PONDER_OK)
            return http_fail(e, HTTP_ERR_INTERNAL, NULL, NULL, "the chat template failed: %s", err.msg);
        if (n > INT32_MAX) {
            free(ids);
            return http_fail(e, HTTP_ERR_BAD_REQUEST, NULL, "context_length_exceeded", "The prompt is too long.");
        }
        out->prompt = ids;
        out->n_prompt = (int32_t)n;
        return append_prefill(s, r, out, e);
#endif
    } else if (s->p.chatml) {
        text = srv_render_chatml(r->messages);
        if (!text)
            return http_fail(e, HTTP_ERR_INTERNAL, NULL, NULL, "out of memory");
        src = text;
        len = strlen(text);
        add_special = true; /* ChatML has no bos_token of its own */
        parse_special = true;
        /* the spans srv_render_chatml wrote the contents at, and room for the answer so far */
        size_t nm = json_array_size(r->messages), off = 0;
        plain = malloc((nm + 1) * sizeof *plain);
        if (!plain) {
            free(text);
            return http_fail(e, HTTP_ERR_INTERNAL, NULL, NULL, "out of memory");
        }
        for (size_t i = 0; i < nm; i++) {
            const json_t *m = json_array_get(r->messages, i);
            off += 12 + json_string_length(json_object_get(m, "role")) + 1; /* <|im_start|>ROLE\n */
            size_t cl = json_string_length(json_object_get(m, "content"));
            plain[n_plain++] = (ponder_text_span){ off, cl };
            off += cl + 11; /* <|im_end|>\n */
        }
    } else {
        /* no template in the file: the request cannot be served as asked, and the message
         * names the fixes (a 400, the client's to act on); a template we cannot run is ours */
        const bool absent = ponder_gguf_find_kv(ponder_model_gguf(s->model), "tokenizer.chat_template") < 0;
        return http_fail(e, absent ? HTTP_ERR_BAD_REQUEST : HTTP_ERR_INTERNAL, absent ? "messages" : NULL,
                         "no_chat_template", "%s", s->tmpl_error);
    }
    if (!pr && r->assistant_prefix) {
        /* continue_final_message: the generation prompt, then the answer so far verbatim,
         * so the model sees what it saw when it wrote that text */
        size_t pl = strlen(r->assistant_prefix);
        char *t = malloc(len + pl + 1);
        if (!t) {
            free(text);
            free(plain);
            return http_fail(e, HTTP_ERR_INTERNAL, NULL, NULL, "out of memory");
        }
        memcpy(t, src, len);
        memcpy(t + len, r->assistant_prefix, pl + 1);
        if (plain)
            plain[n_plain++] = (ponder_text_span){ len, pl };
        free(text);
        text = t;
        src = t;
        len += pl;
    }
    ponder_token *ids = NULL;
    size_t n = 0;
    ponder_status st = ponder_tokenizer_encode_spans(s->tok, src, len, add_special, parse_special, plain,
                                                     s->p.parse_special_in_content ? 0 : n_plain, &ids, &n, &err);
    free(plain);
    free(text);
    if (st != PONDER_OK)
        return http_fail(e, HTTP_ERR_BAD_REQUEST, r->kind == SRV_EP_CHAT ? "messages" : "prompt", "invalid_value",
                         "The prompt cannot be tokenized: %s", err.msg);
    if (n > INT32_MAX) {
        free(ids);
        return http_fail(e, HTTP_ERR_BAD_REQUEST, NULL, "context_length_exceeded", "The prompt is too long.");
    }
    out->prompt = ids;
    out->n_prompt = (int32_t)n;
    return pr || append_prefill(s, r, out, e);
}

/* One sub per prompt; checks each against the context: the prompt must leave room for a
 * token, and prompt + max_tokens must fit (an answer is never cut short silently). */
static bool build_prompts(struct ponder_server *s, srv_job *j, http_api_error *e)
{
    const srv_request *r = &j->req;
    const bool chat = r->kind == SRV_EP_CHAT;
    int32_t n = chat ? 1 : r->n_prompts;
    j->subs = calloc((size_t)n, sizeof *j->subs);
    if (!j->subs)
        return http_fail(e, HTTP_ERR_INTERNAL, NULL, NULL, "out of memory");
    j->n_subs = n;
    const char *what = chat ? "messages" : "prompt";
    for (int32_t i = 0; i < n; i++) {
        srv_sub *sub = &j->subs[i];
        sub->job = j;
        sub->choice_base = i * r->n;
        if (!build_one(s, r, i, sub, e))
            return false;
        if (sub->n_prompt == 0)
            return http_fail(e, HTTP_ERR_BAD_REQUEST, "prompt", "invalid_value", "The prompt is empty (0 tokens).");
        if (sub->n_prompt >= s->n_ctx)
            return http_fail(e, HTTP_ERR_BAD_REQUEST, what, "context_length_exceeded",
                             "This model's maximum context length is %d tokens. However, your %s resulted in %d "
                             "tokens. Please reduce the length of the %s.",
                             (int)s->n_ctx, what, (int)sub->n_prompt, what);
        if (r->max_tokens > 0 && (int64_t)sub->n_prompt + r->max_tokens > s->n_ctx)
            return http_fail(e, HTTP_ERR_BAD_REQUEST, "max_tokens", "context_length_exceeded",
                             "This model's maximum context length is %d tokens. However, you requested %lld tokens "
                             "(%d in the %s, %d in the completion). Please reduce the length of the %s or "
                             "completion.",
                             (int)s->n_ctx, (long long)sub->n_prompt + r->max_tokens, (int)sub->n_prompt, what,
                             (int)r->max_tokens, what);
    }
    return true;
}

/* ---- strategies ---- */

static bool runs_strategy(const srv_request *r)
{
    return r->plan.given && r->plan.strategy.kind != PONDER_THINK_DIRECT;
}

/* What a strategy request may not combine with, and the think parameters it runs with:
 * the request's sampling, max_tokens and stop for every chain. */
static bool check_strategy(struct ponder_server *s, srv_job *j, http_api_error *e)
{
    srv_request *r = &j->req;
    if (!runs_strategy(r))
        return true;
    if (r->n != 1)
        return http_fail(e, HTTP_ERR_BAD_REQUEST, "n", "invalid_value",
                         "Invalid 'n': a ponder strategy answers with one choice (the winner); use ponder.samples "
                         "for the chains.");
    if (r->logprobs)
        return http_fail(e, HTTP_ERR_BAD_REQUEST, "logprobs", "invalid_value",
                         "Invalid 'logprobs': not available with a ponder strategy (the answer is picked from "
                         "several chains).");
    if (r->kind == SRV_EP_COMPLETION && r->n_prompts > 1)
        return http_fail(e, HTTP_ERR_BAD_REQUEST, "prompt", "invalid_value",
                         "Invalid 'prompt': a ponder strategy runs on one prompt; %d given.", (int)r->n_prompts);
    ponder_think_params *p = &j->think_p;
    *p = ponder_think_params_default();
    p->sampling = r->sampling;
    ponder_think_params_from_plan(p, &r->plan, r->temp_given); /* strategy, cue, answer kind */
    p->max_tokens = r->max_tokens > 0 ? r->max_tokens : 0;
    p->stop = (const char *const *)r->stop;
    p->n_stop = r->n_stop;
    p->grammar = r->grammar;
    p->prefix = NULL;
    if (p->asc_round > s->p.n_parallel)
        p->asc_round = s->p.n_parallel;
    /* more chains than --parallel: sc and bon run in rounds of at most that many, as asc
     * does (was a 400: sc8- with the default --parallel 4 was refused) */
    p->max_parallel = s->p.n_parallel;
    /* the chain-of-thought cue goes after the question, as `ponder run --strategy` puts
     * it: at the end of a completions prompt, at the end of a chat's last user message */
    const char *cue = p->cot_cue;
    if (!cue)
        return true;
    if (r->kind == SRV_EP_CHAT) {
        json_t *last = NULL;
        size_t i;
        json_t *m;
        json_array_foreach(r->messages, i, m) {
            json_t *role = json_object_get(m, "role");
            if (json_is_string(role) && strcmp(json_string_value(role), "user") == 0)
                last = m;
        }
        if (last) {
            json_t *content = json_object_get(last, "content");
            http_buf b = { 0 };
            http_buf_append(&b, json_string_value(content), json_string_length(content));
            http_buf_append(&b, cue, strlen(cue));
            json_t *text = b.oom ? NULL : json_stringn(b.data, b.len);
            free(b.data);
            if (!text || json_object_set_new(last, "content", text) != 0)
                return http_fail(e, HTTP_ERR_INTERNAL, NULL, NULL, "out of memory");
        }
    } else if (r->prompts[0].text) {
        srv_prompt *pr = &r->prompts[0];
        size_t n = strlen(cue);
        char *t = realloc(pr->text, pr->len + n + 1);
        if (!t)
            return http_fail(e, HTTP_ERR_INTERNAL, NULL, NULL, "out of memory");
        memcpy(t + pr->len, cue, n + 1);
        pr->text = t;
        pr->len += n;
    }
    return true;
}

/* Makes the think job over the built prompt (token-id prompts get the cue's tokens). */
static bool start_strategy(struct ponder_server *s, srv_job *j, http_api_error *e)
{
    srv_request *r = &j->req;
    if (!runs_strategy(r))
        return true;
    srv_sub *sub = &j->subs[0];
    if (r->kind == SRV_EP_COMPLETION && r->prompts[0].ids && j->think_p.cot_cue) {
        const char *cue = j->think_p.cot_cue;
        ponder_token *ids = NULL;
        size_t n = 0;
        ponder_error err;
        if (ponder_tokenizer_encode(s->tok, cue, strlen(cue), false, false, &ids, &n, &err) != PONDER_OK)
            return http_fail(e, HTTP_ERR_INTERNAL, NULL, NULL, "the cue cannot be tokenized: %s", err.msg);
        ponder_token *t = realloc(sub->prompt, ((size_t)sub->n_prompt + n) * sizeof *t);
        if (!t) {
            free(ids);
            return http_fail(e, HTTP_ERR_INTERNAL, NULL, NULL, "out of memory");
        }
        memcpy(t + sub->n_prompt, ids, n * sizeof *ids);
        free(ids);
        sub->prompt = t;
        sub->n_prompt += (int32_t)n;
        if (sub->n_prompt >= s->n_ctx || (r->max_tokens > 0 && (int64_t)sub->n_prompt + r->max_tokens > s->n_ctx))
            return http_fail(e, HTTP_ERR_BAD_REQUEST, "prompt", "context_length_exceeded",
                             "This model's maximum context length is %d tokens. However, the prompt with the "
                             "strategy's cue is %d tokens and %d more were asked for the completion.",
                             (int)s->n_ctx, (int)sub->n_prompt, r->max_tokens > 0 ? (int)r->max_tokens : 0);
    }
    ponder_error err;
    if (ponder_think_job_create(&j->think_p, sub->prompt, sub->n_prompt, &j->think, &err) != PONDER_OK)
        return http_fail(e, err.code == PONDER_ERR_NOMEM ? HTTP_ERR_INTERNAL : HTTP_ERR_BAD_REQUEST, "ponder", NULL,
                         "%s", err.msg);
    return true;
}

bool srv_job_prepare(struct ponder_server *s, srv_job *j, srv_endpoint kind, const char *body, size_t len,
                     http_api_error *e)
{
    if (!srv_request_parse(kind, body, len, &j->req, e))
        return false;
    srv_request *r = &j->req;
    if (!check_sizes(s, r, e))
        return false;
    /* the one strategy rule (src/think): "ponder": {...} over optillm's model-name prefix
     * ("sc8-<model>"), the model's own cue and temperature when the request says nothing */
    bool other = r->model && strcmp(r->model, s->model_id) != 0;
    const ponder_strategy_ask ask = {.strategy = r->strategy_text, .model = other ? r->model : NULL,
                                     .samples = r->samples, .cue = r->cue, .answer = r->answer_text};
    ponder_error err;
    const ponder_think_model_prefs prefs = ponder_think_model_defaults(s->model);
    if (ponder_strategy_plan_make(&ask, &prefs, &r->plan, &err) != PONDER_OK) {
        char param[HTTP_ERR_TAG_BYTES];
        snprintf(param, sizeof param, "ponder.%s", r->plan.field ? r->plan.field : "strategy");
        return http_fail(e, HTTP_ERR_BAD_REQUEST, param, "invalid_value", "Invalid '%s': %s.", param, err.msg);
    }
    if (other && (!r->plan.prefixed || strcmp(r->plan.model, s->model_id) != 0))
        return http_fail(e, HTTP_ERR_NOT_FOUND, "model", "model_not_found",
                         "The model '%s' does not exist or you do not have access to it. This server serves "
                         "'%s' (a strategy prefix such as 'sc8-%s' may come before it).",
                         r->model, s->model_id, s->model_id);
    if (!check_strategy(s, j, e))
        return false;
    if (runs_strategy(r) && r->tools_active)
        return http_fail(e, HTTP_ERR_BAD_REQUEST, "tools", "invalid_value",
                         "Invalid 'tools': a ponder strategy votes over plain answers; send tool_choice 'none' or no "
                         "strategy.");
    if (r->kind == SRV_EP_CHAT && !srv_tools_prepare(s, r, e))
        return false;
    if (j->req.n > s->p.n_parallel)
        return http_fail(e, HTTP_ERR_BAD_REQUEST, "n", "invalid_value",
                         "Invalid 'n': %d choices asked; this server decodes at most %d sequences at once "
                         "(--parallel).",
                         (int)j->req.n, (int)s->p.n_parallel);
    return build_prompts(s, j, e) && start_strategy(s, j, e);
}
