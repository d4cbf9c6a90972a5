/*
 * answer.c — final-answer extraction from generated text and its normalization, so that
 * chains vote on the same string when they mean the same number or letter. The rules are
 * stated in think.h; they follow what GSM8K-style evaluations do (the "####" marker, the
 * "The answer is N" cue of Wang et al.'s exemplars, the last number as a fallback).
 */
#include "ponder/think.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Relative tolerance for numeric equality: answers are printed at 10 significant digits and
 * golds are short decimals, so anything closer than this is the same answer. */
#define ANSWER_REL_TOL 1e-6

typedef struct num_span {
    size_t start, end; /* bytes [start, end) of the number, sign and currency included */
    double value;
} num_span;

static bool is_digit(unsigned char c) { return c >= '0' && c <= '9'; }
static bool is_alpha(unsigned char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

/* Reads an unsigned run of digits at s[i..n); returns its end and accumulates into *v. */
static size_t read_digits(const char *s, size_t n, size_t i, double *v)
{
    while (i < n && is_digit((unsigned char)s[i])) {
        *v = *v * 10.0 + (s[i] - '0');
        i++;
    }
    return i;
}

/* Length of a currency symbol ending right before position i (0 if none). */
static size_t currency_before(const char *s, size_t i)
{
    if (i >= 1 && s[i - 1] == '$')
        return 1;
    if (i >= 2 && (unsigned char)s[i - 2] == 0xC2 && (unsigned char)s[i - 1] == 0xA3) /* £ */
        return 2;
    if (i >= 3 && (unsigned char)s[i - 3] == 0xE2 && (unsigned char)s[i - 2] == 0x82 &&
        (unsigned char)s[i - 1] == 0xAC) /* € */
        return 3;
    return 0;
}

/* Length of a minus sign ending right before position i, when it reads as a sign (not
 * a hyphen inside a word or a range "3-4"). */
static size_t minus_before(const char *s, size_t i)
{
    size_t len = 0;
    if (i >= 1 && s[i - 1] == '-')
        len = 1;
    else if (i >= 3 && (unsigned char)s[i - 3] == 0xE2 && (unsigned char)s[i - 2] == 0x88 &&
             (unsigned char)s[i - 1] == 0x92) /* U+2212 MINUS SIGN */
        len = 3;
    if (len == 0)
        return 0;
    if (i > len) {
        unsigned char p = (unsigned char)s[i - len - 1];
        if (is_digit(p) || is_alpha(p))
            return 0;
    }
    return len;
}

/* Parses the number whose first digit (or leading '.') is at s[i]. */
static num_span parse_at(const char *s, size_t n, size_t i)
{
    num_span r = { .start = i };
    double v = 0.0;
    size_t j = i;
    if (s[j] != '.') {
        size_t g0 = j;
        j = read_digits(s, n, j, &v);
        /* thousands commas: only after a first group of 1..3 digits and in groups of exactly 3 */
        if (j - g0 <= 3) {
            while (j + 3 < n && s[j] == ',' && is_digit((unsigned char)s[j + 1]) && is_digit((unsigned char)s[j + 2]) &&
                   is_digit((unsigned char)s[j + 3]) && (j + 4 >= n || !is_digit((unsigned char)s[j + 4]))) {
                v = v * 1000.0 + (s[j + 1] - '0') * 100 + (s[j + 2] - '0') * 10 + (s[j + 3] - '0');
                j += 4;
            }
        }
    }
    bool integral = true;
    if (j + 1 < n && s[j] == '.' && is_digit((unsigned char)s[j + 1])) {
        double scale = 0.1;
        j++;
        while (j < n && is_digit((unsigned char)s[j])) {
            v += (s[j] - '0') * scale;
            scale *= 0.1;
            j++;
        }
        integral = false;
    }
    if (integral && j + 1 < n && s[j] == '/' && is_digit((unsigned char)s[j + 1])) {
        double den = 0.0;
        size_t k = read_digits(s, n, j + 1, &den);
        if (den != 0.0 && (k >= n || s[k] != '.' || k + 1 >= n || !is_digit((unsigned char)s[k + 1]))) {
            v /= den;
            j = k;
            integral = false;
        }
    }
    /* mixed number "1 1/2": an integer, one space, then a proper fraction */
    if (integral && j + 3 < n && s[j] == ' ' && is_digit((unsigned char)s[j + 1])) {
        double num = 0.0, den = 0.0;
        size_t k = read_digits(s, n, j + 1, &num);
        if (k + 1 < n && s[k] == '/' && is_digit((unsigned char)s[k + 1])) {
            size_t e = read_digits(s, n, k + 1, &den);
            if (den != 0.0 && num < den) {
                v += num / den;
                j = e;
            }
        }
    }
    r.end = j;
    r.value = v;
    /* sign and currency in either order: "-$5", "$-5" */
    size_t b = i, c, m;
    if ((c = currency_before(s, b)) > 0) {
        b -= c;
        if ((m = minus_before(s, b)) > 0) {
            b -= m;
            r.value = -r.value;
        }
    } else if ((m = minus_before(s, b)) > 0) {
        b -= m;
        r.value = -r.value;
        if ((c = currency_before(s, b)) > 0)
            b -= c;
    }
    r.start = b;
    return r;
}

/* The next number starting at or after `from`; false when there is none. */
static bool next_number(const char *s, size_t n, size_t from, num_span *out)
{
    for (size_t i = from; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        bool starts = is_digit(ch) || (ch == '.' && i + 1 < n && is_digit((unsigned char)s[i + 1]));
        if (!starts)
            continue;
        /* the middle of a word ("x2", "mp3") or of a longer number is not a start */
        if (i > 0 && (is_digit((unsigned char)s[i - 1]) || is_alpha((unsigned char)s[i - 1])))
            continue;
        if (ch == '.' && i > 0 && is_digit((unsigned char)s[i - 1]))
            continue;
        *out = parse_at(s, n, i);
        if (!isfinite(out->value))
            continue;
        return true;
    }
    return false;
}

static bool last_number(const char *s, size_t n, size_t from, num_span *out)
{
    num_span cur;
    bool found = false;
    size_t i = from;
    while (next_number(s, n, i, &cur)) {
        *out = cur;
        found = true;
        i = cur.end > i ? cur.end : i + 1;
    }
    return found;
}

/* Case-insensitive search for needle in s[from..n); returns the offset or SIZE_MAX. */
static size_t find_ci(const char *s, size_t n, size_t from, const char *needle)
{
    size_t m = strlen(needle);
    for (size_t i = from; i + m <= n; i++) {
        size_t k = 0;
        while (k < m && tolower((unsigned char)s[i + k]) == needle[k])
            k++;
        if (k == m)
            return i;
    }
    return SIZE_MAX;
}

/* Offsets just past every "answer is" / "answer:" cue, in text order; returns their count. */
static size_t answer_cues(const char *s, size_t n, size_t *ends, size_t cap)
{
    static const char *const cues[] = { "answer is", "answer:" };
    size_t k = 0;
    for (size_t i = 0; i < n && k < cap;) {
        size_t best = SIZE_MAX, best_len = 0;
        for (size_t c = 0; c < sizeof cues / sizeof cues[0]; c++) {
            size_t at = find_ci(s, n, i, cues[c]);
            if (at < best) {
                best = at;
                best_len = strlen(cues[c]);
            }
        }
        if (best == SIZE_MAX)
            break;
        ends[k++] = best + best_len;
        i = best + best_len;
    }
    return k;
}

#define ANSWER_MAX_CUES 64 /* only the last cues matter; a longer text keeps its first 64 */

void ponder_answer_format_number(double v, char out[PONDER_ANSWER_BYTES])
{
    if (!isfinite(v)) {
        snprintf(out, PONDER_ANSWER_BYTES, "nan");
        return;
    }
    /* round to 10 significant digits so that 0.1 + 0.2 and 0.3 print alike */
    char tmp[PONDER_ANSWER_BYTES];
    snprintf(tmp, sizeof tmp, "%.10g", v);
    double r = strtod(tmp, NULL);
    if (r == 0.0)
        r = 0.0; /* no "-0" */
    if (r == floor(r) && fabs(r) < 1e15)
        snprintf(out, PONDER_ANSWER_BYTES, "%.0f", r);
    else
        snprintf(out, PONDER_ANSWER_BYTES, "%.10g", r);
}

static bool extract_number(const char *s, size_t n, char out[PONDER_ANSWER_BYTES])
{
    num_span num;
    /* (1) GSM8K: "#### 72" */
    size_t hash = SIZE_MAX;
    for (size_t i = find_ci(s, n, 0, "####"); i != SIZE_MAX; i = find_ci(s, n, i + 4, "####"))
        hash = i;
    if (hash != SIZE_MAX && next_number(s, n, hash + 4, &num)) {
        ponder_answer_format_number(num.value, out);
        return true;
    }
    /* (2) the first number after the last cue that has one after it */
    size_t ends[ANSWER_MAX_CUES];
    size_t k = answer_cues(s, n, ends, ANSWER_MAX_CUES);
    while (k > 0) {
        k--;
        if (next_number(s, n, ends[k], &num)) {
            ponder_answer_format_number(num.value, out);
            return true;
        }
    }
    /* (3) the last number */
    if (last_number(s, n, 0, &num)) {
        ponder_answer_format_number(num.value, out);
        return true;
    }
    return false;
}

static bool letter_ok(unsigned char c, int32_t n_choices)
{
    int32_t nc = n_choices > 0 && n_choices <= 26 ? n_choices : 10;
    return c >= 'A' && c < 'A' + nc;
}

/* A standalone choice letter at s[i] (after spaces and an optional '(' / '['). */
static bool letter_at(const char *s, size_t n, size_t i, int32_t n_choices, char *out)
{
    while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '*'))
        i++;
    if (i < n && (s[i] == '(' || s[i] == '['))
        i++;
    if (i >= n || !letter_ok((unsigned char)s[i], n_choices))
        return false;
    unsigned char next = i + 1 < n ? (unsigned char)s[i + 1] : '\0';
    if (is_alpha(next) || is_digit(next))
        return false;
    *out = s[i];
    return true;
}

static bool extract_choice(const char *s, size_t n, int32_t n_choices, char out[PONDER_ANSWER_BYTES])
{
    char letter;
    size_t ends[ANSWER_MAX_CUES];
    size_t k = answer_cues(s, n, ends, ANSWER_MAX_CUES);
    while (k > 0) {
        k--;
        if (letter_at(s, n, ends[k], n_choices, &letter))
            goto found;
    }
    /* (2) the last "(X)" */
    for (size_t i = n; i >= 3; i--) {
        if (s[i - 3] == '(' && s[i - 1] == ')' && letter_ok((unsigned char)s[i - 2], n_choices)) {
            letter = s[i - 2];
            goto found;
        }
    }
    /* (3) "B", "B.", "B)" or "B:" at the start (not "A man ...") */
    size_t i = 0;
    while (i < n && isspace((unsigned char)s[i]))
        i++;
    if (i < n && letter_ok((unsigned char)s[i], n_choices)) {
        unsigned char next = i + 1 < n ? (unsigned char)s[i + 1] : '\0';
        if (next == '\0' || next == '.' || next == ')' || next == ':' || next == '\n' || next == ',') {
            letter = s[i];
            goto found;
        }
    }
    return false;
found:
    out[0] = letter;
    out[1] = '\0';
    return true;
}

static bool extract_text(const char *s, size_t n, char out[PONDER_ANSWER_BYTES])
{
    size_t i = 0;
    while (i < n && isspace((unsigned char)s[i]))
        i++;
    size_t e = i;
    while (e < n && s[e] != '\n')
        e++;
    while (e > i && (isspace((unsigned char)s[e - 1]) || s[e - 1] == '.'))
        e--;
    if (e == i)
        return false;
    size_t len = e - i < PONDER_ANSWER_BYTES - 1 ? e - i : PONDER_ANSWER_BYTES - 1;
    for (size_t k = 0; k < len; k++)
        out[k] = (char)tolower((unsigned char)s[i + k]);
    out[len] = '\0';
    return true;
}

bool ponder_answer_extract(ponder_answer_kind kind, int32_t n_choices, const char *text, size_t len,
                           char out[PONDER_ANSWER_BYTES])
{
    out[0] = '\0';
    if (!text)
        return false;
    switch (kind) {
    case PONDER_ANSWER_NUMBER:
        return extract_number(text, len, out);
    case PONDER_ANSWER_CHOICE:
        return extract_choice(text, len, n_choices, out);
    case PONDER_ANSWER_TEXT:
        return extract_text(text, len, out);
    }
    return false;
}

bool ponder_answer_parse_number(const char *s, double *out)
{
    if (!s)
        return false;
    size_t n = strlen(s);
    size_t i = 0;
    while (i < n && isspace((unsigned char)s[i]))
        i++;
    while (n > i && isspace((unsigned char)s[n - 1]))
        n--;
    num_span num;
    if (!next_number(s, n, i, &num) || num.start != i)
        return false;
    size_t e = num.end;
    if (e < n && (s[e] == '%' || s[e] == '.'))
        e++;
    if (e != n)
        return false;
    *out = num.value;
    return true;
}

bool ponder_answer_equal(ponder_answer_kind kind, const char *a, const char *gold)
{
    if (!a || !gold || !*a || !*gold)
        return false;
    if (kind == PONDER_ANSWER_NUMBER) {
        double x, y;
        if (ponder_answer_parse_number(a, &x) && ponder_answer_parse_number(gold, &y)) {
            double scale = fmax(1.0, fmax(fabs(x), fabs(y)));
            return fabs(x - y) <= ANSWER_REL_TOL * scale;
        }
    }
    return strcmp(a, gold) == 0;
}
