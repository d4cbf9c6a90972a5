/*
 * builtins.c — jinja2's built-in filters and tests, the Python methods templates call on
 * strings, dicts and lists, attribute/item lookup, and the globals transformers adds
 * (raise_exception, strftime_now) next to jinja2's own (range, namespace, dict).
 *
 * Each filter keeps jinja2 3.1's signature and defaults (e.g. unique/sort/dictsort compare
 * strings case-insensitively unless case_sensitive=true). Mutating methods (append,
 * update, pop, ...) are refused as ImmutableSandboxedEnvironment refuses them. Case
 * mapping is ASCII-only.
 */
#include "chat/eval.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NOT_GIVEN(v) ((v).t == JV_UNDEF && (v).u.s.p == NULL)

/* Binds positional and keyword arguments to names[0..n); absent ones are NOT_GIVEN. */
static void bind(jrender *r, const jnode *at, const char *fname, const jargs *a, const char *const *names, size_t n,
                 jv *out)
{
    for (size_t i = 0; i < n; i++)
        out[i] = jv_undef(NULL);
    if (a->n_pos > n)
        jr_fail(r, at, PONDER_ERR_FORMAT, "%s() takes at most %zu argument%s (%zu given)", fname, n, n == 1 ? "" : "s",
                a->n_pos);
    for (size_t i = 0; i < a->n_pos; i++)
        out[i] = a->pos[i];
    for (size_t k = 0; k < a->n_kw; k++) {
        size_t i = 0;
        while (i < n && strcmp(names[i], a->kw_names[k]) != 0)
            i++;
        if (i == n)
            jr_fail(r, at, PONDER_ERR_FORMAT, "%s() got an unexpected keyword argument '%s'", fname, a->kw_names[k]);
        out[i] = a->kw[k];
    }
}

#define BIND(fname, ...)                                                              \
    static const char *const bind_names_[] = { __VA_ARGS__ };                         \
    jv arg[sizeof bind_names_ / sizeof bind_names_[0]];                               \
    bind(r, at, fname, a, bind_names_, sizeof bind_names_ / sizeof bind_names_[0], arg)

static void no_args(jrender *r, const jnode *at, const char *fname, const jargs *a)
{
    if (a->n_pos || a->n_kw)
        jr_fail(r, at, PONDER_ERR_FORMAT, "%s() takes no arguments", fname);
}

static jv need_str(jrender *r, const jnode *at, const char *what, jv v)
{
    if (v.t != JV_STR)
        jr_fail(r, at, PONDER_ERR_FORMAT, "%s must be a string, not '%s'", what, jv_type_name(v));
    return v;
}

static int64_t need_int(jrender *r, const jnode *at, const char *what, jv v)
{
    if (v.t == JV_INT)
        return v.u.i;
    if (v.t == JV_BOOL)
        return v.u.b;
    jr_fail(r, at, PONDER_ERR_FORMAT, "%s must be an integer, not '%s'", what, jv_type_name(v));
}

static jv str_or_empty(jrender *r, jv v)
{
    if (v.t == JV_UNDEF)
        return jv_str_nocopy("", 0);
    return jv_to_str(r, v);
}

/* ---- string helpers ---- */

static bool in_chars(uint32_t cp, jv chars)
{
    for (size_t i = 0; i < chars.u.s.n;) {
        size_t len;
        if (jinja_utf8_decode(chars.u.s.p + i, chars.u.s.n - i, &len) == cp)
            return true;
        i += len;
    }
    return false;
}

/* Python str.strip/lstrip/rstrip; chars NOT_GIVEN/None → whitespace. */
static jv py_strip(jrender *r, jv s, jv chars, bool left, bool right)
{
    bool ws = NOT_GIVEN(chars) || chars.t == JV_NONE || chars.t == JV_UNDEF;
    size_t b = 0, e = s.u.s.n;
    if (left) {
        while (b < e) {
            size_t len;
            uint32_t cp = jinja_utf8_decode(s.u.s.p + b, e - b, &len);
            if (ws ? !jinja_py_isspace(cp) : !in_chars(cp, chars))
                break;
            b += len;
        }
    }
    if (right) {
        while (e > b) {
            size_t st = e - 1;
            while (st > b && ((unsigned char)s.u.s.p[st] & 0xC0) == 0x80 && e - st < 4)
                st--;
            size_t len;
            uint32_t cp = jinja_utf8_decode(s.u.s.p + st, e - st, &len);
            if (st + len != e)
                st = e - 1, cp = (unsigned char)s.u.s.p[e - 1];
            if (ws ? !jinja_py_isspace(cp) : !in_chars(cp, chars))
                break;
            e = st;
        }
    }
    jv v = jv_str(r, s.u.s.p + b, e - b);
    v.markup = s.markup;
    return v;
}

static jv map_case(jrender *r, jv s, int mode) /* 0 lower, 1 upper, 2 swap */
{
    char *p = ja_strndup(&r->a, s.u.s.p, s.u.s.n);
    for (size_t i = 0; i < s.u.s.n; i++) {
        char c = p[i];
        bool lo = c >= 'a' && c <= 'z', up = c >= 'A' && c <= 'Z';
        if (up && (mode == 0 || mode == 2))
            p[i] = (char)(c + 32);
        else if (lo && (mode == 1 || mode == 2))
            p[i] = (char)(c - 32);
    }
    jv v = jv_str_nocopy(p, s.u.s.n);
    v.markup = s.markup;
    return v;
}

static bool is_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || ((unsigned char)c >= 0x80);
}

/* Python str.title: a letter after a non-letter is upper-cased, other letters lowered. */
static jv py_title(jrender *r, jv s)
{
    char *p = ja_strndup(&r->a, s.u.s.p, s.u.s.n);
    bool prev_letter = false;
    for (size_t i = 0; i < s.u.s.n; i++) {
        char c = p[i];
        if (c >= 'a' && c <= 'z' && !prev_letter)
            p[i] = (char)(c - 32);
        else if (c >= 'A' && c <= 'Z' && prev_letter)
            p[i] = (char)(c + 32);
        prev_letter = is_alpha(c);
    }
    return jv_str_nocopy(p, s.u.s.n);
}

static jv py_capitalize(jrender *r, jv s)
{
    jv v = map_case(r, s, 0);
    char *p = (char *)v.u.s.p;
    if (v.u.s.n && p[0] >= 'a' && p[0] <= 'z')
        p[0] = (char)(p[0] - 32);
    return v;
}

static jv str_replace(jrender *r, jv s, jv old, jv new_, int64_t count)
{
    jbuf b = { 0 };
    size_t i = 0;
    int64_t done = 0;
    if (old.u.s.n == 0) {
        /* Python inserts `new` between characters (and at both ends) */
        jb_put(r, &b, new_.u.s.p, count != 0 ? new_.u.s.n : 0);
        done = 1;
        while (i < s.u.s.n) {
            size_t len;
            jinja_utf8_decode(s.u.s.p + i, s.u.s.n - i, &len);
            jb_put(r, &b, s.u.s.p + i, len);
            i += len;
            if (count < 0 || done < count) {
                jb_put(r, &b, new_.u.s.p, new_.u.s.n);
                done++;
            }
        }
        return jb_take(r, &b);
    }
    while (i < s.u.s.n) {
        const char *hit = (count < 0 || done < count) && s.u.s.n - i >= old.u.s.n
                              ? memmem(s.u.s.p + i, s.u.s.n - i, old.u.s.p, old.u.s.n)
                              : NULL;
        if (!hit) {
            jb_put(r, &b, s.u.s.p + i, s.u.s.n - i);
            break;
        }
        size_t at = (size_t)(hit - s.u.s.p);
        jb_put(r, &b, s.u.s.p + i, at - i);
        jb_put(r, &b, new_.u.s.p, new_.u.s.n);
        i = at + old.u.s.n;
        done++;
    }
    return jb_take(r, &b);
}

static jv py_split(jrender *r, const jnode *at, jv s, jv sep, int64_t maxsplit)
{
    jv l = jv_list_new(r, 0);
    const char *p = s.u.s.p;
    size_t n = s.u.s.n, i = 0;
    int64_t splits = 0;
    if (NOT_GIVEN(sep) || sep.t == JV_NONE) {
        for (;;) {
            while (i < n) {
                size_t len;
                if (!jinja_py_isspace(jinja_utf8_decode(p + i, n - i, &len)))
                    break;
                i += len;
            }
            if (i >= n)
                break;
            if (maxsplit >= 0 && splits >= maxsplit) {
                size_t e = n;
                jv rest = py_strip(r, jv_str_nocopy(p + i, e - i), jv_undef(NULL), false, true);
                jv_list_push(r, &l, rest);
                break;
            }
            size_t b = i;
            while (i < n) {
                size_t len;
                if (jinja_py_isspace(jinja_utf8_decode(p + i, n - i, &len)))
                    break;
                i += len;
            }
            jv_list_push(r, &l, jv_str(r, p + b, i - b));
            splits++;
        }
        return l;
    }
    need_str(r, at, "split() separator", sep);
    if (sep.u.s.n == 0)
        jr_fail(r, at, PONDER_ERR_FORMAT, "empty separator");
    for (;;) {
        const char *hit = (maxsplit < 0 || splits < maxsplit) && n - i >= sep.u.s.n
                              ? memmem(p + i, n - i, sep.u.s.p, sep.u.s.n)
                              : NULL;
        if (!hit) {
            jv_list_push(r, &l, jv_str(r, p + i, n - i));
            break;
        }
        size_t e = (size_t)(hit - p);
        jv_list_push(r, &l, jv_str(r, p + i, e - i));
        i = e + sep.u.s.n;
        splits++;
    }
    return l;
}

/* Python str.splitlines (without keepends). */
static jv py_splitlines(jrender *r, jv s)
{
    jv l = jv_list_new(r, 0);
    const char *p = s.u.s.p;
    size_t n = s.u.s.n, b = 0, i = 0;
    while (i < n) {
        size_t len;
        uint32_t cp = jinja_utf8_decode(p + i, n - i, &len);
        bool brk = cp == '\n' || cp == '\r' || cp == 0x0B || cp == 0x0C || cp == 0x1C || cp == 0x1D || cp == 0x1E ||
                   cp == 0x85 || cp == 0x2028 || cp == 0x2029;
        if (!brk) {
            i += len;
            continue;
        }
        jv line = jv_str(r, p + b, i - b);
        line.markup = s.markup;
        jv_list_push(r, &l, line);
        i += len;
        if (cp == '\r' && i < n && p[i] == '\n')
            i++;
        b = i;
    }
    if (b < n) {
        jv line = jv_str(r, p + b, n - b);
        line.markup = s.markup;
        jv_list_push(r, &l, line);
    }
    return l;
}

static bool affix_match(jv s, jv x, bool end)
{
    if (x.t != JV_STR || x.u.s.n > s.u.s.n)
        return false;
    const char *at = end ? s.u.s.p + s.u.s.n - x.u.s.n : s.u.s.p;
    return memcmp(at, x.u.s.p, x.u.s.n) == 0;
}

static jv str_join(jrender *r, jv sep, jlist *items)
{
    jbuf b = { 0 };
    for (size_t i = 0; i < items->n; i++) {
        if (i)
            jb_put(r, &b, sep.u.s.p, sep.u.s.n);
        jv_write_str(r, &b, items->v[i]);
    }
    return jb_take(r, &b);
}

/* ---- attribute and item lookup ---- */

static jv undef_attr(jrender *r, jv obj, const char *name, size_t name_len)
{
    size_t n = name_len + 64;
    char *msg = ja_alloc(&r->a, n);
    snprintf(msg, n, "'%s object' has no attribute '%.*s'", jv_type_name(obj), (int)name_len, name);
    return jv_undef(msg);
}

static bool name_in(const char *name, size_t n, const char *const *list)
{
    for (; *list; list++)
        if (strlen(*list) == n && memcmp(*list, name, n) == 0)
            return true;
    return false;
}

static const char *const str_methods[] = {
    "strip", "lstrip", "rstrip", "split", "rsplit", "splitlines", "startswith", "endswith", "upper", "lower",
    "title", "capitalize", "swapcase", "replace", "find", "rfind", "index", "count", "join", "isdigit", "isalpha",
    "isalnum", "isspace", "isupper", "islower", "isnumeric", "isdecimal", "istitle", "format", "center", "ljust",
    "rjust", "zfill", "removeprefix", "removesuffix", "partition", "rpartition", "casefold", "expandtabs", NULL
};
static const char *const dict_methods[] = { "items", "keys", "values", "get", "copy", NULL };
static const char *const list_methods[] = { "index", "count", "copy", NULL };
static const char *const mutating_methods[] = { "append", "extend", "insert", "pop", "remove", "clear", "sort",
                                                "reverse", "update", "setdefault", "popitem", "add", "discard",
                                                "__setitem__", "__delitem__", NULL };

jv jb_getattr(jrender *r, const jnode *at, jv obj, const char *name, size_t name_len)
{
    (void)at;
    switch (obj.t) {
    case JV_DICT:
        if (name_in(name, name_len, dict_methods) || name_in(name, name_len, mutating_methods))
            return jv_func(r, JF_METHOD, ja_strndup(&r->a, name, name_len), obj);
        /* fall through */
    case JV_NS: {
        jv v;
        if (jv_dict_get(obj.u.d, jv_str_nocopy(name, name_len), &v))
            return v;
        return undef_attr(r, obj, name, name_len);
    }
    case JV_STR:
        if (name_in(name, name_len, str_methods))
            return jv_func(r, JF_METHOD, ja_strndup(&r->a, name, name_len), obj);
        return undef_attr(r, obj, name, name_len);
    case JV_LIST:
        if (name_in(name, name_len, list_methods) || name_in(name, name_len, mutating_methods))
            return jv_func(r, JF_METHOD, ja_strndup(&r->a, name, name_len), obj);
        return undef_attr(r, obj, name, name_len);
    case JV_LOOP: {
        const jloop *l = obj.u.loop;
        char nm[16];
        if (name_len >= sizeof nm)
            return undef_attr(r, obj, name, name_len);
        memcpy(nm, name, name_len);
        nm[name_len] = 0;
        if (!strcmp(nm, "index"))
            return jv_int(l->index0 + 1);
        if (!strcmp(nm, "index0"))
            return jv_int(l->index0);
        if (!strcmp(nm, "revindex"))
            return jv_int(l->length - l->index0);
        if (!strcmp(nm, "revindex0"))
            return jv_int(l->length - l->index0 - 1);
        if (!strcmp(nm, "first"))
            return jv_bool(l->index0 == 0);
        if (!strcmp(nm, "last"))
            return jv_bool(l->index0 == l->length - 1);
        if (!strcmp(nm, "length"))
            return jv_int(l->length);
        if (!strcmp(nm, "depth"))
            return jv_int(l->depth0 + 1);
        if (!strcmp(nm, "depth0"))
            return jv_int(l->depth0);
        if (!strcmp(nm, "previtem"))
            return l->index0 > 0 ? l->items->v[l->index0 - 1] : jv_undef("there is no previous item");
        if (!strcmp(nm, "nextitem"))
            return l->index0 + 1 < l->length ? l->items->v[l->index0 + 1] : jv_undef("there is no next item");
        if (!strcmp(nm, "cycle") || !strcmp(nm, "changed"))
            return jv_func(r, JF_CYCLER, nm[1] == 'y' ? "cycle" : "changed", obj);
        return undef_attr(r, obj, name, name_len);
    }
    default: return undef_attr(r, obj, name, name_len);
    }
}

jv jb_getitem(jrender *r, const jnode *at, jv obj, jv key)
{
    switch (obj.t) {
    case JV_DICT:
    case JV_NS: {
        jv v;
        if (jv_dict_get(obj.u.d, key, &v))
            return v;
        if (key.t == JV_STR && obj.t == JV_DICT)
            return jb_getattr(r, at, obj, key.u.s.p, key.u.s.n);
        break;
    }
    case JV_LIST:
    case JV_STR:
        if (key.t == JV_INT || key.t == JV_BOOL) {
            int64_t i = key.t == JV_INT ? key.u.i : key.u.b;
            int64_t n = obj.t == JV_LIST ? (int64_t)obj.u.l->n : (int64_t)js_cp_len(obj.u.s.p, obj.u.s.n);
            if (i < 0)
                i += n;
            if (i < 0 || i >= n)
                return jv_undef(obj.t == JV_LIST ? "list index out of range" : "string index out of range");
            if (obj.t == JV_LIST)
                return obj.u.l->v[i];
            size_t b = js_cp_offset(obj.u.s.p, obj.u.s.n, (size_t)i), len;
            jinja_utf8_decode(obj.u.s.p + b, obj.u.s.n - b, &len);
            jv c = jv_str(r, obj.u.s.p + b, len);
            c.markup = obj.markup;
            return c;
        }
        if (key.t == JV_STR)
            return jb_getattr(r, at, obj, key.u.s.p, key.u.s.n);
        break;
    case JV_LOOP:
        if (key.t == JV_STR)
            return jb_getattr(r, at, obj, key.u.s.p, key.u.s.n);
        break;
    default: break;
    }
    jbuf b = { 0 };
    jb_puts(r, &b, "'");
    jb_puts(r, &b, jv_type_name(obj));
    jb_puts(r, &b, " object' has no attribute ");
    jv_write_repr(r, &b, key);
    return jv_undef(b.p);
}

/* jinja2's make_attrgetter: "a.b.0" walks items/attributes, integers as indexes. */
static jv attr_path(jrender *r, const jnode *at, jv v, jv path)
{
    if (path.t == JV_INT)
        return jb_getitem(r, at, v, path);
    need_str(r, at, "attribute", path);
    const char *p = path.u.s.p, *end = p + path.u.s.n;
    while (p <= end) {
        const char *dot = memchr(p, '.', (size_t)(end - p));
        if (!dot)
            dot = end;
        size_t n = (size_t)(dot - p);
        bool digits = n > 0;
        int64_t idx = 0;
        for (size_t i = 0; i < n; i++) {
            if (p[i] < '0' || p[i] > '9' || idx > INT64_MAX / 10 - 10) {
                digits = false;
                break;
            }
            idx = idx * 10 + (p[i] - '0');
        }
        if (v.t == JV_UNDEF)
            return v;
        v = digits ? jb_getitem(r, at, v, jv_int(idx)) : jb_getitem(r, at, v, jv_str(r, p, n));
        p = dot + 1;
    }
    return v;
}

/* ---- sorting (stable merge sort; the comparator may fail and unwind) ---- */

typedef struct sort_ctx {
    jrender *r;
    const jnode *at;
    bool ignore_case;
    bool reverse;
} sort_ctx;

static jv sort_key(sort_ctx *c, jv v)
{
    if (c->ignore_case && v.t == JV_STR)
        return map_case(c->r, v, 0);
    return v;
}

static void merge_sort(sort_ctx *c, jv *keys, jv *vals, size_t n, jv *tk, jv *tv)
{
    if (n < 2)
        return;
    size_t h = n / 2;
    merge_sort(c, keys, vals, h, tk, tv);
    merge_sort(c, keys + h, vals + h, n - h, tk, tv);
    size_t i = 0, j = h, o = 0;
    while (i < h && j < n) {
        int cmp = jv_compare(c->r, c->at, keys[j], keys[i]);
        bool take_right = c->reverse ? cmp > 0 : cmp < 0;
        if (take_right) {
            tk[o] = keys[j];
            tv[o++] = vals[j++];
        } else {
            tk[o] = keys[i];
            tv[o++] = vals[i++];
        }
    }
    while (i < h) {
        tk[o] = keys[i];
        tv[o++] = vals[i++];
    }
    while (j < n) {
        tk[o] = keys[j];
        tv[o++] = vals[j++];
    }
    memcpy(keys, tk, n * sizeof *keys);
    memcpy(vals, tv, n * sizeof *vals);
}

static jv sorted(sort_ctx *c, jlist *items, jv *keys)
{
    size_t n = items->n;
    jv out = jv_list_new(c->r, n);
    jv *vals = out.u.l->v;
    if (n)
        memcpy(vals, items->v, n * sizeof *vals);
    out.u.l->n = n;
    jv *tk = ja_alloc(&c->r->a, (n + 1) * sizeof *tk), *tv = ja_alloc(&c->r->a, (n + 1) * sizeof *tv);
    merge_sort(c, keys, vals, n, tk, tv);
    return out;
}

/* ---- tests ---- */

typedef bool (*test_fn)(jrender *r, const jnode *at, jv v, jargs *a);

static jv test_arg(jrender *r, const jnode *at, const char *name, jargs *a)
{
    if (a->n_pos + a->n_kw != 1)
        jr_fail(r, at, PONDER_ERR_FORMAT, "test '%s' takes one argument", name);
    return a->n_pos ? a->pos[0] : a->kw[0];
}

static bool t_defined(jrender *r, const jnode *at, jv v, jargs *a) { (void)r; (void)at; (void)a; return v.t != JV_UNDEF; }
static bool t_undefined(jrender *r, const jnode *at, jv v, jargs *a) { (void)r; (void)at; (void)a; return v.t == JV_UNDEF; }
static bool t_none(jrender *r, const jnode *at, jv v, jargs *a) { (void)r; (void)at; (void)a; return v.t == JV_NONE; }
static bool t_boolean(jrender *r, const jnode *at, jv v, jargs *a) { (void)r; (void)at; (void)a; return v.t == JV_BOOL; }
static bool t_true(jrender *r, const jnode *at, jv v, jargs *a) { (void)r; (void)at; (void)a; return v.t == JV_BOOL && v.u.b; }
static bool t_false(jrender *r, const jnode *at, jv v, jargs *a) { (void)r; (void)at; (void)a; return v.t == JV_BOOL && !v.u.b; }
static bool t_string(jrender *r, const jnode *at, jv v, jargs *a) { (void)r; (void)at; (void)a; return v.t == JV_STR; }
static bool t_number(jrender *r, const jnode *at, jv v, jargs *a) { (void)r; (void)at; (void)a; return jv_is_number(v); }
static bool t_integer(jrender *r, const jnode *at, jv v, jargs *a) { (void)r; (void)at; (void)a; return v.t == JV_INT; }
static bool t_float(jrender *r, const jnode *at, jv v, jargs *a) { (void)r; (void)at; (void)a; return v.t == JV_FLOAT; }
static bool t_mapping(jrender *r, const jnode *at, jv v, jargs *a) { (void)r; (void)at; (void)a; return v.t == JV_DICT; }
static bool t_escaped(jrender *r, const jnode *at, jv v, jargs *a) { (void)r; (void)at; (void)a; return v.t == JV_STR && v.markup; }
/* jinja2's Undefined defines __iter__, so `undefined is iterable` is true */
static bool t_iterable(jrender *r, const jnode *at, jv v, jargs *a)
{
    (void)r; (void)at; (void)a;
    return v.t == JV_STR || v.t == JV_LIST || v.t == JV_DICT || v.t == JV_UNDEF;
}
static bool t_sequence(jrender *r, const jnode *at, jv v, jargs *a)
{
    (void)r; (void)at; (void)a;
    return v.t == JV_STR || v.t == JV_LIST || v.t == JV_DICT;
}
static bool t_callable(jrender *r, const jnode *at, jv v, jargs *a)
{
    (void)r; (void)at; (void)a;
    return v.t == JV_MACRO || v.t == JV_FUNC || (v.t == JV_LOOP && v.u.loop->node->flag);
}
static bool t_eq(jrender *r, const jnode *at, jv v, jargs *a) { return jv_equal(v, test_arg(r, at, "eq", a)); }
static bool t_ne(jrender *r, const jnode *at, jv v, jargs *a) { return !jv_equal(v, test_arg(r, at, "ne", a)); }
static bool t_lt(jrender *r, const jnode *at, jv v, jargs *a) { return jv_compare(r, at, v, test_arg(r, at, "lt", a)) < 0; }
static bool t_le(jrender *r, const jnode *at, jv v, jargs *a) { return jv_compare(r, at, v, test_arg(r, at, "le", a)) <= 0; }
static bool t_gt(jrender *r, const jnode *at, jv v, jargs *a) { return jv_compare(r, at, v, test_arg(r, at, "gt", a)) > 0; }
static bool t_ge(jrender *r, const jnode *at, jv v, jargs *a) { return jv_compare(r, at, v, test_arg(r, at, "ge", a)) >= 0; }
static bool t_sameas(jrender *r, const jnode *at, jv v, jargs *a)
{
    jv o = test_arg(r, at, "sameas", a);
    if (v.t != o.t)
        return false;
    switch (v.t) {
    case JV_NONE: case JV_UNDEF: return true;
    case JV_BOOL: return v.u.b == o.u.b;
    case JV_INT: return v.u.i == o.u.i;
    case JV_STR: return v.u.s.p == o.u.s.p;
    default: return v.u.l == o.u.l;
    }
}
static bool t_in(jrender *r, const jnode *at, jv v, jargs *a)
{
    jv seq = test_arg(r, at, "in", a);
    if (seq.t == JV_STR)
        return v.t == JV_STR && (v.u.s.n == 0 || (v.u.s.n <= seq.u.s.n && memmem(seq.u.s.p, seq.u.s.n, v.u.s.p, v.u.s.n)));
    jlist *l = jv_iter_list(r, at, seq);
    for (size_t i = 0; i < l->n; i++)
        if (jv_equal(v, l->v[i]))
            return true;
    return false;
}
static bool t_divisibleby(jrender *r, const jnode *at, jv v, jargs *a)
{
    jv d = test_arg(r, at, "divisibleby", a);
    if (!jv_is_number(v) || !jv_is_number(d))
        jr_fail(r, at, PONDER_ERR_FORMAT, "divisibleby needs numbers");
    if (v.t != JV_FLOAT && d.t != JV_FLOAT) {
        int64_t x = v.t == JV_INT ? v.u.i : v.u.b, y = d.t == JV_INT ? d.u.i : d.u.b;
        if (y == 0)
            jr_fail(r, at, PONDER_ERR_FORMAT, "integer division or modulo by zero");
        return y == -1 || x % y == 0;
    }
    double y = jv_as_double(d);
    if (y == 0)
        jr_fail(r, at, PONDER_ERR_FORMAT, "float modulo");
    return fmod(jv_as_double(v), y) == 0;
}
static bool t_even(jrender *r, const jnode *at, jv v, jargs *a)
{
    (void)a;
    return need_int(r, at, "even", v) % 2 == 0;
}
static bool t_odd(jrender *r, const jnode *at, jv v, jargs *a)
{
    (void)a;
    return need_int(r, at, "odd", v) % 2 != 0;
}
static bool t_lower(jrender *r, const jnode *at, jv v, jargs *a)
{
    (void)r; (void)at; (void)a;
    if (v.t != JV_STR)
        return false;
    bool cased = false;
    for (size_t i = 0; i < v.u.s.n; i++) {
        if (v.u.s.p[i] >= 'A' && v.u.s.p[i] <= 'Z')
            return false;
        cased |= v.u.s.p[i] >= 'a' && v.u.s.p[i] <= 'z';
    }
    return cased;
}
static bool t_upper(jrender *r, const jnode *at, jv v, jargs *a)
{
    (void)r; (void)at; (void)a;
    if (v.t != JV_STR)
        return false;
    bool cased = false;
    for (size_t i = 0; i < v.u.s.n; i++) {
        if (v.u.s.p[i] >= 'a' && v.u.s.p[i] <= 'z')
            return false;
        cased |= v.u.s.p[i] >= 'A' && v.u.s.p[i] <= 'Z';
    }
    return cased;
}
static bool t_filter(jrender *r, const jnode *at, jv v, jargs *a)
{
    (void)r; (void)at; (void)a;
    return v.t == JV_STR && jb_has_filter(v.u.s.p);
}
static bool t_test(jrender *r, const jnode *at, jv v, jargs *a)
{
    (void)r; (void)at; (void)a;
    return v.t == JV_STR && jb_has_test(v.u.s.p);
}

static const struct { const char *name; test_fn fn; } tests[] = {
    { "defined", t_defined }, { "undefined", t_undefined }, { "none", t_none }, { "boolean", t_boolean },
    { "true", t_true }, { "false", t_false }, { "string", t_string }, { "number", t_number },
    { "integer", t_integer }, { "float", t_float }, { "mapping", t_mapping }, { "iterable", t_iterable },
    { "sequence", t_sequence }, { "callable", t_callable }, { "escaped", t_escaped },
    { "eq", t_eq }, { "equalto", t_eq }, { "==", t_eq }, { "ne", t_ne }, { "!=", t_ne },
    { "lt", t_lt }, { "lessthan", t_lt }, { "<", t_lt }, { "le", t_le }, { "<=", t_le },
    { "gt", t_gt }, { "greaterthan", t_gt }, { ">", t_gt }, { "ge", t_ge }, { ">=", t_ge },
    { "sameas", t_sameas }, { "in", t_in }, { "divisibleby", t_divisibleby }, { "even", t_even },
    { "odd", t_odd }, { "lower", t_lower }, { "upper", t_upper }, { "filter", t_filter }, { "test", t_test },
};

static test_fn find_test(const char *name)
{
    for (size_t i = 0; i < sizeof tests / sizeof tests[0]; i++)
        if (!strcmp(tests[i].name, name))
            return tests[i].fn;
    return NULL;
}

bool jb_has_test(const char *name)
{
    return find_test(name) != NULL;
}

bool jb_call_test(jrender *r, const jnode *at, const char *name, jv self, jargs *a)
{
    test_fn fn = find_test(name);
    if (!fn)
        jr_fail(r, at, PONDER_ERR_UNSUPPORTED, "no test named '%s'", name);
    return fn(r, at, self, a);
}

/* select/reject helpers: args[first..] are (test name, test args...) */
static bool apply_test(jrender *r, const jnode *at, jv item, const jargs *a, size_t first)
{
    if (a->n_pos <= first)
        return jv_truthy(item);
    jv name = need_str(r, at, "test name", a->pos[first]);
    jargs ta = { .n_pos = a->n_pos - first - 1, .pos = a->pos + first + 1 };
    return jb_call_test(r, at, name.u.s.p, item, &ta);
}

/* ---- filters ---- */

typedef jv (*filter_fn)(jrender *r, const jnode *at, jv v, jargs *a);

static jv f_tojson(jrender *r, const jnode *at, jv v, jargs *a)
{
    BIND("tojson", "ensure_ascii", "indent", "separators", "sort_keys");
    jjson_opts o = { .indent = NULL, .item_sep = ", ", .key_sep = ": " };
    o.ensure_ascii = !NOT_GIVEN(arg[0]) && jv_truthy(arg[0]);
    o.sort_keys = !NOT_GIVEN(arg[3]) && jv_truthy(arg[3]);
    if (!NOT_GIVEN(arg[1]) && arg[1].t != JV_NONE) {
        if (arg[1].t == JV_STR) {
            o.indent = arg[1].u.s.p;
        } else {
            int64_t n = need_int(r, at, "indent", arg[1]);
            if (n > 64)
                n = 64;
            char *sp = ja_alloc(&r->a, (size_t)(n > 0 ? n : 0) + 1);
            for (int64_t i = 0; i < n; i++)
                sp[i] = ' ';
            o.indent = sp;
        }
        o.item_sep = ",";
    }
    if (!NOT_GIVEN(arg[2]) && arg[2].t != JV_NONE) {
        if (arg[2].t != JV_LIST || arg[2].u.l->n != 2 || arg[2].u.l->v[0].t != JV_STR || arg[2].u.l->v[1].t != JV_STR)
            jr_fail(r, at, PONDER_ERR_FORMAT, "tojson separators must be a pair of strings");
        o.item_sep = arg[2].u.l->v[0].u.s.p;
        o.key_sep = arg[2].u.l->v[1].u.s.p;
    }
    jbuf b = { 0 };
    jv_write_json(r, at, &b, v, &o, 0);
    return jb_take(r, &b);
}

static jv f_trim(jrender *r, const jnode *at, jv v, jargs *a)
{
    BIND("trim", "chars");
    return py_strip(r, str_or_empty(r, v), arg[0], true, true);
}

static int64_t length_of(jrender *r, const jnode *at, jv v)
{
    switch (v.t) {
    case JV_STR: return (int64_t)js_cp_len(v.u.s.p, v.u.s.n);
    case JV_LIST: return (int64_t)v.u.l->n;
    case JV_DICT: return (int64_t)v.u.d->n;
    case JV_UNDEF: return 0;
    default: jr_fail(r, at, PONDER_ERR_FORMAT, "object of type '%s' has no len()", jv_type_name(v));
    }
}

static jv f_length(jrender *r, const jnode *at, jv v, jargs *a)
{
    no_args(r, at, "length", a);
    return jv_int(length_of(r, at, v));
}

static jv dict_items(jrender *r, jv d)
{
    jv l = jv_list_new(r, d.u.d->n);
    for (size_t i = 0; i < d.u.d->n; i++) {
        jv t = jv_list_new(r, 2);
        t.u.l->tuple = true;
        jv_list_push(r, &t, d.u.d->k[i]);
        jv_list_push(r, &t, d.u.d->v[i]);
        jv_list_push(r, &l, t);
    }
    return l;
}

static jv f_items(jrender *r, const jnode *at, jv v, jargs *a)
{
    no_args(r, at, "items", a);
    if (v.t == JV_UNDEF)
        return jv_list_new(r, 0);
    if (v.t != JV_DICT)
        jr_fail(r, at, PONDER_ERR_FORMAT, "can only get item pairs from a mapping");
    return dict_items(r, v);
}

static jv f_join(jrender *r, const jnode *at, jv v, jargs *a)
{
    BIND("join", "d", "attribute");
    jv sep = NOT_GIVEN(arg[0]) ? jv_str_nocopy("", 0) : jv_to_str(r, arg[0]);
    jlist *items = jv_iter_list(r, at, v);
    if (!NOT_GIVEN(arg[1])) {
        jv l = jv_list_new(r, items->n);
        for (size_t i = 0; i < items->n; i++)
            jv_list_push(r, &l, attr_path(r, at, items->v[i], arg[1]));
        items = l.u.l;
    }
    return str_join(r, sep, items);
}

static jv f_list(jrender *r, const jnode *at, jv v, jargs *a)
{
    no_args(r, at, "list", a);
    jlist *items = jv_iter_list(r, at, v);
    jv l = jv_list_new(r, items->n);
    for (size_t i = 0; i < items->n; i++)
        jv_list_push(r, &l, items->v[i]);
    return l;
}

/* jinja2's select/reject/map start with `if value:`, so None selects nothing */
static jlist *iter_if_truthy(jrender *r, const jnode *at, jv v)
{
    if (!jv_truthy(v))
        return jv_list_new(r, 0).u.l;
    return jv_iter_list(r, at, v);
}

static jv select_common(jrender *r, const jnode *at, jv v, jargs *a, bool by_attr, bool keep)
{
    jlist *items = iter_if_truthy(r, at, v);
    if (a->n_kw)
        jr_fail(r, at, PONDER_ERR_FORMAT, "select filters take no keyword arguments");
    if (by_attr && a->n_pos < 1)
        jr_fail(r, at, PONDER_ERR_FORMAT, "selectattr/rejectattr need an attribute name");
    jv l = jv_list_new(r, items->n);
    for (size_t i = 0; i < items->n; i++) {
        je_step(r, at);
        jv item = by_attr ? attr_path(r, at, items->v[i], a->pos[0]) : items->v[i];
        if (apply_test(r, at, item, a, by_attr ? 1 : 0) == keep)
            jv_list_push(r, &l, items->v[i]);
    }
    return l;
}

static jv f_select(jrender *r, const jnode *at, jv v, jargs *a) { return select_common(r, at, v, a, false, true); }
static jv f_reject(jrender *r, const jnode *at, jv v, jargs *a) { return select_common(r, at, v, a, false, false); }
static jv f_selectattr(jrender *r, const jnode *at, jv v, jargs *a) { return select_common(r, at, v, a, true, true); }
static jv f_rejectattr(jrender *r, const jnode *at, jv v, jargs *a) { return select_common(r, at, v, a, true, false); }

static jv f_map(jrender *r, const jnode *at, jv v, jargs *a)
{
    jlist *items = iter_if_truthy(r, at, v);
    jv attribute = jv_undef(NULL), dflt = jv_undef(NULL);
    for (size_t k = 0; k < a->n_kw; k++) {
        if (!strcmp(a->kw_names[k], "attribute"))
            attribute = a->kw[k];
        else if (!strcmp(a->kw_names[k], "default"))
            dflt = a->kw[k];
        else if (NOT_GIVEN(attribute) && a->n_pos == 0)
            jr_fail(r, at, PONDER_ERR_FORMAT, "map() got an unexpected keyword argument '%s'", a->kw_names[k]);
    }
    jv l = jv_list_new(r, items->n);
    if (!NOT_GIVEN(attribute)) {
        for (size_t i = 0; i < items->n; i++) {
            jv x = attr_path(r, at, items->v[i], attribute);
            if (x.t == JV_UNDEF && !NOT_GIVEN(dflt))
                x = dflt;
            jv_list_push(r, &l, x);
        }
        return l;
    }
    if (a->n_pos < 1)
        jr_fail(r, at, PONDER_ERR_FORMAT, "map() needs a filter name or attribute=");
    jv name = need_str(r, at, "filter name", a->pos[0]);
    jargs fa = { .n_pos = a->n_pos - 1, .pos = a->pos + 1, .n_kw = a->n_kw, .kw_names = a->kw_names, .kw = a->kw };
    for (size_t i = 0; i < items->n; i++) {
        je_step(r, at);
        jv_list_push(r, &l, jb_call_filter(r, at, name.u.s.p, items->v[i], &fa));
    }
    return l;
}

static jv f_unique(jrender *r, const jnode *at, jv v, jargs *a)
{
    BIND("unique", "case_sensitive", "attribute");
    sort_ctx c = { r, at, NOT_GIVEN(arg[0]) || !jv_truthy(arg[0]), false };
    jlist *items = jv_iter_list(r, at, v);
    jv seen = jv_list_new(r, items->n), out = jv_list_new(r, items->n);
    for (size_t i = 0; i < items->n; i++) {
        jv key = NOT_GIVEN(arg[1]) ? items->v[i] : attr_path(r, at, items->v[i], arg[1]);
        key = sort_key(&c, key);
        bool dup = false;
        for (size_t k = 0; k < seen.u.l->n && !dup; k++) {
            je_step(r, at);
            dup = jv_equal(seen.u.l->v[k], key);
        }
        if (!dup) {
            jv_list_push(r, &seen, key);
            jv_list_push(r, &out, items->v[i]);
        }
    }
    return out;
}

static jv f_indent(jrender *r, const jnode *at, jv v, jargs *a)
{
    BIND("indent", "width", "first", "blank");
    jv ind;
    if (NOT_GIVEN(arg[0])) {
        ind = jv_str_nocopy("    ", 4);
    } else if (arg[0].t == JV_STR) {
        ind = arg[0];
    } else {
        int64_t w = need_int(r, at, "indent width", arg[0]);
        jbuf b = { 0 };
        for (int64_t i = 0; i < w && i < 4096; i++)
            jb_putc(r, &b, ' ');
        ind = jb_take(r, &b);
    }
    bool first = !NOT_GIVEN(arg[1]) && jv_truthy(arg[1]);
    bool blank = !NOT_GIVEN(arg[2]) && jv_truthy(arg[2]);
    jv s = str_or_empty(r, v);
    /* jinja2 appends "\n" before splitlines(), so a trailing newline is not kept */
    jbuf tmp = { 0 };
    jb_put(r, &tmp, s.u.s.p, s.u.s.n);
    jb_putc(r, &tmp, '\n');
    jlist *lines = py_splitlines(r, jb_take(r, &tmp)).u.l;
    jbuf b = { 0 };
    if (first)
        jb_put(r, &b, ind.u.s.p, ind.u.s.n);
    for (size_t i = 0; i < lines->n; i++) {
        jv line = lines->v[i];
        if (i > 0) {
            jb_putc(r, &b, '\n');
            if (blank || line.u.s.n)
                jb_put(r, &b, ind.u.s.p, ind.u.s.n);
        }
        jb_put(r, &b, line.u.s.p, line.u.s.n);
    }
    jv out = jb_take(r, &b);
    out.markup = s.markup;
    return out;
}

static jv f_default(jrender *r, const jnode *at, jv v, jargs *a)
{
    BIND("default", "default_value", "boolean");
    bool boolean = !NOT_GIVEN(arg[1]) && jv_truthy(arg[1]);
    jv dflt = NOT_GIVEN(arg[0]) ? jv_str_nocopy("", 0) : arg[0];
    if (v.t == JV_UNDEF || (boolean && !jv_truthy(v)))
        return dflt;
    return v;
}

static jv f_lower(jrender *r, const jnode *at, jv v, jargs *a) { no_args(r, at, "lower", a); return map_case(r, str_or_empty(r, v), 0); }
static jv f_upper(jrender *r, const jnode *at, jv v, jargs *a) { no_args(r, at, "upper", a); return map_case(r, str_or_empty(r, v), 1); }
static jv f_capitalize(jrender *r, const jnode *at, jv v, jargs *a) { no_args(r, at, "capitalize", a); return py_capitalize(r, str_or_empty(r, v)); }

/* jinja2's title filter: words start after '-', whitespace, '(', '{', '[' or '<' */
static jv f_title(jrender *r, const jnode *at, jv v, jargs *a)
{
    no_args(r, at, "title", a);
    jv s = str_or_empty(r, v);
    char *p = ja_strndup(&r->a, s.u.s.p, s.u.s.n);
    bool start = true;
    for (size_t i = 0; i < s.u.s.n; i++) {
        char c = p[i];
        bool sep = c == '-' || c == '(' || c == '{' || c == '[' || c == '<' || c == ' ' || c == '\t' || c == '\n' ||
                   c == '\r' || c == '\f' || c == '\v';
        if (sep) {
            start = true;
            continue;
        }
        if (start && c >= 'a' && c <= 'z')
            p[i] = (char)(c - 32);
        else if (!start && c >= 'A' && c <= 'Z')
            p[i] = (char)(c + 32);
        start = false;
    }
    return jv_str_nocopy(p, s.u.s.n);
}

static jv f_string(jrender *r, const jnode *at, jv v, jargs *a)
{
    no_args(r, at, "string", a);
    return str_or_empty(r, v);
}

static jv f_safe(jrender *r, const jnode *at, jv v, jargs *a)
{
    no_args(r, at, "safe", a);
    jv s = str_or_empty(r, v);
    s.markup = 1;
    return s;
}

static jv f_escape(jrender *r, const jnode *at, jv v, jargs *a)
{
    no_args(r, at, "escape", a);
    return je_escape(r, v.t == JV_UNDEF ? jv_str_nocopy("", 0) : v);
}

static jv f_forceescape(jrender *r, const jnode *at, jv v, jargs *a)
{
    no_args(r, at, "forceescape", a);
    jv s = jv_to_str(r, v);
    s.markup = 0;
    return je_escape(r, s);
}

static jv f_replace(jrender *r, const jnode *at, jv v, jargs *a)
{
    BIND("replace", "old", "new", "count");
    /* without autoescape jinja2 replaces on str(s): the result is plain, nothing escaped */
    jv s = str_or_empty(r, v);
    jv old = jv_to_str(r, arg[0]), nw = jv_to_str(r, arg[1]);
    int64_t count = NOT_GIVEN(arg[2]) || arg[2].t == JV_NONE ? -1 : need_int(r, at, "count", arg[2]);
    return str_replace(r, s, old, nw, count);
}

static jv f_first(jrender *r, const jnode *at, jv v, jargs *a)
{
    no_args(r, at, "first", a);
    jlist *l = jv_iter_list(r, at, v);
    return l->n ? l->v[0] : jv_undef("first() of an empty sequence");
}

static jv f_last(jrender *r, const jnode *at, jv v, jargs *a)
{
    no_args(r, at, "last", a);
    jlist *l = jv_iter_list(r, at, v);
    return l->n ? l->v[l->n - 1] : jv_undef("last() of an empty sequence");
}

static jv f_reverse(jrender *r, const jnode *at, jv v, jargs *a)
{
    no_args(r, at, "reverse", a);
    jlist *l = jv_iter_list(r, at, v);
    if (v.t == JV_STR) {
        jbuf b = { 0 };
        for (size_t i = l->n; i-- > 0;)
            jb_put(r, &b, l->v[i].u.s.p, l->v[i].u.s.n);
        return jb_take(r, &b);
    }
    jv out = jv_list_new(r, l->n);
    for (size_t i = l->n; i-- > 0;)
        jv_list_push(r, &out, l->v[i]);
    return out;
}

static double round_to(double x, int64_t prec)
{
    char buf[512];
    if (prec < 0 || prec > 300 || !isfinite(x))
        return x;
    snprintf(buf, sizeof buf, "%.*f", (int)prec, x);
    return strtod(buf, NULL);
}

static jv f_round(jrender *r, const jnode *at, jv v, jargs *a)
{
    BIND("round", "precision", "method");
    int64_t prec = NOT_GIVEN(arg[0]) ? 0 : need_int(r, at, "precision", arg[0]);
    const char *method = NOT_GIVEN(arg[1]) ? "common" : need_str(r, at, "method", arg[1]).u.s.p;
    if (!jv_is_number(v))
        jr_fail(r, at, PONDER_ERR_FORMAT, "round() needs a number, not '%s'", jv_type_name(v));
    double x = jv_as_double(v), p10 = pow(10.0, (double)prec);
    if (!strcmp(method, "common"))
        return jv_float(round_to(x, prec));
    if (!strcmp(method, "floor"))
        return jv_float(floor(x * p10) / p10);
    if (!strcmp(method, "ceil"))
        return jv_float(ceil(x * p10) / p10);
    jr_fail(r, at, PONDER_ERR_FORMAT, "method must be common, ceil or floor");
}

static bool parse_int_text(const char *s, int64_t base, int64_t *out)
{
    while (*s == ' ' || *s == '\t' || *s == '\n')
        s++;
    char *end;
    long long x = strtoll(s, &end, (int)base);
    if (end == s)
        return false;
    while (*end == ' ' || *end == '\t' || *end == '\n')
        end++;
    if (*end)
        return false;
    *out = x;
    return true;
}

static jv f_int(jrender *r, const jnode *at, jv v, jargs *a)
{
    BIND("int", "default", "base");
    jv dflt = NOT_GIVEN(arg[0]) ? jv_int(0) : arg[0];
    int64_t base = NOT_GIVEN(arg[1]) ? 10 : need_int(r, at, "base", arg[1]);
    if (base < 2 || base > 36)
        base = 10;
    if (v.t == JV_INT)
        return v;
    if (v.t == JV_BOOL)
        return jv_int(v.u.b);
    if (v.t == JV_FLOAT)
        return isfinite(v.u.f) && fabs(v.u.f) < 9.2e18 ? jv_int((int64_t)v.u.f) : dflt;
    if (v.t == JV_STR) {
        int64_t x;
        if (parse_int_text(v.u.s.p, base, &x))
            return jv_int(x);
        char *end;
        double d = strtod(v.u.s.p, &end);
        if (end != v.u.s.p && *end == 0 && isfinite(d) && fabs(d) < 9.2e18)
            return jv_int((int64_t)d);
    }
    return dflt;
}

static jv f_float(jrender *r, const jnode *at, jv v, jargs *a)
{
    BIND("float", "default");
    jv dflt = NOT_GIVEN(arg[0]) ? jv_float(0.0) : arg[0];
    if (jv_is_number(v))
        return jv_float(jv_as_double(v));
    if (v.t == JV_STR) {
        char *end;
        double d = strtod(v.u.s.p, &end);
        if (end != v.u.s.p && *end == 0)
            return jv_float(d);
    }
    return dflt;
}

static jv f_abs(jrender *r, const jnode *at, jv v, jargs *a)
{
    no_args(r, at, "abs", a);
    if (v.t == JV_INT)
        return v.u.i == INT64_MIN ? jv_float(9.223372036854775808e18) : jv_int(v.u.i < 0 ? -v.u.i : v.u.i);
    if (v.t == JV_BOOL)
        return jv_int(v.u.b);
    if (v.t == JV_FLOAT)
        return jv_float(fabs(v.u.f));
    jr_fail(r, at, PONDER_ERR_FORMAT, "bad operand type for abs(): '%s'", jv_type_name(v));
}

static jv f_batch(jrender *r, const jnode *at, jv v, jargs *a)
{
    BIND("batch", "linecount", "fill_with");
    int64_t n = need_int(r, at, "linecount", arg[0]);
    if (n <= 0)
        jr_fail(r, at, PONDER_ERR_FORMAT, "batch size must be positive");
    jlist *items = jv_iter_list(r, at, v);
    jv out = jv_list_new(r, 0), cur = jv_list_new(r, 0);
    for (size_t i = 0; i < items->n; i++) {
        jv_list_push(r, &cur, items->v[i]);
        if ((int64_t)cur.u.l->n == n) {
            jv_list_push(r, &out, cur);
            cur = jv_list_new(r, 0);
        }
    }
    if (cur.u.l->n) {
        if (!NOT_GIVEN(arg[1]) && arg[1].t != JV_NONE)
            while ((int64_t)cur.u.l->n < n)
                jv_list_push(r, &cur, arg[1]);
        jv_list_push(r, &out, cur);
    }
    return out;
}

static jv f_dictsort(jrender *r, const jnode *at, jv v, jargs *a)
{
    BIND("dictsort", "case_sensitive", "by", "reverse");
    if (v.t != JV_DICT)
        jr_fail(r, at, PONDER_ERR_FORMAT, "dictsort needs a dict, not '%s'", jv_type_name(v));
    sort_ctx c = { r, at, NOT_GIVEN(arg[0]) || !jv_truthy(arg[0]), !NOT_GIVEN(arg[2]) && jv_truthy(arg[2]) };
    bool by_value = false;
    if (!NOT_GIVEN(arg[1])) {
        jv by = need_str(r, at, "by", arg[1]);
        if (!strcmp(by.u.s.p, "value"))
            by_value = true;
        else if (strcmp(by.u.s.p, "key") != 0)
            jr_fail(r, at, PONDER_ERR_FORMAT, "You can only sort by either \"key\" or \"value\"");
    }
    jlist *items = dict_items(r, v).u.l;
    jv *keys = ja_alloc(&r->a, (items->n + 1) * sizeof *keys);
    for (size_t i = 0; i < items->n; i++)
        keys[i] = sort_key(&c, items->v[i].u.l->v[by_value ? 1 : 0]);
    return sorted(&c, items, keys);
}

static jv f_sort(jrender *r, const jnode *at, jv v, jargs *a)
{
    BIND("sort", "reverse", "case_sensitive", "attribute");
    sort_ctx c = { r, at, NOT_GIVEN(arg[1]) || !jv_truthy(arg[1]), !NOT_GIVEN(arg[0]) && jv_truthy(arg[0]) };
    jlist *items = jv_iter_list(r, at, v);
    jv *keys = ja_alloc(&r->a, (items->n + 1) * sizeof *keys);
    for (size_t i = 0; i < items->n; i++)
        keys[i] = sort_key(&c, NOT_GIVEN(arg[2]) ? items->v[i] : attr_path(r, at, items->v[i], arg[2]));
    return sorted(&c, items, keys);
}

static jv minmax(jrender *r, const jnode *at, jv v, jargs *a, bool want_max)
{
    BIND(want_max ? "max" : "min", "case_sensitive", "attribute");
    sort_ctx c = { r, at, NOT_GIVEN(arg[0]) || !jv_truthy(arg[0]), false };
    jlist *items = jv_iter_list(r, at, v);
    if (items->n == 0)
        return jv_undef("no items in the sequence");
    size_t best = 0;
    jv bk = sort_key(&c, NOT_GIVEN(arg[1]) ? items->v[0] : attr_path(r, at, items->v[0], arg[1]));
    for (size_t i = 1; i < items->n; i++) {
        jv k = sort_key(&c, NOT_GIVEN(arg[1]) ? items->v[i] : attr_path(r, at, items->v[i], arg[1]));
        int cmp = jv_compare(r, at, k, bk);
        if (want_max ? cmp > 0 : cmp < 0) {
            best = i;
            bk = k;
        }
    }
    return items->v[best];
}

static jv f_min(jrender *r, const jnode *at, jv v, jargs *a) { return minmax(r, at, v, a, false); }
static jv f_max(jrender *r, const jnode *at, jv v, jargs *a) { return minmax(r, at, v, a, true); }


static jv f_sum(jrender *r, const jnode *at, jv v, jargs *a)
{
    BIND("sum", "attribute", "start");
    jv acc = NOT_GIVEN(arg[1]) ? jv_int(0) : arg[1];
    jlist *items = jv_iter_list(r, at, v);
    for (size_t i = 0; i < items->n; i++) {
        jv x = NOT_GIVEN(arg[0]) ? items->v[i] : attr_path(r, at, items->v[i], arg[0]);
        if (!jv_is_number(acc) || !jv_is_number(x))
            jr_fail(r, at, PONDER_ERR_FORMAT, "unsupported operand type(s) for +: '%s' and '%s'", jv_type_name(acc),
                    jv_type_name(x));
        if (acc.t != JV_FLOAT && x.t != JV_FLOAT) {
            int64_t o;
            if (__builtin_add_overflow(acc.t == JV_INT ? acc.u.i : acc.u.b, x.t == JV_INT ? x.u.i : x.u.b, &o))
                jr_fail(r, at, PONDER_ERR_RANGE, "integer overflow in sum");
            acc = jv_int(o);
        } else {
            acc = jv_float(jv_as_double(acc) + jv_as_double(x));
        }
    }
    return acc;
}

static jv f_center(jrender *r, const jnode *at, jv v, jargs *a)
{
    BIND("center", "width");
    int64_t w = NOT_GIVEN(arg[0]) ? 80 : need_int(r, at, "width", arg[0]);
    jv s = str_or_empty(r, v);
    int64_t len = (int64_t)js_cp_len(s.u.s.p, s.u.s.n);
    if (w <= len || w > 100000)
        return s;
    /* CPython's str.center puts the odd space on the left when the width is odd */
    int64_t pad = w - len, left = pad / 2 + (pad & w & 1);
    jbuf b = { 0 };
    for (int64_t i = 0; i < left; i++)
        jb_putc(r, &b, ' ');
    jb_put(r, &b, s.u.s.p, s.u.s.n);
    for (int64_t i = 0; i < pad - left; i++)
        jb_putc(r, &b, ' ');
    return jb_take(r, &b);
}

static jv f_wordcount(jrender *r, const jnode *at, jv v, jargs *a)
{
    no_args(r, at, "wordcount", a);
    jv s = str_or_empty(r, v);
    int64_t n = 0;
    bool in = false;
    for (size_t i = 0; i < s.u.s.n; i++) {
        char c = s.u.s.p[i];
        bool w = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
                 (unsigned char)c >= 0x80;
        if (w && !in)
            n++;
        in = w;
    }
    return jv_int(n);
}

static jv f_format(jrender *r, const jnode *at, jv v, jargs *a)
{
    jv args = jv_list_new(r, a->n_pos);
    args.u.l->tuple = true;
    for (size_t i = 0; i < a->n_pos; i++)
        jv_list_push(r, &args, a->pos[i]);
    return jb_percent_format(r, at, str_or_empty(r, v), args);
}

static jv f_attr(jrender *r, const jnode *at, jv v, jargs *a)
{
    BIND("attr", "name");
    jv name = need_str(r, at, "attribute name", arg[0]);
    return jb_getattr(r, at, v, name.u.s.p, name.u.s.n);
}

static jv f_pprint(jrender *r, const jnode *at, jv v, jargs *a)
{
    (void)a;
    (void)at;
    jbuf b = { 0 };
    jv_write_repr(r, &b, v);
    return jb_take(r, &b);
}

static jv f_truncate(jrender *r, const jnode *at, jv v, jargs *a)
{
    BIND("truncate", "length", "killwords", "end", "leeway");
    jv s = str_or_empty(r, v);
    int64_t length = NOT_GIVEN(arg[0]) ? 255 : need_int(r, at, "length", arg[0]);
    bool killwords = !NOT_GIVEN(arg[1]) && jv_truthy(arg[1]);
    jv end = NOT_GIVEN(arg[2]) ? jv_str_nocopy("...", 3) : jv_to_str(r, arg[2]);
    int64_t leeway = NOT_GIVEN(arg[3]) ? 5 : need_int(r, at, "leeway", arg[3]);
    int64_t n = (int64_t)js_cp_len(s.u.s.p, s.u.s.n), elen = (int64_t)js_cp_len(end.u.s.p, end.u.s.n);
    if (n <= length + leeway)
        return s;
    int64_t keep = length - elen;
    if (keep < 0)
        keep = 0;
    size_t cut = js_cp_offset(s.u.s.p, s.u.s.n, (size_t)keep);
    if (!killwords) {
        size_t sp = cut;
        while (sp > 0 && s.u.s.p[sp - 1] != ' ')
            sp--;
        if (sp > 0)
            cut = sp - 1;
    }
    jbuf b = { 0 };
    jb_put(r, &b, s.u.s.p, cut);
    jb_put(r, &b, end.u.s.p, end.u.s.n);
    return jb_take(r, &b);
}

static const struct { const char *name; filter_fn fn; } filters[] = {
    { "tojson", f_tojson }, { "trim", f_trim }, { "length", f_length }, { "count", f_length },
    { "items", f_items }, { "join", f_join }, { "list", f_list }, { "select", f_select }, { "reject", f_reject },
    { "selectattr", f_selectattr }, { "rejectattr", f_rejectattr }, { "map", f_map }, { "unique", f_unique },
    { "indent", f_indent }, { "default", f_default }, { "d", f_default }, { "lower", f_lower },
    { "upper", f_upper }, { "capitalize", f_capitalize }, { "title", f_title }, { "string", f_string },
    { "safe", f_safe }, { "escape", f_escape }, { "e", f_escape }, { "forceescape", f_forceescape },
    { "replace", f_replace }, { "first", f_first }, { "last", f_last }, { "reverse", f_reverse },
    { "round", f_round }, { "int", f_int }, { "float", f_float }, { "abs", f_abs }, { "batch", f_batch },
    { "dictsort", f_dictsort }, { "sort", f_sort }, { "min", f_min }, { "max", f_max }, { "sum", f_sum },
    { "center", f_center }, { "wordcount", f_wordcount }, { "format", f_format }, { "attr", f_attr },
    { "pprint", f_pprint }, { "truncate", f_truncate },
};

static filter_fn find_filter(const char *name)
{
    for (size_t i = 0; i < sizeof filters / sizeof filters[0]; i++)
        if (!strcmp(filters[i].name, name))
            return filters[i].fn;
    return NULL;
}

bool jb_has_filter(const char *name)
{
    return find_filter(name) != NULL;
}

jv jb_call_filter(jrender *r, const jnode *at, const char *name, jv self, jargs *a)
{
    filter_fn fn = find_filter(name);
    if (!fn)
        jr_fail(r, at, PONDER_ERR_UNSUPPORTED, "no filter named '%s'", name);
    return fn(r, at, self, a);
}

/* ---- printf-style '%' formatting (Python's str % args) ---- */

jv jb_percent_format(jrender *r, const jnode *at, jv fmt, jv args)
{
    jlist *items;
    jv single = args;
    if (args.t == JV_LIST && args.u.l->tuple) {
        items = args.u.l;
    } else {
        jv l = jv_list_new(r, 1);
        jv_list_push(r, &l, single);
        items = l.u.l;
    }
    size_t next = 0;
    jbuf b = { 0 };
    const char *p = fmt.u.s.p, *end = p + fmt.u.s.n;
    while (p < end) {
        if (*p != '%') {
            jb_putc(r, &b, *p++);
            continue;
        }
        p++;
        if (p < end && *p == '%') {
            jb_putc(r, &b, '%');
            p++;
            continue;
        }
        char spec[32];
        size_t sn = 0;
        spec[sn++] = '%';
        while (p < end && strchr("-+ #0", *p) && sn < 8)
            spec[sn++] = *p++;
        while (p < end && *p >= '0' && *p <= '9' && sn < 16)
            spec[sn++] = *p++;
        if (p < end && *p == '.') {
            spec[sn++] = *p++;
            while (p < end && *p >= '0' && *p <= '9' && sn < 24)
                spec[sn++] = *p++;
        }
        if (p >= end)
            jr_fail(r, at, PONDER_ERR_FORMAT, "incomplete format");
        char conv = *p++;
        if (next >= items->n)
            jr_fail(r, at, PONDER_ERR_FORMAT, "not enough arguments for format string");
        jv x = items->v[next++];
        char out[512];
        switch (conv) {
        case 's':
        case 'r': {
            jbuf t = { 0 };
            if (conv == 's')
                jv_write_str(r, &t, x);
            else
                jv_write_repr(r, &t, x);
            spec[sn++] = 's';
            spec[sn] = 0;
            if (sn == 2) {
                jb_put(r, &b, t.p ? t.p : "", t.n);
            } else {
                char *o = ja_alloc(&r->a, t.n + 1024);
                snprintf(o, t.n + 1024, spec, t.p ? t.p : "");
                jb_puts(r, &b, o);
            }
            break;
        }
        case 'd':
        case 'i':
        case 'x':
        case 'X':
        case 'o':
            if (!jv_is_number(x))
                jr_fail(r, at, PONDER_ERR_FORMAT, "%%%c format: a number is required, not %s", conv, jv_type_name(x));
            spec[sn++] = 'l';
            spec[sn++] = 'l';
            spec[sn++] = conv == 'i' ? 'd' : conv;
            spec[sn] = 0;
            snprintf(out, sizeof out, spec, (long long)(x.t == JV_FLOAT ? (int64_t)x.u.f : x.t == JV_INT ? x.u.i : x.u.b));
            jb_puts(r, &b, out);
            break;
        case 'f':
        case 'F':
        case 'e':
        case 'E':
        case 'g':
        case 'G':
            if (!jv_is_number(x))
                jr_fail(r, at, PONDER_ERR_FORMAT, "must be real number, not %s", jv_type_name(x));
            spec[sn++] = conv;
            spec[sn] = 0;
            snprintf(out, sizeof out, spec, jv_as_double(x));
            jb_puts(r, &b, out);
            break;
        default: jr_fail(r, at, PONDER_ERR_UNSUPPORTED, "unsupported format character '%c'", conv);
        }
    }
    if (next < items->n && args.t == JV_LIST && args.u.l->tuple)
        jr_fail(r, at, PONDER_ERR_FORMAT, "not all arguments converted during string formatting");
    return jb_take(r, &b);
}

/* str.format with {} / {N} / {name} fields and no format specs */
static jv py_format(jrender *r, const jnode *at, jv fmt, jargs *a)
{
    jbuf b = { 0 };
    size_t auto_idx = 0;
    const char *p = fmt.u.s.p, *end = p + fmt.u.s.n;
    while (p < end) {
        if (*p == '{' && p + 1 < end && p[1] == '{') {
            jb_putc(r, &b, '{');
            p += 2;
        } else if (*p == '}' && p + 1 < end && p[1] == '}') {
            jb_putc(r, &b, '}');
            p += 2;
        } else if (*p == '{') {
            const char *close = memchr(p, '}', (size_t)(end - p));
            if (!close)
                jr_fail(r, at, PONDER_ERR_FORMAT, "Single '{' encountered in format string");
            const char *f = p + 1;
            size_t n = (size_t)(close - f);
            if (memchr(f, ':', n) || memchr(f, '!', n))
                jr_fail(r, at, PONDER_ERR_UNSUPPORTED, "format specs in str.format are not supported");
            jv x;
            if (n == 0) {
                if (auto_idx >= a->n_pos)
                    jr_fail(r, at, PONDER_ERR_FORMAT, "Replacement index %zu out of range", auto_idx);
                x = a->pos[auto_idx++];
            } else if (f[0] >= '0' && f[0] <= '9') {
                size_t idx = (size_t)strtoul(f, NULL, 10);
                if (idx >= a->n_pos)
                    jr_fail(r, at, PONDER_ERR_FORMAT, "Replacement index %zu out of range", idx);
                x = a->pos[idx];
            } else {
                size_t k = 0;
                while (k < a->n_kw && !(strlen(a->kw_names[k]) == n && !memcmp(a->kw_names[k], f, n)))
                    k++;
                if (k == a->n_kw)
                    jr_fail(r, at, PONDER_ERR_FORMAT, "KeyError: '%.*s'", (int)n, f);
                x = a->kw[k];
            }
            jv_write_str(r, &b, x);
            p = close + 1;
        } else {
            jb_putc(r, &b, *p++);
        }
    }
    return jb_take(r, &b);
}

/* ---- methods ---- */

static jv str_method(jrender *r, const jnode *at, const char *m, jv s, jargs *a)
{
    if (!strcmp(m, "strip") || !strcmp(m, "lstrip") || !strcmp(m, "rstrip")) {
        BIND(m, "chars");
        return py_strip(r, s, arg[0], m[0] != 'r', m[0] != 'l');
    }
    if (!strcmp(m, "split") || !strcmp(m, "rsplit")) {
        BIND(m, "sep", "maxsplit");
        int64_t maxsplit = NOT_GIVEN(arg[1]) ? -1 : need_int(r, at, "maxsplit", arg[1]);
        if (m[0] == 'r' && maxsplit >= 0) {
            /* rsplit with a limit: split fully, then rejoin the leading parts */
            jv parts = py_split(r, at, s, arg[0], -1);
            jlist *l = parts.u.l;
            if ((int64_t)l->n <= maxsplit + 1)
                return parts;
            size_t head = l->n - (size_t)maxsplit;
            jv sep = NOT_GIVEN(arg[0]) || arg[0].t == JV_NONE ? jv_str_nocopy(" ", 1) : arg[0];
            jv first = jv_list_new(r, head);
            for (size_t i = 0; i < head; i++)
                jv_list_push(r, &first, l->v[i]);
            jv out = jv_list_new(r, (size_t)maxsplit + 1);
            jv_list_push(r, &out, str_join(r, sep, first.u.l));
            for (size_t i = head; i < l->n; i++)
                jv_list_push(r, &out, l->v[i]);
            return out;
        }
        return py_split(r, at, s, arg[0], maxsplit);
    }
    if (!strcmp(m, "splitlines")) {
        no_args(r, at, m, a);
        return py_splitlines(r, s);
    }
    if (!strcmp(m, "startswith") || !strcmp(m, "endswith")) {
        BIND(m, "prefix", "start", "end");
        bool end = m[0] == 'e';
        jv sub = s;
        if (!NOT_GIVEN(arg[1]) || !NOT_GIVEN(arg[2])) {
            jv sl = jv_list_new(r, 0);
            (void)sl;
            int64_t n = (int64_t)js_cp_len(s.u.s.p, s.u.s.n);
            int64_t b = NOT_GIVEN(arg[1]) || arg[1].t == JV_NONE ? 0 : need_int(r, at, "start", arg[1]);
            int64_t e = NOT_GIVEN(arg[2]) || arg[2].t == JV_NONE ? n : need_int(r, at, "end", arg[2]);
            if (b < 0) b += n;
            if (e < 0) e += n;
            if (b < 0) b = 0;
            if (e > n) e = n;
            if (b > e)
                return jv_bool(false);
            size_t ob = js_cp_offset(s.u.s.p, s.u.s.n, (size_t)b), oe = js_cp_offset(s.u.s.p, s.u.s.n, (size_t)e);
            sub = jv_str(r, s.u.s.p + ob, oe - ob);
        }
        if (arg[0].t == JV_LIST) {
            for (size_t i = 0; i < arg[0].u.l->n; i++)
                if (affix_match(sub, arg[0].u.l->v[i], end))
                    return jv_bool(true);
            return jv_bool(false);
        }
        need_str(r, at, m, arg[0]);
        return jv_bool(affix_match(sub, arg[0], end));
    }
    if (!strcmp(m, "upper") || !strcmp(m, "lower") || !strcmp(m, "swapcase") || !strcmp(m, "casefold")) {
        no_args(r, at, m, a);
        return map_case(r, s, m[0] == 'u' ? 1 : m[0] == 's' ? 2 : 0);
    }
    if (!strcmp(m, "title")) {
        no_args(r, at, m, a);
        return py_title(r, s);
    }
    if (!strcmp(m, "capitalize")) {
        no_args(r, at, m, a);
        return py_capitalize(r, s);
    }
    if (!strcmp(m, "replace")) {
        BIND(m, "old", "new", "count");
        int64_t count = NOT_GIVEN(arg[2]) ? -1 : need_int(r, at, "count", arg[2]);
        return str_replace(r, s, need_str(r, at, "replace() old", arg[0]), need_str(r, at, "replace() new", arg[1]),
                           count);
    }
    if (!strcmp(m, "find") || !strcmp(m, "rfind") || !strcmp(m, "index") || !strcmp(m, "count")) {
        BIND(m, "sub");
        jv sub = need_str(r, at, m, arg[0]);
        int64_t found = -1, count = 0;
        for (size_t i = 0; i + sub.u.s.n <= s.u.s.n;) {
            if (memcmp(s.u.s.p + i, sub.u.s.p, sub.u.s.n) == 0) {
                if (found < 0 || m[0] == 'r')
                    found = (int64_t)js_cp_len(s.u.s.p, i);
                count++;
                i += sub.u.s.n ? sub.u.s.n : 1;
                if (m[0] == 'f' || m[0] == 'i')
                    break;
            } else {
                i++;
            }
        }
        if (m[0] == 'c')
            return jv_int(sub.u.s.n ? count : (int64_t)js_cp_len(s.u.s.p, s.u.s.n) + 1);
        if (m[0] == 'i' && found < 0)
            jr_fail(r, at, PONDER_ERR_FORMAT, "substring not found");
        return jv_int(found);
    }
    if (!strcmp(m, "join")) {
        BIND(m, "iterable");
        jlist *items = jv_iter_list(r, at, arg[0]);
        for (size_t i = 0; i < items->n; i++)
            if (items->v[i].t != JV_STR)
                jr_fail(r, at, PONDER_ERR_FORMAT, "sequence item %zu: expected str instance, %s found", i,
                        jv_type_name(items->v[i]));
        return str_join(r, s, items);
    }
    if (!strncmp(m, "is", 2)) {
        no_args(r, at, m, a);
        if (s.u.s.n == 0)
            return jv_bool(false);
        bool ok = true, cased = false, prev_cased = false, title_ok = true;
        for (size_t i = 0; i < s.u.s.n && ok; i++) {
            char c = s.u.s.p[i];
            bool d = c >= '0' && c <= '9', lo = c >= 'a' && c <= 'z', up = c >= 'A' && c <= 'Z';
            if (!strcmp(m, "isdigit") || !strcmp(m, "isnumeric") || !strcmp(m, "isdecimal"))
                ok = d;
            else if (!strcmp(m, "isalpha"))
                ok = lo || up;
            else if (!strcmp(m, "isalnum"))
                ok = lo || up || d;
            else if (!strcmp(m, "isspace"))
                ok = jinja_py_isspace((unsigned char)c);
            else if (!strcmp(m, "isupper"))
                ok = !lo, cased |= up;
            else if (!strcmp(m, "islower"))
                ok = !up, cased |= lo;
            else if (!strcmp(m, "istitle")) {
                if (up && prev_cased)
                    title_ok = false;
                if (lo && !prev_cased)
                    title_ok = false;
                cased |= up;
                prev_cased = up || lo;
            }
        }
        if (!strcmp(m, "isupper") || !strcmp(m, "islower"))
            ok = ok && cased;
        if (!strcmp(m, "istitle"))
            ok = title_ok && cased;
        return jv_bool(ok);
    }
    if (!strcmp(m, "format"))
        return py_format(r, at, s, a);
    if (!strcmp(m, "center") || !strcmp(m, "ljust") || !strcmp(m, "rjust") || !strcmp(m, "zfill")) {
        BIND(m, "width", "fillchar");
        int64_t w = need_int(r, at, "width", arg[0]);
        jv fill = NOT_GIVEN(arg[1]) ? jv_str_nocopy(m[0] == 'z' ? "0" : " ", 1) : need_str(r, at, "fillchar", arg[1]);
        int64_t len = (int64_t)js_cp_len(s.u.s.p, s.u.s.n);
        if (w <= len || w > 100000)
            return s;
        int64_t pad = w - len, left = m[0] == 'c' ? pad / 2 + (pad & w & 1) : m[0] == 'l' ? 0 : pad;
        jbuf b = { 0 };
        for (int64_t i = 0; i < left; i++)
            jb_put(r, &b, fill.u.s.p, fill.u.s.n);
        jb_put(r, &b, s.u.s.p, s.u.s.n);
        for (int64_t i = 0; i < pad - left; i++)
            jb_put(r, &b, fill.u.s.p, fill.u.s.n);
        return jb_take(r, &b);
    }
    if (!strcmp(m, "removeprefix") || !strcmp(m, "removesuffix")) {
        BIND(m, "affix");
        jv x = need_str(r, at, m, arg[0]);
        bool end = m[6] == 's';
        if (!affix_match(s, x, end))
            return s;
        return end ? jv_str(r, s.u.s.p, s.u.s.n - x.u.s.n) : jv_str(r, s.u.s.p + x.u.s.n, s.u.s.n - x.u.s.n);
    }
    if (!strcmp(m, "partition") || !strcmp(m, "rpartition")) {
        BIND(m, "sep");
        jv sep = need_str(r, at, m, arg[0]);
        if (sep.u.s.n == 0)
            jr_fail(r, at, PONDER_ERR_FORMAT, "empty separator");
        const char *hit = NULL;
        for (size_t i = 0; i + sep.u.s.n <= s.u.s.n; i++)
            if (!memcmp(s.u.s.p + i, sep.u.s.p, sep.u.s.n)) {
                hit = s.u.s.p + i;
                if (m[0] == 'p')
                    break;
            }
        jv t = jv_list_new(r, 3);
        t.u.l->tuple = true;
        if (!hit) {
            jv e = jv_str_nocopy("", 0);
            jv_list_push(r, &t, m[0] == 'p' ? s : e);
            jv_list_push(r, &t, e);
            jv_list_push(r, &t, m[0] == 'p' ? e : s);
            return t;
        }
        size_t off = (size_t)(hit - s.u.s.p);
        jv_list_push(r, &t, jv_str(r, s.u.s.p, off));
        jv_list_push(r, &t, sep);
        jv_list_push(r, &t, jv_str(r, hit + sep.u.s.n, s.u.s.n - off - sep.u.s.n));
        return t;
    }
    if (!strcmp(m, "expandtabs")) {
        no_args(r, at, m, a);
        return str_replace(r, s, jv_str_nocopy("\t", 1), jv_str_nocopy("        ", 8), -1);
    }
    jr_fail(r, at, PONDER_ERR_UNSUPPORTED, "unsupported str method '%s'", m);
}

static jv dict_method(jrender *r, const jnode *at, const char *m, jv d, jargs *a)
{
    if (!strcmp(m, "items")) {
        no_args(r, at, m, a);
        return dict_items(r, d);
    }
    if (!strcmp(m, "keys") || !strcmp(m, "values")) {
        no_args(r, at, m, a);
        jv l = jv_list_new(r, d.u.d->n);
        for (size_t i = 0; i < d.u.d->n; i++)
            jv_list_push(r, &l, m[0] == 'k' ? d.u.d->k[i] : d.u.d->v[i]);
        return l;
    }
    if (!strcmp(m, "get")) {
        BIND(m, "key", "default");
        jv v;
        if (jv_dict_get(d.u.d, arg[0], &v))
            return v;
        return NOT_GIVEN(arg[1]) ? jv_none() : arg[1];
    }
    if (!strcmp(m, "copy")) {
        no_args(r, at, m, a);
        jv c = jv_dict_new(r);
        for (size_t i = 0; i < d.u.d->n; i++)
            jv_dict_set(r, c.u.d, d.u.d->k[i], d.u.d->v[i]);
        return c;
    }
    jr_fail(r, at, PONDER_ERR_UNSUPPORTED, "unsupported dict method '%s'", m);
}

static jv list_method(jrender *r, const jnode *at, const char *m, jv l, jargs *a)
{
    if (!strcmp(m, "index") || !strcmp(m, "count")) {
        BIND(m, "value");
        int64_t count = 0;
        for (size_t i = 0; i < l.u.l->n; i++)
            if (jv_equal(l.u.l->v[i], arg[0])) {
                if (m[0] == 'i')
                    return jv_int((int64_t)i);
                count++;
            }
        if (m[0] == 'i')
            jr_fail(r, at, PONDER_ERR_FORMAT, "value is not in list");
        return jv_int(count);
    }
    if (!strcmp(m, "copy")) {
        no_args(r, at, m, a);
        jv c = jv_list_new(r, l.u.l->n);
        for (size_t i = 0; i < l.u.l->n; i++)
            jv_list_push(r, &c, l.u.l->v[i]);
        return c;
    }
    jr_fail(r, at, PONDER_ERR_UNSUPPORTED, "unsupported list method '%s'", m);
}

/* ---- globals ---- */

static jv g_range(jrender *r, const jnode *at, jargs *a)
{
    if (a->n_kw || a->n_pos < 1 || a->n_pos > 3)
        jr_fail(r, at, PONDER_ERR_FORMAT, "range() takes 1 to 3 integer arguments");
    int64_t start = 0, stop, step = 1;
    if (a->n_pos == 1) {
        stop = need_int(r, at, "range() argument", a->pos[0]);
    } else {
        start = need_int(r, at, "range() argument", a->pos[0]);
        stop = need_int(r, at, "range() argument", a->pos[1]);
        if (a->n_pos == 3)
            step = need_int(r, at, "range() argument", a->pos[2]);
    }
    if (step == 0)
        jr_fail(r, at, PONDER_ERR_FORMAT, "range() arg 3 must not be zero");
    /* jinja2's sandbox caps range() at MAX_RANGE = 100000 items */
    double count = step > 0 ? ceil(((double)stop - (double)start) / (double)step)
                            : ceil(((double)start - (double)stop) / (double)-step);
    if (count > 100000)
        jr_fail(r, at, PONDER_ERR_RANGE, "Range too big. The sandbox blocks ranges larger than MAX_RANGE (100000).");
    jv l = jv_list_new(r, count > 0 ? (size_t)count : 0);
    for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step)
        jv_list_push(r, &l, jv_int(i));
    return l;
}

static jv g_dict_like(jrender *r, const jnode *at, jargs *a, bool ns)
{
    jv d = jv_dict_new(r);
    if (ns)
        d.t = JV_NS;
    if (a->n_pos > 1)
        jr_fail(r, at, PONDER_ERR_FORMAT, "%s() takes at most one positional argument", ns ? "namespace" : "dict");
    if (a->n_pos == 1) {
        jv src = a->pos[0];
        if (src.t == JV_DICT || src.t == JV_NS) {
            for (size_t i = 0; i < src.u.d->n; i++)
                jv_dict_set(r, d.u.d, src.u.d->k[i], src.u.d->v[i]);
        } else {
            jlist *items = jv_iter_list(r, at, src);
            for (size_t i = 0; i < items->n; i++) {
                jv pair = items->v[i];
                if (pair.t != JV_LIST || pair.u.l->n != 2)
                    jr_fail(r, at, PONDER_ERR_FORMAT, "dictionary update sequence element #%zu has the wrong length", i);
                jv_dict_set(r, d.u.d, pair.u.l->v[0], pair.u.l->v[1]);
            }
        }
    }
    for (size_t k = 0; k < a->n_kw; k++)
        jdict_set_cstr(r, d.u.d, a->kw_names[k], a->kw[k]);
    return d;
}

/* transformers' raise_exception: the message is the error, verbatim, without a position */
_Noreturn static void g_raise(jrender *r, const jnode *at, jargs *a)
{
    jv msg = a->n_pos ? jv_to_str(r, a->pos[0]) : jv_str_nocopy("", 0);
    (void)at;
    ponder_error_set(r->err, PONDER_ERR_INVALID_ARG, "%s", msg.u.s.p);
    longjmp(r->jmp, 1);
}

/* transformers' strftime_now, at the fixed reference time 2026-11-23 00:00:00 */
static jv g_strftime(jrender *r, const jnode *at, jargs *a)
{
    if (a->n_pos != 1 || a->pos[0].t != JV_STR)
        jr_fail(r, at, PONDER_ERR_FORMAT, "strftime_now() takes one format string");
    struct tm tm = { 0 };
    tm.tm_year = 2026 - 1900;
    tm.tm_mon = 10;
    tm.tm_mday = 23;
    tm.tm_wday = 1; /* a Monday */
    tm.tm_yday = 326;
    tm.tm_isdst = 0;
    char buf[1024];
    size_t n = strftime(buf, sizeof buf, a->pos[0].u.s.p, &tm);
    return jv_str(r, buf, n);
}

jv jb_call_func(jrender *r, const jnode *at, jv fv, jargs *a)
{
    const jfunc *fn = fv.u.fn;
    if (fn->kind == JF_METHOD) {
        if (name_in(fn->name, strlen(fn->name), mutating_methods))
            jr_fail(r, at, PONDER_ERR_FORMAT, "access to attribute '%s' of '%s' object is unsafe.", fn->name,
                    jv_type_name(fn->self));
        switch (fn->self.t) {
        case JV_STR: return str_method(r, at, fn->name, fn->self, a);
        case JV_DICT: return dict_method(r, at, fn->name, fn->self, a);
        case JV_LIST: return list_method(r, at, fn->name, fn->self, a);
        default: break;
        }
        jr_fail(r, at, PONDER_ERR_INTERNAL, "method on an unexpected type");
    }
    if (fn->kind == JF_CYCLER) {
        jloop *l = fn->self.u.loop;
        if (!strcmp(fn->name, "cycle")) {
            if (a->n_pos == 0)
                jr_fail(r, at, PONDER_ERR_FORMAT, "no items for cycling given");
            return a->pos[l->index0 % (int64_t)a->n_pos];
        }
        jv vals = jv_list_new(r, a->n_pos);
        for (size_t i = 0; i < a->n_pos; i++)
            jv_list_push(r, &vals, a->pos[i]);
        bool changed = l->changed_last.t == JV_UNDEF || !jv_equal(l->changed_last, vals);
        l->changed_last = vals;
        return jv_bool(changed);
    }
    const char *g = fn->name;
    if (!strcmp(g, "range"))
        return g_range(r, at, a);
    if (!strcmp(g, "namespace"))
        return g_dict_like(r, at, a, true);
    if (!strcmp(g, "dict"))
        return g_dict_like(r, at, a, false);
    if (!strcmp(g, "raise_exception"))
        g_raise(r, at, a);
    if (!strcmp(g, "strftime_now"))
        return g_strftime(r, at, a);
    jr_fail(r, at, PONDER_ERR_UNSUPPORTED, "unsupported function '%s'", g);
}

void jb_add_globals(jrender *r, jdict *g)
{
    static const char *const names[] = { "range", "namespace", "dict", "raise_exception", "strftime_now" };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        jdict_set_cstr(r, g, names[i], jv_func(r, JF_GLOBAL, names[i], jv_none()));
}
