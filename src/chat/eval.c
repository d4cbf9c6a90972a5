/*
 * eval.c — the tree-walking evaluator: statements write to the current output buffer,
 * expressions return values. Scoping follows jinja2: each for-loop iteration and each
 * macro call gets a new frame (a `set` there does not leak out), `if` opens none, and
 * namespaces are the only state a loop can change outside itself. Undefined follows
 * jinja2's default Undefined: falsy, prints empty, iterates empty, fails on arithmetic
 * and on attribute access. Every step is counted and every recursion bounded.
 */
#include "chat/eval.h"

#include <jansson.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static jv eval(jrender *r, jframe *f, const jnode *n);
static void exec_body(jrender *r, jframe *f, const jnodes *body);

void je_step(jrender *r, const jnode *at)
{
    if (++r->steps > JINJA_MAX_STEPS)
        jr_fail(r, at, PONDER_ERR_RANGE, "template takes more than %llu evaluation steps",
                (unsigned long long)JINJA_MAX_STEPS);
}

static jframe *frame_new(jrender *r, jframe *parent)
{
    jframe *f = ja_alloc(&r->a, sizeof *f);
    f->parent = parent;
    return f;
}

static void frame_set(jrender *r, jframe *f, const char *name, jv v)
{
    jdict_set_cstr(r, &f->vars, name, v);
}

static jv lookup(jrender *r, jframe *f, const char *name)
{
    jv k = jv_str_nocopy(name, strlen(name));
    for (; f; f = f->parent) {
        jv v;
        if (jv_dict_get(&f->vars, k, &v))
            return v;
    }
    size_t n = strlen(name) + 24;
    char *msg = ja_alloc(&r->a, n);
    snprintf(msg, n, "'%s' is undefined", name);
    return jv_undef(msg);
}

_Noreturn static void fail_undefined(jrender *r, const jnode *at, jv u)
{
    jr_fail(r, at, PONDER_ERR_FORMAT, "%s", u.u.s.p ? u.u.s.p : "undefined value");
}

jv je_escape(jrender *r, jv v)
{
    if (v.t == JV_STR && v.markup)
        return v;
    jv s = jv_to_str(r, v);
    jbuf b = { 0 };
    size_t run = 0;
    for (size_t i = 0; i < s.u.s.n; i++) {
        const char *e = NULL;
        switch (s.u.s.p[i]) {
        case '&': e = "&amp;"; break;
        case '<': e = "&lt;"; break;
        case '>': e = "&gt;"; break;
        case '"': e = "&#34;"; break;
        case '\'': e = "&#39;"; break;
        default: break;
        }
        if (e) {
            jb_put(r, &b, s.u.s.p + run, i - run);
            jb_puts(r, &b, e);
            run = i + 1;
        }
    }
    jb_put(r, &b, s.u.s.p + run, s.u.s.n - run);
    jv out = jb_take(r, &b);
    out.markup = 1;
    return out;
}

/* ---- assignment ---- */

static void assign(jrender *r, jframe *f, const jnode *target, jv v)
{
    if (target->k == JN_NAME) {
        frame_set(r, f, target->s, v);
    } else if (target->k == JN_TUPLE) {
        jlist *items = jv_iter_list(r, target, v);
        if (items->n != target->body.n)
            jr_fail(r, target, PONDER_ERR_FORMAT, "cannot unpack %zu values into %zu names", items->n, target->body.n);
        for (size_t i = 0; i < items->n; i++)
            assign(r, f, target->body.v[i], items->v[i]);
    } else if (target->k == JN_GETATTR) {
        jv ns = lookup(r, f, target->a->s);
        if (ns.t != JV_NS)
            jr_fail(r, target, PONDER_ERR_FORMAT, "cannot assign attribute on non-namespace object '%s'", target->a->s);
        jdict_set_cstr(r, ns.u.d, target->s, v);
    } else {
        jr_fail(r, target, PONDER_ERR_FORMAT, "cannot assign to this expression");
    }
}

/* ---- calls ---- */

static void eval_args(jrender *r, jframe *f, const jnode *call, jargs *a)
{
    a->n_pos = call->body.n;
    a->pos = a->n_pos ? ja_alloc(&r->a, a->n_pos * sizeof(jv)) : NULL;
    for (size_t i = 0; i < a->n_pos; i++)
        a->pos[i] = eval(r, f, call->body.v[i]);
    a->n_kw = call->n_names;
    a->kw_names = call->names;
    a->kw = a->n_kw ? ja_alloc(&r->a, a->n_kw * sizeof(jv)) : NULL;
    for (size_t i = 0; i < a->n_kw; i++)
        a->kw[i] = eval(r, f, call->body2.v[i]);
}

jv je_call_macro(jrender *r, const jnode *at, jv mv, jargs *a)
{
    const jmacro *m = mv.u.m;
    const jnode *def = m->def;
    if (++r->macro_depth > JINJA_MAX_MACRO_DEPTH)
        jr_fail(r, at, PONDER_ERR_RANGE, "macro calls nested more than %d deep (runaway recursion?)",
                JINJA_MAX_MACRO_DEPTH);
    jframe *f = frame_new(r, m->closure);
    size_t n_params = def->n_names;
    jv varargs = jv_list_new(r, 0);
    varargs.u.l->tuple = true;
    jv kwargs = jv_dict_new(r);
    bool *given = n_params ? ja_alloc(&r->a, n_params) : NULL;
    for (size_t i = 0; i < a->n_pos; i++) {
        if (i < n_params) {
            frame_set(r, f, def->names[i], a->pos[i]);
            given[i] = true;
        } else {
            jv_list_push(r, &varargs, a->pos[i]);
        }
    }
    for (size_t k = 0; k < a->n_kw; k++) {
        size_t i = 0;
        while (i < n_params && strcmp(def->names[i], a->kw_names[k]) != 0)
            i++;
        if (i < n_params) {
            if (given[i])
                jr_fail(r, at, PONDER_ERR_FORMAT, "macro '%s' got multiple values for argument '%s'",
                        m->name ? m->name : "caller", a->kw_names[k]);
            frame_set(r, f, def->names[i], a->kw[k]);
            given[i] = true;
        } else {
            jdict_set_cstr(r, kwargs.u.d, a->kw_names[k], a->kw[k]);
        }
    }
    for (size_t i = 0; i < n_params; i++) {
        if (given[i])
            continue;
        const jnode *d = def->body2.v[i];
        if (d) {
            frame_set(r, f, def->names[i], eval(r, f, d));
        } else {
            size_t len = strlen(def->names[i]) + 80;
            char *msg = ja_alloc(&r->a, len);
            snprintf(msg, len, "parameter '%s' was not provided", def->names[i]);
            frame_set(r, f, def->names[i], jv_undef(msg));
        }
    }
    frame_set(r, f, "varargs", varargs);
    frame_set(r, f, "kwargs", kwargs);
    if (m->caller.t == JV_MACRO)
        frame_set(r, f, "caller", m->caller);
    jbuf *saved = r->out;
    jbuf buf = { 0 };
    r->out = &buf;
    int saved_ctl = r->loop_ctl;
    exec_body(r, f, &def->body);
    r->loop_ctl = saved_ctl;
    r->out = saved;
    r->macro_depth--;
    return jb_take(r, &buf);
}

static jv call_value(jrender *r, jframe *f, const jnode *n, jv callee, jv caller)
{
    jargs a;
    eval_args(r, f, n, &a);
    switch (callee.t) {
    case JV_MACRO:
        if (caller.t == JV_MACRO) {
            jv c = callee;
            jmacro *m = ja_alloc(&r->a, sizeof *m);
            *m = *callee.u.m;
            m->caller = caller;
            c.u.m = m;
            return je_call_macro(r, n, c, &a);
        }
        return je_call_macro(r, n, callee, &a);
    case JV_FUNC: return jb_call_func(r, n, callee, &a);
    case JV_LOOP: return je_loop_call(r, n, callee.u.loop, &a);
    case JV_UNDEF: fail_undefined(r, n, callee);
    default: jr_fail(r, n, PONDER_ERR_FORMAT, "'%s' object is not callable", jv_type_name(callee));
    }
}

/* ---- operators ---- */

static bool add_overflows(int64_t a, int64_t b, int64_t *out)
{
    return __builtin_add_overflow(a, b, out);
}

static int64_t as_int(jv v)
{
    return v.t == JV_INT ? v.u.i : v.t == JV_BOOL ? (int64_t)v.u.b : 0;
}

static jv concat_str(jrender *r, jv a, jv b)
{
    bool markup = a.markup || b.markup;
    if (markup) {
        a = je_escape(r, a);
        b = je_escape(r, b);
    }
    char *p = ja_alloc(&r->a, a.u.s.n + b.u.s.n + 1);
    memcpy(p, a.u.s.p, a.u.s.n);
    memcpy(p + a.u.s.n, b.u.s.p, b.u.s.n);
    p[a.u.s.n + b.u.s.n] = 0;
    jv v = jv_str_nocopy(p, a.u.s.n + b.u.s.n);
    v.markup = markup;
    return v;
}

static jv repeat(jrender *r, const jnode *at, jv seq, int64_t times)
{
    if (times < 0)
        times = 0;
    /* an empty string or list repeated is empty, however large the count: the loops
     * below would otherwise spin `times` times for nothing (a fuzzer found '' * 3e9) */
    if ((seq.t == JV_STR && seq.u.s.n == 0) || (seq.t != JV_STR && seq.u.l->n == 0))
        times = 0;
    if (seq.t == JV_STR) {
        if (seq.u.s.n && (uint64_t)times > JINJA_MAX_OUTPUT_BYTES / seq.u.s.n)
            jr_fail(r, at, PONDER_ERR_RANGE, "string repetition longer than %u MiB", JINJA_MAX_OUTPUT_BYTES >> 20);
        jbuf b = { 0 };
        for (int64_t i = 0; i < times; i++)
            jb_put(r, &b, seq.u.s.p, seq.u.s.n);
        jv v = jb_take(r, &b);
        v.markup = seq.markup;
        return v;
    }
    if (seq.u.l->n && (uint64_t)times > (JINJA_MAX_OUTPUT_BYTES / 16) / seq.u.l->n)
        jr_fail(r, at, PONDER_ERR_RANGE, "list repetition too long");
    jv l = jv_list_new(r, seq.u.l->n * (size_t)times);
    l.u.l->tuple = seq.u.l->tuple;
    for (int64_t i = 0; i < times; i++)
        for (size_t k = 0; k < seq.u.l->n; k++)
            jv_list_push(r, &l, seq.u.l->v[k]);
    return l;
}


static jv binop(jrender *r, const jnode *n, int op, jv a, jv b)
{
    if (op == '~') {
        jv x = jv_to_str(r, a), y = jv_to_str(r, b);
        x.markup = y.markup = 0;
        return concat_str(r, x, y);
    }
    if (a.t == JV_UNDEF)
        fail_undefined(r, n, a);
    if (b.t == JV_UNDEF)
        fail_undefined(r, n, b);
    bool nums = jv_is_number(a) && jv_is_number(b);
    bool ints = nums && a.t != JV_FLOAT && b.t != JV_FLOAT;
    const char *sym = "?";
    switch (op) {
    case '+':
        sym = "+";
        if (ints) {
            int64_t o;
            if (add_overflows(as_int(a), as_int(b), &o))
                jr_fail(r, n, PONDER_ERR_RANGE, "integer overflow in '+'");
            return jv_int(o);
        }
        if (nums)
            return jv_float(jv_as_double(a) + jv_as_double(b));
        if (a.t == JV_STR && b.t == JV_STR)
            return concat_str(r, a, b);
        if (a.t == JV_LIST && b.t == JV_LIST && a.u.l->tuple == b.u.l->tuple) {
            jv l = jv_list_new(r, a.u.l->n + b.u.l->n);
            l.u.l->tuple = a.u.l->tuple;
            for (size_t i = 0; i < a.u.l->n; i++)
                jv_list_push(r, &l, a.u.l->v[i]);
            for (size_t i = 0; i < b.u.l->n; i++)
                jv_list_push(r, &l, b.u.l->v[i]);
            return l;
        }
        if (a.t == JV_STR)
            jr_fail(r, n, PONDER_ERR_FORMAT, "can only concatenate str (not \"%s\") to str", jv_type_name(b));
        break;
    case '-':
        sym = "-";
        if (ints) {
            int64_t o;
            if (__builtin_sub_overflow(as_int(a), as_int(b), &o))
                jr_fail(r, n, PONDER_ERR_RANGE, "integer overflow in '-'");
            return jv_int(o);
        }
        if (nums)
            return jv_float(jv_as_double(a) - jv_as_double(b));
        break;
    case '*':
        sym = "*";
        if (ints) {
            int64_t o;
            if (__builtin_mul_overflow(as_int(a), as_int(b), &o))
                jr_fail(r, n, PONDER_ERR_RANGE, "integer overflow in '*'");
            return jv_int(o);
        }
        if (nums)
            return jv_float(jv_as_double(a) * jv_as_double(b));
        if ((a.t == JV_STR || a.t == JV_LIST) && (b.t == JV_INT || b.t == JV_BOOL))
            return repeat(r, n, a, as_int(b));
        if ((b.t == JV_STR || b.t == JV_LIST) && (a.t == JV_INT || a.t == JV_BOOL))
            return repeat(r, n, b, as_int(a));
        break;
    case '/':
        sym = "/";
        if (nums) {
            if (jv_as_double(b) == 0.0)
                jr_fail(r, n, PONDER_ERR_FORMAT, "division by zero");
            return jv_float(jv_as_double(a) / jv_as_double(b));
        }
        break;
    case JOP_FLOORDIV:
        sym = "//";
        if (nums) {
            if (jv_as_double(b) == 0.0)
                jr_fail(r, n, PONDER_ERR_FORMAT, "integer division or modulo by zero");
            if (ints) {
                int64_t x = as_int(a), y = as_int(b);
                if (x == INT64_MIN && y == -1)
                    jr_fail(r, n, PONDER_ERR_RANGE, "integer overflow in '//'");
                int64_t q = x / y;
                if ((x % y != 0) && ((x < 0) != (y < 0)))
                    q--;
                return jv_int(q);
            }
            return jv_float(floor(jv_as_double(a) / jv_as_double(b)));
        }
        break;
    case '%':
        sym = "%";
        if (a.t == JV_STR)
            return jb_percent_format(r, n, a, b);
        if (nums) {
            if (jv_as_double(b) == 0.0)
                jr_fail(r, n, PONDER_ERR_FORMAT, "integer division or modulo by zero");
            if (ints) {
                int64_t x = as_int(a), y = as_int(b);
                if (y == -1)
                    return jv_int(0);
                int64_t m = x % y;
                if (m != 0 && ((m < 0) != (y < 0)))
                    m += y;
                return jv_int(m);
            }
            double x = jv_as_double(a), y = jv_as_double(b);
            double m = fmod(x, y);
            if (m != 0 && ((m < 0) != (y < 0)))
                m += y;
            return jv_float(m);
        }
        break;
    case JOP_POW:
        sym = "**";
        if (ints && as_int(b) >= 0) {
            /* by squaring: O(log e), so 0 ** 10**12 (which never overflows) is not a
             * trillion-step loop; a square that overflows while bits remain means the
             * result would too (|base| >= 2 there) */
            int64_t base = as_int(a), e = as_int(b), o = 1;
            while (e > 0) {
                if ((e & 1) && __builtin_mul_overflow(o, base, &o))
                    jr_fail(r, n, PONDER_ERR_RANGE, "integer overflow in '**'");
                e >>= 1;
                if (e > 0 && __builtin_mul_overflow(base, base, &base))
                    jr_fail(r, n, PONDER_ERR_RANGE, "integer overflow in '**'");
            }
            return jv_int(o);
        }
        if (nums)
            return jv_float(pow(jv_as_double(a), jv_as_double(b)));
        break;
    default: break;
    }
    jr_fail(r, n, PONDER_ERR_FORMAT, "unsupported operand type(s) for %s: '%s' and '%s'", sym, jv_type_name(a),
            jv_type_name(b));
}

static bool contains(jrender *r, const jnode *at, jv item, jv container)
{
    switch (container.t) {
    case JV_STR:
        if (item.t != JV_STR)
            jr_fail(r, at, PONDER_ERR_FORMAT, "'in <string>' requires string as left operand, not %s", jv_type_name(item));
        if (item.u.s.n == 0)
            return true;
        if (item.u.s.n > container.u.s.n)
            return false;
        return memmem(container.u.s.p, container.u.s.n, item.u.s.p, item.u.s.n) != NULL;
    case JV_LIST:
        for (size_t i = 0; i < container.u.l->n; i++)
            if (jv_equal(item, container.u.l->v[i]))
                return true;
        return false;
    case JV_DICT:
    case JV_NS: {
        jv o;
        return jv_dict_get(container.u.d, item, &o);
    }
    case JV_UNDEF: return false;
    default:
        jr_fail(r, at, PONDER_ERR_FORMAT, "argument of type '%s' is not iterable", jv_type_name(container));
    }
}

static jv slice(jrender *r, jframe *f, const jnode *n, jv obj)
{
    int64_t parts[3];
    bool given[3];
    const jnode *pn[3] = { n->b, n->c, n->d };
    for (int i = 0; i < 3; i++) {
        given[i] = false;
        parts[i] = 0;
        if (!pn[i])
            continue;
        jv v = eval(r, f, pn[i]);
        if (v.t == JV_NONE)
            continue;
        if (v.t != JV_INT && v.t != JV_BOOL)
            jr_fail(r, pn[i], PONDER_ERR_FORMAT, "slice indices must be integers or None");
        parts[i] = as_int(v);
        given[i] = true;
    }
    int64_t step = given[2] ? parts[2] : 1;
    if (step == 0)
        jr_fail(r, n, PONDER_ERR_FORMAT, "slice step cannot be zero");
    if (obj.t == JV_UNDEF)
        fail_undefined(r, n, obj);
    size_t len;
    jlist *items = NULL;
    if (obj.t == JV_STR)
        len = js_cp_len(obj.u.s.p, obj.u.s.n);
    else if (obj.t == JV_LIST)
        len = obj.u.l->n, items = obj.u.l;
    else
        jr_fail(r, n, PONDER_ERR_FORMAT, "'%s' object is not subscriptable", jv_type_name(obj));
    int64_t L = (int64_t)len, start, stop;
    /* CPython PySlice_AdjustIndices */
    if (!given[0]) {
        start = step < 0 ? L - 1 : 0;
    } else {
        start = parts[0];
        if (start < 0) {
            start += L;
            if (start < 0)
                start = step < 0 ? -1 : 0;
        } else if (start >= L) {
            start = step < 0 ? L - 1 : L;
        }
    }
    if (!given[1]) {
        stop = step < 0 ? -1 : L;
    } else {
        stop = parts[1];
        if (stop < 0) {
            stop += L;
            if (stop < 0)
                stop = step < 0 ? -1 : 0;
        } else if (stop >= L) {
            stop = step < 0 ? L - 1 : L;
        }
    }
    if (obj.t == JV_STR) {
        jbuf b = { 0 };
        if (step == 1) {
            if (stop > start) {
                size_t o1 = js_cp_offset(obj.u.s.p, obj.u.s.n, (size_t)start);
                size_t o2 = js_cp_offset(obj.u.s.p, obj.u.s.n, (size_t)stop);
                jb_put(r, &b, obj.u.s.p + o1, o2 - o1);
            }
        } else {
            jlist *chars = jv_iter_list(r, n, obj);
            for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step)
                jb_put(r, &b, chars->v[i].u.s.p, chars->v[i].u.s.n);
        }
        jv v = jb_take(r, &b);
        v.markup = obj.markup;
        return v;
    }
    jv l = jv_list_new(r, 0);
    l.u.l->tuple = items->tuple;
    for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step)
        jv_list_push(r, &l, items->v[i]);
    return l;
}

static jv eval_filter_chain(jrender *r, jframe *f, const jnode *n, jv operand)
{
    if (!n)
        return operand;
    jv self = eval_filter_chain(r, f, n->a, operand);
    jargs a;
    eval_args(r, f, n, &a);
    return jb_call_filter(r, n, n->s, self, &a);
}

static jv eval(jrender *r, jframe *f, const jnode *n)
{
    je_step(r, n);
    if (++r->depth > JINJA_MAX_EVAL_DEPTH)
        jr_fail(r, n, PONDER_ERR_RANGE, "expression nested too deeply");
    const jnode *saved_at = r->at;
    r->at = n;
    jv v;
    switch (n->k) {
    case JN_LITERAL: v = n->lit; break;
    case JN_NAME: v = lookup(r, f, n->s); break;
    case JN_GETATTR: {
        jv obj = eval(r, f, n->a);
        if (obj.t == JV_UNDEF)
            fail_undefined(r, n, obj);
        v = jb_getattr(r, n, obj, n->s, strlen(n->s));
        break;
    }
    case JN_GETITEM: {
        jv obj = eval(r, f, n->a);
        jv key = eval(r, f, n->b);
        if (obj.t == JV_UNDEF)
            fail_undefined(r, n, obj);
        v = jb_getitem(r, n, obj, key);
        break;
    }
    case JN_SLICE: v = slice(r, f, n, eval(r, f, n->a)); break;
    case JN_CALL: {
        jv callee = eval(r, f, n->a);
        v = call_value(r, f, n, callee, jv_undef(NULL));
        break;
    }
    case JN_FILTER: {
        jv self = n->a ? eval(r, f, n->a) : jv_undef(NULL);
        jargs a;
        eval_args(r, f, n, &a);
        v = jb_call_filter(r, n, n->s, self, &a);
        break;
    }
    case JN_TEST: {
        jv self = eval(r, f, n->a);
        jargs a;
        eval_args(r, f, n, &a);
        bool t = jb_call_test(r, n, n->s, self, &a);
        v = jv_bool(n->flag ? !t : t);
        break;
    }
    case JN_BINOP: {
        jv a = eval(r, f, n->a);
        jv b = eval(r, f, n->b);
        v = binop(r, n, n->op, a, b);
        break;
    }
    case JN_UNARY: {
        jv a = eval(r, f, n->a);
        if (a.t == JV_INT || a.t == JV_BOOL) {
            int64_t x = as_int(a);
            if (n->op == JOP_NEG && x == INT64_MIN)
                jr_fail(r, n, PONDER_ERR_RANGE, "integer overflow in unary '-'");
            v = jv_int(n->op == JOP_NEG ? -x : x);
        } else if (a.t == JV_FLOAT) {
            v = jv_float(n->op == JOP_NEG ? -a.u.f : a.u.f);
        } else if (a.t == JV_UNDEF) {
            fail_undefined(r, n, a);
        } else {
            jr_fail(r, n, PONDER_ERR_FORMAT, "bad operand type for unary %c: '%s'", n->op == JOP_NEG ? '-' : '+',
                    jv_type_name(a));
        }
        break;
    }
    case JN_NOT: v = jv_bool(!jv_truthy(eval(r, f, n->a))); break;
    case JN_AND: {
        jv a = eval(r, f, n->a);
        v = jv_truthy(a) ? eval(r, f, n->b) : a;
        break;
    }
    case JN_OR: {
        jv a = eval(r, f, n->a);
        v = jv_truthy(a) ? a : eval(r, f, n->b);
        break;
    }
    case JN_COMPARE: {
        jv left = eval(r, f, n->a);
        bool ok = true;
        for (size_t i = 0; i < n->body.n && ok; i++) {
            jv right = eval(r, f, n->body.v[i]);
            const jnode *at = n->body.v[i];
            switch (n->ops[i]) {
            case JOP_EQ: ok = jv_equal(left, right); break;
            case JOP_NE: ok = !jv_equal(left, right); break;
            case '<': ok = jv_compare(r, at, left, right) < 0; break;
            case '>': ok = jv_compare(r, at, left, right) > 0; break;
            case JOP_LE: ok = jv_compare(r, at, left, right) <= 0; break;
            case JOP_GE: ok = jv_compare(r, at, left, right) >= 0; break;
            case JOP_IN: ok = contains(r, at, left, right); break;
            case JOP_NOTIN: ok = !contains(r, at, left, right); break;
            default: ok = false;
            }
            left = right;
        }
        v = jv_bool(ok);
        break;
    }
    case JN_COND:
        if (jv_truthy(eval(r, f, n->a)))
            v = eval(r, f, n->b);
        else
            v = n->c ? eval(r, f, n->c) : jv_undef("the inline if-expression has no else branch");
        break;
    case JN_LIST:
    case JN_TUPLE: {
        v = jv_list_new(r, n->body.n);
        v.u.l->tuple = n->k == JN_TUPLE;
        for (size_t i = 0; i < n->body.n; i++)
            jv_list_push(r, &v, eval(r, f, n->body.v[i]));
        break;
    }
    case JN_DICT: {
        v = jv_dict_new(r);
        for (size_t i = 0; i < n->body.n; i++) {
            jv k = eval(r, f, n->body.v[i]);
            if (k.t == JV_LIST && !k.u.l->tuple)
                jr_fail(r, n->body.v[i], PONDER_ERR_FORMAT, "unhashable type: 'list'");
            if (k.t == JV_DICT || k.t == JV_UNDEF)
                jr_fail(r, n->body.v[i], PONDER_ERR_FORMAT, "unhashable type: '%s'", jv_type_name(k));
            jv_dict_set(r, v.u.d, k, eval(r, f, n->body2.v[i]));
        }
        break;
    }
    default:
        jr_fail(r, n, PONDER_ERR_INTERNAL, "statement node evaluated as an expression");
    }
    r->at = saved_at;
    r->depth--;
    return v;
}

/* ---- statements ---- */

static void run_for(jrender *r, jframe *f, const jnode *n, jv iterable, int64_t depth0)
{
    if (iterable.t == JV_NONE)
        jr_fail(r, n->a, PONDER_ERR_FORMAT, "'NoneType' object is not iterable");
    jlist *items = jv_iter_list(r, n->a, iterable);
    if (n->c) {
        /* `for x in xs if cond`: filter first, so loop.* counts what passes */
        jv kept = jv_list_new(r, items->n);
        for (size_t i = 0; i < items->n; i++) {
            jframe *tf = frame_new(r, f);
            assign(r, tf, n->b, items->v[i]);
            if (jv_truthy(eval(r, tf, n->c)))
                jv_list_push(r, &kept, items->v[i]);
        }
        items = kept.u.l;
    }
    if (items->n == 0) {
        exec_body(r, f, &n->body2);
        return;
    }
    jloop *lp = ja_alloc(&r->a, sizeof *lp);
    lp->length = (int64_t)items->n;
    lp->items = items;
    lp->depth0 = depth0;
    lp->node = n;
    lp->frame = f;
    lp->changed_last = jv_undef(NULL);
    for (size_t i = 0; i < items->n; i++) {
        je_step(r, n);
        jframe *it = frame_new(r, f);
        jloop *cur = ja_alloc(&r->a, sizeof *cur);
        *cur = *lp;
        cur->index0 = (int64_t)i;
        jv lv = { .t = JV_LOOP };
        lv.u.loop = cur;
        frame_set(r, it, "loop", lv);
        assign(r, it, n->b, items->v[i]);
        exec_body(r, it, &n->body);
        lp->changed_last = cur->changed_last;
        if (r->loop_ctl == 1) {
            r->loop_ctl = 0;
            break;
        }
        r->loop_ctl = 0;
    }
}

jv je_loop_call(jrender *r, const jnode *at, jloop *l, jargs *a)
{
    if (!l->node->flag)
        jr_fail(r, at, PONDER_ERR_FORMAT, "the loop is not recursive (add 'recursive' to the for tag)");
    if (a->n_pos != 1 || a->n_kw)
        jr_fail(r, at, PONDER_ERR_FORMAT, "loop() takes exactly one argument");
    if (++r->macro_depth > JINJA_MAX_MACRO_DEPTH)
        jr_fail(r, at, PONDER_ERR_RANGE, "recursive loop nested more than %d deep", JINJA_MAX_MACRO_DEPTH);
    jbuf *saved = r->out;
    jbuf buf = { 0 };
    r->out = &buf;
    run_for(r, l->frame, l->node, a->pos[0], l->depth0 + 1);
    r->out = saved;
    r->macro_depth--;
    return jb_take(r, &buf);
}

static void exec(jrender *r, jframe *f, const jnode *n)
{
    je_step(r, n);
    if (++r->depth > JINJA_MAX_EVAL_DEPTH)
        jr_fail(r, n, PONDER_ERR_RANGE, "template nested too deeply");
    switch (n->k) {
    case JN_TEXT: jb_put(r, r->out, n->s, n->n); break;
    case JN_OUTPUT: {
        jv v = eval(r, f, n->a);
        jv_write_str(r, r->out, v);
        break;
    }
    case JN_IF:
        if (jv_truthy(eval(r, f, n->a)))
            exec_body(r, f, &n->body);
        else
            exec_body(r, f, &n->body2);
        break;
    case JN_FOR: run_for(r, f, n, eval(r, f, n->a), 0); break;
    case JN_SET: assign(r, f, n->b, eval(r, f, n->a)); break;
    case JN_SET_BLOCK:
    case JN_FILTER_BLOCK: {
        jbuf *saved = r->out;
        jbuf buf = { 0 };
        r->out = &buf;
        exec_body(r, f, &n->body);
        r->out = saved;
        jv v = eval_filter_chain(r, f, n->a, jb_take(r, &buf));
        if (n->k == JN_SET_BLOCK)
            assign(r, f, n->b, v);
        else
            jv_write_str(r, r->out, v);
        break;
    }
    case JN_MACRO: {
        jv m = { .t = JV_MACRO };
        m.u.m = ja_alloc(&r->a, sizeof *m.u.m);
        m.u.m->def = n;
        m.u.m->name = n->s;
        m.u.m->closure = f;
        m.u.m->caller = jv_undef(NULL);
        frame_set(r, f, n->s, m);
        break;
    }
    case JN_CALL_BLOCK: {
        jv caller = { .t = JV_MACRO };
        caller.u.m = ja_alloc(&r->a, sizeof *caller.u.m);
        caller.u.m->def = n;
        caller.u.m->name = "caller";
        caller.u.m->closure = f;
        caller.u.m->caller = jv_undef(NULL);
        jv callee = eval(r, f, n->a->a);
        if (callee.t != JV_MACRO)
            jr_fail(r, n, PONDER_ERR_FORMAT, "a call block needs a macro, got '%s'", jv_type_name(callee));
        jv_write_str(r, r->out, call_value(r, f, n->a, callee, caller));
        break;
    }
    case JN_BREAK: r->loop_ctl = 1; break;
    case JN_CONTINUE: r->loop_ctl = 2; break;
    case JN_WITH: {
        jframe *w = frame_new(r, f);
        for (size_t i = 0; i < n->n_names; i++)
            frame_set(r, w, n->names[i], eval(r, f, n->body2.v[i]));
        exec_body(r, w, &n->body);
        break;
    }
    case JN_SCOPE: exec_body(r, f, &n->body); break;
    default: jr_fail(r, n, PONDER_ERR_INTERNAL, "expression node executed as a statement");
    }
    r->depth--;
}

static void exec_body(jrender *r, jframe *f, const jnodes *body)
{
    for (size_t i = 0; i < body->n && r->loop_ctl == 0; i++)
        exec(r, f, body->v[i]);
}

/* ---- JSON input ---- */

static jv from_json(jrender *r, json_t *j, int depth)
{
    if (depth > JINJA_MAX_PARSE_DEPTH)
        jr_fail(r, NULL, PONDER_ERR_INVALID_ARG, "template variables nested more than %d deep", JINJA_MAX_PARSE_DEPTH);
    switch (json_typeof(j)) {
    case JSON_NULL: return jv_none();
    case JSON_TRUE: return jv_bool(true);
    case JSON_FALSE: return jv_bool(false);
    case JSON_INTEGER: return jv_int((int64_t)json_integer_value(j));
    case JSON_REAL: return jv_float(json_real_value(j));
    case JSON_STRING: return jv_str(r, json_string_value(j), json_string_length(j));
    case JSON_ARRAY: {
        size_t n = json_array_size(j);
        jv l = jv_list_new(r, n);
        for (size_t i = 0; i < n; i++)
            jv_list_push(r, &l, from_json(r, json_array_get(j, i), depth + 1));
        return l;
    }
    case JSON_OBJECT: {
        jv d = jv_dict_new(r);
        const char *k;
        json_t *v;
        json_object_foreach(j, k, v) {
            jv_dict_set(r, d.u.d, jv_cstr(r, k), from_json(r, v, depth + 1));
        }
        return d;
    }
    }
    return jv_none();
}

ponder_status jinja_render(const jnode *root, const void *vars_json, char **out, size_t *out_len, ponder_error *err)
{
    jrender *r = calloc(1, sizeof *r);
    if (!r)
        return ponder_error_set(err, PONDER_ERR_NOMEM, "out of memory");
    ponder_error local = { 0 };
    r->err = err ? err : &local;
    r->a.cap_bytes = JINJA_MAX_ARENA_BYTES;
    r->a.oom_jmp = &r->jmp;
    r->a.err = r->err;
    ponder_status st = PONDER_OK;
    if (setjmp(r->jmp)) {
        st = r->err->code;
        if (st == PONDER_OK)
            st = ponder_error_set(r->err, PONDER_ERR_INTERNAL, "template error without a message");
        ja_free_all(&r->a);
        free(r);
        return st;
    }
    r->globals = frame_new(r, NULL);
    jb_add_globals(r, &r->globals->vars);
    jframe *root_frame = frame_new(r, r->globals);
    json_t *vars = (json_t *)vars_json;
    const char *k;
    json_t *v;
    json_object_foreach(vars, k, v) {
        frame_set(r, root_frame, ja_strndup(&r->a, k, strlen(k)), from_json(r, v, 0));
    }
    jbuf buf = { 0 };
    r->out = &buf;
    exec_body(r, root_frame, &root->body);
    char *res = malloc(buf.n + 1);
    if (!res) {
        ja_free_all(&r->a);
        free(r);
        return ponder_error_set(err, PONDER_ERR_NOMEM, "out of memory");
    }
    if (buf.n)
        memcpy(res, buf.p, buf.n);
    res[buf.n] = 0;
    *out = res;
    *out_len = buf.n;
    ja_free_all(&r->a);
    free(r);
    return st;
}
