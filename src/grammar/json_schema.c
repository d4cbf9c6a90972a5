/*
 * json_schema.c — JSON Schema → GBNF, in the manner of llama.cpp's
 * json-schema-to-grammar (same primitive rules, `space` after every value), so the
 * grammar text can be read, saved and edited as a GBNF file.
 *
 * Every keyword is either compiled, an annotation, or refused by name: a schema is
 * never silently loosened. Objects keep the schema's property order; with optional
 * properties the commas are arranged by two rule chains per object (first_i: items from
 * i with no comma before the first present one; rest_i: every present item after a
 * comma), so any subset of the optional properties can appear, in order. Without
 * additionalProperties an object with properties takes no other keys (llama.cpp's and
 * OpenAI's strict behaviour); with them, extra keys are any string but the declared
 * names. oneOf is compiled as anyOf (as llama.cpp and vLLM do).
 */
#include "grammar/json_schema_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define JS_MAX_DEPTH 64

/* The primitive rules, llama.cpp's (exponent digits limited so every number parses as
 * a finite double; \u escapes never a surrogate or NUL, which JSON parsers refuse). */
static const char JS_PRIMITIVES[] =
    "space ::= | \" \" | \"\\n\" [ \\t]{0,20}\n"
    "value ::= object | array | string | number | boolean | null\n"
    "object ::= \"{\" space ( string \":\" space value ( \",\" space string \":\" space value )* )? \"}\" space\n"
    "array ::= \"[\" space ( value ( \",\" space value )* )? \"]\" space\n"
    "string ::= \"\\\"\" char* \"\\\"\" space\n"
    "char ::= [^\"\\\\\\x7F\\x00-\\x1F] | [\\\\] ( [\"\\\\/bfnrt] | \"u\" unicode-escape )\n"
    "unicode-escape ::= \"0\" ( [1-9a-fA-F] hex hex | \"0\" ( [1-9a-fA-F] hex | \"0\" [1-9a-fA-F] ) )"
    " | [1-9a-cA-CeEfF] hex hex hex | [dD] [0-7] hex hex\n"
    "hex ::= [0-9a-fA-F]\n"
    "integral-part ::= [0] | [1-9] [0-9]{0,15}\n"
    "decimal-part ::= [0-9]{1,16}\n"
    "number ::= \"-\"? integral-part ( \".\" decimal-part )? ( [eE] [-+]? [0-9]{1,2} )? space\n"
    "integer ::= \"-\"? integral-part space\n"
    "boolean ::= ( \"true\" | \"false\" ) space\n"
    "null ::= \"null\" space\n"
    "date ::= [0-9]{4} \"-\" ( \"0\" [1-9] | \"1\" [0-2] ) \"-\" ( \"0\" [1-9] | [1-2] [0-9] | \"3\" [0-1] )\n"
    "time ::= ( [01] [0-9] | \"2\" [0-3] ) \":\" [0-5] [0-9] \":\" [0-5] [0-9] ( \".\" [0-9]{3} )?"
    " ( \"Z\" | [+-] ( [01] [0-9] | \"2\" [0-3] ) \":\" [0-5] [0-9] )\n"
    "date-time ::= date \"T\" time\n"
    "uuid ::= hex{8} \"-\" hex{4} \"-\" hex{4} \"-\" hex{4} \"-\" hex{12}\n"
    /* the rest of OpenAI's formats, each as a plain subset every validator accepts */
    "email ::= [a-zA-Z0-9]{1,20} ( [._+-] [a-zA-Z0-9]{1,20} ){0,2} \"@\" hostname\n"
    "hostname ::= [a-z0-9]{1,20} ( \".\" [a-z0-9]{1,20} ){0,3} \".\" [a-z]{2,6}\n"
    "ipv4 ::= octet \".\" octet \".\" octet \".\" octet\n"
    "octet ::= [0-9] | [1-9] [0-9] | \"1\" [0-9] [0-9] | \"2\" [0-4] [0-9] | \"25\" [0-5]\n"
    "ipv6 ::= hex{1,4} ( \":\" hex{1,4} ){7}\n"
    "uri ::= ( \"https\" | \"http\" ) \"://\" hostname ( \"/\" [a-zA-Z0-9._~-]{1,20} ){0,4}\n"
    "duration ::= \"P\" ( [0-9]{1,4} \"D\" )? \"T\" [0-9]{1,4} \"H\" ( [0-9]{1,4} \"M\" )? ( [0-9]{1,4} \"S\" )?\n";

static const char *const JS_RESERVED[] = { "root", "space", "value", "object", "array", "string", "char",
                                           "unicode-escape", "hex", "integral-part", "decimal-part", "number",
                                           "integer", "boolean", "null", "date", "time", "date-time", "uuid",
                                           "email", "hostname", "ipv4", "octet", "ipv6", "uri", "duration" };

static const char *const JS_ANNOTATIONS[] = { "title", "description", "default", "examples", "$schema", "$id",
                                              "$comment", "$defs", "definitions", "deprecated", "readOnly",
                                              "writeOnly" };

static const char *const JS_KEYWORDS[] = { "type", "properties", "required", "additionalProperties", "items",
                                           "prefixItems", "minItems", "maxItems", "enum", "const", "minLength",
                                           "maxLength", "pattern", "format", "minimum", "maximum",
                                           "exclusiveMinimum", "exclusiveMaximum", "anyOf", "oneOf", "allOf",
                                           "$ref" };


/* Names and text quoted from the input may hold control characters: the message stays one
 * line. */
static void one_line(ponder_error *err)
{
    for (char *c = err ? err->msg : NULL; c && *c; c++)
        if ((unsigned char)*c < 0x20 || *c == 0x7F)
            *c = '?';
}

char *js_fail(js *j, ponder_status code, const char *path, const char *fmt, const char *arg)
{
    if (j->st == PONDER_OK) {
        char what[400];
        snprintf(what, sizeof what, fmt, arg);
        j->st = ponder_error_set(j->err, code, "JSON Schema: %s at %s", what, path[0] ? path : "/");
        one_line(j->err);
    }
    return NULL;
}

bool js_in_list(const char *k, const char *const *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(k, list[i]) == 0)
            return true;
    return false;
}

static bool name_used(const js *j, const char *n)
{
    if (js_in_list(n, JS_RESERVED, sizeof JS_RESERVED / sizeof *JS_RESERVED))
        return true;
    for (size_t i = 0; i < j->n_names; i++)
        if (strcmp(j->names[i], n) == 0)
            return true;
    return false;
}

/* A fresh rule name from hint (sanitised to GBNF's [A-Za-z0-9-]), malloc'ed. */
static char *new_name(js *j, const char *hint)
{
    char base[48];
    size_t n = 0;
    for (const char *p = hint; *p && n < 40; p++)
        base[n++] = ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9')) ? *p : '-';
    if (n == 0)
        base[n++] = 'r';
    base[n] = '\0';
    char name[64];
    snprintf(name, sizeof name, "%s", base);
    for (int k = 1; name_used(j, name); k++)
        snprintf(name, sizeof name, "%s-%d", base, k);
    if (j->n_names == j->cap_names) {
        size_t cap = j->cap_names ? j->cap_names * 2 : 32;
        char **v = realloc(j->names, cap * sizeof *v);
        if (!v)
            return NULL;
        j->names = v;
        j->cap_names = cap;
    }
    char *s = strdup(name);
    if (!s)
        return NULL;
    j->names[j->n_names++] = s;
    return strdup(name);
}

/* Defines a rule from hint with body; returns its name (malloc'ed). */
char *js_add_rule(js *j, const char *hint, const char *body)
{
    char *name = new_name(j, hint);
    if (!name) {
        j->rules.oom = true;
        return NULL;
    }
    gr_buf_printf(&j->rules, "%s ::= ", name);
    gr_buf_puts(&j->rules, body);
    gr_buf_puts(&j->rules, "\n");
    return name;
}

/* A literal for the JSON text of value v, followed by space. */
static bool json_literal(gr_buf *b, const json_t *v)
{
    char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    if (!s)
        return false;
    sp_literal(b, s, strlen(s));
    free(s);
    gr_buf_puts(b, " space");
    return true;
}

static char *visit(js *j, json_t *s, const char *hint, const char *path);

static char *child_path(const char *path, const char *a, const char *b)
{
    size_t n = strlen(path) + strlen(a) + (b ? strlen(b) : 0) + 3;
    char *p = malloc(n);
    if (p)
        snprintf(p, n, "%s/%s%s%s", path, a, b ? "/" : "", b ? b : "");
    return p;
}

char *js_visit_child(js *j, json_t *s, const char *hint, const char *path, const char *a, const char *b)
{
    char *p = child_path(path, a, b);
    if (!p) {
        j->rules.oom = true;
        return NULL;
    }
    char *r = visit(j, s, hint, p);
    free(p);
    return r;
}

/* $ref: "#", "#/$defs/x", "#/definitions/x" or any JSON pointer into this document. */
static char *visit_ref(js *j, const char *ref, const char *path)
{
    for (size_t i = 0; i < j->n_refs; i++)
        if (strcmp(j->refs[i].ref, ref) == 0)
            return strdup(j->refs[i].rule);
    if (ref[0] != '#')
        return js_fail(j, PONDER_ERR_UNSUPPORTED, path, "unsupported $ref '%s' (only local references, #/...)", ref);
    json_t *t = j->root;
    const char *p = ref + 1;
    char tok[256];
    while (*p == '/') {
        p++;
        size_t n = 0;
        while (*p && *p != '/' && n + 1 < sizeof tok) {
            if (p[0] == '~' && p[1] == '1')
                tok[n++] = '/', p += 2;
            else if (p[0] == '~' && p[1] == '0')
                tok[n++] = '~', p += 2;
            else
                tok[n++] = *p++;
        }
        tok[n] = '\0';
        if (json_is_object(t))
            t = json_object_get(t, tok);
        else if (json_is_array(t))
            t = json_array_get(t, (size_t)strtoul(tok, NULL, 10));
        else
            t = NULL;
        if (!t)
            return js_fail(j, PONDER_ERR_FORMAT, path, "$ref '%s' points at nothing", ref);
    }
    if (*p)
        return js_fail(j, PONDER_ERR_FORMAT, path, "malformed $ref '%s'", ref);
    /* name the rule before visiting, so recursive schemas refer to it */
    const char *last = strrchr(ref, '/');
    char *name = new_name(j, last && last[1] ? last + 1 : "ref");
    if (!name || j->n_refs == j->cap_refs) {
        size_t cap = j->cap_refs ? j->cap_refs * 2 : 8;
        js_ref *v = name ? realloc(j->refs, cap * sizeof *v) : NULL;
        if (!v) {
            free(name);
            j->rules.oom = true;
            return NULL;
        }
        j->refs = v;
        j->cap_refs = cap;
    }
    j->refs[j->n_refs].ref = strdup(ref);
    j->refs[j->n_refs].rule = name;
    j->n_refs++;
    char *body = visit(j, t, name, ref + 1);
    if (!body)
        return NULL;
    gr_buf_printf(&j->rules, "%s ::= %s\n", name, body);
    free(body);
    return strdup(name);
}

/* --- objects ---------------------------------------------------------------------- */

/* Decodes UTF-8 s into code points (cp, *n); false on invalid UTF-8. */
static bool decode_cps(const char *s, uint32_t **cp, size_t *n)
{
    size_t len = strlen(s), k = 0;
    *cp = malloc((len + 1) * sizeof **cp);
    if (!*cp)
        return false;
    for (size_t i = 0; i < len;) {
        const unsigned char *u = (const unsigned char *)s + i;
        size_t m = ponder_utf8_len(u, len - i);
        if (m == 0)
            return false;
        uint32_t c = m == 1 ? u[0]
                     : m == 2 ? ((uint32_t)(u[0] & 0x1F) << 6) | (u[1] & 0x3F)
                     : m == 3 ? ((uint32_t)(u[0] & 0x0F) << 12) | ((uint32_t)(u[1] & 0x3F) << 6) | (u[2] & 0x3F)
                              : ((uint32_t)(u[0] & 0x07) << 18) | ((uint32_t)(u[1] & 0x3F) << 12) |
                                    ((uint32_t)(u[2] & 0x3F) << 6) | (u[3] & 0x3F);
        (*cp)[k++] = c;
        i += m;
    }
    *n = k;
    return true;
}

/* The JSON text (inside the quotes) of one code point, as a GBNF literal. */
static void cp_literal(gr_buf *b, uint32_t c)
{
    char u[8];
    size_t n;
    if (c == '"' || c == '\\') {
        u[0] = '\\', u[1] = (char)c, n = 2;
    } else if (c < 0x20 || c == 0x7F) {
        n = (size_t)snprintf(u, sizeof u, "\\u%04x", c);
    } else if (c < 0x80) {
        u[0] = (char)c, n = 1;
    } else if (c < 0x800) {
        u[0] = (char)(0xC0 | (c >> 6)), u[1] = (char)(0x80 | (c & 0x3F)), n = 2;
    } else if (c < 0x10000) {
        u[0] = (char)(0xE0 | (c >> 12)), u[1] = (char)(0x80 | ((c >> 6) & 0x3F)), u[2] = (char)(0x80 | (c & 0x3F));
        n = 3;
    } else {
        u[0] = (char)(0xF0 | (c >> 18)), u[1] = (char)(0x80 | ((c >> 12) & 0x3F));
        u[2] = (char)(0x80 | ((c >> 6) & 0x3F)), u[3] = (char)(0x80 | (c & 0x3F));
        n = 4;
    }
    sp_literal(b, u, n);
}

/* String contents other than the keys k[0..n) (each cps[i][0..len[i]) sharing their
 * first d code points): a rule per trie node. */
static char *not_keys(js *j, uint32_t **cps, size_t *len, size_t n, size_t d, const char *hint)
{
    gr_buf b = { 0 };
    bool terminal = false;
    /* "another character, then anything" */
    gr_buf_puts(&b, "( [^\"\\\\\\x7F\\x00-\\x1F");
    for (size_t i = 0; i < n; i++) {
        if (len[i] == d) {
            terminal = true;
            continue;
        }
        gr_buf_printf(&b, "\\U%08X", cps[i][d]);
    }
    gr_buf_puts(&b, "] | [\\\\] ( [\"\\\\/bfnrt] | \"u\" unicode-escape ) ) char*");
    for (size_t i = 0; i < n; i++) {
        if (len[i] == d)
            continue;
        bool seen = false;
        for (size_t k = 0; k < i && !seen; k++)
            seen = len[k] > d && cps[k][d] == cps[i][d];
        if (seen)
            continue;
        /* the keys continuing with this character */
        uint32_t **sub = malloc(n * sizeof *sub);
        size_t *sublen = malloc(n * sizeof *sublen);
        if (!sub || !sublen) {
            free(sub);
            free(sublen);
            free(b.s);
            j->rules.oom = true;
            return NULL;
        }
        size_t m = 0;
        for (size_t k = 0; k < n; k++)
            if (len[k] > d && cps[k][d] == cps[i][d])
                sub[m] = cps[k], sublen[m++] = len[k];
        char *child = not_keys(j, sub, sublen, m, d + 1, hint);
        free(sub);
        free(sublen);
        if (!child) {
            free(b.s);
            return NULL;
        }
        gr_buf_puts(&b, " | ");
        cp_literal(&b, cps[i][d]);
        gr_buf_printf(&b, " %s", child);
        free(child);
    }
    if (!terminal)
        gr_buf_puts(&b, " | \"\"");
    char *r = b.oom ? NULL : js_add_rule(j, hint, b.s);
    if (b.oom)
        j->rules.oom = true;
    free(b.s);
    return r;
}

/* An object schema's parts while its rules are built: per property its "key": value rule,
 * whether it is required, and its key's code points (for the rule of other keys). */
typedef struct js_obj {
    size_t n;
    char **kv;
    bool *is_req;
    uint32_t **cps;
    size_t *cplen;
    char *addkv;                  /* the additional properties' "key": value rule, or NULL */
    gr_buf b;
} js_obj;

/* Each property's "key" space ":" space value rule, in the schema's order. */
static bool object_properties(js *j, js_obj *o, json_t *props, const char *hint, const char *path)
{
    size_t i = 0;
    const char *key;
    json_t *sub;
    json_object_foreach(props, key, sub) {
        char h[96];
        snprintf(h, sizeof h, "%s-%s", hint, key);
        char *val = js_visit_child(j, sub, h, path, "properties", key);
        if (!val)
            return false;
        o->b.n = 0;
        json_t *ks = json_string(key);
        char *kjs = ks ? json_dumps(ks, JSON_ENCODE_ANY) : NULL;
        json_decref(ks);
        if (!kjs) {
            free(val);
            j->rules.oom = true;
            return false;
        }
        sp_literal(&o->b, kjs, strlen(kjs));
        free(kjs);
        gr_buf_printf(&o->b, " space \":\" space %s", val);
        free(val);
        snprintf(h, sizeof h, "%s-%s-kv", hint, key);
        o->kv[i] = o->b.oom ? NULL : js_add_rule(j, h, o->b.s);
        if (!o->kv[i] || !decode_cps(key, &o->cps[i], &o->cplen[i])) {
            j->rules.oom = true;
            return false;
        }
        i++;
    }
    return true;
}

/* "required": every name must be one of the properties. */
static bool object_required(js *j, js_obj *o, json_t *props, json_t *req, const char *path)
{
    for (size_t r = 0; req && r < json_array_size(req); r++) {
        const char *name = json_string_value(json_array_get(req, r));
        if (!name) {
            js_fail(j, PONDER_ERR_FORMAT, path, "%s must list strings", "required");
            return false;
        }
        size_t k = 0;
        const char *key;
        json_t *sub;
        json_object_foreach(props, key, sub) {
            if (strcmp(key, name) == 0)
                break;
            k++;
        }
        if (k == o->n) {
            js_fail(j, PONDER_ERR_UNSUPPORTED, path,
                    "required property '%s' is not in properties (give it a schema there)", name);
            return false;
        }
        o->is_req[k] = true;
    }
    return true;
}

/* additionalProperties: absent → none when properties are given (strict); otherwise
 * o->addkv, a key other than the properties' (any string when there are none) and its value. */
static bool object_additional(js *j, js_obj *o, json_t *addl, const char *hint, const char *path)
{
    if (addl && !json_is_boolean(addl) && !json_is_object(addl)) {
        js_fail(j, PONDER_ERR_FORMAT, path, "%s must be a boolean or a schema", "additionalProperties");
        return false;
    }
    if (!((addl && !json_is_false(addl)) || (!addl && o->n == 0)))
        return true;
    char h[96];
    snprintf(h, sizeof h, "%s-additional", hint);
    char *val = addl && json_is_object(addl) ? js_visit_child(j, addl, h, path, "additionalProperties", NULL)
                                             : strdup("value");
    if (!val)
        return false;
    char *keyrule = NULL;
    if (o->n > 0) {
        snprintf(h, sizeof h, "%s-other-key", hint);
        char *nk = not_keys(j, o->cps, o->cplen, o->n, 0, h);
        if (nk) {
            o->b.n = 0;
            gr_buf_printf(&o->b, "\"\\\"\" %s \"\\\"\" space", nk);
            free(nk);
            keyrule = o->b.oom ? NULL : js_add_rule(j, h, o->b.s);
        }
    } else {
        keyrule = strdup("string");
    }
    if (keyrule) {
        o->b.n = 0;
        gr_buf_printf(&o->b, "%s \":\" space %s", keyrule, val);
        snprintf(h, sizeof h, "%s-additional-kv", hint);
        o->addkv = o->b.oom ? NULL : js_add_rule(j, h, o->b.s);
    }
    free(keyrule);
    free(val);
    if (!o->addkv) {
        j->rules.oom = true;
        return false;
    }
    return true;
}

/* Two rules named hint-rest and hint-first from the texts in o->b (rest) and first; false
 * out of memory. */
static bool object_rule_pair(js *j, js_obj *o, const char *hint, const char *first, char rest_out[96],
                             char first_out[96])
{
    char h[96];
    snprintf(h, sizeof h, "%s-rest", hint);
    char *r = o->b.oom ? NULL : js_add_rule(j, h, o->b.s);
    snprintf(h, sizeof h, "%s-first", hint);
    char *f = r ? js_add_rule(j, h, first) : NULL;
    if (!r || !f) {
        free(r);
        free(f);
        j->rules.oom = true;
        return false;
    }
    snprintf(rest_out, 96, "%s", r);
    snprintf(first_out, 96, "%s", f);
    free(r);
    free(f);
    return true;
}

/* The comma chains, from the end: rest_k (what may follow property k-1) and first_k (the
 * object's members from property k on), then the object rule itself. */
static char *object_chain(js *j, js_obj *o, const char *hint)
{
    char rest_next[96], first_next[96], h[96];
    snprintf(h, sizeof h, "%s-rest", hint);
    o->b.n = 0;
    if (o->addkv)
        gr_buf_printf(&o->b, "( \",\" space %s )*", o->addkv);
    else
        gr_buf_puts(&o->b, "\"\"");
    char *rn = js_add_rule(j, h, o->b.s);
    o->b.n = 0;
    if (o->addkv)
        gr_buf_printf(&o->b, "( %s %s )?", o->addkv, rn ? rn : "");
    else
        gr_buf_puts(&o->b, "\"\"");
    snprintf(h, sizeof h, "%s-first", hint);
    char *fn = js_add_rule(j, h, o->b.s);
    bool ok = rn && fn;
    if (ok) {
        snprintf(rest_next, sizeof rest_next, "%s", rn);
        snprintf(first_next, sizeof first_next, "%s", fn);
    }
    free(rn);
    free(fn);
    if (!ok) {
        j->rules.oom = true;
        return NULL;
    }
    gr_buf first = { 0 };
    for (size_t k = o->n; k-- > 0;) {
        o->b.n = 0;
        first.n = 0;
        if (o->is_req[k]) {
            gr_buf_printf(&o->b, "\",\" space %s %s", o->kv[k], rest_next);
            gr_buf_printf(&first, "%s %s", o->kv[k], rest_next);
        } else {
            gr_buf_printf(&o->b, "( \",\" space %s )? %s", o->kv[k], rest_next);
            gr_buf_printf(&first, "%s %s | %s", o->kv[k], rest_next, first_next);
        }
        if (first.oom || !object_rule_pair(j, o, hint, first.s, rest_next, first_next)) {
            j->rules.oom = true;
            free(first.s);
            return NULL;
        }
    }
    free(first.s);
    o->b.n = 0;
    gr_buf_printf(&o->b, "\"{\" space %s \"}\" space", first_next);
    return o->b.oom ? NULL : js_add_rule(j, hint, o->b.s);
}

static char *build_object(js *j, json_t *s, const char *hint, const char *path)
{
    json_t *props = json_object_get(s, "properties"), *req = json_object_get(s, "required");
    json_t *addl = json_object_get(s, "additionalProperties");
    if (props && !json_is_object(props))
        return js_fail(j, PONDER_ERR_FORMAT, path, "%s must be an object", "properties");
    if (req && !json_is_array(req))
        return js_fail(j, PONDER_ERR_FORMAT, path, "%s must be an array", "required");
    if (!props && !req && (!addl || json_is_true(addl)))
        return strdup("object");
    js_obj o = { .n = props ? json_object_size(props) : 0 };
    char *ret = NULL;
    o.kv = calloc(o.n + 1, sizeof *o.kv);
    o.is_req = calloc(o.n + 1, sizeof *o.is_req);
    o.cps = calloc(o.n + 1, sizeof *o.cps);
    o.cplen = calloc(o.n + 1, sizeof *o.cplen);
    if (!o.kv || !o.is_req || !o.cps || !o.cplen)
        j->rules.oom = true;
    else if (object_properties(j, &o, props, hint, path) && object_required(j, &o, props, req, path) &&
             object_additional(j, &o, addl, hint, path))
        ret = object_chain(j, &o, hint);
    for (size_t k = 0; k < o.n && o.kv; k++)
        free(o.kv[k]);
    for (size_t k = 0; k < o.n && o.cps; k++)
        free(o.cps[k]);
    free(o.kv);
    free(o.is_req);
    free(o.cps);
    free(o.cplen);
    free(o.addkv);
    free(o.b.s);
    return ret;
}

/* --- dispatch ----------------------------------------------------------------------- */

static char *alternatives(js *j, json_t *list, const char *kw, const char *hint, const char *path)
{
    if (!json_is_array(list) || json_array_size(list) == 0)
        return js_fail(j, PONDER_ERR_FORMAT, path, "%s must be a non-empty array", kw);
    gr_buf b = { 0 };
    for (size_t i = 0; i < json_array_size(list); i++) {
        char idx[24], h[96];
        snprintf(idx, sizeof idx, "%zu", i);
        snprintf(h, sizeof h, "%s-%zu", hint, i);
        char *r = js_visit_child(j, json_array_get(list, i), h, path, kw, idx);
        if (!r) {
            free(b.s);
            return NULL;
        }
        gr_buf_printf(&b, "%s%s", i ? " | " : "", r);
        free(r);
    }
    char *ret = b.oom ? NULL : js_add_rule(j, hint, b.s);
    if (b.oom)
        j->rules.oom = true;
    free(b.s);
    return ret;
}

/* Keywords other than annotations besides kw (the first found), or NULL. */
static const char *other_keyword(json_t *s, const char *kw)
{
    const char *k;
    json_t *v;
    json_object_foreach(s, k, v) {
        if (strcmp(k, kw) != 0 && !js_in_list(k, JS_ANNOTATIONS, sizeof JS_ANNOTATIONS / sizeof *JS_ANNOTATIONS))
            return k;
    }
    return NULL;
}

/* allOf: merged when every part is an object schema (properties, required,
 * additionalProperties); one part alone is that part. */
static char *visit_all_of(js *j, json_t *s, const char *hint, const char *path)
{
    json_t *list = json_object_get(s, "allOf");
    if (!json_is_array(list) || json_array_size(list) == 0)
        return js_fail(j, PONDER_ERR_FORMAT, path, "%s must be a non-empty array", "allOf");
    json_t *merged = json_object();
    json_t *props = json_object(), *req = json_array();
    char *ret = NULL;
    if (!merged || !props || !req) {
        j->rules.oom = true;
        goto done;
    }
    json_t *parts = json_array();
    json_array_extend(parts, list);
    json_t *own = json_deep_copy(s);
    json_object_del(own, "allOf");
    json_array_append_new(parts, own);
    for (size_t i = 0; i < json_array_size(parts); i++) {
        json_t *p = json_array_get(parts, i);
        for (int hops = 0; json_is_object(p) && json_object_get(p, "$ref") && hops < 16; hops++) {
            const char *ref = json_string_value(json_object_get(p, "$ref"));
            json_t *t = j->root;
            const char *q = ref && ref[0] == '#' ? ref + 1 : NULL;
            while (q && *q == '/' && t) {
                const char *e = strchr(q + 1, '/');
                size_t n = e ? (size_t)(e - q - 1) : strlen(q + 1);
                char tok[256];
                snprintf(tok, sizeof tok, "%.*s", (int)(n < 255 ? n : 255), q + 1);
                t = json_object_get(t, tok);
                q = e;
            }
            p = t;
        }
        if (!json_is_object(p)) {
            js_fail(j, PONDER_ERR_UNSUPPORTED, path, "%s of anything but object schemas is not supported", "allOf");
            goto done_parts;
        }
        const char *k;
        json_t *v;
        json_object_foreach(p, k, v) {
            if (strcmp(k, "properties") == 0 && json_is_object(v)) {
                json_object_update(props, v);
            } else if (strcmp(k, "required") == 0 && json_is_array(v)) {
                json_array_extend(req, v);
            } else if (strcmp(k, "type") == 0 && json_is_string(v) && strcmp(json_string_value(v), "object") == 0) {
            } else if (strcmp(k, "additionalProperties") == 0) {
                json_object_set(merged, k, v);
            } else if (!js_in_list(k, JS_ANNOTATIONS, sizeof JS_ANNOTATIONS / sizeof *JS_ANNOTATIONS)) {
                js_fail(j, PONDER_ERR_UNSUPPORTED, path, "keyword '%s' inside allOf is not supported", k);
                goto done_parts;
            }
        }
    }
    json_object_set_new(merged, "type", json_string("object"));
    json_object_set(merged, "properties", props);
    json_object_set(merged, "required", req);
    ret = build_object(j, merged, hint, path);
done_parts:
    json_decref(parts);
done:
    json_decref(merged);
    json_decref(props);
    json_decref(req);
    return ret;
}

static char *visit_type(js *j, json_t *s, const char *type, const char *hint, const char *path)
{
    if (strcmp(type, "object") == 0)
        return build_object(j, s, hint, path);
    if (strcmp(type, "array") == 0)
        return js_build_array(j, s, hint, path);
    if (strcmp(type, "string") == 0)
        return js_build_string(j, s, hint, path);
    if (strcmp(type, "integer") == 0)
        return js_build_integer(j, s, hint, path);
    if (strcmp(type, "number") == 0)
        return js_build_number(j, s, hint, path);
    if (strcmp(type, "boolean") == 0)
        return strdup("boolean");
    if (strcmp(type, "null") == 0)
        return strdup("null");
    return js_fail(j, PONDER_ERR_FORMAT, path, "unknown type '%s'", type);
}

static char *visit_inner(js *j, json_t *s, const char *hint, const char *path)
{
    if (json_is_true(s))
        return strdup("value");
    if (json_is_false(s))
        return js_fail(j, PONDER_ERR_FORMAT, path, "%s", "the schema false matches nothing");
    if (!json_is_object(s))
        return js_fail(j, PONDER_ERR_FORMAT, path, "%s", "a schema must be an object or a boolean");
    const char *k;
    json_t *v;
    json_object_foreach(s, k, v) {
        if (!js_in_list(k, JS_KEYWORDS, sizeof JS_KEYWORDS / sizeof *JS_KEYWORDS) &&
            !js_in_list(k, JS_ANNOTATIONS, sizeof JS_ANNOTATIONS / sizeof *JS_ANNOTATIONS))
            return js_fail(j, PONDER_ERR_UNSUPPORTED, path, "unsupported JSON Schema keyword '%s'", k);
    }
    json_t *x;
    if ((x = json_object_get(s, "$ref"))) {
        const char *o = other_keyword(s, "$ref");
        if (o)
            return js_fail(j, PONDER_ERR_UNSUPPORTED, path, "'%s' beside '$ref' is not supported", o);
        if (!json_is_string(x))
            return js_fail(j, PONDER_ERR_FORMAT, path, "%s must be a string", "$ref");
        return visit_ref(j, json_string_value(x), path);
    }
    if ((x = json_object_get(s, "const"))) {
        gr_buf b = { 0 };
        if (!json_literal(&b, x)) {
            free(b.s);
            j->rules.oom = true;
            return NULL;
        }
        char *r = b.oom ? NULL : js_add_rule(j, hint, b.s);
        free(b.s);
        return r;
    }
    if ((x = json_object_get(s, "enum"))) {
        if (!json_is_array(x) || json_array_size(x) == 0)
            return js_fail(j, PONDER_ERR_FORMAT, path, "%s must be a non-empty array", "enum");
        gr_buf b = { 0 };
        for (size_t i = 0; i < json_array_size(x); i++) {
            if (i)
                gr_buf_puts(&b, " | ");
            gr_buf_puts(&b, "( ");
            if (!json_literal(&b, json_array_get(x, i)))
                b.oom = true;
            gr_buf_puts(&b, " )");
        }
        char *r = b.oom ? NULL : js_add_rule(j, hint, b.s);
        if (b.oom)
            j->rules.oom = true;
        free(b.s);
        return r;
    }
    const char *alt = json_object_get(s, "anyOf") ? "anyOf" : json_object_get(s, "oneOf") ? "oneOf" : NULL;
    if (alt) {
        const char *o = other_keyword(s, alt);
        if (o)
            return js_fail(j, PONDER_ERR_UNSUPPORTED, path, "'%s' beside anyOf/oneOf is not supported", o);
        return alternatives(j, json_object_get(s, alt), alt, hint, path);
    }
    if (json_object_get(s, "allOf"))
        return visit_all_of(j, s, hint, path);
    json_t *type = json_object_get(s, "type");
    if (json_is_string(type))
        return visit_type(j, s, json_string_value(type), hint, path);
    if (json_is_array(type)) {
        if (json_array_size(type) == 0)
            return js_fail(j, PONDER_ERR_FORMAT, path, "%s must not be empty", "type");
        gr_buf b = { 0 };
        for (size_t i = 0; i < json_array_size(type); i++) {
            const char *t = json_string_value(json_array_get(type, i));
            if (!t) {
                free(b.s);
                return js_fail(j, PONDER_ERR_FORMAT, path, "%s must list strings", "type");
            }
            char h[96];
            snprintf(h, sizeof h, "%s-%s", hint, t);
            char *r = visit_type(j, s, t, h, path);
            if (!r) {
                free(b.s);
                return NULL;
            }
            gr_buf_printf(&b, "%s%s", i ? " | " : "", r);
            free(r);
        }
        char *r = b.oom ? NULL : js_add_rule(j, hint, b.s);
        if (b.oom)
            j->rules.oom = true;
        free(b.s);
        return r;
    }
    if (type)
        return js_fail(j, PONDER_ERR_FORMAT, path, "%s must be a string or an array of strings", "type");
    /* no type: inferred from the keywords present, else any value */
    if (json_object_get(s, "properties") || json_object_get(s, "additionalProperties") ||
        json_object_get(s, "required"))
        return build_object(j, s, hint, path);
    if (json_object_get(s, "items") || json_object_get(s, "prefixItems") || json_object_get(s, "minItems") ||
        json_object_get(s, "maxItems"))
        return js_build_array(j, s, hint, path);
    if (json_object_get(s, "pattern") || json_object_get(s, "format") || json_object_get(s, "minLength") ||
        json_object_get(s, "maxLength"))
        return js_build_string(j, s, hint, path);
    if (json_object_get(s, "minimum") || json_object_get(s, "maximum") || json_object_get(s, "exclusiveMinimum") ||
        json_object_get(s, "exclusiveMaximum"))
        return js_build_number(j, s, hint, path);
    return strdup("value");
}

static char *visit(js *j, json_t *s, const char *hint, const char *path)
{
    if (j->depth >= JS_MAX_DEPTH)
        return js_fail(j, PONDER_ERR_UNSUPPORTED, path, "%s", "schema nested deeper than 64 levels");
    j->depth++;
    char *r = visit_inner(j, s, hint, path);
    j->depth--;
    if (!r && j->st == PONDER_OK) {
        j->st = ponder_error_set(j->err, PONDER_ERR_NOMEM, "JSON Schema: out of memory");
    }
    return r;
}

ponder_status ponder_json_schema_to_gbnf(const char *schema, size_t len, char **gbnf, ponder_error *err)
{
    if (!schema || !gbnf)
        return ponder_error_set(err, PONDER_ERR_INVALID_ARG, "JSON Schema: NULL argument");
    *gbnf = NULL;
    json_error_t je;
    json_t *root = json_loadb(schema, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &je);
    if (!root) {
        ponder_error_set(err, PONDER_ERR_FORMAT, "JSON Schema: invalid JSON at line %d column %d: %s", je.line,
                         je.column, je.text);
        one_line(err);
        return PONDER_ERR_FORMAT;
    }
    js j = { .root = root, .err = err };
    char *top = visit(&j, root, "root-value", "");
    if (top) {
        gr_buf_printf(&j.rules, "root ::= %s\n", top);
        gr_buf_puts(&j.rules, JS_PRIMITIVES);
        free(top);
    }
    if (j.st == PONDER_OK && j.rules.oom)
        j.st = ponder_error_set(err, PONDER_ERR_NOMEM, "JSON Schema: out of memory");
    for (size_t i = 0; i < j.n_names; i++)
        free(j.names[i]);
    free(j.names);
    for (size_t i = 0; i < j.n_refs; i++) {
        free(j.refs[i].ref);
        free(j.refs[i].rule);
    }
    free(j.refs);
    json_decref(root);
    if (j.st != PONDER_OK) {
        free(j.rules.s);
        return j.st;
    }
    /* a $ref cycle that matches no text before reaching itself ({"$ref": "#"}) compiles
     * to a left-recursive rule: refuse the schema here rather than hand out bad GBNF */
    ponder_grammar *check = NULL;
    ponder_error ce = { 0 };
    ponder_status cs = ponder_grammar_parse(j.rules.s, strlen(j.rules.s), &check, &ce);
    ponder_grammar_free(check);
    if (cs != PONDER_OK) {
        free(j.rules.s);
        if (cs == PONDER_ERR_NOMEM)
            return ponder_error_set(err, PONDER_ERR_NOMEM, "JSON Schema: out of memory");
        ponder_error_set(err, PONDER_ERR_UNSUPPORTED, "JSON Schema: cannot be matched (%s)", ce.msg);
        one_line(err);
        return PONDER_ERR_UNSUPPORTED;
    }
    *gbnf = j.rules.s;
    return PONDER_OK;
}

ponder_status ponder_grammar_from_json_schema(const char *schema, size_t len, ponder_grammar **out,
                                              ponder_error *err)
{
    char *text = NULL;
    ponder_status st = ponder_json_schema_to_gbnf(schema, len, &text, err);
    if (st != PONDER_OK)
        return st;
    st = ponder_grammar_parse(text, strlen(text), out, err);
    if (st != PONDER_OK)
        ponder_error_prefix(err, "JSON Schema compiled to an invalid grammar (a bug)");
    free(text);
    return st;
}

ponder_status ponder_grammar_json_object(ponder_grammar **out, ponder_error *err)
{
    static const char schema[] = "{\"type\": \"object\"}";
    return ponder_grammar_from_json_schema(schema, sizeof schema - 1, out, err);
}
