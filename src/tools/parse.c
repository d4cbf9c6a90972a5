/*
 * parse.c — a generated text → tool calls, per format (tools.h), and the streaming rule
 * that says how much of a text so far is surely content. What a model writes is never an
 * error here: anything that is not a well-formed call in its format is content, so a
 * half-written or garbled call reaches the client as text, not as a 500.
 */
#include "ponder/tools.h"

#include <ctype.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

static const char HERMES_OPEN[] = "<tool_call>", HERMES_CLOSE[] = "</tool_call>";
static const char PYTHON_TAG[] = "<|python_tag|>", MISTRAL_TAG[] = "[TOOL_CALLS]";

ponder_tool_format ponder_tool_format_detect(const char *src, size_t len)
{
    if (!src)
        return PONDER_TOOL_FORMAT_GENERIC;
    if (memmem(src, len, HERMES_OPEN, strlen(HERMES_OPEN)))
        return PONDER_TOOL_FORMAT_HERMES;
    if (memmem(src, len, MISTRAL_TAG, strlen(MISTRAL_TAG)))
        return PONDER_TOOL_FORMAT_MISTRAL;
    if (memmem(src, len, PYTHON_TAG, strlen(PYTHON_TAG)) ||
        memmem(src, len, "<|start_header_id|>ipython<|end_header_id|>", 43))
        return PONDER_TOOL_FORMAT_LLAMA3;
    return PONDER_TOOL_FORMAT_GENERIC;
}

const char *ponder_tool_format_name(ponder_tool_format f)
{
    switch (f) {
    case PONDER_TOOL_FORMAT_HERMES: return "hermes";
    case PONDER_TOOL_FORMAT_LLAMA3: return "llama3";
    case PONDER_TOOL_FORMAT_MISTRAL: return "mistral";
    case PONDER_TOOL_FORMAT_GENERIC: break;
    }
    return "generic";
}

const char *ponder_tool_format_prefill(ponder_tool_format f)
{
    return f == PONDER_TOOL_FORMAT_MISTRAL ? MISTRAL_TAG : NULL;
}

/* ---- helpers ---- */

typedef struct calls {
    ponder_tool_call *v;
    int32_t n, cap;
    bool oom;
} calls;

static void calls_free(calls *c)
{
    for (int32_t i = 0; i < c->n; i++) {
        free(c->v[i].name);
        free(c->v[i].arguments);
    }
    free(c->v);
    memset(c, 0, sizeof *c);
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static size_t skip_ws(const char *t, size_t i, size_t len)
{
    while (i < len && is_space(t[i]))
        i++;
    return i;
}

static bool starts(const char *t, size_t i, size_t len, const char *lit)
{
    size_t n = strlen(lit);
    return len - i >= n && memcmp(t + i, lit, n) == 0;
}

static size_t find(const char *t, size_t from, size_t len, const char *lit)
{
    const char *p = from <= len ? memmem(t + from, len - from, lit, strlen(lit)) : NULL;
    return p ? (size_t)(p - t) : SIZE_MAX;
}

/* One JSON value starting at t[i]; *end is just past it. NULL when malformed. */
static json_t *json_at(const char *t, size_t i, size_t len, size_t *end)
{
    json_error_t je;
    if (i >= len)
        return NULL;
    json_t *v = json_loadb(t + i, len - i, JSON_DISABLE_EOF_CHECK | JSON_DECODE_ANY, &je);
    if (v)
        *end = i + (size_t)je.position;
    return v;
}

/* A call object: {"name": N, "arguments"|"parameters": {...} or its JSON text}, or
 * OpenAI's own {"type": "function", "function": {...}}. need_args: a missing arguments key
 * is not a call (bare JSON could be anything); else it is {}. */
static bool add_call(calls *c, json_t *o, bool need_args)
{
    if (!json_is_object(o))
        return false;
    json_t *fn = json_object_get(o, "function");
    if (json_is_object(fn) && !json_object_get(o, "name"))
        o = fn;
    json_t *name = json_object_get(o, "name");
    if (!json_is_string(name) || json_string_length(name) == 0 ||
        strlen(json_string_value(name)) != json_string_length(name)) /* no NUL inside a name */
        return false;
    json_t *args = json_object_get(o, "arguments");
    if (!args)
        args = json_object_get(o, "parameters");
    json_t *parsed = NULL;
    if (json_is_string(args)) {
        json_error_t je;
        parsed = json_loadb(json_string_value(args), json_string_length(args), 0, &je);
        args = parsed;
    } else if (!args && !need_args) {
        args = parsed = json_object();
    }
    if (!json_is_object(args)) {
        json_decref(parsed);
        return false;
    }
    char *text = json_dumps(args, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(parsed);
    char *nm = strdup(json_string_value(name));
    if (c->n == c->cap) {
        int32_t cap = c->cap ? c->cap * 2 : 4;
        ponder_tool_call *v = realloc(c->v, (size_t)cap * sizeof *v);
        if (v) {
            c->v = v;
            c->cap = cap;
        }
    }
    if (!text || !nm || c->n == c->cap) {
        free(text);
        free(nm);
        c->oom = true;
        return false;
    }
    c->v[c->n++] = (ponder_tool_call){ nm, text };
    return true;
}

/* Every element of an array is a call. */
static bool add_array(calls *c, json_t *a, bool need_args)
{
    if (!json_is_array(a) || json_array_size(a) == 0)
        return false;
    for (size_t k = 0; k < json_array_size(a); k++)
        if (!add_call(c, json_array_get(a, k), need_args))
            return false;
    return true;
}

/* ---- Llama 3 built-in tools: <|python_tag|>name.call(key="value", n=1) ---- */

/* A Python literal at t[*i] (string, number, True/False/None) as JSON. */
static json_t *py_literal(const char *t, size_t *i, size_t len)
{
    size_t k = *i;
    if (k < len && (t[k] == '"' || t[k] == '\'')) {
        char q = t[k++];
        char *buf = malloc(len - k + 1);
        size_t n = 0;
        if (!buf)
            return NULL;
        while (k < len && t[k] != q) {
            if (t[k] == '\\' && k + 1 < len) {
                k++;
                buf[n++] = t[k] == 'n' ? '\n' : t[k] == 't' ? '\t' : t[k];
                k++;
            } else {
                buf[n++] = t[k++];
            }
        }
        json_t *s = k < len ? json_stringn(buf, n) : NULL;
        free(buf);
        *i = k + 1;
        return s;
    }
    static const char *const words[] = { "True", "False", "None" };
    for (int w = 0; w < 3; w++)
        if (starts(t, k, len, words[w])) {
            *i = k + strlen(words[w]);
            return w == 0 ? json_true() : w == 1 ? json_false() : json_null();
        }
    size_t s = k;
    while (k < len && (isdigit((unsigned char)t[k]) || strchr("+-.eE", t[k])))
        k++;
    if (k == s)
        return NULL;
    size_t end = 0;
    json_t *num = json_at(t, s, k, &end);
    if (!num || end != k || !json_is_number(num)) {
        json_decref(num);
        return NULL;
    }
    *i = k;
    return num;
}

static bool py_call(calls *c, const char *t, size_t i, size_t len)
{
    size_t s = i;
    while (i < len && (isalnum((unsigned char)t[i]) || t[i] == '_'))
        i++;
    if (i == s || isdigit((unsigned char)t[s]) || !starts(t, i, len, ".call("))
        return false;
    size_t name_end = i;
    i += 6;
    json_t *args = json_object();
    bool ok = args != NULL;
    i = skip_ws(t, i, len);
    while (ok && i < len && t[i] != ')') {
        size_t ks = i;
        while (i < len && (isalnum((unsigned char)t[i]) || t[i] == '_'))
            i++;
        size_t ke = i;
        i = skip_ws(t, i, len);
        if (ke == ks || i >= len || t[i] != '=') {
            ok = false;
            break;
        }
        i = skip_ws(t, i + 1, len);
        json_t *v = py_literal(t, &i, len);
        char key[128];
        if (!v || ke - ks >= sizeof key) {
            json_decref(v);
            ok = false;
            break;
        }
        memcpy(key, t + ks, ke - ks);
        key[ke - ks] = '\0';
        json_object_set_new(args, key, v);
        i = skip_ws(t, i, len);
        if (i < len && t[i] == ',')
            i = skip_ws(t, i + 1, len);
    }
    ok = ok && i < len && skip_ws(t, i + 1, len) == len;
    json_t *o = ok ? json_object() : NULL;
    if (o) {
        json_object_set_new(o, "name", json_stringn(t + s, name_end - s));
        json_object_set(o, "arguments", args);
        ok = add_call(c, o, true);
    }
    json_decref(o);
    json_decref(args);
    return ok;
}

/* ---- the formats ---- */

/* JSON call objects from t[i] to the end, separated by whitespace or ";" (Llama 3), or a
 * JSON array of them. */
static bool json_calls_to_end(calls *c, const char *t, size_t i, size_t len, bool need_args)
{
    i = skip_ws(t, i, len);
    if (i >= len)
        return false;
    while (i < len) {
        size_t end = 0;
        json_t *v = json_at(t, i, len, &end);
        bool ok = v && (json_is_array(v) ? add_array(c, v, need_args) : add_call(c, v, need_args));
        json_decref(v);
        if (!ok)
            return false;
        i = skip_ws(t, end, len);
        if (i < len && t[i] == ';')
            i = skip_ws(t, i + 1, len);
    }
    return true;
}

/* Hermes: <tool_call>{...}</tool_call>, repeated; *from and *to: the span of the calls. */
static bool hermes(calls *c, const char *t, size_t len, size_t *from, size_t *to)
{
    size_t p = find(t, 0, len, HERMES_OPEN);
    if (p == SIZE_MAX)
        return false;
    *from = p;
    size_t i = p;
    while (starts(t, i, len, HERMES_OPEN)) {
        i = skip_ws(t, i + strlen(HERMES_OPEN), len);
        size_t end = 0;
        json_t *v = json_at(t, i, len, &end);
        bool ok = v && add_call(c, v, false);
        json_decref(v);
        if (!ok)
            return false;
        i = skip_ws(t, end, len);
        if (starts(t, i, len, HERMES_CLOSE))
            i = skip_ws(t, i + strlen(HERMES_CLOSE), len);
        else if (i < len) /* the close may be missing only at the very end */
            return false;
    }
    *to = i;
    return true;
}

static bool llama3(calls *c, const char *t, size_t len, size_t *from, size_t *to)
{
    size_t p = find(t, 0, len, PYTHON_TAG);
    size_t i = p != SIZE_MAX ? p + strlen(PYTHON_TAG) : skip_ws(t, 0, len);
    *from = p != SIZE_MAX ? p : 0;
    *to = len;
    i = skip_ws(t, i, len);
    if (i < len && t[i] == '{')
        return json_calls_to_end(c, t, i, len, true);
    return p != SIZE_MAX && py_call(c, t, i, len);
}

static bool mistral(calls *c, const char *t, size_t len, size_t *from, size_t *to)
{
    size_t p = find(t, 0, len, MISTRAL_TAG);
    size_t i = p != SIZE_MAX ? p + strlen(MISTRAL_TAG) : skip_ws(t, 0, len);
    *from = p != SIZE_MAX ? p : 0;
    i = skip_ws(t, i, len);
    if (i >= len || t[i] != '[')
        return false;
    size_t end = 0;
    json_t *v = json_at(t, i, len, &end);
    bool ok = v && add_array(c, v, false);
    json_decref(v);
    *to = skip_ws(t, end, len);
    return ok;
}

/* GENERIC: the whole answer is one JSON value (maybe in a ```json fence). *response: the
 * text of a {"response": "..."} answer (malloc'ed). */
static bool generic(calls *c, const char *t, size_t len, char **response, size_t *rlen)
{
    size_t i = skip_ws(t, 0, len), stop = len;
    if (starts(t, i, len, "```")) {
        size_t nl = find(t, i, len, "\n");
        size_t close = nl == SIZE_MAX ? SIZE_MAX : find(t, nl, len, "```");
        if (close == SIZE_MAX || skip_ws(t, close + 3, len) != len)
            return false;
        i = nl + 1;
        stop = close;
    }
    i = skip_ws(t, i, stop);
    size_t end = 0;
    json_t *v = json_at(t, i, stop, &end);
    bool ok = v && skip_ws(t, end, stop) == stop;
    if (ok && json_is_object(v)) {
        json_t *one = json_object_get(v, "tool_call"), *many = json_object_get(v, "tool_calls");
        json_t *resp = json_object_get(v, "response");
        if (one)
            ok = add_call(c, one, false);
        else if (many)
            ok = add_array(c, many, false);
        else if (json_is_string(resp) && json_object_size(v) == 1) {
            *response = strndup(json_string_value(resp), json_string_length(resp));
            *rlen = json_string_length(resp);
            c->oom = *response == NULL;
        } else
            ok = add_call(c, v, true);
    } else if (ok) {
        ok = add_array(c, v, true);
    }
    json_decref(v);
    return ok;
}

/* content = before the calls (trailing blanks cut) and after them (trimmed), joined. */
static bool set_content(ponder_tool_calls *out, const char *t, size_t len, size_t from, size_t to)
{
    size_t b = from;
    while (b > 0 && is_space(t[b - 1]))
        b--;
    size_t a = skip_ws(t, to, len), e = len;
    while (e > a && is_space(t[e - 1]))
        e--;
    size_t n = b + (b && e > a ? 1 : 0) + (e - a);
    out->content = malloc(n + 1);
    if (!out->content)
        return false;
    memcpy(out->content, t, b);
    if (b && e > a)
        out->content[b] = '\n';
    memcpy(out->content + n - (e - a), t + a, e - a);
    out->content[n] = '\0';
    out->content_len = n;
    return true;
}

ponder_status ponder_tool_calls_parse(ponder_tool_format f, const char *text, size_t len, ponder_tool_calls *out,
                                      ponder_error *err)
{
    if (!out || (!text && len))
        return ponder_error_set(err, PONDER_ERR_INVALID_ARG, "ponder_tool_calls_parse: NULL argument");
    memset(out, 0, sizeof *out);
    const char *t = text ? text : "";
    calls c = { 0 };
    size_t from = 0, to = len;
    char *response = NULL;
    size_t rlen = 0;
    bool ok = false;
    switch (f) {
    case PONDER_TOOL_FORMAT_HERMES: ok = hermes(&c, t, len, &from, &to); break;
    case PONDER_TOOL_FORMAT_LLAMA3: ok = llama3(&c, t, len, &from, &to); break;
    case PONDER_TOOL_FORMAT_MISTRAL: ok = mistral(&c, t, len, &from, &to); break;
    case PONDER_TOOL_FORMAT_GENERIC: ok = generic(&c, t, len, &response, &rlen); break;
    }
    if (!ok && !c.oom && f != PONDER_TOOL_FORMAT_GENERIC) {
        /* the last resort of every format: the answer is only a bare call object */
        calls_free(&c);
        from = 0;
        to = len;
        ok = json_calls_to_end(&c, t, 0, len, true);
    }
    if (c.oom) {
        calls_free(&c);
        free(response);
        return ponder_error_set(err, PONDER_ERR_NOMEM, "out of memory");
    }
    bool mem = true;
    if (response) {
        out->content = response;
        out->content_len = rlen;
        calls_free(&c);
    } else if (ok && c.n > 0) {
        mem = set_content(out, t, len, from, to);
        out->calls = c.v;
        out->n_calls = c.n;
    } else {
        calls_free(&c);
        out->content = malloc(len + 1);
        mem = out->content != NULL;
        if (mem) {
            memcpy(out->content, t, len);
            out->content[len] = '\0';
            out->content_len = len;
        }
    }
    if (!mem) {
        ponder_tool_calls_clear(out);
        return ponder_error_set(err, PONDER_ERR_NOMEM, "out of memory");
    }
    return PONDER_OK;
}

void ponder_tool_calls_clear(ponder_tool_calls *c)
{
    if (!c)
        return;
    for (int32_t i = 0; i < c->n_calls; i++) {
        free(c->calls[i].name);
        free(c->calls[i].arguments);
    }
    free(c->calls);
    free(c->content);
    memset(c, 0, sizeof *c);
}

/* Where a mark starts in t, or where a suffix of t that could grow into it starts. */
static size_t mark_start(const char *t, size_t len, const char *mark)
{
    size_t p = find(t, 0, len, mark), m = strlen(mark);
    if (p != SIZE_MAX)
        return p;
    for (size_t k = m - 1; k > 0; k--)
        if (len >= k && memcmp(t + len - k, mark, k) == 0)
            return len - k;
    return len;
}

size_t ponder_tool_calls_content_prefix(ponder_tool_format f, const char *text, size_t len)
{
    if (!text)
        return 0;
    size_t i = skip_ws(text, 0, len);
    /* a bare call object (every format's last resort; GENERIC's whole answer; the start of
     * a Llama 3 or Mistral call without its control token) may be coming */
    if (i == len || text[i] == '{' || text[i] == '[' || (f == PONDER_TOOL_FORMAT_GENERIC && text[i] == '`'))
        return 0;
    size_t n = len;
    if (f == PONDER_TOOL_FORMAT_HERMES)
        n = mark_start(text, len, HERMES_OPEN);
    else if (f == PONDER_TOOL_FORMAT_LLAMA3)
        n = mark_start(text, len, PYTHON_TAG);
    else if (f == PONDER_TOOL_FORMAT_MISTRAL)
        n = mark_start(text, len, MISTRAL_TAG);
    while (n > 0 && is_space(text[n - 1]))
        n--;
    return n;
}
