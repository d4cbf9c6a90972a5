/*
 * embeddings.c — POST /v1/embeddings: OpenAI's request (input as a string, strings, token
 * ids or token-id lists; encoding_format float or base64; dimensions only when it is the
 * model's) and response shape, the vectors from ponder_embed (the model's pooling,
 * L2-normalised, as llama-embedding makes them).
 *
 * The engine thread runs them: it owns the thread pool, so an embedding request takes its
 * turn between decode steps with all the threads instead of competing with generation for
 * the cores. The caller's thread parses and tokenizes, queues the job (s->embed_head) and waits;
 * the engine decodes the inputs in a context of their own, sized for the request.
 */
#include "server/server_state.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ponder/embed.h"
#include "ponder/json.h"

#define SRV_EMBED_MAX_INPUTS 2048  /* OpenAI's limit per request */
/* KV cells an embedding context may take: one sequence's context (-c), at least this many,
 * so a request of many inputs runs in batches rather than doubling the server's memory */
#define SRV_EMBED_MIN_CELLS 512

typedef struct srv_embed_job {
    ponder_embed_input *in;        /* token ids owned */
    int32_t n;
    bool base64;
    int64_t tokens;
    float *out;                    /* n × n_embd, filled by the engine */
    bool done;
    ponder_status st;
    char msg[PONDER_ERROR_MSG_BYTES];
    struct srv_embed_job *next;
} srv_embed_job;

static void job_free(srv_embed_job *j)
{
    for (int32_t i = 0; j->in && i < j->n; i++)
        free((void *)j->in[i].tokens);
    free(j->in);
    free(j->out);
}

#define INPUT_TYPES "a string, an array of strings, an array of token ids or an array of token-id arrays"

/* One input from a string (tokenized as a prompt: BOS as the model asks, special texts
 * parsed, as llama-embedding) or an array of token ids (as given). */
static bool one_input(struct ponder_server *s, json_t *v, int32_t i, bool list, ponder_embed_input *out,
                      http_api_error *e)
{
    char where[48] = "";
    if (list)
        snprintf(where, sizeof where, " (input %d)", (int)i);
    const int32_t n_vocab = ponder_tokenizer_n_vocab(s->tok);
    if (json_is_string(v)) {
        if (json_string_length(v) == 0)
            return http_fail(e, HTTP_ERR_BAD_REQUEST, "input", "invalid_value",
                             "Invalid 'input'%s: the text is empty; an embedding needs at least one character.", where);
        ponder_token *ids = NULL;
        size_t n_ids = 0;
        ponder_error err = { 0 };
        if (ponder_tokenizer_encode(s->tok, json_string_value(v), json_string_length(v), true, true, &ids, &n_ids,
                                    &err) != PONDER_OK)
            return http_fail(e, HTTP_ERR_BAD_REQUEST, "input", "invalid_value", "Invalid 'input'%s: %s", where,
                             err.msg);
        *out = (ponder_embed_input){ ids, (int32_t)n_ids };
    } else {
        const size_t n = json_array_size(v);
        if (n == 0)
            return http_fail(e, HTTP_ERR_BAD_REQUEST, "input", "empty_array", "Invalid 'input'%s: empty array.", where);
        if (n > (size_t)INT32_MAX)
            return http_fail(e, HTTP_ERR_BAD_REQUEST, "input", "invalid_value", "Invalid 'input'%s: too many tokens.",
                             where);
        int32_t *ids = malloc(n * sizeof *ids);
        if (!ids)
            return http_fail(e, HTTP_ERR_INTERNAL, NULL, NULL, "out of memory");
        *out = (ponder_embed_input){ ids, (int32_t)n };
        for (size_t k = 0; k < n; k++) {
            json_t *t = json_array_get(v, k);
            if (!json_is_integer(t) || json_integer_value(t) < 0 || json_integer_value(t) >= n_vocab)
                return http_fail(e, HTTP_ERR_BAD_REQUEST, "input", "invalid_value",
                                 "Invalid 'input'%s: element %zu is not a token id of this model (an integer from 0 "
                                 "to %d).", where, k, (int)n_vocab - 1);
            ids[k] = (int32_t)json_integer_value(t);
        }
    }
    if (out->n_tokens == 0)
        return http_fail(e, HTTP_ERR_BAD_REQUEST, "input", "invalid_value", "Invalid 'input'%s: no tokens.", where);
    if (out->n_tokens > s->n_ctx)
        return http_fail(e, HTTP_ERR_BAD_REQUEST, "input", "context_length_exceeded",
                         "This model's maximum context length is %d tokens. However, your input%s has %d tokens. "
                         "Please shorten it.", (int)s->n_ctx, where, (int)out->n_tokens);
    return true;
}

/* OpenAI's four forms of "input". */
static bool parse_input(struct ponder_server *s, json_t *root, srv_embed_job *j, http_api_error *e)
{
    json_t *v = json_object_get(root, "input");
    if (!v || json_is_null(v))
        return http_fail(e, HTTP_ERR_BAD_REQUEST, "input", "missing_required_parameter",
                         "Missing required parameter: 'input'.");
    if (!json_is_string(v) && !json_is_array(v))
        return http_fail(e, HTTP_ERR_BAD_REQUEST, "input", "invalid_type",
                         "Invalid type for 'input': expected " INPUT_TYPES ", but got %s instead.", http_json_kind(v));
    if (json_is_array(v) && json_array_size(v) == 0)
        return http_fail(e, HTTP_ERR_BAD_REQUEST, "input", "empty_array", "Invalid 'input': empty array.");
    json_t *first = json_is_array(v) ? json_array_get(v, 0) : v;
    const bool list = json_is_array(v) && (json_is_string(first) || json_is_array(first));
    const size_t n = list ? json_array_size(v) : 1;
    if (n > SRV_EMBED_MAX_INPUTS)
        return http_fail(e, HTTP_ERR_BAD_REQUEST, "input", "invalid_value",
                         "Invalid 'input': %zu inputs given; at most %d are allowed in one request.", n,
                         SRV_EMBED_MAX_INPUTS);
    j->in = calloc(n, sizeof *j->in);
    if (!j->in)
        return http_fail(e, HTTP_ERR_INTERNAL, NULL, NULL, "out of memory");
    j->n = (int32_t)n;
    for (size_t i = 0; i < n; i++) {
        json_t *x = list ? json_array_get(v, i) : v;
        if (list && json_typeof(x) != json_typeof(first))
            return http_fail(e, HTTP_ERR_BAD_REQUEST, "input", "invalid_type",
                             "Invalid type for 'input' element %zu: expected %s like the first, but got %s instead.",
                             i, http_json_kind(first), http_json_kind(x));
        if (!one_input(s, x, (int32_t)i, list, &j->in[i], e))
            return false;
        j->tokens += j->in[i].n_tokens;
    }
    return true;
}

/* The body into j (its inputs tokenized); the model name checked against the served one. */
static bool parse_body(struct ponder_server *s, const char *body, size_t len, srv_embed_job *j, http_api_error *e)
{
    json_t *root = http_json_body(body, len, e);
    if (!root)
        return false;
    bool ok = false;
    json_t *model = json_object_get(root, "model");
    if (model && !json_is_null(model) && strcmp(json_string_value(model), s->model_id) != 0) {
        http_fail(e, HTTP_ERR_NOT_FOUND, "model", "model_not_found",
                  "The model '%s' does not exist or you do not have access to it. This server serves '%s'.",
                  json_string_value(model), s->model_id);
        goto done;
    }
    json_t *fmt = json_object_get(root, "encoding_format");
    if (fmt && !json_is_null(fmt)) {
        if (!json_is_string(fmt) ||
            (strcmp(json_string_value(fmt), "float") != 0 && strcmp(json_string_value(fmt), "base64") != 0)) {
            http_fail(e, HTTP_ERR_BAD_REQUEST, "encoding_format", "invalid_value",
                      "Invalid 'encoding_format': expected 'float' or 'base64'.");
            goto done;
        }
        j->base64 = strcmp(json_string_value(fmt), "base64") == 0;
    }
    const int32_t n_embd = ponder_model_hparams(s->model)->n_embd;
    json_t *dims = json_object_get(root, "dimensions");
    if (dims && !json_is_null(dims) && (!json_is_integer(dims) || json_integer_value(dims) != n_embd)) {
        http_fail(e, HTTP_ERR_BAD_REQUEST, "dimensions", "invalid_value",
                  "Invalid 'dimensions': this model's embeddings have %d dimensions and cannot be shortened; "
                  "leave 'dimensions' out or set it to %d.", (int)n_embd, (int)n_embd);
        goto done;
    }
    json_t *user = json_object_get(root, "user");
    if (user && !json_is_null(user) && !json_is_string(user)) {
        http_fail(e, HTTP_ERR_BAD_REQUEST, "user", "invalid_type",
                  "Invalid type for 'user': expected a string, but got %s instead.", http_json_kind(user));
        goto done;
    }
    ok = parse_input(s, root, j, e);
done:
    json_decref(root);
    return ok;
}

static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* The vector's little-endian float32 bytes in base64 (what the openai clients decode). */
static void put_base64(http_buf *b, const float *v, int32_t n)
{
    const size_t bytes = (size_t)n * 4;
    unsigned char *raw = malloc(bytes);
    char *text = malloc(bytes / 3 * 4 + 8);
    if (!raw || !text) {
        b->oom = true;
        free(raw);
        free(text);
        return;
    }
    for (int32_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &v[i], 4);
        for (int k = 0; k < 4; k++)
            raw[(size_t)i * 4 + (size_t)k] = (unsigned char)(u >> (8 * k));
    }
    size_t o = 0;
    for (size_t i = 0; i < bytes; i += 3) {
        const uint32_t w = (uint32_t)raw[i] << 16 | (i + 1 < bytes ? (uint32_t)raw[i + 1] << 8 : 0) |
                           (i + 2 < bytes ? raw[i + 2] : 0);
        text[o++] = B64[w >> 18 & 63];
        text[o++] = B64[w >> 12 & 63];
        text[o++] = i + 1 < bytes ? B64[w >> 6 & 63] : '=';
        text[o++] = i + 2 < bytes ? B64[w & 63] : '=';
    }
    http_buf_append(b, "\"", 1);
    http_buf_append(b, text, o);
    http_buf_append(b, "\"", 1);
    free(raw);
    free(text);
}

/* OpenAI's response, written directly (a vector of thousands of numbers is no tree). */
static char *build_response(const struct ponder_server *s, const srv_embed_job *j)
{
    const int32_t n_embd = ponder_model_hparams(s->model)->n_embd;
    http_buf b = { 0 };
    char num[PONDER_NUM_TEXT_BYTES];
    http_buf_printf(&b, "{\"object\":\"list\",\"data\":[");
    for (int32_t i = 0; i < j->n; i++) {
        http_buf_printf(&b, "%s{\"object\":\"embedding\",\"index\":%d,\"embedding\":", i ? "," : "", (int)i);
        const float *v = j->out + (size_t)i * n_embd;
        if (j->base64) {
            put_base64(&b, v, n_embd);
        } else {
            http_buf_append(&b, "[", 1);
            for (int32_t d = 0; d < n_embd; d++) {
                const int len = ponder_fmt_float(v[d], num);
                if (d)
                    http_buf_append(&b, ",", 1);
                http_buf_append(&b, num, (size_t)len);
            }
            http_buf_append(&b, "]", 1);
        }
        http_buf_append(&b, "}", 1);
    }
    json_t *id = json_string(s->model_id);
    char *id_text = id ? ponder_json_dumps(id) : NULL;
    json_decref(id);
    const bool id_ok = id_text != NULL;
    http_buf_printf(&b, "],\"model\":%s,\"usage\":{\"prompt_tokens\":%lld,\"total_tokens\":%lld}}",
                    id_ok ? id_text : "null", (long long)j->tokens, (long long)j->tokens);
    free(id_text);
    if (b.oom || !id_ok) {
        free(b.data);
        return NULL;
    }
    return b.data;
}

/* Engine side (s->mu held): runs every queued embedding job, unlocking while it decodes. */
void srv_engine_run_embeds(struct ponder_server *s)
{
    while (s->embed_head) {
        srv_embed_job *j = s->embed_head;
        s->embed_head = j->next;
        if (!s->embed_head)
            s->embed_tail = NULL;
        pthread_mutex_unlock(&s->mu);
        ponder_error err = { 0 };
        ponder_context_params cp =
            ponder_embed_context_params(j->in, j->n, s->n_ctx > SRV_EMBED_MIN_CELLS ? s->n_ctx : SRV_EMBED_MIN_CELLS);
        cp.pool = s->pool;
        ponder_context *ctx = NULL;
        ponder_status st = ponder_context_create(s->model, &cp, &ctx, &err);
        if (st == PONDER_OK)
            st = ponder_embed(ctx, j->in, j->n, ponder_model_pooling(s->model), true, j->out, &err);
        ponder_context_free(ctx);
        pthread_mutex_lock(&s->mu);
        j->st = st;
        snprintf(j->msg, sizeof j->msg, "%s", st == PONDER_OK ? "" : err.msg);
        j->done = true;
        pthread_cond_broadcast(&s->embed_cv);
    }
}

/* Engine side at shutdown (s->mu held): the jobs not started fail. */
void srv_engine_drop_embeds(struct ponder_server *s)
{
    for (srv_embed_job *j = s->embed_head; j; j = j->next) {
        j->st = PONDER_ERR_INTERNAL;
        snprintf(j->msg, sizeof j->msg, "the server is shutting down");
        j->done = true;
    }
    s->embed_head = s->embed_tail = NULL;
    pthread_cond_broadcast(&s->embed_cv);
}

/* A body to its response (malloc'ed), or NULL with e: parsed and tokenized here, decoded
 * on the engine thread (this one waits). */
static char *embeddings_answer(struct ponder_server *s, const char *body, size_t len, bool admitted,
                               http_api_error *e)
{
    srv_embed_job j = { 0 };
    char *json = NULL;
    /* a place among the slots and the queue for the whole request, as a generation's
     * (admitted: the caller took it) */
    if (!admitted && !srv_admission_take(s, e))
        return NULL;
    srv_prepare_enter(s);
    bool parsed = parse_body(s, body, len, &j, e);
    srv_prepare_leave(s);
    if (!parsed)
        goto done;
    j.out = malloc((size_t)j.n * (size_t)ponder_model_hparams(s->model)->n_embd * sizeof *j.out);
    if (!j.out) {
        http_fail(e, HTTP_ERR_INTERNAL, NULL, NULL, "out of memory");
        goto done;
    }
    pthread_mutex_lock(&s->mu);
    if (s->stopping) {
        pthread_mutex_unlock(&s->mu);
        http_fail(e, HTTP_ERR_UNAVAILABLE, NULL, NULL, "The server is shutting down.");
        goto done;
    }
    if (s->embed_tail)
        s->embed_tail->next = &j;
    else
        s->embed_head = &j;
    s->embed_tail = &j;
    pthread_cond_signal(&s->engine_cv);
    while (!j.done)
        pthread_cond_wait(&s->embed_cv, &s->mu);
    pthread_mutex_unlock(&s->mu);
    if (j.st != PONDER_OK) {
        const bool shutdown = strcmp(j.msg, "the server is shutting down") == 0;
        http_fail(e, shutdown ? HTTP_ERR_UNAVAILABLE : HTTP_ERR_INTERNAL, NULL, NULL, "%s", j.msg);
        goto done;
    }
    if (!(json = build_response(s, &j)))
        http_fail(e, HTTP_ERR_INTERNAL, NULL, NULL, "out of memory");
done:
    job_free(&j);
    srv_admission_give(s);
    return json;
}

static int embeddings_inproc(ponder_server *s, const char *body, size_t len, bool admitted, char **json)
{
    http_api_error e;
    *json = embeddings_answer(s, body, len, admitted, &e);
    if (*json)
        return 200;
    *json = http_error_json(&e);
    return http_err_http_status(e.kind);
}

int ponder_server_embeddings(ponder_server *s, const char *body, size_t len, char **json)
{
    return embeddings_inproc(s, body, len, false, json);
}

int ponder_server_embeddings_admitted(ponder_server *s, const char *body, size_t len, char **json)
{
    return embeddings_inproc(s, body, len, true, json);
}
