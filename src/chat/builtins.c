/*
 * builtins.c — binding a call's arguments, attribute/item lookup, and the globals
 * transformers adds (raise_exception, strftime_now) next to jinja2's own (range,
 * namespace, dict); calls of methods go to methods.c, filters and tests live in filters.c.
 *
 * Each filter keeps jinja2 3.1's signature and defaults (e.g. unique/sort/dictsort compare
 * strings case-insensitively unless case_sensitive=true). Mutating methods (append,
 * update, pop, ...) are refused as ImmutableSandboxedEnvironment refuses them. Case
 * mapping is ASCII-only.
 */
#include "chat/builtins.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Binds positional and keyword arguments to names[0..n); absent ones are NOT_GIVEN. */
void jb_bind(jrender *r, const jnode *at, const char *fname, const jargs *a, const char *const *names, size_t n,
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


void jb_no_args(jrender *r, const jnode *at, const char *fname, const jargs *a)
{
    if (a->n_pos || a->n_kw)
        jr_fail(r, at, PONDER_ERR_FORMAT, "%s() takes no arguments", fname);
}

jv jb_need_str(jrender *r, const jnode *at, const char *what, jv v)
{
    if (v.t != JV_STR)
        jr_fail(r, at, PONDER_ERR_FORMAT, "%s must be a string, not '%s'", what, jv_type_name(v));
    return v;
}

int64_t jb_need_int(jrender *r, const jnode *at, const char *what, jv v)
{
    if (v.t == JV_INT)
        return v.u.i;
    if (v.t == JV_BOOL)
        return v.u.b;
    jr_fail(r, at, PONDER_ERR_FORMAT, "%s must be an integer, not '%s'", what, jv_type_name(v));
}

jv jb_str_or_empty(jrender *r, jv v)
{
    if (v.t == JV_UNDEF)
        return jv_str_nocopy("", 0);
    return jv_to_str(r, v);
}
/* ---- attribute and item lookup ---- */

static jv undef_attr(jrender *r, jv obj, const char *name, size_t name_len)
{
    size_t n = name_len + 64;
    char *msg = ja_alloc(&r->a, n);
    snprintf(msg, n, "'%s object' has no attribute '%.*s'", jv_type_name(obj), (int)name_len, name);
    return jv_undef(msg);
}

static bool jb_name_in(const char *name, size_t n, const char *const *list)
{
    for (; *list; list++)
        if (strlen(*list) == n && memcmp(*list, name, n) == 0)
            return true;
    return false;
}

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
        if (jb_name_in(name, name_len, dict_methods) || jb_name_in(name, name_len, mutating_methods))
            return jv_func(r, JF_METHOD, ja_strndup(&r->a, name, name_len), obj);
        /* fall through */
    case JV_NS: {
        jv v;
        if (jv_dict_get(obj.u.d, jv_str_nocopy(name, name_len), &v))
            return v;
        return undef_attr(r, obj, name, name_len);
    }
    case JV_STR:
        if (jb_is_str_method(name, name_len))
            return jv_func(r, JF_METHOD, ja_strndup(&r->a, name, name_len), obj);
        return undef_attr(r, obj, name, name_len);
    case JV_LIST:
        if (jb_name_in(name, name_len, list_methods) || jb_name_in(name, name_len, mutating_methods))
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
jv jb_attr_path(jrender *r, const jnode *at, jv v, jv path)
{
    if (path.t == JV_INT)
        return jb_getitem(r, at, v, path);
    jb_need_str(r, at, "attribute", path);
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
/* ---- globals ---- */

static jv g_range(jrender *r, const jnode *at, jargs *a)
{
    if (a->n_kw || a->n_pos < 1 || a->n_pos > 3)
        jr_fail(r, at, PONDER_ERR_FORMAT, "range() takes 1 to 3 integer arguments");
    int64_t start = 0, stop, step = 1;
    if (a->n_pos == 1) {
        stop = jb_need_int(r, at, "range() argument", a->pos[0]);
    } else {
        start = jb_need_int(r, at, "range() argument", a->pos[0]);
        stop = jb_need_int(r, at, "range() argument", a->pos[1]);
        if (a->n_pos == 3)
            step = jb_need_int(r, at, "range() argument", a->pos[2]);
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

/* transformers' strftime_now: datetime.now().strftime(fmt), i.e. the local time now. With
 * SOURCE_DATE_EPOCH set (the reproducible-builds convention: seconds since 1970, UTC) that
 * instant is used instead, in UTC, so renderings can be reproduced and compared. */
static jv g_strftime(jrender *r, const jnode *at, jargs *a)
{
    if (a->n_pos != 1 || a->pos[0].t != JV_STR)
        jr_fail(r, at, PONDER_ERR_FORMAT, "strftime_now() takes one format string");
    struct tm tm;
    const char *epoch = getenv("SOURCE_DATE_EPOCH");
    if (epoch && epoch[0]) {
        char *end = NULL;
        errno = 0;
        const long long v = strtoll(epoch, &end, 10);
        if (errno || *end || v < 0 || (long long)(time_t)v != v)
            jr_fail(r, at, PONDER_ERR_INVALID_ARG, "SOURCE_DATE_EPOCH='%.40s' is not a number of seconds since 1970",
                    epoch);
        const time_t t = (time_t)v;
        if (!gmtime_r(&t, &tm))
            jr_fail(r, at, PONDER_ERR_INVALID_ARG, "SOURCE_DATE_EPOCH=%lld is out of range", v);
    } else {
        const time_t t = time(NULL);
        if (!localtime_r(&t, &tm))
            jr_fail(r, at, PONDER_ERR_INTERNAL, "strftime_now(): the clock cannot be read");
    }
    char buf[1024];
    size_t n = strftime(buf, sizeof buf, a->pos[0].u.s.p, &tm);
    return jv_str(r, buf, n);
}

jv jb_call_func(jrender *r, const jnode *at, jv fv, jargs *a)
{
    const jfunc *fn = fv.u.fn;
    if (fn->kind == JF_METHOD) {
        if (jb_name_in(fn->name, strlen(fn->name), mutating_methods))
            jr_fail(r, at, PONDER_ERR_FORMAT, "access to attribute '%s' of '%s' object is unsafe.", fn->name,
                    jv_type_name(fn->self));
        switch (fn->self.t) {
        case JV_STR: return jb_str_method(r, at, fn->name, fn->self, a);
        case JV_DICT: return jb_dict_method(r, at, fn->name, fn->self, a);
        case JV_LIST: return jb_list_method(r, at, fn->name, fn->self, a);
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
