/*
 * schema_parts.c — pieces of grammar text the JSON Schema compiler (json_schema.c)
 * assembles: GBNF literals, integer ranges as digit patterns, and `pattern` regular
 * expressions translated to GBNF.
 *
 * Integer ranges follow the classic range-to-regex split (as llama.cpp's
 * _build_min_max_int): a range of numbers with the same digit count becomes a few
 * alternatives of the form prefix [x-y] [0-9]{k}. Regular expressions cover the simple
 * subset llama.cpp's converter takes (literals, classes, . \d \w \s, groups,
 * alternation, ? * + {m,n}); an unanchored pattern is generated as a whole match (which
 * JSON Schema's search semantics accept too). Characters a class or `.` could produce that JSON must escape (quote,
 * backslash, controls) are left out of classes, so every string produced matches the
 * pattern and needs no escape; literal ones are written escaped.
 */
#include "grammar/schema_parts.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void gr_buf_put(gr_buf *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n + 1)
            cap *= 2;
        char *x = realloc(b->s, cap);
        if (!x) {
            b->oom = true;
            return;
        }
        b->s = x;
        b->cap = cap;
    }
    memcpy(b->s + b->n, s, n);
    b->n += n;
    b->s[b->n] = '\0';
}

void gr_buf_puts(gr_buf *b, const char *s)
{
    gr_buf_put(b, s, strlen(s));
}

void gr_buf_printf(gr_buf *b, const char *fmt, ...)
{
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n < sizeof tmp) {
        gr_buf_put(b, tmp, (size_t)n);
        return;
    }
    char *big = malloc((size_t)n + 1);
    if (!big) {
        b->oom = true;
        return;
    }
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    gr_buf_put(b, big, (size_t)n);
    free(big);
}

void sp_literal(gr_buf *b, const char *s, size_t n)
{
    gr_buf_puts(b, "\"");
    for (size_t i = 0; i < n; i++) {
        const unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            char e[3] = { '\\', (char)c, 0 };
            gr_buf_puts(b, e);
        } else if (c < 0x20 || c == 0x7F) {
            gr_buf_printf(b, "\\x%02X", c);
        } else {
            gr_buf_put(b, (const char *)&c, 1);
        }
    }
    gr_buf_puts(b, "\"");
}

/* --- integer ranges --------------------------------------------------------------- */

static void digits_range(gr_buf *b, char lo, char hi)
{
    if (lo == hi)
        gr_buf_printf(b, "\"%c\"", lo);
    else
        gr_buf_printf(b, "[%c-%c]", lo, hi);
}

/* [a, b] for digit strings of the same length n (no sign; leading zeros allowed here,
 * the caller makes the first digit non-zero by its choice of bounds). */
static void same_len(gr_buf *b, const char *a, const char *z, size_t n)
{
    if (n == 0)
        return;
    if (a[0] == z[0]) {
        gr_buf_printf(b, "\"%c\" ", a[0]);
        if (n > 1) {
            gr_buf_puts(b, "(");
            same_len(b, a + 1, z + 1, n - 1);
            gr_buf_puts(b, ")");
        }
        return;
    }
    bool a_zeros = true, z_nines = true;
    for (size_t i = 1; i < n; i++) {
        a_zeros &= a[i] == '0';
        z_nines &= z[i] == '9';
    }
    bool first = true;
    char mid_lo = a[0], mid_hi = z[0];
    if (!a_zeros) {
        char nines[32];
        memset(nines, '9', n - 1);
        gr_buf_printf(b, "\"%c\" (", a[0]);
        same_len(b, a + 1, nines, n - 1);
        gr_buf_puts(b, ")");
        first = false;
        mid_lo = (char)(a[0] + 1);
    }
    if (!z_nines)
        mid_hi = (char)(z[0] - 1);
    if (mid_lo <= mid_hi) {
        if (!first)
            gr_buf_puts(b, " | ");
        digits_range(b, mid_lo, mid_hi);
        if (n > 1)
            gr_buf_printf(b, " [0-9]{%zu}", n - 1);
        first = false;
    }
    if (!z_nines) {
        char zeros[32];
        memset(zeros, '0', n - 1);
        if (!first)
            gr_buf_puts(b, " | ");
        gr_buf_printf(b, "\"%c\" (", z[0]);
        same_len(b, zeros, z + 1, n - 1);
        gr_buf_puts(b, ")");
    }
}

/* Non-negative [lo, hi] (hi < 0: no upper bound, up to SP_MAX_DIGITS digits) as
 * alternatives, no leading zeros. Appends nothing when the range is empty. */
static void nonneg_range(gr_buf *b, long long lo, long long hi, bool *first)
{
    for (int n = 1; n <= SP_MAX_DIGITS; n++) {
        long long dmin = 1, dmax;
        for (int i = 1; i < n; i++)
            dmin *= 10;
        dmax = dmin * 10 - 1;
        if (n == 1)
            dmin = 0;
        long long a = lo > dmin ? lo : dmin, z = dmax;
        if (hi >= 0 && hi < z)
            z = hi;
        if (a > z)
            continue;
        char as[32], zs[32];
        snprintf(as, sizeof as, "%0*lld", n, a);
        snprintf(zs, sizeof zs, "%0*lld", n, z);
        gr_buf_puts(b, *first ? "(" : " | (");
        same_len(b, as, zs, (size_t)n);
        gr_buf_puts(b, ")");
        *first = false;
    }
}

bool sp_int_range(gr_buf *b, bool has_lo, long long lo, bool has_hi, long long hi)
{
    long long max_mag = 1;
    for (int i = 0; i < SP_MAX_DIGITS; i++)
        max_mag *= 10;
    max_mag -= 1; /* the most SP_MAX_DIGITS digits hold */
    if ((has_lo && lo > max_mag) || (has_hi && hi < -max_mag))
        return false;
    if (has_lo && lo < -max_mag)
        has_lo = false;
    if (has_hi && hi > max_mag)
        has_hi = false;
    if (has_lo && has_hi && lo > hi)
        return false;
    bool first = true;
    gr_buf_puts(b, "(");
    /* negative part: -[m, M] for m = max(1, -hi), M = -lo */
    if (!has_lo || lo < 0) {
        long long m = has_hi ? (hi < 0 ? -hi : 1) : 1;
        long long M = has_lo ? -lo : -1;
        if (!(has_hi && hi < 0 && M >= 0 && M < m)) {
            gr_buf_puts(b, "\"-\" (");
            bool f2 = true;
            nonneg_range(b, m, M, &f2);
            gr_buf_puts(b, ")");
            first = false;
        }
    }
    /* non-negative part */
    if (!has_hi || hi >= 0) {
        long long a = has_lo && lo > 0 ? lo : 0;
        if (!first)
            gr_buf_puts(b, " | ");
        bool f2 = true;
        nonneg_range(b, a, has_hi ? hi : -1, &f2);
        first = false;
    }
    gr_buf_puts(b, ")");
    return true;
}

/* --- regular expressions ---------------------------------------------------------- */

typedef struct rx {
    const char *p, *end, *src;
    gr_buf *out;
    char *err;
    size_t err_cap;
    int depth;
} rx;

static bool rx_fail(rx *r, const char *what)
{
    if (r->err[0] == '\0')
        snprintf(r->err, r->err_cap, "%s at offset %zu of pattern", what, (size_t)(r->p - r->src));
    return false;
}

/* A class as code point ranges; 128 ranges are plenty for the classes schemas use. */
typedef struct cls {
    uint32_t lo[128], hi[128];
    int n;
} cls;

static bool cls_add(cls *c, uint32_t lo, uint32_t hi)
{
    if (c->n == 128)
        return false;
    c->lo[c->n] = lo;
    c->hi[c->n] = hi;
    c->n++;
    return true;
}

static bool cls_escape(cls *c, char e)
{
    switch (e) {
    case 'd': return cls_add(c, '0', '9');
    case 'w': return cls_add(c, '0', '9') && cls_add(c, 'A', 'Z') && cls_add(c, 'a', 'z') && cls_add(c, '_', '_');
    case 's': return cls_add(c, ' ', ' ') && cls_add(c, '\t', '\r');
    default: return false;
    }
}

/* Writes c (negated: its complement) minus the characters JSON escapes, as a GBNF class;
 * false when nothing is left. */
static bool cls_emit(gr_buf *b, const cls *c, bool negate)
{
    bool in[128] = { 0 };
    for (int i = 0; i < c->n; i++)
        for (uint32_t x = c->lo[i]; x <= c->hi[i] && x < 128; x++)
            in[x] = true;
    /* non-ASCII ranges are kept as they are (negated: everything non-ASCII but them) */
    gr_buf_puts(b, "[");
    bool any = false;
    for (uint32_t x = 0x20; x < 0x7F; x++) {
        if (x == '"' || x == '\\')
            continue;
        if (in[x] != negate) {
            gr_buf_printf(b, "\\x%02X", x);
            any = true;
        }
    }
    if (!negate) {
        for (int i = 0; i < c->n; i++) {
            if (c->hi[i] < 0x80)
                continue;
            uint32_t lo = c->lo[i] < 0x80 ? 0x80 : c->lo[i];
            gr_buf_printf(b, "\\U%08X-\\U%08X", lo, c->hi[i]);
            any = true;
        }
    } else {
        uint32_t next = 0x80;
        for (int i = 0; i < c->n; i++) { /* sorted by the caller */
            if (c->hi[i] < 0x80)
                continue;
            uint32_t lo = c->lo[i] < 0x80 ? 0x80 : c->lo[i];
            if (lo > next)
                gr_buf_printf(b, "\\U%08X-\\U%08X", next, lo - 1);
            next = c->hi[i] + 1;
        }
        if (next <= 0x10FFFF)
            gr_buf_printf(b, "\\U%08X-\\U0010FFFF", next);
        any = true;
    }
    gr_buf_puts(b, "]");
    return any;
}

static int rx_cp(rx *r, uint32_t *cp)
{
    size_t n = ponder_utf8_len((const unsigned char *)r->p, (size_t)(r->end - r->p));
    if (n == 0)
        return 0;
    const unsigned char *u = (const unsigned char *)r->p;
    if (n == 1)
        *cp = u[0];
    else if (n == 2)
        *cp = ((uint32_t)(u[0] & 0x1F) << 6) | (u[1] & 0x3F);
    else if (n == 3)
        *cp = ((uint32_t)(u[0] & 0x0F) << 12) | ((uint32_t)(u[1] & 0x3F) << 6) | (u[2] & 0x3F);
    else
        *cp = ((uint32_t)(u[0] & 0x07) << 18) | ((uint32_t)(u[1] & 0x3F) << 12) | ((uint32_t)(u[2] & 0x3F) << 6) |
              (u[3] & 0x3F);
    r->p += n;
    return (int)n;
}

static int cls_cmp(const void *a, const void *b)
{
    const uint32_t *x = a, *y = b;
    return *x < *y ? -1 : *x > *y;
}

static bool rx_class(rx *r)
{
    cls c = { .n = 0 };
    bool negate = false;
    if (r->p < r->end && *r->p == '^') {
        negate = true;
        r->p++;
    }
    bool first = true;
    while (r->p < r->end && (*r->p != ']' || first)) {
        first = false;
        uint32_t lo;
        if (*r->p == '\\') {
            r->p++;
            if (r->p >= r->end)
                return rx_fail(r, "unterminated class");
            char e = *r->p++;
            if (e == 'd' || e == 'w' || e == 's') {
                if (!cls_escape(&c, e))
                    return rx_fail(r, "class too large");
                continue;
            }
            if (e == 'n')
                lo = '\n';
            else if (e == 't')
                lo = '\t';
            else if (e == 'r')
                lo = '\r';
            else if ((e >= 'a' && e <= 'z') || (e >= 'A' && e <= 'Z') || (e >= '0' && e <= '9'))
                return rx_fail(r, "unsupported escape in class");
            else
                lo = (uint8_t)e;
        } else if (rx_cp(r, &lo) == 0) {
            return rx_fail(r, "invalid UTF-8");
        }
        uint32_t hi = lo;
        if (r->p + 1 < r->end && *r->p == '-' && r->p[1] != ']') {
            r->p++;
            if (*r->p == '\\') {
                if (r->p + 1 >= r->end)
                    return rx_fail(r, "unterminated class");
                hi = (uint8_t)r->p[1];
                r->p += 2;
            } else if (rx_cp(r, &hi) == 0) {
                return rx_fail(r, "invalid UTF-8");
            }
            if (hi < lo)
                return rx_fail(r, "class range out of order");
        }
        if (!cls_add(&c, lo, hi))
            return rx_fail(r, "class too large");
    }
    if (r->p >= r->end)
        return rx_fail(r, "unterminated class");
    r->p++;
    /* sort ranges by start (for the negated walk) */
    uint32_t pairs[128][2];
    for (int i = 0; i < c.n; i++)
        pairs[i][0] = c.lo[i], pairs[i][1] = c.hi[i];
    qsort(pairs, (size_t)c.n, sizeof pairs[0], cls_cmp);
    for (int i = 0; i < c.n; i++)
        c.lo[i] = pairs[i][0], c.hi[i] = pairs[i][1];
    if (!cls_emit(r->out, &c, negate))
        return rx_fail(r, "class matches only characters JSON must escape");
    return true;
}

static bool rx_alt(rx *r);

static bool rx_atom(rx *r)
{
    const char ch = *r->p;
    if (ch == '(') {
        if (++r->depth > 64)
            return rx_fail(r, "groups nested too deep");
        r->p++;
        if (r->p + 1 < r->end && r->p[0] == '?') {
            if (r->p[1] != ':')
                return rx_fail(r, "unsupported group (look-around or named group)");
            r->p += 2;
        }
        gr_buf_puts(r->out, "(");
        if (!rx_alt(r))
            return false;
        if (r->p >= r->end || *r->p != ')')
            return rx_fail(r, "unclosed group");
        r->p++;
        r->depth--;
        gr_buf_puts(r->out, ")");
        return true;
    }
    if (ch == '[') {
        r->p++;
        return rx_class(r);
    }
    if (ch == '.') {
        r->p++;
        gr_buf_puts(r->out, "[^\"\\\\\\x7F\\x00-\\x1F]");
        return true;
    }
    if (ch == '\\') {
        r->p++;
        if (r->p >= r->end)
            return rx_fail(r, "trailing backslash");
        const char e = *r->p++;
        cls c = { .n = 0 };
        if (e == 'd' || e == 'w' || e == 's' || e == 'D' || e == 'W' || e == 'S') {
            cls_escape(&c, (char)(e | 0x20));
            if (!cls_emit(r->out, &c, e < 'a'))
                return rx_fail(r, "class matches only characters JSON must escape");
            return true;
        }
        char lit;
        if (e == 'n')
            lit = '\n';
        else if (e == 't')
            lit = '\t';
        else if (e == 'r')
            lit = '\r';
        else if ((e >= 'a' && e <= 'z') || (e >= 'A' && e <= 'Z') || (e >= '0' && e <= '9'))
            return rx_fail(r, "unsupported escape (back-references, \\b and the like)");
        else
            lit = e;
        /* the JSON text of the character */
        char js[3] = { lit, 0, 0 };
        if (lit == '"' || lit == '\\')
            js[0] = '\\', js[1] = lit;
        else if (lit == '\n')
            js[0] = '\\', js[1] = 'n';
        else if (lit == '\t')
            js[0] = '\\', js[1] = 't';
        else if (lit == '\r')
            js[0] = '\\', js[1] = 'r';
        sp_literal(r->out, js, strlen(js));
        return true;
    }
    const char *s = r->p;
    uint32_t cp;
    if (rx_cp(r, &cp) == 0)
        return rx_fail(r, "invalid UTF-8");
    if (cp < 0x20)
        return rx_fail(r, "control character in pattern");
    if (cp == '"') {
        sp_literal(r->out, "\\\"", 2);
        return true;
    }
    sp_literal(r->out, s, (size_t)(r->p - s));
    return true;
}

static bool rx_int(rx *r, int *v)
{
    if (r->p >= r->end || *r->p < '0' || *r->p > '9')
        return rx_fail(r, "expected a number in {m,n}");
    int x = 0;
    while (r->p < r->end && *r->p >= '0' && *r->p <= '9') {
        x = x * 10 + (*r->p++ - '0');
        if (x > 1000)
            return rx_fail(r, "repetition count above 1000");
    }
    *v = x;
    return true;
}

static bool rx_seq(rx *r)
{
    bool empty = true;
    while (r->p < r->end && *r->p != '|' && *r->p != ')') {
        const char ch = *r->p;
        if (ch == '*' || ch == '+' || ch == '?' || ch == '{')
            return rx_fail(r, "quantifier without an atom");
        if (ch == '^' || ch == '$')
            return rx_fail(r, "anchor inside the pattern (only ^ at its start and $ at its end are supported)");
        gr_buf_puts(r->out, empty ? "(" : " (");
        empty = false;
        if (!rx_atom(r))
            return false;
        gr_buf_puts(r->out, ")");
        if (r->p < r->end) {
            const char q = *r->p;
            if (q == '*' || q == '+' || q == '?') {
                gr_buf_put(r->out, &q, 1);
                r->p++;
            } else if (q == '{') {
                r->p++;
                int m = 0, n = -1;
                if (!rx_int(r, &m))
                    return false;
                if (r->p < r->end && *r->p == ',') {
                    r->p++;
                    if (r->p < r->end && *r->p != '}' && !rx_int(r, &n))
                        return false;
                } else {
                    n = m;
                }
                if (r->p >= r->end || *r->p != '}')
                    return rx_fail(r, "unterminated {m,n}");
                r->p++;
                if (n >= 0 && n < m)
                    return rx_fail(r, "{m,n} with n < m");
                if (n >= 0)
                    gr_buf_printf(r->out, "{%d,%d}", m, n);
                else
                    gr_buf_printf(r->out, "{%d,}", m);
            }
            if (r->p < r->end && *r->p == '?')
                r->p++; /* lazy: the same language */
        }
    }
    if (empty)
        gr_buf_puts(r->out, "\"\"");
    return true;
}

static bool rx_alt(rx *r)
{
    if (!rx_seq(r))
        return false;
    while (r->p < r->end && *r->p == '|') {
        r->p++;
        gr_buf_puts(r->out, " | ");
        if (!rx_seq(r))
            return false;
    }
    return true;
}

bool sp_pattern(gr_buf *b, const char *pattern, char *err, size_t err_cap)
{
    /* Unanchored patterns are generated as if anchored: a string matching the whole
     * pattern also contains a match, and a model is not left to wander through "any
     * text" hoping to produce the match somewhere (llama.cpp refuses them instead). */
    const size_t n = strlen(pattern);
    rx r = { .p = pattern, .end = pattern + n, .src = pattern, .out = b, .err = err, .err_cap = err_cap };
    err[0] = '\0';
    if (n > 0 && pattern[0] == '^')
        r.p++;
    if (r.end > r.p && r.end[-1] == '$' && (r.end - r.p < 2 || r.end[-2] != '\\'))
        r.end--;
    gr_buf_puts(b, "(");
    if (!rx_alt(&r))
        return false;
    if (r.p != r.end)
        return rx_fail(&r, "unbalanced ')'");
    gr_buf_puts(b, ")");
    return true;
}
