/*
 * value.c — the Python-like value model: constructors, str()/repr() printing, deep
 * equality and ordering, truthiness, iteration, and json.dumps as transformers' tojson
 * calls it (ensure_ascii=False, indent/separators/sort_keys honoured, no HTML escaping).
 * Printing follows CPython: None/True, floats by shortest round-trip repr ("1.0",
 * "1e+16"), containers in repr with single-quoted strings.
 */
#include "chat/eval.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

_Noreturn void jr_fail(jrender *r, const jnode *at, ponder_status st, const char *fmt, ...)
{
    char msg[PONDER_ERROR_MSG_BYTES];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (!at)
        at = r->at;
    if (at)
        ponder_error_set(r->err, st, "line %d, column %d: %s", at->line, at->col, msg);
    else
        ponder_error_set(r->err, st, "%s", msg);
    longjmp(r->jmp, 1);
}

jv jv_undef(const char *name)
{
    jv v = { .t = JV_UNDEF };
    v.u.s.p = name;
    return v;
}

jv jv_none(void)
{
    jv v = { .t = JV_NONE };
    return v;
}

jv jv_bool(bool b)
{
    jv v = { .t = JV_BOOL };
    v.u.b = b;
    return v;
}

jv jv_int(int64_t i)
{
    jv v = { .t = JV_INT };
    v.u.i = i;
    return v;
}

jv jv_float(double f)
{
    jv v = { .t = JV_FLOAT };
    v.u.f = f;
    return v;
}

jv jv_str_nocopy(const char *s, size_t n)
{
    jv v = { .t = JV_STR };
    v.u.s.p = s;
    v.u.s.n = n;
    return v;
}

jv jv_str(jrender *r, const char *s, size_t n)
{
    return jv_str_nocopy(ja_strndup(&r->a, s, n), n);
}

jv jv_cstr(jrender *r, const char *s)
{
    return jv_str(r, s, strlen(s));
}

jv jv_list_new(jrender *r, size_t cap)
{
    jv v = { .t = JV_LIST };
    v.u.l = ja_alloc(&r->a, sizeof *v.u.l);
    if (cap) {
        v.u.l->v = ja_alloc(&r->a, cap * sizeof(jv));
        v.u.l->cap = cap;
    }
    return v;
}

void jv_list_push(jrender *r, jv *list, jv x)
{
    jlist *l = list->u.l;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 4;
        jv *nv = ja_alloc(&r->a, cap * sizeof *nv);
        if (l->n)
            memcpy(nv, l->v, l->n * sizeof *nv);
        l->v = nv;
        l->cap = cap;
    }
    l->v[l->n++] = x;
}

jv jv_dict_new(jrender *r)
{
    jv v = { .t = JV_DICT };
    v.u.d = ja_alloc(&r->a, sizeof *v.u.d);
    return v;
}

static bool key_equal(jv a, jv b)
{
    if (a.t == JV_STR && b.t == JV_STR)
        return a.u.s.n == b.u.s.n && memcmp(a.u.s.p, b.u.s.p, a.u.s.n) == 0;
    return jv_equal(a, b);
}

bool jv_dict_get(const jdict *d, jv k, jv *out)
{
    for (size_t i = 0; i < d->n; i++)
        if (key_equal(d->k[i], k)) {
            *out = d->v[i];
            return true;
        }
    return false;
}

bool jdict_get_cstr(const jdict *d, const char *k, jv *out)
{
    return jv_dict_get(d, jv_str_nocopy(k, strlen(k)), out);
}

void jv_dict_set(jrender *r, jdict *d, jv k, jv v)
{
    for (size_t i = 0; i < d->n; i++)
        if (key_equal(d->k[i], k)) {
            d->v[i] = v;
            return;
        }
    if (d->n == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 4;
        jv *nk = ja_alloc(&r->a, cap * sizeof *nk);
        jv *nv = ja_alloc(&r->a, cap * sizeof *nv);
        if (d->n) {
            memcpy(nk, d->k, d->n * sizeof *nk);
            memcpy(nv, d->v, d->n * sizeof *nv);
        }
        d->k = nk;
        d->v = nv;
        d->cap = cap;
    }
    d->k[d->n] = k;
    d->v[d->n] = v;
    d->n++;
}

void jdict_set_cstr(jrender *r, jdict *d, const char *k, jv v)
{
    jv_dict_set(r, d, jv_cstr(r, k), v);
}

jv jv_func(jrender *r, jfunc_kind kind, const char *name, jv self)
{
    jv v = { .t = JV_FUNC };
    v.u.fn = ja_alloc(&r->a, sizeof *v.u.fn);
    v.u.fn->kind = kind;
    v.u.fn->name = name;
    v.u.fn->self = self;
    return v;
}

/* ---- buffers ---- */

void jb_put(jrender *r, jbuf *b, const char *s, size_t n)
{
    if (n == 0)
        return;
    if (n > JINJA_MAX_OUTPUT_BYTES || b->n > JINJA_MAX_OUTPUT_BYTES - n)
        jr_fail(r, NULL, PONDER_ERR_RANGE, "output longer than %u MiB", JINJA_MAX_OUTPUT_BYTES >> 20);
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n + 1)
            cap *= 2;
        char *p = ja_alloc(&r->a, cap);
        if (b->n)
            memcpy(p, b->p, b->n);
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
}

void jb_putc(jrender *r, jbuf *b, char c)
{
    jb_put(r, b, &c, 1);
}

void jb_puts(jrender *r, jbuf *b, const char *s)
{
    jb_put(r, b, s, strlen(s));
}

jv jb_take(jrender *r, jbuf *b)
{
    if (!b->p)
        return jv_str_nocopy("", 0);
    (void)r;
    return jv_str_nocopy(b->p, b->n);
}

/* ---- Python semantics ---- */

bool jv_truthy(jv v)
{
    switch (v.t) {
    case JV_UNDEF:
    case JV_NONE: return false;
    case JV_BOOL: return v.u.b;
    case JV_INT: return v.u.i != 0;
    case JV_FLOAT: return v.u.f != 0.0;
    case JV_STR: return v.u.s.n != 0;
    case JV_LIST: return v.u.l->n != 0;
    case JV_DICT: return v.u.d->n != 0;
    default: return true;
    }
}

bool jv_is_number(jv v)
{
    return v.t == JV_INT || v.t == JV_FLOAT || v.t == JV_BOOL;
}

double jv_as_double(jv v)
{
    return v.t == JV_FLOAT ? v.u.f : v.t == JV_INT ? (double)v.u.i : v.t == JV_BOOL ? (double)v.u.b : 0.0;
}

bool jv_equal(jv a, jv b)
{
    if (jv_is_number(a) && jv_is_number(b)) {
        if (a.t != JV_FLOAT && b.t != JV_FLOAT) {
            int64_t x = a.t == JV_INT ? a.u.i : a.u.b, y = b.t == JV_INT ? b.u.i : b.u.b;
            return x == y;
        }
        return jv_as_double(a) == jv_as_double(b);
    }
    if (a.t != b.t)
        return false;
    switch (a.t) {
    case JV_UNDEF:
    case JV_NONE: return true;
    case JV_STR: return a.u.s.n == b.u.s.n && memcmp(a.u.s.p, b.u.s.p, a.u.s.n) == 0;
    case JV_LIST:
        if (a.u.l->n != b.u.l->n || a.u.l->tuple != b.u.l->tuple)
            return false;
        for (size_t i = 0; i < a.u.l->n; i++)
            if (!jv_equal(a.u.l->v[i], b.u.l->v[i]))
                return false;
        return true;
    case JV_DICT:
        if (a.u.d->n != b.u.d->n)
            return false;
        for (size_t i = 0; i < a.u.d->n; i++) {
            jv o;
            if (!jv_dict_get(b.u.d, a.u.d->k[i], &o) || !jv_equal(a.u.d->v[i], o))
                return false;
        }
        return true;
    case JV_NS: return a.u.d == b.u.d;
    case JV_MACRO: return a.u.m == b.u.m;
    case JV_FUNC: return a.u.fn == b.u.fn;
    case JV_LOOP: return a.u.loop == b.u.loop;
    default: return false;
    }
}

const char *jv_type_name(jv v)
{
    switch (v.t) {
    case JV_UNDEF: return "Undefined";
    case JV_NONE: return "NoneType";
    case JV_BOOL: return "bool";
    case JV_INT: return "int";
    case JV_FLOAT: return "float";
    case JV_STR: return v.markup ? "Markup" : "str";
    case JV_LIST: return v.u.l->tuple ? "tuple" : "list";
    case JV_DICT: return "dict";
    case JV_NS: return "Namespace";
    case JV_MACRO: return "Macro";
    case JV_FUNC: return "function";
    case JV_LOOP: return "LoopContext";
    }
    return "object";
}

int jv_compare(jrender *r, const jnode *at, jv a, jv b)
{
    if (jv_is_number(a) && jv_is_number(b)) {
        if (a.t != JV_FLOAT && b.t != JV_FLOAT) {
            int64_t x = a.t == JV_INT ? a.u.i : a.u.b, y = b.t == JV_INT ? b.u.i : b.u.b;
            return (x > y) - (x < y);
        }
        double x = jv_as_double(a), y = jv_as_double(b);
        return (x > y) - (x < y);
    }
    if (a.t == JV_STR && b.t == JV_STR) {
        size_t n = a.u.s.n < b.u.s.n ? a.u.s.n : b.u.s.n;
        int c = memcmp(a.u.s.p, b.u.s.p, n);
        if (c)
            return c;
        return (a.u.s.n > b.u.s.n) - (a.u.s.n < b.u.s.n);
    }
    if (a.t == JV_LIST && b.t == JV_LIST && a.u.l->tuple == b.u.l->tuple) {
        size_t n = a.u.l->n < b.u.l->n ? a.u.l->n : b.u.l->n;
        for (size_t i = 0; i < n; i++) {
            if (jv_equal(a.u.l->v[i], b.u.l->v[i]))
                continue;
            return jv_compare(r, at, a.u.l->v[i], b.u.l->v[i]);
        }
        return (a.u.l->n > b.u.l->n) - (a.u.l->n < b.u.l->n);
    }
    jr_fail(r, at, PONDER_ERR_FORMAT, "'<' not supported between instances of '%s' and '%s'", jv_type_name(a),
            jv_type_name(b));
}

void jv_write_float(jbuf *b, jrender *r, double f)
{
    if (isnan(f)) {
        jb_puts(r, b, "nan");
        return;
    }
    if (isinf(f)) {
        jb_puts(r, b, f < 0 ? "-inf" : "inf");
        return;
    }
    char buf[64];
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, sizeof buf, "%.*e", prec - 1, f);
        if (strtod(buf, NULL) == f)
            break;
    }
    /* buf: [-]d[.ddd]e[+-]XX → digits and decimal exponent */
    const char *s = buf;
    bool neg = *s == '-';
    if (neg)
        s++;
    char digits[32];
    int nd = 0;
    while (*s && *s != 'e') {
        if (*s != '.' && nd < 31)
            digits[nd++] = *s;
        s++;
    }
    int exp = *s == 'e' ? atoi(s + 1) : 0;
    while (nd > 1 && digits[nd - 1] == '0')
        nd--;
    char o[96];
    int n = 0;
    if (neg)
        o[n++] = '-';
    if (exp >= -4 && exp < 16) {
        if (exp >= 0) {
            for (int i = 0; i <= exp; i++)
                o[n++] = i < nd ? digits[i] : '0';
            o[n++] = '.';
            if (nd > exp + 1)
                for (int i = exp + 1; i < nd; i++)
                    o[n++] = digits[i];
            else
                o[n++] = '0';
        } else {
            o[n++] = '0';
            o[n++] = '.';
            for (int i = 0; i < -exp - 1; i++)
                o[n++] = '0';
            for (int i = 0; i < nd; i++)
                o[n++] = digits[i];
        }
        o[n] = 0;
    } else {
        o[n++] = digits[0];
        if (nd > 1) {
            o[n++] = '.';
            for (int i = 1; i < nd; i++)
                o[n++] = digits[i];
        }
        snprintf(o + n, sizeof o - (size_t)n, "e%c%02d", exp < 0 ? '-' : '+', exp < 0 ? -exp : exp);
    }
    jb_puts(r, b, o);
}

static void write_str_repr(jrender *r, jbuf *b, const char *s, size_t n)
{
    bool has_sq = memchr(s, '\'', n) != NULL, has_dq = memchr(s, '"', n) != NULL;
    char q = has_sq && !has_dq ? '"' : '\'';
    jb_putc(r, b, q);
    for (size_t i = 0; i < n;) {
        size_t len;
        uint32_t cp = jinja_utf8_decode(s + i, n - i, &len);
        char esc[16];
        if (cp == (uint32_t)q || cp == '\\') {
            esc[0] = '\\';
            esc[1] = (char)cp;
            jb_put(r, b, esc, 2);
        } else if (cp == '\n') {
            jb_puts(r, b, "\\n");
        } else if (cp == '\r') {
            jb_puts(r, b, "\\r");
        } else if (cp == '\t') {
            jb_puts(r, b, "\\t");
        } else if (cp < 0x20 || cp == 0x7F || (cp >= 0x80 && cp <= 0xA0) || cp == 0xAD) {
            snprintf(esc, sizeof esc, "\\x%02x", cp);
            jb_puts(r, b, esc);
        } else if (cp == 0x2028 || cp == 0x2029 || (cp >= 0x2000 && cp <= 0x200F) || cp == 0xFEFF) {
            snprintf(esc, sizeof esc, "\\u%04x", cp);
            jb_puts(r, b, esc);
        } else {
            jb_put(r, b, s + i, len);
        }
        i += len;
    }
    jb_putc(r, b, q);
}

static void write_container_items(jrender *r, jbuf *b, jv v)
{
    if (v.t == JV_LIST) {
        jb_putc(r, b, v.u.l->tuple ? '(' : '[');
        for (size_t i = 0; i < v.u.l->n; i++) {
            if (i)
                jb_puts(r, b, ", ");
            jv_write_repr(r, b, v.u.l->v[i]);
        }
        if (v.u.l->tuple && v.u.l->n == 1)
            jb_putc(r, b, ',');
        jb_putc(r, b, v.u.l->tuple ? ')' : ']');
    } else {
        jb_putc(r, b, '{');
        for (size_t i = 0; i < v.u.d->n; i++) {
            if (i)
                jb_puts(r, b, ", ");
            jv_write_repr(r, b, v.u.d->k[i]);
            jb_puts(r, b, ": ");
            jv_write_repr(r, b, v.u.d->v[i]);
        }
        jb_putc(r, b, '}');
    }
}

/* A namespace or list can be made to hold itself ({% set ns.n = ns %}): printing it would
 * recurse without end, so the depth is capped as the evaluator's is. */
static void write_container(jrender *r, jbuf *b, jv v)
{
    if (r && ++r->depth > JINJA_MAX_EVAL_DEPTH)
        jr_fail(r, NULL, PONDER_ERR_RANGE, "a value nested too deeply to print (does it contain itself?)");
    write_container_items(r, b, v);
    if (r)
        r->depth--;
}

static void write_common(jrender *r, jbuf *b, jv v, bool repr)
{
    char num[32];
    switch (v.t) {
    case JV_UNDEF:
        if (repr)
            jb_puts(r, b, "Undefined");
        return;
    case JV_NONE: jb_puts(r, b, "None"); return;
    case JV_BOOL: jb_puts(r, b, v.u.b ? "True" : "False"); return;
    case JV_INT:
        snprintf(num, sizeof num, "%lld", (long long)v.u.i);
        jb_puts(r, b, num);
        return;
    case JV_FLOAT: jv_write_float(b, r, v.u.f); return;
    case JV_STR:
        if (!repr) {
            jb_put(r, b, v.u.s.p, v.u.s.n);
        } else if (v.markup) {
            jb_puts(r, b, "Markup(");
            write_str_repr(r, b, v.u.s.p, v.u.s.n);
            jb_putc(r, b, ')');
        } else {
            write_str_repr(r, b, v.u.s.p, v.u.s.n);
        }
        return;
    case JV_LIST:
    case JV_DICT: write_container(r, b, v); return;
    case JV_NS: {
        jb_puts(r, b, "<Namespace ");
        jv d = { .t = JV_DICT };
        d.u.d = v.u.d;
        write_container(r, b, d);
        jb_putc(r, b, '>');
        return;
    }
    case JV_MACRO:
        jb_puts(r, b, "<Macro '");
        jb_puts(r, b, v.u.m->name ? v.u.m->name : "caller");
        jb_puts(r, b, "'>");
        return;
    case JV_FUNC:
        jb_puts(r, b, "<built-in function ");
        jb_puts(r, b, v.u.fn->name);
        jb_putc(r, b, '>');
        return;
    case JV_LOOP:
        snprintf(num, sizeof num, "%lld/%lld", (long long)v.u.loop->index0 + 1, (long long)v.u.loop->length);
        jb_puts(r, b, "<LoopContext ");
        jb_puts(r, b, num);
        jb_putc(r, b, '>');
        return;
    }
}

void jv_write_str(jrender *r, jbuf *b, jv v)
{
    write_common(r, b, v, false);
}

void jv_write_repr(jrender *r, jbuf *b, jv v)
{
    write_common(r, b, v, true);
}

jv jv_to_str(jrender *r, jv v)
{
    if (v.t == JV_STR)
        return v;
    jbuf b = { 0 };
    jv_write_str(r, &b, v);
    return jb_take(r, &b);
}

/* ---- JSON ---- */

static void write_json_string(jrender *r, jbuf *b, const char *s, size_t n, bool ensure_ascii)
{
    jb_putc(r, b, '"');
    size_t run = 0; /* start of the pending unescaped run */
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)s[i];
        const char *esc = NULL;
        char ubuf[16];
        size_t len = 1;
        switch (c) {
        case '"': esc = "\\\""; break;
        case '\\': esc = "\\\\"; break;
        case '\n': esc = "\\n"; break;
        case '\r': esc = "\\r"; break;
        case '\t': esc = "\\t"; break;
        case '\b': esc = "\\b"; break;
        case '\f': esc = "\\f"; break;
        default:
            if (c < 0x20) {
                snprintf(ubuf, sizeof ubuf, "\\u%04x", c);
                esc = ubuf;
            } else if (c >= 0x80 && ensure_ascii) {
                uint32_t cp = jinja_utf8_decode(s + i, n - i, &len);
                if (cp >= 0x10000) {
                    cp -= 0x10000;
                    snprintf(ubuf, sizeof ubuf, "\\u%04x\\u%04x", 0xD800 + (cp >> 10), 0xDC00 + (cp & 0x3FF));
                } else {
                    snprintf(ubuf, sizeof ubuf, "\\u%04x", cp);
                }
                esc = ubuf;
            }
        }
        if (esc) {
            jb_put(r, b, s + run, i - run);
            jb_puts(r, b, esc);
            i += len;
            run = i;
        } else {
            i++;
        }
    }
    jb_put(r, b, s + run, n - run);
    jb_putc(r, b, '"');
}

static void json_newline(jrender *r, jbuf *b, const jjson_opts *o, int level)
{
    jb_putc(r, b, '\n');
    for (int i = 0; i < level; i++)
        jb_puts(r, b, o->indent);
}

static jv json_key(jrender *r, const jnode *at, jv k)
{
    switch (k.t) {
    case JV_STR: return k;
    case JV_INT:
    case JV_FLOAT: return jv_to_str(r, k);
    case JV_BOOL: return jv_cstr(r, k.u.b ? "true" : "false");
    case JV_NONE: return jv_cstr(r, "null");
    default:
        jr_fail(r, at, PONDER_ERR_FORMAT, "keys must be str, int, float, bool or None, not %s", jv_type_name(k));
    }
}

static int cmp_json_keys(const void *x, const void *y)
{
    const jv *a = x, *b = y;
    size_t n = a->u.s.n < b->u.s.n ? a->u.s.n : b->u.s.n;
    int c = memcmp(a->u.s.p, b->u.s.p, n);
    return c ? c : (a->u.s.n > b->u.s.n) - (a->u.s.n < b->u.s.n);
}

void jv_write_json(jrender *r, const jnode *at, jbuf *b, jv v, const jjson_opts *o, int level)
{
    je_step(r, at);
    if (level > JINJA_MAX_PARSE_DEPTH * 2)
        jr_fail(r, at, PONDER_ERR_RANGE, "tojson: value nested too deeply");
    switch (v.t) {
    case JV_NONE: jb_puts(r, b, "null"); return;
    case JV_BOOL: jb_puts(r, b, v.u.b ? "true" : "false"); return;
    case JV_INT: jv_write_str(r, b, v); return;
    case JV_FLOAT:
        if (isnan(v.u.f))
            jb_puts(r, b, "NaN");
        else if (isinf(v.u.f))
            jb_puts(r, b, v.u.f < 0 ? "-Infinity" : "Infinity");
        else
            jv_write_float(b, r, v.u.f);
        return;
    case JV_STR: write_json_string(r, b, v.u.s.p, v.u.s.n, o->ensure_ascii); return;
    case JV_LIST:
        if (v.u.l->n == 0) {
            jb_puts(r, b, "[]");
            return;
        }
        jb_putc(r, b, '[');
        for (size_t i = 0; i < v.u.l->n; i++) {
            if (i)
                jb_puts(r, b, o->item_sep);
            if (o->indent)
                json_newline(r, b, o, level + 1);
            jv_write_json(r, at, b, v.u.l->v[i], o, level + 1);
        }
        if (o->indent)
            json_newline(r, b, o, level);
        jb_putc(r, b, ']');
        return;
    case JV_DICT:
    case JV_NS: {
        const jdict *d = v.u.d;
        if (d->n == 0) {
            jb_puts(r, b, "{}");
            return;
        }
        /* keys converted first (and sorted if asked), each paired with its value index */
        jv *keys = ja_alloc(&r->a, d->n * sizeof *keys);
        for (size_t i = 0; i < d->n; i++) {
            keys[i] = json_key(r, at, d->k[i]);
            keys[i].markup = 0;
        }
        size_t *order = ja_alloc(&r->a, d->n * sizeof *order);
        for (size_t i = 0; i < d->n; i++)
            order[i] = i;
        if (o->sort_keys) {
            /* stable insertion sort over indexes (dicts in templates are small) */
            for (size_t i = 1; i < d->n; i++) {
                size_t x = order[i], j = i;
                while (j > 0 && cmp_json_keys(&keys[order[j - 1]], &keys[x]) > 0) {
                    order[j] = order[j - 1];
                    j--;
                }
                order[j] = x;
            }
        }
        jb_putc(r, b, '{');
        for (size_t i = 0; i < d->n; i++) {
            if (i)
                jb_puts(r, b, o->item_sep);
            if (o->indent)
                json_newline(r, b, o, level + 1);
            jv k = keys[order[i]];
            write_json_string(r, b, k.u.s.p, k.u.s.n, o->ensure_ascii);
            jb_puts(r, b, o->key_sep);
            jv_write_json(r, at, b, d->v[order[i]], o, level + 1);
        }
        if (o->indent)
            json_newline(r, b, o, level);
        jb_putc(r, b, '}');
        return;
    }
    default:
        jr_fail(r, at, PONDER_ERR_FORMAT, "Object of type %s is not JSON serializable", jv_type_name(v));
    }
}

/* ---- strings and iteration ---- */

size_t js_cp_len(const char *s, size_t n)
{
    size_t c = 0;
    for (size_t i = 0; i < n;) {
        size_t len;
        jinja_utf8_decode(s + i, n - i, &len);
        i += len;
        c++;
    }
    return c;
}

size_t js_cp_offset(const char *s, size_t n, size_t k)
{
    size_t i = 0;
    while (k > 0 && i < n) {
        size_t len;
        jinja_utf8_decode(s + i, n - i, &len);
        i += len;
        k--;
    }
    return i;
}

jlist *jv_iter_list(jrender *r, const jnode *at, jv v)
{
    switch (v.t) {
    case JV_UNDEF: {
        jv l = jv_list_new(r, 0);
        return l.u.l;
    }
    case JV_LIST: return v.u.l;
    case JV_DICT: {
        jv l = jv_list_new(r, v.u.d->n);
        for (size_t i = 0; i < v.u.d->n; i++)
            jv_list_push(r, &l, v.u.d->k[i]);
        return l.u.l;
    }
    case JV_STR: {
        jv l = jv_list_new(r, v.u.s.n);
        for (size_t i = 0; i < v.u.s.n;) {
            size_t len;
            jinja_utf8_decode(v.u.s.p + i, v.u.s.n - i, &len);
            jv c = jv_str(r, v.u.s.p + i, len);
            c.markup = v.markup;
            jv_list_push(r, &l, c);
            i += len;
        }
        return l.u.l;
    }
    default:
        jr_fail(r, at, PONDER_ERR_FORMAT, "'%s' object is not iterable", jv_type_name(v));
    }
}
