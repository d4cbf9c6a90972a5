/*
 * gbnf.c — the GBNF parser: llama.cpp's grammar syntax (its grammars/README.md and
 * llama-grammar.cpp's parse_* functions) into the flat byte-level grammar of
 * grammar_internal.h.
 *
 * As in llama.cpp, a rule ends at a newline unless inside parentheses, `x*` becomes a
 * tail-recursive rule `r ::= x r |`, `x{m,n}` becomes m copies of x and a chain of
 * n - m nested optional rules, and a grouping becomes a rule of its own. Unlike
 * llama.cpp, a rule defined twice is an error (llama.cpp silently keeps the last), and
 * an alternative may start with `|` on the next line. After parsing, every referenced
 * rule must be defined, `root` must exist and no rule may reach itself before consuming
 * a character (left recursion, also through rules that can match nothing), since the
 * matcher would loop on it.
 */
#include "grammar/grammar_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GR_MAX_NESTING 128     /* parentheses inside parentheses */
#define GR_MAX_REPEAT 10000    /* the largest m or n of {m,n} */
#define GR_MAX_ELEMS (1u << 22) /* positions must fit the matcher's 24-bit node keys */

typedef struct pr_seq {
    gr_elem *v;
    uint32_t n, cap;
} pr_seq;

typedef struct pr_rule {
    char *name;
    const char *at;  /* definition, or first reference while undefined */
    bool defined;
    pr_seq *alts;
    uint32_t n_alts, cap_alts;
} pr_rule;

typedef struct parser {
    const char *src, *end;
    pr_rule *rules;
    uint32_t n_rules, cap_rules;
    uint16_t *dfa;
    uint32_t n_dfa, cap_dfa;
    uint32_t byte_dfa[256]; /* a literal byte's one-state DFA, 0 until made */
    uint32_t n_elems;
    ponder_error *err;
    ponder_status st;
    int nesting;
} parser;

static void where(const parser *ps, const char *at, int *line, int *col)
{
    *line = 1;
    *col = 1;
    for (const char *p = ps->src; p < at && p < ps->end; p++) {
        if (*p == '\n') {
            (*line)++;
            *col = 1;
        } else if (((unsigned char)*p & 0xC0) != 0x80) {
            (*col)++;
        }
    }
}

static bool fail(parser *ps, const char *at, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

static bool fail(parser *ps, const char *at, const char *fmt, ...)
{
    if (ps->st != PONDER_OK)
        return false;
    char msg[PONDER_ERROR_MSG_BYTES];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    for (char *c = msg; *c; c++) /* one line: a control character quoted from the input */
        if ((unsigned char)*c < 0x20 || *c == 0x7F)
            *c = '?';
    if (at) {
        int line, col;
        where(ps, at, &line, &col);
        ps->st = ponder_error_set(ps->err, PONDER_ERR_FORMAT, "grammar %d:%d: %s", line, col, msg);
    } else {
        ps->st = ponder_error_set(ps->err, PONDER_ERR_FORMAT, "grammar: %s", msg);
    }
    return false;
}

static bool oom(parser *ps)
{
    if (ps->st == PONDER_OK)
        ps->st = ponder_error_set(ps->err, PONDER_ERR_NOMEM, "grammar: out of memory");
    return false;
}

static bool seq_push(parser *ps, pr_seq *s, uint32_t kind, uint32_t arg)
{
    if (++ps->n_elems > GR_MAX_ELEMS)
        return fail(ps, NULL, "grammar too large (more than %u elements after expanding repetitions)",
                    GR_MAX_ELEMS);
    if (s->n == s->cap) {
        uint32_t cap = s->cap ? s->cap * 2 : 8;
        gr_elem *v = realloc(s->v, cap * sizeof *v);
        if (!v)
            return oom(ps);
        s->v = v;
        s->cap = cap;
    }
    s->v[s->n++] = (gr_elem){ kind, arg };
    return true;
}

/* The rule named name[0..n), created (undefined) on first sight; UINT32_MAX on failure. */
static uint32_t rule_id(parser *ps, const char *name, size_t n, const char *at)
{
    for (uint32_t i = 0; i < ps->n_rules; i++)
        if (strlen(ps->rules[i].name) == n && memcmp(ps->rules[i].name, name, n) == 0)
            return i;
    if (ps->n_rules == ps->cap_rules) {
        uint32_t cap = ps->cap_rules ? ps->cap_rules * 2 : 16;
        pr_rule *r = realloc(ps->rules, cap * sizeof *r);
        if (!r)
            return oom(ps), UINT32_MAX;
        ps->rules = r;
        ps->cap_rules = cap;
    }
    pr_rule *r = &ps->rules[ps->n_rules];
    memset(r, 0, sizeof *r);
    r->name = malloc(n + 1);
    if (!r->name)
        return oom(ps), UINT32_MAX;
    memcpy(r->name, name, n);
    r->name[n] = '\0';
    r->at = at;
    return ps->n_rules++;
}

/* A fresh rule named base_N for a grouping or a repetition. */
static uint32_t new_rule(parser *ps, uint32_t base, const char *at)
{
    char name[160];
    for (uint32_t k = ps->n_rules;; k++) {
        snprintf(name, sizeof name, "%.120s_%u", ps->rules[base].name, k);
        bool taken = false;
        for (uint32_t i = 0; i < ps->n_rules && !taken; i++)
            taken = strcmp(ps->rules[i].name, name) == 0;
        if (!taken)
            break;
    }
    uint32_t id = rule_id(ps, name, strlen(name), at);
    if (id != UINT32_MAX)
        ps->rules[id].defined = true;
    return id;
}

static pr_seq *rule_add_alt(parser *ps, uint32_t r)
{
    pr_rule *ru = &ps->rules[r];
    if (ru->n_alts == ru->cap_alts) {
        uint32_t cap = ru->cap_alts ? ru->cap_alts * 2 : 4;
        pr_seq *a = realloc(ru->alts, cap * sizeof *a);
        if (!a)
            return oom(ps), NULL;
        ru->alts = a;
        ru->cap_alts = cap;
    }
    pr_seq *s = &ru->alts[ru->n_alts++];
    memset(s, 0, sizeof *s);
    return s;
}

static bool is_word_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

static const char *skip_space(const parser *ps, const char *p, bool newline_ok)
{
    while (p < ps->end) {
        if (*p == ' ' || *p == '\t' || ((*p == '\n' || *p == '\r') && newline_ok)) {
            p++;
        } else if (*p == '#') {
            while (p < ps->end && *p != '\n' && *p != '\r')
                p++;
        } else {
            break;
        }
    }
    return p;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* One character of a literal or class (escapes decoded) at *pp; advances. */
static bool parse_char(parser *ps, const char **pp, uint32_t *cp)
{
    const char *p = *pp;
    if (p >= ps->end)
        return fail(ps, p, "unexpected end of input");
    if (*p == '\\') {
        if (p + 1 >= ps->end)
            return fail(ps, p, "unexpected end of input after '\\'");
        int nhex = 0;
        switch (p[1]) {
        case 'x': nhex = 2; break;
        case 'u': nhex = 4; break;
        case 'U': nhex = 8; break;
        case 't': *cp = '\t'; *pp = p + 2; return true;
        case 'r': *cp = '\r'; *pp = p + 2; return true;
        case 'n': *cp = '\n'; *pp = p + 2; return true;
        case '\\': case '"': case '[': case ']': case '-': case '^': case '/':
            *cp = (uint8_t)p[1];
            *pp = p + 2;
            return true;
        default:
            return fail(ps, p, "unknown escape '\\%c'", p[1]);
        }
        uint32_t v = 0;
        for (int i = 0; i < nhex; i++) {
            int h = p + 2 + i < ps->end ? hexval(p[2 + i]) : -1;
            if (h < 0)
                return fail(ps, p, "expected %d hex digits after '\\%c'", nhex, p[1]);
            v = v * 16 + (uint32_t)h;
        }
        if (v > 0x10FFFF)
            return fail(ps, p, "code point U+%X is beyond U+10FFFF", v);
        *cp = v;
        *pp = p + 2 + nhex;
        return true;
    }
    size_t n = ponder_utf8_len((const unsigned char *)p, (size_t)(ps->end - p));
    if (n == 0)
        return fail(ps, p, "invalid UTF-8");
    const unsigned char *u = (const unsigned char *)p;
    if (n == 1)
        *cp = u[0];
    else if (n == 2)
        *cp = ((uint32_t)(u[0] & 0x1F) << 6) | (u[1] & 0x3F);
    else if (n == 3)
        *cp = ((uint32_t)(u[0] & 0x0F) << 12) | ((uint32_t)(u[1] & 0x3F) << 6) | (u[2] & 0x3F);
    else
        *cp = ((uint32_t)(u[0] & 0x07) << 18) | ((uint32_t)(u[1] & 0x3F) << 12) | ((uint32_t)(u[2] & 0x3F) << 6) |
              (u[3] & 0x3F);
    *pp = p + n;
    return true;
}

static uint32_t dfa_of_ranges(parser *ps, const uint32_t *lo, const uint32_t *hi, uint32_t n)
{
    uint32_t s = gr_utf8_class_dfa(lo, hi, n, &ps->dfa, &ps->n_dfa, &ps->cap_dfa);
    if (s == 0)
        oom(ps);
    return s;
}

/* A literal code point: one element per UTF-8 byte. */
static bool push_literal(parser *ps, pr_seq *out, uint32_t cp)
{
    uint8_t b[4];
    int n;
    if (cp < 0x80) {
        b[0] = (uint8_t)cp;
        n = 1;
    } else if (cp < 0x800) {
        b[0] = (uint8_t)(0xC0 | (cp >> 6));
        b[1] = (uint8_t)(0x80 | (cp & 0x3F));
        n = 2;
    } else if (cp < 0x10000) {
        b[0] = (uint8_t)(0xE0 | (cp >> 12));
        b[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
        b[2] = (uint8_t)(0x80 | (cp & 0x3F));
        n = 3;
    } else {
        b[0] = (uint8_t)(0xF0 | (cp >> 18));
        b[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3F));
        b[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
        b[3] = (uint8_t)(0x80 | (cp & 0x3F));
        n = 4;
    }
    for (int i = 0; i < n; i++) {
        if (!ps->byte_dfa[b[i]]) {
            /* a byte DFA: one state, the byte accepts (works for any byte, not only
             * whole characters, since it bypasses the UTF-8 splitting) */
            if (ps->n_dfa + 1 > ps->cap_dfa) {
                uint32_t cap = ps->cap_dfa ? ps->cap_dfa * 2 : 64;
                uint16_t *d = realloc(ps->dfa, (size_t)cap * 256 * sizeof *d);
                if (!d)
                    return oom(ps);
                ps->dfa = d;
                ps->cap_dfa = cap;
            }
            if (ps->n_dfa >= 65535)
                return fail(ps, NULL, "grammar too large (more than 65535 character-class states)");
            uint32_t s = ps->n_dfa++;
            memset(ps->dfa + (size_t)s * 256, 0, 256 * sizeof *ps->dfa);
            ps->dfa[(size_t)s * 256 + b[i]] = GR_DFA_ACCEPT;
            ps->byte_dfa[b[i]] = s;
        }
        if (!seq_push(ps, out, GR_CLASS, ps->byte_dfa[b[i]]))
            return false;
    }
    return true;
}

static int range_cmp(const void *a, const void *b)
{
    const uint32_t *x = a, *y = b;
    return x[0] < y[0] ? -1 : x[0] > y[0];
}

/* [ ... ] at *pp (past the '['); appends one GR_CLASS element. */
static bool parse_class(parser *ps, const char **pp, pr_seq *out)
{
    const char *p = *pp, *start = p - 1;
    bool negate = false;
    if (p < ps->end && *p == '^') {
        negate = true;
        p++;
    }
    uint32_t (*r)[2] = NULL;
    uint32_t n = 0, cap = 0;
    bool ok = false;
    while (true) {
        if (p >= ps->end) {
            fail(ps, start, "unterminated character class");
            goto out;
        }
        if (*p == ']')
            break;
        uint32_t a = 0, b = 0;
        if (!parse_char(ps, &p, &a))
            goto out;
        b = a;
        if (p + 1 < ps->end && p[0] == '-' && p[1] != ']') {
            p++;
            if (!parse_char(ps, &p, &b))
                goto out;
            if (b < a) {
                fail(ps, start, "character range end U+%04X is before its start U+%04X", b, a);
                goto out;
            }
        }
        if (n == cap) {
            cap = cap ? cap * 2 : 8;
            void *nr = realloc(r, cap * sizeof *r);
            if (!nr) {
                oom(ps);
                goto out;
            }
            r = nr;
        }
        r[n][0] = a;
        r[n][1] = b;
        n++;
    }
    p++;
    if (n > 0)
        qsort(r, n, sizeof *r, range_cmp);
    /* merge, then complement if negated, into lo/hi */
    uint32_t *lo = malloc((n + 1) * sizeof *lo), *hi = malloc((n + 1) * sizeof *hi);
    if (!lo || !hi) {
        free(lo);
        free(hi);
        oom(ps);
        goto out;
    }
    uint32_t m = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (m > 0 && r[i][0] <= hi[m - 1] + 1) {
            if (r[i][1] > hi[m - 1])
                hi[m - 1] = r[i][1];
        } else {
            lo[m] = r[i][0];
            hi[m] = r[i][1];
            m++;
        }
    }
    if (negate) {
        uint32_t *clo = malloc((m + 1) * sizeof *clo), *chi = malloc((m + 1) * sizeof *chi);
        if (!clo || !chi) {
            free(clo);
            free(chi);
            free(lo);
            free(hi);
            oom(ps);
            goto out;
        }
        uint32_t k = 0, next = 0;
        for (uint32_t i = 0; i < m; i++) {
            if (lo[i] > next) {
                clo[k] = next;
                chi[k++] = lo[i] - 1;
            }
            next = hi[i] + 1;
        }
        if (next <= 0x10FFFF) {
            clo[k] = next;
            chi[k++] = 0x10FFFF;
        }
        free(lo);
        free(hi);
        lo = clo;
        hi = chi;
        m = k;
    }
    if (m == 0) {
        free(lo);
        free(hi);
        fail(ps, start, "character class matches no character");
        goto out;
    }
    uint32_t s = dfa_of_ranges(ps, lo, hi, m);
    free(lo);
    free(hi);
    if (s == 0)
        goto out;
    ok = seq_push(ps, out, GR_CLASS, s);
out:
    free(r);
    *pp = p;
    return ok;
}

static bool parse_alternates(parser *ps, const char **pp, uint32_t rule, bool nested);

static bool seq_append(parser *ps, pr_seq *dst, const gr_elem *src, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++)
        if (!seq_push(ps, dst, src[i].kind, src[i].arg))
            return false;
    return true;
}

/* Applies {min,max} (max < 0: unbounded) to the symbol out->v[sym..n). */
static bool repeat(parser *ps, pr_seq *out, uint32_t sym, uint32_t rule, int min, int max, const char *at)
{
    const uint32_t len = out->n - sym;
    gr_elem *copy = malloc((len ? len : 1) * sizeof *copy);
    if (!copy)
        return oom(ps);
    if (len > 0)
        memcpy(copy, out->v + sym, len * sizeof *copy);
    bool ok = true;
    if (min == 0)
        out->n = sym;
    for (int i = 1; i < min && ok; i++)
        ok = seq_append(ps, out, copy, len);
    const int n_opt = max < 0 ? 1 : max - min;
    uint32_t last = UINT32_MAX;
    for (int i = 0; i < n_opt && ok; i++) {
        uint32_t r = new_rule(ps, rule, at);
        pr_seq *a = r == UINT32_MAX ? NULL : rule_add_alt(ps, r);
        ok = a && seq_append(ps, a, copy, len);
        if (ok && (i > 0 || max < 0))
            ok = seq_push(ps, a, GR_REF, max < 0 ? r : last);
        ok = ok && rule_add_alt(ps, r) != NULL; /* the empty alternative */
        last = r;
    }
    if (ok && n_opt > 0)
        ok = seq_push(ps, out, GR_REF, last);
    free(copy);
    return ok;
}

static bool parse_int(parser *ps, const char **pp, int *v)
{
    const char *p = *pp;
    long x = 0;
    if (p >= ps->end || *p < '0' || *p > '9')
        return fail(ps, p, "expected a number");
    while (p < ps->end && *p >= '0' && *p <= '9') {
        x = x * 10 + (*p - '0');
        if (x > GR_MAX_REPEAT)
            return fail(ps, *pp, "repetition count above %d", GR_MAX_REPEAT);
        p++;
    }
    *v = (int)x;
    *pp = p;
    return true;
}

static bool parse_sequence(parser *ps, const char **pp, uint32_t rule, pr_seq *out, bool nested)
{
    const char *p = *pp;
    uint32_t sym = out->n; /* start of the last symbol, for repetitions */
    bool have_sym = false;
    while (p < ps->end) {
        const char *at = p;
        if (*p == '"') {
            p++;
            sym = out->n;
            while (p < ps->end && *p != '"') {
                uint32_t cp;
                if (!parse_char(ps, &p, &cp) || !push_literal(ps, out, cp))
                    return false;
            }
            if (p >= ps->end)
                return fail(ps, at, "unterminated string literal");
            p++;
            have_sym = true;
        } else if (*p == '[') {
            p++;
            sym = out->n;
            if (!parse_class(ps, &p, out))
                return false;
            have_sym = true;
        } else if (*p == '.') {
            p++;
            sym = out->n;
            const uint32_t lo = 0, hi = 0x10FFFF;
            uint32_t s = dfa_of_ranges(ps, &lo, &hi, 1);
            if (s == 0 || !seq_push(ps, out, GR_CLASS, s))
                return false;
            have_sym = true;
        } else if (is_word_char(*p)) {
            const char *n0 = p;
            while (p < ps->end && is_word_char(*p))
                p++;
            const char *n1 = skip_space(ps, p, false);
            if (n1 + 2 < ps->end && memcmp(n1, "::=", 3) == 0)
                break; /* the next rule's name: this rule ended without a newline */
            uint32_t r = rule_id(ps, n0, (size_t)(p - n0), n0);
            if (r == UINT32_MAX)
                return false;
            sym = out->n;
            if (!seq_push(ps, out, GR_REF, r))
                return false;
            have_sym = true;
        } else if (*p == '(') {
            if (++ps->nesting > GR_MAX_NESTING)
                return fail(ps, p, "parentheses nested deeper than %d", GR_MAX_NESTING);
            p = skip_space(ps, p + 1, true);
            uint32_t r = new_rule(ps, rule, at);
            if (r == UINT32_MAX || !parse_alternates(ps, &p, r, true))
                return false;
            if (p >= ps->end || *p != ')')
                return fail(ps, at, "unclosed '(': expected ')'");
            p++;
            ps->nesting--;
            sym = out->n;
            if (!seq_push(ps, out, GR_REF, r))
                return false;
            have_sym = true;
        } else if (*p == '*' || *p == '+' || *p == '?' || *p == '{') {
            if (!have_sym)
                return fail(ps, p, "'%c' must follow something to repeat", *p);
            int min = 0, max = -1;
            if (*p == '+') {
                min = 1;
            } else if (*p == '?') {
                max = 1;
            } else if (*p == '{') {
                p = skip_space(ps, p + 1, nested);
                if (p < ps->end && *p == ',') {
                    min = 0;
                } else if (!parse_int(ps, &p, &min)) {
                    return false;
                }
                p = skip_space(ps, p, nested);
                if (p < ps->end && *p == ',') {
                    p = skip_space(ps, p + 1, nested);
                    if (p < ps->end && *p >= '0' && *p <= '9') {
                        if (!parse_int(ps, &p, &max))
                            return false;
                        if (max < min)
                            return fail(ps, at, "repetition {%d,%d}: the maximum is below the minimum", min, max);
                    }
                } else {
                    max = min;
                }
                p = skip_space(ps, p, nested);
                if (p >= ps->end || *p != '}')
                    return fail(ps, at, "expected '}' to close the repetition");
            }
            p++;
            if (!repeat(ps, out, sym, rule, min, max, at))
                return false;
            have_sym = false; /* llama.cpp: x** is an error */
        } else {
            break;
        }
        p = skip_space(ps, p, nested);
    }
    *pp = p;
    return true;
}

static bool parse_alternates(parser *ps, const char **pp, uint32_t rule, bool nested)
{
    const char *p = *pp;
    while (true) {
        pr_seq *a = rule_add_alt(ps, rule);
        if (!a)
            return false;
        /* parse into a local sequence: parsing may grow ps->rules and move a */
        pr_seq s = { 0 };
        bool ok = parse_sequence(ps, &p, rule, &s, nested);
        ps->rules[rule].alts[ps->rules[rule].n_alts - 1] = s;
        if (!ok)
            return false;
        const char *q = nested ? p : skip_space(ps, p, true);
        if (q < ps->end && *q == '|') {
            p = skip_space(ps, q + 1, true);
            continue;
        }
        break;
    }
    *pp = p;
    return true;
}

static bool parse_rules(parser *ps)
{
    const char *p = skip_space(ps, ps->src, true);
    while (p < ps->end) {
        const char *n0 = p;
        while (p < ps->end && is_word_char(*p))
            p++;
        if (p == n0)
            return fail(ps, p, "expected a rule name");
        uint32_t r = rule_id(ps, n0, (size_t)(p - n0), n0);
        if (r == UINT32_MAX)
            return false;
        if (ps->rules[r].defined) {
            int line, col;
            where(ps, ps->rules[r].at, &line, &col);
            return fail(ps, n0, "rule '%s' is defined twice (first at %d:%d)", ps->rules[r].name, line, col);
        }
        ps->rules[r].defined = true;
        ps->rules[r].at = n0;
        p = skip_space(ps, p, false);
        if (p + 2 >= ps->end || memcmp(p, "::=", 3) != 0)
            return fail(ps, p, "expected '::=' after rule name '%s'", ps->rules[r].name);
        p = skip_space(ps, p + 3, true);
        if (!parse_alternates(ps, &p, r, false))
            return false;
        if (p < ps->end && *p == '\r')
            p++;
        if (p < ps->end && *p == '\n')
            p++;
        else if (p < ps->end && !is_word_char(*p))
            return fail(ps, p, "unexpected '%c' (expected a newline or the end of the rule)", *p);
        p = skip_space(ps, p, true);
    }
    return true;
}

/* Every referenced rule defined, and no left recursion (directly, or through a prefix of
 * rules that can match nothing). */
static bool check_rules(parser *ps)
{
    for (uint32_t r = 0; r < ps->n_rules; r++)
        if (!ps->rules[r].defined)
            return fail(ps, ps->rules[r].at, "undefined rule '%s'", ps->rules[r].name);
    const uint32_t n = ps->n_rules;
    bool *nullable = calloc(n, sizeof *nullable);
    uint8_t *color = calloc(n, 1);
    uint32_t *stack = malloc((n + 1) * 3 * sizeof *stack);
    bool ok = false;
    if (!nullable || !color || !stack) {
        oom(ps);
        goto done;
    }
    for (bool changed = true; changed;) {
        changed = false;
        for (uint32_t r = 0; r < n; r++) {
            if (nullable[r])
                continue;
            for (uint32_t a = 0; a < ps->rules[r].n_alts && !nullable[r]; a++) {
                const pr_seq *s = &ps->rules[r].alts[a];
                uint32_t i = 0;
                while (i < s->n && s->v[i].kind == GR_REF && nullable[s->v[i].arg])
                    i++;
                if (i == s->n)
                    nullable[r] = changed = true;
            }
        }
    }
    /* iterative depth-first search over "r can start with q" edges; a grey rule met again
     * is a cycle */
    for (uint32_t root = 0; root < n; root++) {
        if (color[root])
            continue;
        uint32_t sp = 0;
        stack[0] = root, stack[1] = 0, stack[2] = 0;
        sp = 1;
        color[root] = 1;
        while (sp > 0) {
            uint32_t *f = &stack[(sp - 1) * 3];
            const pr_rule *ru = &ps->rules[f[0]];
            if (f[1] >= ru->n_alts) {
                color[f[0]] = 2;
                sp--;
                continue;
            }
            const pr_seq *s = &ru->alts[f[1]];
            if (f[2] >= s->n || s->v[f[2]].kind != GR_REF ||
                (f[2] > 0 && !nullable[s->v[f[2] - 1].arg])) {
                f[1]++;
                f[2] = 0;
                continue;
            }
            const uint32_t q = s->v[f[2]].arg;
            f[2]++;
            if (color[q] == 1) {
                fail(ps, ps->rules[q].at,
                     "rule '%s' is left-recursive (it can reach itself before matching a character)",
                     ps->rules[q].name);
                goto done;
            }
            if (color[q] == 0) {
                color[q] = 1;
                stack[sp * 3] = q, stack[sp * 3 + 1] = 0, stack[sp * 3 + 2] = 0;
                sp++;
            }
        }
    }
    ok = true;
done:
    free(nullable);
    free(color);
    free(stack);
    return ok;
}

static bool flatten(parser *ps, ponder_grammar *g)
{
    uint32_t n_elems = 0, n_alts = 0;
    for (uint32_t r = 0; r < ps->n_rules; r++) {
        n_alts += ps->rules[r].n_alts;
        for (uint32_t a = 0; a < ps->rules[r].n_alts; a++)
            n_elems += ps->rules[r].alts[a].n + 1;
    }
    g->elems = malloc((n_elems + 1) * sizeof *g->elems);
    g->alts = malloc((n_alts + 1) * sizeof *g->alts);
    g->rule_alt = malloc((ps->n_rules + 1) * sizeof *g->rule_alt);
    g->names = calloc(ps->n_rules + 1, sizeof *g->names);
    if (!g->elems || !g->alts || !g->rule_alt || !g->names)
        return oom(ps);
    uint32_t e = 0, k = 0;
    for (uint32_t r = 0; r < ps->n_rules; r++) {
        g->rule_alt[r] = k;
        for (uint32_t a = 0; a < ps->rules[r].n_alts; a++) {
            const pr_seq *s = &ps->rules[r].alts[a];
            g->alts[k++] = e;
            if (s->n > 0)
                memcpy(g->elems + e, s->v, s->n * sizeof *s->v);
            e += s->n;
            g->elems[e++] = (gr_elem){ GR_END, 0 };
        }
        g->names[r] = ps->rules[r].name;
        ps->rules[r].name = NULL;
    }
    g->rule_alt[ps->n_rules] = k;
    g->n_elems = e;
    g->n_rules = ps->n_rules;
    g->dfa = ps->dfa;
    g->n_dfa = ps->n_dfa;
    ps->dfa = NULL;
    return true;
}

ponder_status ponder_grammar_parse(const char *text, size_t len, ponder_grammar **out, ponder_error *err)
{
    if (!out || (!text && len > 0))
        return ponder_error_set(err, PONDER_ERR_INVALID_ARG, "ponder_grammar_parse: NULL argument");
    *out = NULL;
    parser ps = { .src = text ? text : "", .end = (text ? text : "") + len, .err = err, .n_dfa = 2 };
    ponder_grammar *g = calloc(1, sizeof *g);
    if (!g)
        return ponder_error_set(err, PONDER_ERR_NOMEM, "grammar: out of memory");
    if (parse_rules(&ps) && check_rules(&ps)) {
        uint32_t root = UINT32_MAX;
        for (uint32_t r = 0; r < ps.n_rules; r++)
            if (strcmp(ps.rules[r].name, "root") == 0)
                root = r;
        if (root == UINT32_MAX)
            fail(&ps, NULL, "no 'root' rule (the grammar starts there)");
        else if (flatten(&ps, g))
            g->root = root;
    }
    for (uint32_t r = 0; r < ps.n_rules; r++) {
        free(ps.rules[r].name);
        for (uint32_t a = 0; a < ps.rules[r].n_alts; a++)
            free(ps.rules[r].alts[a].v);
        free(ps.rules[r].alts);
    }
    free(ps.rules);
    free(ps.dfa);
    if (ps.st != PONDER_OK) {
        ponder_grammar_free(g);
        return ps.st;
    }
    *out = g;
    return PONDER_OK;
}

void ponder_grammar_free(ponder_grammar *g)
{
    if (!g)
        return;
    if (g->names)
        for (uint32_t r = 0; r < g->n_rules; r++)
            free(g->names[r]);
    free(g->names);
    free(g->elems);
    free(g->alts);
    free(g->rule_alt);
    free(g->dfa);
    free(g);
}

int32_t ponder_grammar_n_rules(const ponder_grammar *g)
{
    return g ? (int32_t)g->n_rules : 0;
}
