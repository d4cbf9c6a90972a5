/*
 * filters.c — jinja2's built-in tests (defined, none, sameas, divisibleby, ...) and filters
 * (tojson, trim, join, map, select, sort, dictsort, unique, ...), each a function in a
 * name table, with jinja2 3.1's signatures and defaults, and the stable merge sort behind
 * the sorting filters (the comparator may fail and unwind).
 */
#include "chat/builtins.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
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
        return jb_map_case(c->r, v, 0);
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
    return jb_need_int(r, at, "even", v) % 2 == 0;
}
static bool t_odd(jrender *r, const jnode *at, jv v, jargs *a)
{
    (void)a;
    return jb_need_int(r, at, "odd", v) % 2 != 0;
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
    jv name = jb_need_str(r, at, "test name", a->pos[first]);
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
            int64_t n = jb_need_int(r, at, "indent", arg[1]);
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
    return jb_py_strip(r, jb_str_or_empty(r, v), arg[0], true, true);
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
    jb_no_args(r, at, "length", a);
    return jv_int(length_of(r, at, v));
}

static jv f_items(jrender *r, const jnode *at, jv v, jargs *a)
{
    jb_no_args(r, at, "items", a);
    if (v.t == JV_UNDEF)
        return jv_list_new(r, 0);
    if (v.t != JV_DICT)
        jr_fail(r, at, PONDER_ERR_FORMAT, "can only get item pairs from a mapping");
    return jb_dict_items(r, v);
}

static jv f_join(jrender *r, const jnode *at, jv v, jargs *a)
{
    BIND("join", "d", "attribute");
    jv sep = NOT_GIVEN(arg[0]) ? jv_str_nocopy("", 0) : jv_to_str(r, arg[0]);
    jlist *items = jv_iter_list(r, at, v);
    if (!NOT_GIVEN(arg[1])) {
        jv l = jv_list_new(r, items->n);
        for (size_t i = 0; i < items->n; i++)
            jv_list_push(r, &l, jb_attr_path(r, at, items->v[i], arg[1]));
        items = l.u.l;
    }
    return jb_str_join(r, sep, items);
}

static jv f_list(jrender *r, const jnode *at, jv v, jargs *a)
{
    jb_no_args(r, at, "list", a);
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
        jv item = by_attr ? jb_attr_path(r, at, items->v[i], a->pos[0]) : items->v[i];
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
            jv x = jb_attr_path(r, at, items->v[i], attribute);
            if (x.t == JV_UNDEF && !NOT_GIVEN(dflt))
                x = dflt;
            jv_list_push(r, &l, x);
        }
        return l;
    }
    if (a->n_pos < 1)
        jr_fail(r, at, PONDER_ERR_FORMAT, "map() needs a filter name or attribute=");
    jv name = jb_need_str(r, at, "filter name", a->pos[0]);
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
        jv key = NOT_GIVEN(arg[1]) ? items->v[i] : jb_attr_path(r, at, items->v[i], arg[1]);
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
        int64_t w = jb_need_int(r, at, "indent width", arg[0]);
        jbuf b = { 0 };
        for (int64_t i = 0; i < w && i < 4096; i++)
            jb_putc(r, &b, ' ');
        ind = jb_take(r, &b);
    }
    bool first = !NOT_GIVEN(arg[1]) && jv_truthy(arg[1]);
    bool blank = !NOT_GIVEN(arg[2]) && jv_truthy(arg[2]);
    jv s = jb_str_or_empty(r, v);
    /* jinja2 appends "\n" before splitlines(), so a trailing newline is not kept */
    jbuf tmp = { 0 };
    jb_put(r, &tmp, s.u.s.p, s.u.s.n);
    jb_putc(r, &tmp, '\n');
    jlist *lines = jb_py_splitlines(r, jb_take(r, &tmp)).u.l;
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

static jv f_lower(jrender *r, const jnode *at, jv v, jargs *a) { jb_no_args(r, at, "lower", a); return jb_map_case(r, jb_str_or_empty(r, v), 0); }
static jv f_upper(jrender *r, const jnode *at, jv v, jargs *a) { jb_no_args(r, at, "upper", a); return jb_map_case(r, jb_str_or_empty(r, v), 1); }
static jv f_capitalize(jrender *r, const jnode *at, jv v, jargs *a) { jb_no_args(r, at, "capitalize", a); return jb_py_capitalize(r, jb_str_or_empty(r, v)); }

/* jinja2's title filter: words start after '-', whitespace, '(', '{', '[' or '<' */
static jv f_title(jrender *r, const jnode *at, jv v, jargs *a)
{
    jb_no_args(r, at, "title", a);
    jv s = jb_str_or_empty(r, v);
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
    jb_no_args(r, at, "string", a);
    return jb_str_or_empty(r, v);
}

static jv f_safe(jrender *r, const jnode *at, jv v, jargs *a)
{
    jb_no_args(r, at, "safe", a);
    jv s = jb_str_or_empty(r, v);
    s.markup = 1;
    return s;
}

static jv f_escape(jrender *r, const jnode *at, jv v, jargs *a)
{
    jb_no_args(r, at, "escape", a);
    return je_escape(r, v.t == JV_UNDEF ? jv_str_nocopy("", 0) : v);
}

static jv f_forceescape(jrender *r, const jnode *at, jv v, jargs *a)
{
    jb_no_args(r, at, "forceescape", a);
    jv s = jv_to_str(r, v);
    s.markup = 0;
    return je_escape(r, s);
}

static jv f_replace(jrender *r, const jnode *at, jv v, jargs *a)
{
    BIND("replace", "old", "new", "count");
    /* without autoescape jinja2 replaces on str(s): the result is plain, nothing escaped */
    jv s = jb_str_or_empty(r, v);
    jv old = jv_to_str(r, arg[0]), nw = jv_to_str(r, arg[1]);
    int64_t count = NOT_GIVEN(arg[2]) || arg[2].t == JV_NONE ? -1 : jb_need_int(r, at, "count", arg[2]);
    return jb_str_replace(r, s, old, nw, count);
}

static jv f_first(jrender *r, const jnode *at, jv v, jargs *a)
{
    jb_no_args(r, at, "first", a);
    jlist *l = jv_iter_list(r, at, v);
    return l->n ? l->v[0] : jv_undef("first() of an empty sequence");
}

static jv f_last(jrender *r, const jnode *at, jv v, jargs *a)
{
    jb_no_args(r, at, "last", a);
    jlist *l = jv_iter_list(r, at, v);
    return l->n ? l->v[l->n - 1] : jv_undef("last() of an empty sequence");
}

static jv f_reverse(jrender *r, const jnode *at, jv v, jargs *a)
{
    jb_no_args(r, at, "reverse", a);
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
    int64_t prec = NOT_GIVEN(arg[0]) ? 0 : jb_need_int(r, at, "precision", arg[0]);
    const char *method = NOT_GIVEN(arg[1]) ? "common" : jb_need_str(r, at, "method", arg[1]).u.s.p;
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
    int64_t base = NOT_GIVEN(arg[1]) ? 10 : jb_need_int(r, at, "base", arg[1]);
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
    jb_no_args(r, at, "abs", a);
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
    int64_t n = jb_need_int(r, at, "linecount", arg[0]);
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
        jv by = jb_need_str(r, at, "by", arg[1]);
        if (!strcmp(by.u.s.p, "value"))
            by_value = true;
        else if (strcmp(by.u.s.p, "key") != 0)
            jr_fail(r, at, PONDER_ERR_FORMAT, "You can only sort by either \"key\" or \"value\"");
    }
    jlist *items = jb_dict_items(r, v).u.l;
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
        keys[i] = sort_key(&c, NOT_GIVEN(arg[2]) ? items->v[i] : jb_attr_path(r, at, items->v[i], arg[2]));
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
    jv bk = sort_key(&c, NOT_GIVEN(arg[1]) ? items->v[0] : jb_attr_path(r, at, items->v[0], arg[1]));
    for (size_t i = 1; i < items->n; i++) {
        jv k = sort_key(&c, NOT_GIVEN(arg[1]) ? items->v[i] : jb_attr_path(r, at, items->v[i], arg[1]));
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
        jv x = NOT_GIVEN(arg[0]) ? items->v[i] : jb_attr_path(r, at, items->v[i], arg[0]);
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
    int64_t w = NOT_GIVEN(arg[0]) ? 80 : jb_need_int(r, at, "width", arg[0]);
    jv s = jb_str_or_empty(r, v);
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
    jb_no_args(r, at, "wordcount", a);
    jv s = jb_str_or_empty(r, v);
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
    return jb_percent_format(r, at, jb_str_or_empty(r, v), args);
}

static jv f_attr(jrender *r, const jnode *at, jv v, jargs *a)
{
    BIND("attr", "name");
    jv name = jb_need_str(r, at, "attribute name", arg[0]);
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
    jv s = jb_str_or_empty(r, v);
    int64_t length = NOT_GIVEN(arg[0]) ? 255 : jb_need_int(r, at, "length", arg[0]);
    bool killwords = !NOT_GIVEN(arg[1]) && jv_truthy(arg[1]);
    jv end = NOT_GIVEN(arg[2]) ? jv_str_nocopy("...", 3) : jv_to_str(r, arg[2]);
    int64_t leeway = NOT_GIVEN(arg[3]) ? 5 : jb_need_int(r, at, "leeway", arg[3]);
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
