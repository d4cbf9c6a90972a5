/*
 * errors.c — the one table from an error kind to its HTTP status and OpenAI error type,
 * the {"error": {...}} object, and the small helpers (a growable string, lossy JSON
 * strings, SSE framing, the clock) the HTTP layer and its users share.
 *
 * Types and codes follow what api.openai.com answers: 400/401/404/405/413 are all
 * "invalid_request_error" (401 with code "invalid_api_key", unknown models with
 * "model_not_found"), 429 is type "requests" with code "rate_limit_exceeded", 5xx are
 * "server_error".
 */
#include "http/http.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const struct {
    int http;
    const char *type;
} err_table[HTTP_ERR_COUNT] = {
    [HTTP_ERR_BAD_REQUEST] = { 400, "invalid_request_error" },
    [HTTP_ERR_UNAUTHORIZED] = { 401, "invalid_request_error" },
    [HTTP_ERR_NOT_FOUND] = { 404, "invalid_request_error" },
    [HTTP_ERR_METHOD] = { 405, "invalid_request_error" },
    [HTTP_ERR_TOO_LARGE] = { 413, "invalid_request_error" },
    [HTTP_ERR_RATE_LIMIT] = { 429, "requests" },
    [HTTP_ERR_INTERNAL] = { 500, "server_error" },
    [HTTP_ERR_UNAVAILABLE] = { 503, "server_error" },
};

int http_err_http_status(http_err kind)
{
    return (unsigned)kind < HTTP_ERR_COUNT ? err_table[kind].http : 500;
}

const char *http_err_type(http_err kind)
{
    return (unsigned)kind < HTTP_ERR_COUNT ? err_table[kind].type : "server_error";
}

bool http_fail(http_api_error *e, http_err kind, const char *param, const char *code, const char *fmt, ...)
{
    if (!e)
        return false;
    e->kind = kind;
    snprintf(e->param, sizeof e->param, "%s", param ? param : "");
    snprintf(e->code, sizeof e->code, "%s", code ? code : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof e->message, fmt, ap);
    va_end(ap);
    return false;
}

char *http_error_json(const http_api_error *e)
{
    json_t *inner = json_object();
    json_t *root = json_object();
    if (!inner || !root) {
        json_decref(inner);
        json_decref(root);
        return NULL;
    }
    json_object_set_new(inner, "message", http_json_string_lossy(e->message, strlen(e->message)));
    json_object_set_new(inner, "type", json_string(http_err_type(e->kind)));
    json_object_set_new(inner, "param", e->param[0] ? http_json_string_lossy(e->param, strlen(e->param)) : json_null());
    json_object_set_new(inner, "code", e->code[0] ? json_string(e->code) : json_null());
    json_object_set_new(root, "error", inner);
    char *s = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    return s;
}

bool http_buf_append(http_buf *b, const char *s, size_t n)
{
    if (b->oom)
        return false;
    if (n > SIZE_MAX / 2 - b->len - 1) { /* Catch size_t overflow */
        b->oom = true;
        return false;
    }
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *d = realloc(b->data, cap);
        if (!d) {
            b->oom = true;
            return false;
        }
        b->data = d;
        b->cap = cap;
    }
    if (n)
        memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
    return true;
}

bool http_buf_printf(http_buf *b, const char *fmt, ...)
{
    char small[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->oom = true;
        return false;
    }
    if ((size_t)n < sizeof small)
        return http_buf_append(b, small, (size_t)n);
    char *big = malloc((size_t)n + 1);
    if (!big) {
        b->oom = true;
        return false;
    }
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    bool ok = http_buf_append(b, big, (size_t)n);
    free(big);
    return ok;
}

json_t *http_json_string_lossy(const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;
    bool clean = true;
    while (i < n) {
        size_t l = u[i] ? ponder_utf8_len(u + i, n - i) : 0;
        if (!l) {
            clean = false;
            break;
        }
        i += l;
    }
    if (clean)
        return json_stringn(s, n);
    http_buf b = { 0 };
    for (i = 0; i < n;) {
        size_t l = u[i] ? ponder_utf8_len(u + i, n - i) : 0;
        if (l) {
            http_buf_append(&b, s + i, l);
            i += l;
        } else { /* NUL as well: many clients cut strings there */
            http_buf_append(&b, "\xEF\xBF\xBD", 3); /* U+FFFD REPLACEMENT CHARACTER */
            i++;
        }
    }
    json_t *j = b.oom ? NULL : json_stringn(b.data ? b.data : "", b.len);
    free(b.data);
    return j;
}

const char *http_json_kind(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL: return "a number";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    case JSON_NULL: return "null";
    }
    return "a value";
}

void http_json_count(const char *body, size_t len, size_t *values, size_t *objects)
{
    size_t nv = 1, no = 0;
    bool in_str = false;
    for (size_t i = 0; i < len; i++) {
        char c = body[i];
        if (in_str) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_str = false;
            continue;
        }
        if (c == '"')
            in_str = true;
        else if (c == ',' || c == '[')
            nv++;
        else if (c == '{') {
            nv++;
            no++;
        }
    }
    *values = nv;
    *objects = no;
}

json_t *http_json_body(const char *body, size_t len, http_api_error *e)
{
    size_t values, objects;
    http_json_count(body, len, &values, &objects);
    if (values > HTTP_JSON_MAX_VALUES || objects > HTTP_JSON_MAX_OBJECTS) {
        http_fail(e, HTTP_ERR_BAD_REQUEST, NULL, "request_too_complex",
                  "The request body holds too many JSON values (%zu values, %zu objects; the limits are %d and %d).",
                  values, objects, HTTP_JSON_MAX_VALUES, HTTP_JSON_MAX_OBJECTS);
        return NULL;
    }
    json_error_t jerr;
    json_t *root = json_loadb(body, len, 0, &jerr);
    if (!root) {
        http_fail(e, HTTP_ERR_BAD_REQUEST, NULL, "invalid_json",
                  "We could not parse the JSON body of your request: %s (line %d, column %d).", jerr.text, jerr.line,
                  jerr.column);
        return NULL;
    }
    json_t *model = json_object_get(root, "model");
    if (!json_is_object(root))
        http_fail(e, HTTP_ERR_BAD_REQUEST, NULL, "invalid_json", "The request body must be a JSON object, not %s.",
                  http_json_kind(root));
    else if (model && !json_is_null(model) && !json_is_string(model))
        http_fail(e, HTTP_ERR_BAD_REQUEST, "model", "invalid_type",
                  "Invalid type for 'model': expected a string, but got %s instead.", http_json_kind(model));
    else
        return root;
    json_decref(root);
    return NULL;
}

bool http_sse_data(http_buf *b, const char *json)
{
    return http_buf_append(b, "data: ", 6) && http_buf_append(b, json, strlen(json)) && http_buf_append(b, "\n\n", 2);
}

double http_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

void http_openai_id(uint64_t *state, const char *prefix, char *out, size_t cap)
{
    uint64_t z = __atomic_add_fetch(state, 0x9E3779B97F4A7C15ull, __ATOMIC_RELAXED);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    uint64_t z2 = z * 0xD6E8FEB86659FD93ull;
    static const char alnum[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    char tail[25];
    for (int i = 0; i < 24; i++)
        tail[i] = alnum[((i < 12 ? z : z2) >> ((i % 12) * 5)) % 62];
    tail[24] = '\0';
    snprintf(out, cap, "%s-%s", prefix, tail);
}

void http_logf(ponder_log_fn log, void *user, ponder_log_level level, const char *fmt, ...)
{
    if (!log)
        return;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    log(level, msg, user);
}
