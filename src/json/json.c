/*
 * json.c — JSON text with shortest round-trip numbers (ponder/json.h). jansson offers no
 * hook for how a real is printed, so the tree is written here; everything else is
 * written byte for byte as jansson's compact dump writes it (its escapes, "%lld"
 * integers, insertion-ordered keys), so swapping json_dumps for ponder_json_dumps changes
 * only the numbers.
 */
#include "ponder/json.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Writes the number whose "%.Ne" text is sci (sign, digits, exponent) the way Python's
 * repr does: positional when the decimal exponent X is -4 <= X < 16 (0.0001, 123.5, 100),
 * else d.ddde[-]X (1e-5, 1.5e20) — the same decimal digits, so it reads back the same. */
static int layout(const char *sci, char *buf)
{
    const char *p = sci;
    int n = 0;
    if (*p == '-')
        buf[n++] = *p++;
    char digits[24];
    int nd = 0;
    for (; *p && *p != 'e'; p++)
        if (*p != '.' && nd < (int)sizeof digits - 1)
            digits[nd++] = *p;
    while (nd > 1 && digits[nd - 1] == '0') /* %.Ne pads to N digits */
        nd--;
    digits[nd] = '\0';
    const int x = *p == 'e' ? atoi(p + 1) : 0;
    if (x >= 16 || x < -4) {
        buf[n++] = digits[0];
        if (nd > 1) {
            buf[n++] = '.';
            memcpy(buf + n, digits + 1, (size_t)nd - 1);
            n += nd - 1;
        }
        return n + snprintf(buf + n, PONDER_NUM_TEXT_BYTES - (size_t)n, "e%d", x);
    }
    if (x < 0) {
        memcpy(buf + n, "0.", 2);
        n += 2;
        for (int i = 0; i < -x - 1; i++)
            buf[n++] = '0';
        memcpy(buf + n, digits, (size_t)nd);
        n += nd;
    } else {
        for (int i = 0; i <= x; i++)
            buf[n++] = i < nd ? digits[i] : '0';
        if (nd > x + 1) {
            buf[n++] = '.';
            memcpy(buf + n, digits + x + 1, (size_t)(nd - x - 1));
            n += nd - x - 1;
        }
    }
    buf[n] = '\0';
    return n;
}

int ponder_fmt_float(float f, char *buf)
{
    if (!isfinite(f))
        return snprintf(buf, PONDER_NUM_TEXT_BYTES, "null");
    /* reading back is monotonic in the digits (more digits are closer), so bisect */
    char sci[PONDER_NUM_TEXT_BYTES];
    int lo = 0, hi = 8; /* 9 significant digits always read back */
    while (lo < hi) {
        const int mid = (lo + hi) / 2;
        snprintf(sci, sizeof sci, "%.*e", mid, (double)f);
        if (strtof(sci, NULL) == f)
            hi = mid;
        else
            lo = mid + 1;
    }
    snprintf(sci, sizeof sci, "%.*e", lo, (double)f);
    return layout(sci, buf);
}

int ponder_fmt_double(double d, char *buf)
{
    if (!isfinite(d))
        return snprintf(buf, PONDER_NUM_TEXT_BYTES, "null");
    char sci[PONDER_NUM_TEXT_BYTES];
    int lo = 0, hi = 16; /* 17 significant digits always read back */
    while (lo < hi) {
        const int mid = (lo + hi) / 2;
        snprintf(sci, sizeof sci, "%.*e", mid, d);
        if (strtod(sci, NULL) == d)
            hi = mid;
        else
            lo = mid + 1;
    }
    snprintf(sci, sizeof sci, "%.*e", lo, d);
    return layout(sci, buf);
}

int ponder_fmt_real(double d, char *buf)
{
    const float f = (float)d;
    int n = isfinite(d) && (double)f == d ? ponder_fmt_float(f, buf) : ponder_fmt_double(d, buf);
    if (isfinite(d) && !strpbrk(buf, ".e")) { /* keep it a real when read back, as jansson does */
        memcpy(buf + n, ".0", 3);
        n += 2;
    }
    return n;
}

typedef struct out_buf {
    char *s;
    size_t len, cap;
    bool failed;
} out_buf;

static void put(out_buf *b, const char *s, size_t n)
{
    if (b->failed)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = realloc(b->s, cap);
        if (!p) {
            b->failed = true;
            return;
        }
        b->s = p;
        b->cap = cap;
    }
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = '\0';
}

static void put_c(out_buf *b, const char *s) { put(b, s, strlen(s)); }

/* jansson's escapes (dump.c, without JSON_ENSURE_ASCII or JSON_ESCAPE_SLASH): only ASCII
 * is escaped, so walking bytes equals its walk over code points (strings are valid UTF-8). */
static void put_string(out_buf *b, const char *s, size_t n)
{
    put(b, "\"", 1);
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        const unsigned char c = (unsigned char)s[i];
        if (c != '\\' && c != '"' && c >= 0x20)
            continue;
        put(b, s + run, i - run);
        run = i + 1;
        char seq[8];
        switch (c) {
        case '\\': put_c(b, "\\\\"); break;
        case '"': put_c(b, "\\\""); break;
        case '\b': put_c(b, "\\b"); break;
        case '\f': put_c(b, "\\f"); break;
        case '\n': put_c(b, "\\n"); break;
        case '\r': put_c(b, "\\r"); break;
        case '\t': put_c(b, "\\t"); break;
        default:
            snprintf(seq, sizeof seq, "\\u%04X", (unsigned)c);
            put_c(b, seq);
        }
    }
    put(b, s + run, n - run);
    put(b, "\"", 1);
}

static void put_value(out_buf *b, const json_t *j)
{
    char num[PONDER_NUM_TEXT_BYTES];
    switch (json_typeof(j)) {
    case JSON_OBJECT: {
        put(b, "{", 1);
        const char *key;
        size_t key_len;
        json_t *v;
        bool first = true;
        json_object_keylen_foreach((json_t *)j, key, key_len, v) {
            if (!first)
                put(b, ",", 1);
            first = false;
            put_string(b, key, key_len);
            put(b, ":", 1);
            put_value(b, v);
        }
        put(b, "}", 1);
        break;
    }
    case JSON_ARRAY:
        put(b, "[", 1);
        for (size_t i = 0; i < json_array_size(j); i++) {
            if (i)
                put(b, ",", 1);
            put_value(b, json_array_get(j, i));
        }
        put(b, "]", 1);
        break;
    case JSON_STRING:
        put_string(b, json_string_value(j), json_string_length(j));
        break;
    case JSON_INTEGER:
        snprintf(num, sizeof num, "%" JSON_INTEGER_FORMAT, json_integer_value(j));
        put_c(b, num);
        break;
    case JSON_REAL:
        ponder_fmt_real(json_real_value(j), num);
        put_c(b, num);
        break;
    case JSON_TRUE: put_c(b, "true"); break;
    case JSON_FALSE: put_c(b, "false"); break;
    case JSON_NULL: put_c(b, "null"); break;
    }
}

char *ponder_json_dumps(const json_t *j)
{
    if (!j)
        return NULL;
    out_buf b = { 0 };
    put_value(&b, j);
    if (b.failed) {
        free(b.s);
        return NULL;
    }
    return b.s;
}
