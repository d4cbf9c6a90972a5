/*
 * lex.c — the Jinja lexer: splits template source into text and tag tokens and applies the
 * whitespace rules of the environment transformers uses, as jinja2 3.1's lexer does:
 *  - `-` on a tag side strips all whitespace (str.isspace, so NBSP too) on that side;
 *  - trim_blocks: one newline after `%}` or `#}` is dropped (not after `}}`; `+%}` keeps it);
 *  - lstrip_blocks: spaces/tabs between a line start and `{%` / `{#` are dropped
 *    (not before `{{`; `{%+` keeps them);
 *  - `{% raw %}...{% endraw %}` is text, with the same rules on its two tags.
 * Inside a tag, end markers are only recognised outside brackets, as jinja2 balances them.
 */
#include "chat/jinja.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct lexer {
    jparse *p;
    const char *src;
    size_t len;
    size_t lc_pos; /* position whose line/column is known */
    int lc_line, lc_col;
} lexer;

_Noreturn void jparse_fail(jparse *p, ponder_status st, int line, int col, const char *fmt, ...)
{
    char msg[PONDER_ERROR_MSG_BYTES];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    ponder_error_set(p->err, st, "line %d, column %d: %s", line, col, msg);
    longjmp(*p->jmp, 1);
}

static void pos_lc(lexer *L, size_t pos, int *line, int *col)
{
    if (pos < L->lc_pos) {
        L->lc_pos = 0;
        L->lc_line = 1;
        L->lc_col = 1;
    }
    for (; L->lc_pos < pos; L->lc_pos++) {
        if (L->src[L->lc_pos] == '\n') {
            L->lc_line++;
            L->lc_col = 1;
        } else if (((unsigned char)L->src[L->lc_pos] & 0xC0) != 0x80) {
            L->lc_col++;
        }
    }
    *line = L->lc_line;
    *col = L->lc_col;
}

_Noreturn static void lex_fail(lexer *L, size_t pos, const char *what)
{
    int line, col;
    pos_lc(L, pos, &line, &col);
    jparse_fail(L->p, PONDER_ERR_FORMAT, line, col, "%s", what);
}

static jtok *push_tok(lexer *L, jtok_type t, size_t pos)
{
    jtokens *ts = &L->p->toks;
    if (ts->n == ts->cap) {
        size_t cap = ts->cap ? ts->cap * 2 : 256;
        jtok *v = ja_alloc(L->p->a, cap * sizeof *v);
        if (ts->n)
            memcpy(v, ts->v, ts->n * sizeof *v);
        ts->v = v;
        ts->cap = cap;
    }
    jtok *k = &ts->v[ts->n++];
    memset(k, 0, sizeof *k);
    k->t = t;
    pos_lc(L, pos, &k->line, &k->col);
    return k;
}

/* Length of the whitespace code point at s[i], or 0. */
static size_t ws_at(const char *s, size_t i, size_t len)
{
    size_t n;
    uint32_t cp = jinja_utf8_decode(s + i, len - i, &n);
    return jinja_py_isspace(cp) ? n : 0;
}

static size_t skip_ws(const char *s, size_t i, size_t len)
{
    size_t n;
    while (i < len && (n = ws_at(s, i, len)) > 0)
        i += n;
    return i;
}

/* End of s[b..e) after Python's rstrip(). */
static size_t rstrip_end(const char *s, size_t b, size_t e)
{
    while (e > b) {
        size_t st = e - 1;
        while (st > b && ((unsigned char)s[st] & 0xC0) == 0x80 && e - st < 4)
            st--;
        size_t n;
        uint32_t cp = jinja_utf8_decode(s + st, e - st, &n);
        if (st + n != e || !jinja_py_isspace(cp))
            break;
        e = st;
    }
    return e;
}

/* lstrip_blocks: end of the text before a block/comment tag. */
static size_t lstrip_end(const char *s, size_t b, size_t e, bool line_starting)
{
    size_t l = e;
    while (l > b && s[l - 1] != '\n')
        l--;
    if (l == b && !line_starting)
        return e;
    if (l == e)
        return e;
    for (size_t i = l; i < e;) {
        size_t n = ws_at(s, i, e);
        if (n == 0 || s[i] == '\n')
            return e;
        i += n;
    }
    return l;
}

static void emit_text(lexer *L, size_t b, size_t e)
{
    if (e <= b)
        return;
    jtok *k = push_tok(L, JT_TEXT, b);
    k->s = ja_strndup(L->p->a, L->src + b, e - b);
    k->n = e - b;
}

static bool is_name_start(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
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

static size_t put_utf8(char *o, uint32_t cp)
{
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    } else if (cp < 0x800) {
        o[0] = (char)(0xC0 | (cp >> 6));
        o[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    } else if (cp < 0x10000) {
        o[0] = (char)(0xE0 | (cp >> 12));
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | (cp >> 18));
    o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* A string literal at src[i] (a quote); Python "unicode-escape" decoding of its body, as
 * jinja2 does. Returns the index after the closing quote. */
static size_t lex_string(lexer *L, size_t i, jtok *k)
{
    const char *s = L->src;
    char q = s[i];
    size_t j = i + 1;
    while (j < L->len && s[j] != q) {
        if (s[j] == '\\' && j + 1 < L->len)
            j++;
        j++;
    }
    if (j >= L->len)
        lex_fail(L, i, "unterminated string literal");
    /* decoded text is never longer than the source (\U escapes: 10 chars → 4 bytes) */
    char *o = ja_alloc(L->p->a, j - i + 4);
    size_t n = 0;
    for (size_t x = i + 1; x < j; x++) {
        char c = s[x];
        if (c != '\\') {
            o[n++] = c;
            continue;
        }
        char e = s[++x];
        switch (e) {
        case '\n': break; /* line continuation */
        case '\\': o[n++] = '\\'; break;
        case '\'': o[n++] = '\''; break;
        case '"': o[n++] = '"'; break;
        case 'a': o[n++] = '\a'; break;
        case 'b': o[n++] = '\b'; break;
        case 'f': o[n++] = '\f'; break;
        case 'n': o[n++] = '\n'; break;
        case 'r': o[n++] = '\r'; break;
        case 't': o[n++] = '\t'; break;
        case 'v': o[n++] = '\v'; break;
        case 'x': case 'u': case 'U': {
            int digits = e == 'x' ? 2 : e == 'u' ? 4 : 8;
            uint32_t cp = 0;
            for (int d = 0; d < digits; d++) {
                int h = x + 1 < j ? hexval(s[x + 1]) : -1;
                if (h < 0)
                    lex_fail(L, x - 1, "truncated \\x/\\u escape in string literal");
                cp = cp * 16 + (uint32_t)h;
                x++;
            }
            if (cp > 0x10FFFF)
                lex_fail(L, x, "escape sequence out of the Unicode range");
            n += put_utf8(o + n, cp);
            break;
        }
        default:
            if (e >= '0' && e <= '7') {
                uint32_t cp = (uint32_t)(e - '0');
                for (int d = 0; d < 2 && x + 1 < j && s[x + 1] >= '0' && s[x + 1] <= '7'; d++)
                    cp = cp * 8 + (uint32_t)(s[++x] - '0');
                n += put_utf8(o + n, cp);
            } else {
                /* Python keeps unknown escapes as they are */
                o[n++] = '\\';
                o[n++] = e;
            }
        }
    }
    o[n] = 0;
    k->s = o;
    k->n = n;
    return j + 1;
}

static size_t lex_number(lexer *L, size_t i, jtok *k)
{
    const char *s = L->src;
    size_t j = i;
    bool is_float = false;
    while (j < L->len && (is_digit(s[j]) || (s[j] == '_' && j + 1 < L->len && is_digit(s[j + 1]))))
        j++;
    bool after_dot = i > 0 && s[i - 1] == '.';
    if (!after_dot && j + 1 < L->len && s[j] == '.' && is_digit(s[j + 1])) {
        is_float = true;
        j++;
        while (j < L->len && (is_digit(s[j]) || (s[j] == '_' && j + 1 < L->len && is_digit(s[j + 1]))))
            j++;
    }
    if (!after_dot && j < L->len && (s[j] == 'e' || s[j] == 'E')) {
        size_t e = j + 1;
        if (e < L->len && (s[e] == '+' || s[e] == '-'))
            e++;
        if (e < L->len && is_digit(s[e])) {
            is_float = true;
            j = e;
            while (j < L->len && is_digit(s[j]))
                j++;
        }
    }
    char buf[128];
    size_t n = 0;
    for (size_t x = i; x < j && n < sizeof buf - 1; x++)
        if (s[x] != '_')
            buf[n++] = s[x];
    buf[n] = 0;
    if (is_float) {
        k->t = JT_FLOAT;
        k->f = strtod(buf, NULL);
    } else {
        k->t = JT_INT;
        int64_t v = 0;
        for (size_t x = 0; x < n; x++) {
            if (v > (INT64_MAX - (buf[x] - '0')) / 10) {
                /* Python has big integers; beyond 64 bits we keep the nearest float */
                k->t = JT_FLOAT;
                k->f = strtod(buf, NULL);
                return j;
            }
            v = v * 10 + (buf[x] - '0');
        }
        k->i = v;
    }
    return j;
}

/* Tokens of one {{ }} or {% %} tag from src[i]; returns the index after the end marker and
 * sets *strip_after (`-` end) / *trim_after (trim_blocks applies). */
static size_t lex_tag(lexer *L, size_t i, bool block, bool *strip_after, bool *trim_after, size_t tag_pos)
{
    const char *s = L->src;
    int depth = 0;
    char stack[JINJA_MAX_PARSE_DEPTH];
    *strip_after = *trim_after = false;
    for (;;) {
        i = skip_ws(s, i, L->len);
        if (i >= L->len)
            lex_fail(L, tag_pos, block ? "unclosed block tag '{%'" : "unclosed expression '{{'");
        char c = s[i];
        if (depth == 0) {
            char e = block ? '%' : '}';
            if (c == '-' && i + 2 < L->len && s[i + 1] == e && s[i + 2] == '}') {
                push_tok(L, block ? JT_BLOCK_END : JT_VAR_END, i);
                *strip_after = true;
                return i + 3;
            }
            if (block && c == '+' && i + 2 < L->len && s[i + 1] == '%' && s[i + 2] == '}') {
                push_tok(L, JT_BLOCK_END, i);
                return i + 3;
            }
            if (c == e && i + 1 < L->len && s[i + 1] == '}') {
                push_tok(L, block ? JT_BLOCK_END : JT_VAR_END, i);
                *trim_after = block;
                return i + 2;
            }
        }
        jtok *k;
        if (is_name_start(c)) {
            size_t j = i;
            while (j < L->len && (is_name_start(s[j]) || is_digit(s[j])))
                j++;
            k = push_tok(L, JT_NAME, i);
            k->s = ja_strndup(L->p->a, s + i, j - i);
            k->n = j - i;
            i = j;
        } else if (is_digit(c)) {
            k = push_tok(L, JT_INT, i);
            i = lex_number(L, i, k);
        } else if (c == '\'' || c == '"') {
            k = push_tok(L, JT_STRING, i);
            i = lex_string(L, i, k);
        } else {
            static const struct { const char *t; int op; } two[] = {
                { "//", JOP_FLOORDIV }, { "**", JOP_POW }, { "==", JOP_EQ },
                { "!=", JOP_NE }, { "<=", JOP_LE }, { ">=", JOP_GE },
            };
            int op = 0;
            for (size_t x = 0; x < sizeof two / sizeof two[0]; x++)
                if (i + 1 < L->len && s[i] == two[x].t[0] && s[i + 1] == two[x].t[1])
                    op = two[x].op;
            if (op) {
                k = push_tok(L, JT_OP, i);
                k->op = op;
                i += 2;
                continue;
            }
            if (!strchr("+-/*%~[](){}<>=.:|,;", c) || c == 0) {
                int line, col;
                pos_lc(L, i, &line, &col);
                if ((unsigned char)c >= 0x20 && (unsigned char)c < 0x7f)
                    jparse_fail(L->p, PONDER_ERR_FORMAT, line, col, "unexpected character '%c'", c);
                jparse_fail(L->p, PONDER_ERR_FORMAT, line, col, "unexpected byte 0x%02x", (unsigned char)c);
            }
            if (c == '(' || c == '[' || c == '{') {
                if (depth >= JINJA_MAX_PARSE_DEPTH)
                    lex_fail(L, i, "brackets nested too deeply");
                stack[depth++] = c;
            } else if (c == ')' || c == ']' || c == '}') {
                char want = c == ')' ? '(' : c == ']' ? '[' : '{';
                if (depth == 0 || stack[depth - 1] != want) {
                    int line, col;
                    pos_lc(L, i, &line, &col);
                    jparse_fail(L->p, PONDER_ERR_FORMAT, line, col, "unexpected '%c'", c);
                }
                depth--;
            }
            k = push_tok(L, JT_OP, i);
            k->op = (unsigned char)c;
            i++;
        }
    }
}

/* `{%[-+]? raw [-]?%}` at src[i]: returns the index after it (0 if it is not one). */
static size_t match_raw(const char *s, size_t i, size_t len, const char *word, bool *minus_end, bool *plus_end)
{
    size_t j = i + 2;
    if (j < len && (s[j] == '-' || s[j] == '+'))
        j++;
    j = skip_ws(s, j, len);
    size_t wl = strlen(word);
    if (j + wl > len || memcmp(s + j, word, wl) != 0)
        return 0;
    j += wl;
    if (j < len && (is_name_start(s[j]) || is_digit(s[j])))
        return 0;
    j = skip_ws(s, j, len);
    *minus_end = false;
    if (plus_end)
        *plus_end = false;
    if (j + 2 < len && s[j] == '-' && s[j + 1] == '%' && s[j + 2] == '}') {
        *minus_end = true;
        return j + 3;
    }
    if (plus_end && j + 2 < len && s[j] == '+' && s[j + 1] == '%' && s[j + 2] == '}') {
        *plus_end = true;
        return j + 3;
    }
    if (j + 1 < len && s[j] == '%' && s[j + 1] == '}')
        return j + 2;
    return 0;
}

void jinja_lex(jparse *p, const char *src, size_t len)
{
    lexer L = { .p = p, .src = src, .len = len, .lc_pos = 0, .lc_line = 1, .lc_col = 1 };
    size_t pos = 0;
    bool line_starting = true;
    while (pos < len) {
        size_t t = pos;
        while (t + 1 < len && !(src[t] == '{' && (src[t + 1] == '{' || src[t + 1] == '%' || src[t + 1] == '#')))
            t++;
        if (t + 1 >= len) {
            emit_text(&L, pos, len);
            break;
        }
        char kind = src[t + 1];
        char sign = t + 2 < len && (src[t + 2] == '-' || src[t + 2] == '+') ? src[t + 2] : 0;
        size_t text_end = t;
        if (sign == '-')
            text_end = rstrip_end(src, pos, t);
        else if (sign != '+' && kind != '{')
            text_end = lstrip_end(src, pos, t, line_starting);
        emit_text(&L, pos, text_end);
        size_t after = t + 2 + (sign ? 1 : 0);
        bool strip_after = false, trim_after = false;
        bool minus_end;
        size_t raw_end;
        if (kind == '#') {
            size_t j = after;
            while (j + 1 < len && !(src[j] == '#' && src[j + 1] == '}'))
                j++;
            if (j + 1 >= len)
                lex_fail(&L, t, "unclosed comment '{#'");
            if (j > after && src[j - 1] == '-')
                strip_after = true;
            else if (!(j > after && src[j - 1] == '+'))
                trim_after = true;
            pos = j + 2;
        } else if (kind == '%' && (raw_end = match_raw(src, t, len, "raw", &minus_end, NULL)) != 0) {
            size_t body = minus_end ? skip_ws(src, raw_end, len) : raw_end;
            bool ls = minus_end && body > raw_end && src[body - 1] == '\n';
            size_t j = body, end_after = 0;
            bool em = false, ep = false;
            for (; j + 1 < len; j++)
                if (src[j] == '{' && src[j + 1] == '%' && (end_after = match_raw(src, j, len, "endraw", &em, &ep)) != 0)
                    break;
            if (end_after == 0)
                lex_fail(&L, t, "missing '{% endraw %}'");
            char esign = j + 2 < len && (src[j + 2] == '-' || src[j + 2] == '+') ? src[j + 2] : 0;
            size_t data_end = j;
            if (esign == '-')
                data_end = rstrip_end(src, body, j);
            else if (esign != '+')
                data_end = lstrip_end(src, body, j, ls);
            emit_text(&L, body, data_end);
            strip_after = em;
            trim_after = !em && !ep;
            pos = end_after;
        } else {
            bool block = kind == '%';
            push_tok(&L, block ? JT_BLOCK_BEGIN : JT_VAR_BEGIN, t);
            pos = lex_tag(&L, after, block, &strip_after, &trim_after, t);
        }
        line_starting = false;
        if (strip_after) {
            size_t e = skip_ws(src, pos, len);
            line_starting = e > pos && src[e - 1] == '\n';
            pos = e;
        } else if (trim_after && pos < len && src[pos] == '\n') {
            pos++;
            line_starting = true;
        }
    }
    push_tok(&L, JT_EOF, len);
}
