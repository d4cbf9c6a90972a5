/*
 * parse.c — recursive-descent parser from tokens to the AST, following jinja2 3.1's
 * parser.py rule by rule so precedence quirks match: filters and `is` tests bind to the
 * unary operand (`a + b | f` is `a + f(b)`, `not x is defined` is `not (x is defined)`),
 * `**` is left-associative, comparisons chain, `for ... in X if C` filters, and a
 * top-level `a, b` is a tuple. Constructs outside what chat templates need (extends,
 * include, import, blocks with inheritance) fail with their name and position.
 */
#include "chat/jinja.h"

bool jb_has_filter(const char *name); /* builtins.c */
bool jb_has_test(const char *name);

#include <stdio.h>
#include <string.h>

static jtok *cur(jparse *p)
{
    return &p->toks.v[p->pos];
}

static jtok *peek(jparse *p, size_t k)
{
    size_t i = p->pos + k;
    return i < p->toks.n ? &p->toks.v[i] : &p->toks.v[p->toks.n - 1];
}

static void advance(jparse *p)
{
    if (p->pos + 1 < p->toks.n)
        p->pos++;
}

static const char *tok_desc(const jtok *t)
{
    switch (t->t) {
    case JT_EOF: return "end of template";
    case JT_TEXT: return "template text";
    case JT_VAR_BEGIN: return "'{{'";
    case JT_VAR_END: return "'}}'";
    case JT_BLOCK_BEGIN: return "'{%'";
    case JT_BLOCK_END: return "'%}'";
    case JT_NAME: return t->s;
    case JT_STRING: return "string literal";
    case JT_INT: return "integer literal";
    case JT_FLOAT: return "float literal";
    case JT_OP: return "operator";
    }
    return "token";
}

_Noreturn static void fail_at(jparse *p, const jtok *t, const char *what)
{
    if (t->t == JT_OP) {
        static const char *two[] = { "==", "!=", "<=", ">=", "//", "**" };
        if (t->op >= JOP_EQ && t->op <= JOP_POW)
            jparse_fail(p, PONDER_ERR_FORMAT, t->line, t->col, "%s, got '%s'", what, two[t->op - JOP_EQ]);
        jparse_fail(p, PONDER_ERR_FORMAT, t->line, t->col, "%s, got '%c'", what, (char)t->op);
    }
    if (t->t == JT_NAME)
        jparse_fail(p, PONDER_ERR_FORMAT, t->line, t->col, "%s, got '%s'", what, t->s);
    jparse_fail(p, PONDER_ERR_FORMAT, t->line, t->col, "%s, got %s", what, tok_desc(t));
}

static bool is_op(jparse *p, int op)
{
    return cur(p)->t == JT_OP && cur(p)->op == op;
}

static bool is_name(jparse *p, const char *name)
{
    return cur(p)->t == JT_NAME && strcmp(cur(p)->s, name) == 0;
}

static bool skip_op(jparse *p, int op)
{
    if (is_op(p, op)) {
        advance(p);
        return true;
    }
    return false;
}

static bool skip_name(jparse *p, const char *name)
{
    if (is_name(p, name)) {
        advance(p);
        return true;
    }
    return false;
}

static void expect_op(jparse *p, int op, const char *what)
{
    if (!skip_op(p, op))
        fail_at(p, cur(p), what);
}

static void expect_block_end(jparse *p)
{
    if (cur(p)->t != JT_BLOCK_END)
        fail_at(p, cur(p), "expected '%}'");
    advance(p);
}

static const char *expect_name(jparse *p, const char *what)
{
    if (cur(p)->t != JT_NAME)
        fail_at(p, cur(p), what);
    const char *s = cur(p)->s;
    advance(p);
    return s;
}

static jnode *node(jparse *p, jnode_kind k, const jtok *at)
{
    jnode *n = ja_alloc(p->a, sizeof *n);
    n->k = k;
    n->line = at->line;
    n->col = at->col;
    return n;
}

static void push(jparse *p, jnodes *l, jnode *n)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 4;
        jnode **v = ja_alloc(p->a, cap * sizeof *v);
        if (l->n)
            memcpy(v, l->v, l->n * sizeof *v);
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = n;
}

static void push_name(jparse *p, jnode *n, const char *name)
{
    if ((n->n_names & (n->n_names - 1)) == 0) { /* grow at powers of two */
        size_t cap = n->n_names ? n->n_names * 2 : 1;
        const char **v = ja_alloc(p->a, cap * sizeof *v);
        if (n->n_names)
            memcpy(v, n->names, n->n_names * sizeof *v);
        n->names = v;
    }
    n->names[n->n_names++] = name;
}

static void enter(jparse *p)
{
    if (++p->depth > JINJA_MAX_PARSE_DEPTH)
        jparse_fail(p, PONDER_ERR_RANGE, cur(p)->line, cur(p)->col, "template nested too deeply (more than %d levels)",
                    JINJA_MAX_PARSE_DEPTH);
}

static jnode *parse_expression(jparse *p);
static jnode *parse_or(jparse *p);
static jnode *parse_unary(jparse *p, bool with_filter);
static jnode *parse_tuple(jparse *p, bool with_condexpr, const char *extra_end, bool explicit_parens);

/* ---- expressions ---- */

static void parse_call_args(jparse *p, jnode *call)
{
    /* cur is '(' */
    advance(p);
    bool first = true;
    while (!is_op(p, ')')) {
        if (!first)
            expect_op(p, ',', "expected ',' or ')' in the argument list");
        if (is_op(p, ')'))
            break;
        first = false;
        if (is_op(p, '*') || is_op(p, JOP_POW))
            jparse_fail(p, PONDER_ERR_UNSUPPORTED, cur(p)->line, cur(p)->col, "'*args' / '**kwargs' in calls are not supported");
        if (cur(p)->t == JT_NAME && peek(p, 1)->t == JT_OP && peek(p, 1)->op == '=') {
            push_name(p, call, cur(p)->s);
            advance(p);
            advance(p);
            push(p, &call->body2, parse_expression(p));
        } else {
            if (call->n_names)
                fail_at(p, cur(p), "positional argument after a keyword argument");
            push(p, &call->body, parse_expression(p));
        }
    }
    advance(p);
}

static jnode *parse_subscript(jparse *p, jnode *target)
{
    jtok *t = cur(p);
    advance(p); /* '[' */
    jnode *parts[3] = { NULL, NULL, NULL };
    int n_colons = 0;
    int idx = 0;
    while (!is_op(p, ']')) {
        if (is_op(p, ':')) {
            if (++n_colons > 2)
                fail_at(p, cur(p), "expected ']'");
            idx = n_colons;
            advance(p);
            continue;
        }
        if (parts[idx])
            fail_at(p, cur(p), "expected ']' or ':'");
        parts[idx] = n_colons == 0 ? parse_tuple(p, true, NULL, false) : parse_expression(p);
    }
    advance(p);
    if (n_colons == 0) {
        if (!parts[0])
            fail_at(p, t, "expected a subscript");
        jnode *n = node(p, JN_GETITEM, t);
        n->a = target;
        n->b = parts[0];
        return n;
    }
    jnode *n = node(p, JN_SLICE, t);
    n->a = target;
    n->b = parts[0];
    n->c = parts[1];
    n->d = parts[2];
    return n;
}

static jnode *parse_postfix(jparse *p, jnode *n)
{
    for (;;) {
        jtok *t = cur(p);
        if (is_op(p, '.')) {
            advance(p);
            if (cur(p)->t == JT_NAME) {
                jnode *g = node(p, JN_GETATTR, t);
                g->a = n;
                g->s = cur(p)->s;
                advance(p);
                n = g;
            } else if (cur(p)->t == JT_INT) {
                jnode *g = node(p, JN_GETITEM, t);
                g->a = n;
                g->b = node(p, JN_LITERAL, cur(p));
                g->b->lit.t = JV_INT;
                g->b->lit.u.i = cur(p)->i;
                advance(p);
                n = g;
            } else {
                fail_at(p, cur(p), "expected an attribute name after '.'");
            }
        } else if (is_op(p, '[')) {
            n = parse_subscript(p, n);
        } else if (is_op(p, '(')) {
            jnode *c = node(p, JN_CALL, t);
            c->a = n;
            parse_call_args(p, c);
            n = c;
        } else {
            return n;
        }
    }
}

static const char *parse_dotted_name(jparse *p, const char *what)
{
    const char *name = expect_name(p, what);
    while (is_op(p, '.') && peek(p, 1)->t == JT_NAME) {
        advance(p);
        const char *more = cur(p)->s;
        size_t a = strlen(name), b = strlen(more);
        char *s = ja_alloc(p->a, a + b + 2);
        memcpy(s, name, a);
        s[a] = '.';
        memcpy(s + a + 1, more, b + 1);
        name = s;
        advance(p);
    }
    return name;
}

static jnode *parse_filter(jparse *p, jnode *target, const jtok *at)
{
    jnode *f = node(p, JN_FILTER, at);
    f->a = target;
    f->s = parse_dotted_name(p, "expected a filter name after '|'");
    /* jinja2 rejects unknown filters when compiling, even in branches never taken */
    if (!jb_has_filter(f->s))
        jparse_fail(p, PONDER_ERR_UNSUPPORTED, at->line, at->col, "no filter named '%s'", f->s);
    if (is_op(p, '('))
        parse_call_args(p, f);
    return f;
}

static jnode *parse_filter_expr(jparse *p, jnode *n)
{
    for (;;) {
        jtok *t = cur(p);
        if (is_op(p, '|')) {
            advance(p);
            n = parse_filter(p, n, t);
        } else if (is_name(p, "is")) {
            advance(p);
            jnode *test = node(p, JN_TEST, t);
            test->a = n;
            test->flag = skip_name(p, "not");
            test->s = parse_dotted_name(p, "expected a test name after 'is'");
            if (!jb_has_test(test->s))
                jparse_fail(p, PONDER_ERR_UNSUPPORTED, t->line, t->col, "no test named '%s'", test->s);
            jtok *c = cur(p);
            if (is_op(p, '(')) {
                parse_call_args(p, test);
            } else if ((c->t == JT_NAME || c->t == JT_STRING || c->t == JT_INT || c->t == JT_FLOAT ||
                        (c->t == JT_OP && (c->op == '(' || c->op == '[' || c->op == '{'))) &&
                       !is_name(p, "else") && !is_name(p, "or") && !is_name(p, "and")) {
                if (is_name(p, "is"))
                    fail_at(p, c, "tests cannot be chained with 'is'");
                enter(p);
                jnode *arg = parse_unary(p, false);
                p->depth--;
                push(p, &test->body, arg);
            }
            n = test;
        } else if (is_op(p, '(')) {
            jnode *c = node(p, JN_CALL, t);
            c->a = n;
            parse_call_args(p, c);
            n = c;
        } else {
            return n;
        }
    }
}

static jnode *parse_primary(jparse *p)
{
    jtok *t = cur(p);
    jnode *n;
    switch (t->t) {
    case JT_NAME:
        advance(p);
        if (!strcmp(t->s, "true") || !strcmp(t->s, "True") || !strcmp(t->s, "false") || !strcmp(t->s, "False")) {
            n = node(p, JN_LITERAL, t);
            n->lit.t = JV_BOOL;
            n->lit.u.b = t->s[0] == 't' || t->s[0] == 'T';
        } else if (!strcmp(t->s, "none") || !strcmp(t->s, "None")) {
            n = node(p, JN_LITERAL, t);
            n->lit.t = JV_NONE;
        } else {
            n = node(p, JN_NAME, t);
            n->s = t->s;
        }
        return n;
    case JT_STRING: {
        /* adjacent string literals concatenate, as in Python */
        size_t total = 0, k = 0;
        while (peek(p, k)->t == JT_STRING)
            total += peek(p, k++)->n;
        char *s = ja_alloc(p->a, total + 1);
        size_t o = 0;
        while (cur(p)->t == JT_STRING) {
            memcpy(s + o, cur(p)->s, cur(p)->n);
            o += cur(p)->n;
            advance(p);
        }
        n = node(p, JN_LITERAL, t);
        n->lit.t = JV_STR;
        n->lit.u.s.p = s;
        n->lit.u.s.n = o;
        return n;
    }
    case JT_INT:
        advance(p);
        n = node(p, JN_LITERAL, t);
        n->lit.t = JV_INT;
        n->lit.u.i = t->i;
        return n;
    case JT_FLOAT:
        advance(p);
        n = node(p, JN_LITERAL, t);
        n->lit.t = JV_FLOAT;
        n->lit.u.f = t->f;
        return n;
    case JT_OP:
        if (t->op == '(') {
            advance(p);
            n = parse_tuple(p, true, NULL, true);
            expect_op(p, ')', "expected ')'");
            return n;
        }
        if (t->op == '[') {
            advance(p);
            n = node(p, JN_LIST, t);
            while (!is_op(p, ']')) {
                if (n->body.n)
                    expect_op(p, ',', "expected ',' or ']' in the list");
                if (is_op(p, ']'))
                    break;
                push(p, &n->body, parse_expression(p));
            }
            advance(p);
            return n;
        }
        if (t->op == '{') {
            advance(p);
            n = node(p, JN_DICT, t);
            while (!is_op(p, '}')) {
                if (n->body.n)
                    expect_op(p, ',', "expected ',' or '}' in the dict");
                if (is_op(p, '}'))
                    break;
                push(p, &n->body, parse_expression(p));
                expect_op(p, ':', "expected ':' in the dict");
                push(p, &n->body2, parse_expression(p));
            }
            advance(p);
            return n;
        }
        break;
    default:
        break;
    }
    fail_at(p, t, "expected an expression");
}

static jnode *parse_unary(jparse *p, bool with_filter)
{
    enter(p);
    jtok *t = cur(p);
    jnode *n;
    if (is_op(p, '-') || is_op(p, '+')) {
        advance(p);
        n = node(p, JN_UNARY, t);
        n->op = t->op == '-' ? JOP_NEG : JOP_POS;
        n->a = parse_unary(p, false);
    } else {
        n = parse_primary(p);
    }
    n = parse_postfix(p, n);
    if (with_filter)
        n = parse_filter_expr(p, n);
    p->depth--;
    return n;
}

static jnode *binop(jparse *p, int op, jnode *l, jnode *r, const jtok *at)
{
    jnode *n = node(p, JN_BINOP, at);
    n->op = op;
    n->a = l;
    n->b = r;
    return n;
}

static jnode *parse_pow(jparse *p)
{
    jnode *l = parse_unary(p, true);
    while (is_op(p, JOP_POW)) {
        jtok *t = cur(p);
        advance(p);
        l = binop(p, JOP_POW, l, parse_unary(p, true), t);
    }
    return l;
}

static jnode *parse_math2(jparse *p)
{
    jnode *l = parse_pow(p);
    while (is_op(p, '*') || is_op(p, '/') || is_op(p, JOP_FLOORDIV) || is_op(p, '%')) {
        jtok *t = cur(p);
        advance(p);
        l = binop(p, t->op, l, parse_pow(p), t);
    }
    return l;
}

static jnode *parse_concat(jparse *p)
{
    jnode *l = parse_math2(p);
    while (is_op(p, '~')) {
        jtok *t = cur(p);
        advance(p);
        l = binop(p, '~', l, parse_math2(p), t);
    }
    return l;
}

static jnode *parse_math1(jparse *p)
{
    jnode *l = parse_concat(p);
    while (is_op(p, '+') || is_op(p, '-')) {
        jtok *t = cur(p);
        advance(p);
        l = binop(p, t->op, l, parse_concat(p), t);
    }
    return l;
}

static jnode *parse_compare(jparse *p)
{
    jtok *t0 = cur(p);
    jnode *first = parse_math1(p);
    jnode *cmp = NULL;
    int ops[64];
    size_t n_ops = 0;
    for (;;) {
        int op = 0;
        jtok *t = cur(p);
        if (t->t == JT_OP && (t->op == JOP_EQ || t->op == JOP_NE || t->op == '<' || t->op == '>' || t->op == JOP_LE ||
                              t->op == JOP_GE)) {
            op = t->op;
            advance(p);
        } else if (is_name(p, "in")) {
            op = JOP_IN;
            advance(p);
        } else if (is_name(p, "not") && peek(p, 1)->t == JT_NAME && !strcmp(peek(p, 1)->s, "in")) {
            op = JOP_NOTIN;
            advance(p);
            advance(p);
        } else {
            break;
        }
        if (!cmp) {
            cmp = node(p, JN_COMPARE, t0);
            cmp->a = first;
        }
        if (n_ops == sizeof ops / sizeof ops[0])
            fail_at(p, t, "too many chained comparisons");
        ops[n_ops++] = op;
        push(p, &cmp->body, parse_math1(p));
    }
    if (!cmp)
        return first;
    cmp->ops = ja_alloc(p->a, n_ops * sizeof *cmp->ops);
    memcpy(cmp->ops, ops, n_ops * sizeof *ops);
    return cmp;
}

static jnode *parse_not(jparse *p)
{
    if (is_name(p, "not")) {
        jtok *t = cur(p);
        advance(p);
        enter(p);
        jnode *n = node(p, JN_NOT, t);
        n->a = parse_not(p);
        p->depth--;
        return n;
    }
    return parse_compare(p);
}

static jnode *parse_and(jparse *p)
{
    jnode *l = parse_not(p);
    while (is_name(p, "and")) {
        jtok *t = cur(p);
        advance(p);
        jnode *n = node(p, JN_AND, t);
        n->a = l;
        n->b = parse_not(p);
        l = n;
    }
    return l;
}

static jnode *parse_or(jparse *p)
{
    jnode *l = parse_and(p);
    while (is_name(p, "or")) {
        jtok *t = cur(p);
        advance(p);
        jnode *n = node(p, JN_OR, t);
        n->a = l;
        n->b = parse_and(p);
        l = n;
    }
    return l;
}

static jnode *parse_condexpr(jparse *p)
{
    enter(p);
    jnode *e1 = parse_or(p);
    while (is_name(p, "if")) {
        jtok *t = cur(p);
        advance(p);
        jnode *n = node(p, JN_COND, t);
        n->b = e1;
        n->a = parse_or(p);
        if (skip_name(p, "else"))
            n->c = parse_condexpr(p);
        e1 = n;
    }
    p->depth--;
    return e1;
}

static jnode *parse_expression(jparse *p)
{
    return parse_condexpr(p);
}

static bool is_tuple_end(jparse *p, const char *extra_end)
{
    jtok *t = cur(p);
    if (t->t == JT_VAR_END || t->t == JT_BLOCK_END || t->t == JT_EOF || (t->t == JT_OP && t->op == ')'))
        return true;
    return extra_end && is_name(p, extra_end);
}

static jnode *parse_tuple(jparse *p, bool with_condexpr, const char *extra_end, bool explicit_parens)
{
    jtok *t = cur(p);
    jnode *tuple = node(p, JN_TUPLE, t);
    bool is_tuple = false;
    for (;;) {
        if (tuple->body.n)
            expect_op(p, ',', "expected ','");
        if (is_tuple_end(p, extra_end))
            break;
        push(p, &tuple->body, with_condexpr ? parse_expression(p) : parse_or(p));
        if (is_op(p, ','))
            is_tuple = true;
        else
            break;
    }
    if (!is_tuple) {
        if (tuple->body.n)
            return tuple->body.v[0];
        if (!explicit_parens)
            fail_at(p, cur(p), "expected an expression");
    }
    return tuple;
}

/* A for/set target: NAME, NAME.attr (set only), or a tuple of names. */
static jnode *parse_assign_target(jparse *p, bool with_namespace, const char *extra_end)
{
    jtok *t = cur(p);
    if (with_namespace && t->t == JT_NAME && peek(p, 1)->t == JT_OP && peek(p, 1)->op == '.') {
        jnode *n = node(p, JN_GETATTR, t);
        n->a = node(p, JN_NAME, t);
        n->a->s = t->s;
        advance(p);
        advance(p);
        n->s = expect_name(p, "expected an attribute name");
        return n;
    }
    bool parens = skip_op(p, '(');
    jnode *tuple = node(p, JN_TUPLE, t);
    for (;;) {
        jtok *nt = cur(p);
        const char *name = expect_name(p, "expected a variable name");
        jnode *n = node(p, JN_NAME, nt);
        n->s = name;
        push(p, &tuple->body, n);
        if (!skip_op(p, ','))
            break;
        if ((parens && is_op(p, ')')) || (extra_end && is_name(p, extra_end)) || is_op(p, '='))
            break;
    }
    if (parens)
        expect_op(p, ')', "expected ')'");
    if (tuple->body.n == 1 && !parens)
        return tuple->body.v[0];
    return tuple;
}

/* ---- statements ---- */

static const char *parse_body(jparse *p, jnodes *out, const char *const *ends);

static jnode *parse_if(jparse *p, const jtok *at)
{
    jnode *n = node(p, JN_IF, at);
    n->a = parse_tuple(p, false, NULL, false);
    expect_block_end(p);
    static const char *const ends[] = { "elif", "else", "endif", NULL };
    const char *end = parse_body(p, &n->body, ends);
    if (!strcmp(end, "elif")) {
        jtok *t = cur(p);
        advance(p);
        push(p, &n->body2, parse_if(p, t));
        return n;
    }
    if (!strcmp(end, "else")) {
        advance(p);
        expect_block_end(p);
        static const char *const ends2[] = { "endif", NULL };
        parse_body(p, &n->body2, ends2);
    }
    advance(p);
    expect_block_end(p);
    return n;
}

static jnode *parse_for(jparse *p, const jtok *at)
{
    jnode *n = node(p, JN_FOR, at);
    n->b = parse_assign_target(p, false, "in");
    if (!skip_name(p, "in"))
        fail_at(p, cur(p), "expected 'in' in the for loop");
    n->a = parse_tuple(p, false, "recursive", false);
    if (skip_name(p, "if"))
        n->c = parse_expression(p);
    n->flag = skip_name(p, "recursive");
    expect_block_end(p);
    static const char *const ends[] = { "endfor", "else", NULL };
    const char *end = parse_body(p, &n->body, ends);
    if (!strcmp(end, "else")) {
        advance(p);
        expect_block_end(p);
        static const char *const ends2[] = { "endfor", NULL };
        parse_body(p, &n->body2, ends2);
    }
    advance(p);
    expect_block_end(p);
    return n;
}

static jnode *parse_set(jparse *p, const jtok *at)
{
    jnode *target = parse_assign_target(p, true, NULL);
    if (skip_op(p, '=')) {
        jnode *n = node(p, JN_SET, at);
        n->b = target;
        n->a = parse_tuple(p, true, NULL, false);
        expect_block_end(p);
        return n;
    }
    jnode *n = node(p, JN_SET_BLOCK, at);
    n->b = target;
    if (target->k != JN_NAME)
        fail_at(p, cur(p), "a block set needs one variable name");
    /* optional filters: {% set x | trim %} — kept as a filter chain over a NULL operand */
    while (is_op(p, '|')) {
        jtok *t = cur(p);
        advance(p);
        n->a = parse_filter(p, n->a, t);
    }
    expect_block_end(p);
    static const char *const ends[] = { "endset", NULL };
    parse_body(p, &n->body, ends);
    advance(p);
    expect_block_end(p);
    return n;
}

static void parse_signature(jparse *p, jnode *n)
{
    expect_op(p, '(', "expected '(' after the macro name");
    while (!is_op(p, ')')) {
        if (n->n_names)
            expect_op(p, ',', "expected ',' or ')' in the parameter list");
        if (is_op(p, ')'))
            break;
        jtok *t = cur(p);
        push_name(p, n, expect_name(p, "expected a parameter name"));
        if (skip_op(p, '=')) {
            push(p, &n->body2, parse_expression(p));
        } else {
            if (n->body2.n && n->body2.v[n->body2.n - 1])
                jparse_fail(p, PONDER_ERR_FORMAT, t->line, t->col, "parameter '%s' without a default follows one with a default",
                            n->names[n->n_names - 1]);
            push(p, &n->body2, NULL);
        }
    }
    advance(p);
}

static jnode *parse_macro(jparse *p, const jtok *at)
{
    jnode *n = node(p, JN_MACRO, at);
    n->s = expect_name(p, "expected a macro name");
    parse_signature(p, n);
    expect_block_end(p);
    static const char *const ends[] = { "endmacro", NULL };
    parse_body(p, &n->body, ends);
    advance(p);
    if (cur(p)->t == JT_NAME)
        advance(p); /* {% endmacro name %} */
    expect_block_end(p);
    return n;
}

static jnode *parse_call_block(jparse *p, const jtok *at)
{
    jnode *n = node(p, JN_CALL_BLOCK, at);
    if (is_op(p, '('))
        parse_signature(p, n);
    n->a = parse_expression(p);
    if (n->a->k != JN_CALL)
        fail_at(p, at, "expected a macro call in the call block");
    expect_block_end(p);
    static const char *const ends[] = { "endcall", NULL };
    parse_body(p, &n->body, ends);
    advance(p);
    expect_block_end(p);
    return n;
}

static jnode *parse_filter_block(jparse *p, const jtok *at)
{
    jnode *n = node(p, JN_FILTER_BLOCK, at);
    jtok *t = cur(p);
    n->a = parse_filter(p, NULL, t);
    while (is_op(p, '|')) {
        t = cur(p);
        advance(p);
        n->a = parse_filter(p, n->a, t);
    }
    expect_block_end(p);
    static const char *const ends[] = { "endfilter", NULL };
    parse_body(p, &n->body, ends);
    advance(p);
    expect_block_end(p);
    return n;
}

static jnode *parse_with(jparse *p, const jtok *at)
{
    jnode *n = node(p, JN_WITH, at);
    while (cur(p)->t != JT_BLOCK_END) {
        if (n->n_names)
            expect_op(p, ',', "expected ',' in the with statement");
        push_name(p, n, expect_name(p, "expected a variable name"));
        expect_op(p, '=', "expected '=' in the with statement");
        push(p, &n->body2, parse_expression(p));
    }
    expect_block_end(p);
    static const char *const ends[] = { "endwith", NULL };
    parse_body(p, &n->body, ends);
    advance(p);
    expect_block_end(p);
    return n;
}

static jnode *parse_statement(jparse *p)
{
    jtok *t = cur(p); /* the name after {% */
    if (t->t != JT_NAME)
        fail_at(p, t, "expected a statement name after '{%'");
    const char *s = t->s;
    advance(p);
    enter(p);
    jnode *n;
    if (!strcmp(s, "if")) {
        n = parse_if(p, t);
    } else if (!strcmp(s, "for")) {
        n = parse_for(p, t);
    } else if (!strcmp(s, "set")) {
        n = parse_set(p, t);
    } else if (!strcmp(s, "macro")) {
        n = parse_macro(p, t);
    } else if (!strcmp(s, "call")) {
        n = parse_call_block(p, t);
    } else if (!strcmp(s, "filter")) {
        n = parse_filter_block(p, t);
    } else if (!strcmp(s, "with")) {
        n = parse_with(p, t);
    } else if (!strcmp(s, "break") || !strcmp(s, "continue")) {
        n = node(p, s[0] == 'b' ? JN_BREAK : JN_CONTINUE, t);
        expect_block_end(p);
    } else if (!strcmp(s, "generation") || !strcmp(s, "block")) {
        /* transformers' {% generation %} marks assistant text and renders its body; a
         * {% block %} without inheritance renders in place */
        n = node(p, JN_SCOPE, t);
        bool is_block = s[0] == 'b';
        if (is_block)
            expect_name(p, "expected a block name");
        expect_block_end(p);
        static const char *const ends_gen[] = { "endgeneration", NULL };
        static const char *const ends_block[] = { "endblock", NULL };
        parse_body(p, &n->body, is_block ? ends_block : ends_gen);
        advance(p);
        if (is_block && cur(p)->t == JT_NAME)
            advance(p);
        expect_block_end(p);
    } else if (!strcmp(s, "extends") || !strcmp(s, "include") || !strcmp(s, "import") || !strcmp(s, "from") ||
               !strcmp(s, "do") || !strcmp(s, "autoescape") || !strcmp(s, "trans")) {
        jparse_fail(p, PONDER_ERR_UNSUPPORTED, t->line, t->col, "unsupported statement '{%% %s %%}'", s);
    } else {
        jparse_fail(p, PONDER_ERR_FORMAT, t->line, t->col, "unknown statement '%s'", s);
    }
    p->depth--;
    return n;
}

/* Parses statements until a block whose name is in ends (NULL-terminated; NULL ends =
 * end of template). Leaves cur at that name and returns it. */
static const char *parse_body(jparse *p, jnodes *out, const char *const *ends)
{
    for (;;) {
        jtok *t = cur(p);
        switch (t->t) {
        case JT_EOF:
            if (ends) {
                char want[128];
                size_t o = 0;
                for (const char *const *e = ends; *e && o < sizeof want; e++)
                    o += (size_t)snprintf(want + o, sizeof want - o, "%s'{%% %s %%}'", e == ends ? "" : e[1] ? ", " : " or ", *e);
                jparse_fail(p, PONDER_ERR_FORMAT, t->line, t->col, "unexpected end of template, expected %s", want);
            }
            return NULL;
        case JT_TEXT: {
            jnode *n = node(p, JN_TEXT, t);
            n->s = t->s;
            n->n = t->n;
            push(p, out, n);
            advance(p);
            break;
        }
        case JT_VAR_BEGIN: {
            advance(p);
            jnode *n = node(p, JN_OUTPUT, t);
            n->a = parse_tuple(p, true, NULL, false);
            if (cur(p)->t != JT_VAR_END)
                fail_at(p, cur(p), "expected '}}'");
            advance(p);
            push(p, out, n);
            break;
        }
        case JT_BLOCK_BEGIN: {
            jtok *name = peek(p, 1);
            if (name->t == JT_NAME && ends)
                for (const char *const *e = ends; *e; e++)
                    if (!strcmp(name->s, *e)) {
                        advance(p);
                        return *e;
                    }
            if (name->t == JT_NAME && (!strncmp(name->s, "end", 3) || !strcmp(name->s, "else") || !strcmp(name->s, "elif")))
                jparse_fail(p, PONDER_ERR_FORMAT, name->line, name->col, "unexpected '{%% %s %%}'%s%s%s", name->s,
                            ends ? " (expected '{% " : "", ends ? ends[0] : "", ends ? " %}')" : "");
            advance(p);
            push(p, out, parse_statement(p));
            break;
        }
        default:
            fail_at(p, t, "unexpected token");
        }
    }
}

jnode *jinja_parse(jparse *p)
{
    jtok *t = cur(p);
    jnode *root = node(p, JN_SCOPE, t);
    parse_body(p, &root->body, NULL);
    return root;
}
