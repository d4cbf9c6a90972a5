/*
 * utf8class.c — a character class over code points as a DFA over UTF-8 bytes.
 *
 * The ranges are first cut into sequences of byte ranges, each matching exactly the
 * encodings of one sub-range (the algorithm of Rust's regex-syntax utf8.rs, after Russ
 * Cox's RE2 notes: split at the encoded-length boundaries and the surrogates, then
 * wherever a continuation byte would not span its whole 80..BF range). The sequences are
 * then merged by subset construction. UTF-8 is prefix-free and the lead byte fixes the
 * length, so a byte either finishes a character in every live sequence or in none.
 * Surrogates (D800..DFFF) are never matched, as they are not valid UTF-8.
 */
#include "grammar/grammar_internal.h"

#include <stdlib.h>
#include <string.h>

#define MAX_SEQ_BYTES 4

typedef struct seq {
    uint8_t lo[MAX_SEQ_BYTES], hi[MAX_SEQ_BYTES];
    uint8_t n;
} seq;

typedef struct seqs {
    seq *v;
    uint32_t n, cap;
    bool oom;
} seqs;

static void seqs_push(seqs *s, seq q)
{
    if (s->n == s->cap) {
        uint32_t cap = s->cap ? s->cap * 2 : 16;
        seq *v = realloc(s->v, cap * sizeof *v);
        if (!v) {
            s->oom = true;
            return;
        }
        s->v = v;
        s->cap = cap;
    }
    s->v[s->n++] = q;
}

static int utf8_encode(uint32_t cp, uint8_t *b)
{
    if (cp < 0x80) {
        b[0] = (uint8_t)cp;
        return 1;
    }
    if (cp < 0x800) {
        b[0] = (uint8_t)(0xC0 | (cp >> 6));
        b[1] = (uint8_t)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        b[0] = (uint8_t)(0xE0 | (cp >> 12));
        b[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
        b[2] = (uint8_t)(0x80 | (cp & 0x3F));
        return 3;
    }
    b[0] = (uint8_t)(0xF0 | (cp >> 18));
    b[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3F));
    b[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
    b[3] = (uint8_t)(0x80 | (cp & 0x3F));
    return 4;
}

/* Appends the byte-range sequences of [lo, hi] (no surrogates inside, lo <= hi). */
static void split_range(seqs *out, uint32_t lo, uint32_t hi)
{
    static const uint32_t max_of_len[3] = { 0x7F, 0x7FF, 0xFFFF };
    for (int i = 0; i < 3; i++) {
        if (lo <= max_of_len[i] && max_of_len[i] < hi) {
            split_range(out, lo, max_of_len[i]);
            split_range(out, max_of_len[i] + 1, hi);
            return;
        }
    }
    for (int i = 1; i < MAX_SEQ_BYTES; i++) {
        const uint32_t m = (1u << (6 * i)) - 1;
        if ((lo & ~m) != (hi & ~m)) {
            if ((lo & m) != 0) {
                split_range(out, lo, lo | m);
                split_range(out, (lo | m) + 1, hi);
                return;
            }
            if ((hi & m) != m) {
                split_range(out, lo, (hi & ~m) - 1);
                split_range(out, hi & ~m, hi);
                return;
            }
        }
    }
    uint8_t a[MAX_SEQ_BYTES], b[MAX_SEQ_BYTES];
    int n = utf8_encode(lo, a);
    (void)utf8_encode(hi, b);
    seq q = { .n = (uint8_t)n };
    for (int i = 0; i < n; i++) {
        q.lo[i] = a[i];
        q.hi[i] = b[i];
    }
    seqs_push(out, q);
}

/* A DFA state under construction: the sorted (sequence, bytes matched) pairs. */
typedef struct dstate {
    uint32_t *items;
    uint32_t n;
    uint32_t id; /* global state id */
} dstate;

static bool grow_dfa(uint16_t **dfa, uint32_t *cap, uint32_t need)
{
    if (need <= *cap)
        return true;
    uint32_t c = *cap ? *cap : 64;
    while (c < need)
        c *= 2;
    uint16_t *d = realloc(*dfa, (size_t)c * 256 * sizeof *d);
    if (!d)
        return false;
    *dfa = d;
    *cap = c;
    return true;
}

uint32_t gr_utf8_class_dfa(const uint32_t *lo, const uint32_t *hi, uint32_t n, uint16_t **dfa, uint32_t *n_dfa,
                           uint32_t *cap)
{
    seqs sq = { 0 };
    for (uint32_t i = 0; i < n; i++) {
        uint32_t a = lo[i], b = hi[i] > 0x10FFFF ? 0x10FFFF : hi[i];
        if (a > b)
            continue;
        if (a < 0xD800 && b > 0xDFFF) {
            split_range(&sq, a, 0xD7FF);
            split_range(&sq, 0xE000, b);
        } else if (a >= 0xD800 && b <= 0xDFFF) {
            continue;
        } else {
            if (a >= 0xD800 && a <= 0xDFFF)
                a = 0xE000;
            if (b >= 0xD800 && b <= 0xDFFF)
                b = 0xD7FF;
            if (a <= b)
                split_range(&sq, a, b);
        }
    }
    uint32_t start = 0;
    dstate *st = NULL;
    uint32_t n_st = 0, cap_st = 0;
    uint32_t *scratch = malloc(((size_t)sq.n + 1) * sizeof *scratch);
    if (sq.oom || !scratch)
        goto done;

    /* the start state: every sequence, nothing matched */
    cap_st = 8;
    st = calloc(cap_st, sizeof *st);
    if (!st)
        goto done;
    st[0].items = malloc(((size_t)sq.n + 1) * sizeof *st[0].items);
    if (!st[0].items)
        goto done;
    for (uint32_t k = 0; k < sq.n; k++)
        st[0].items[k] = k << 2;
    st[0].n = sq.n;
    n_st = 1;
    if (*n_dfa + 1 > 65535 || !grow_dfa(dfa, cap, *n_dfa + 1))
        goto done;
    st[0].id = (*n_dfa)++;
    memset(*dfa + (size_t)st[0].id * 256, 0, 256 * sizeof **dfa);

    for (uint32_t w = 0; w < n_st; w++) {
        for (uint32_t byte = 0; byte < 256; byte++) {
            uint32_t m = 0;
            bool accept = false;
            for (uint32_t i = 0; i < st[w].n; i++) {
                const seq *q = &sq.v[st[w].items[i] >> 2];
                const uint32_t j = st[w].items[i] & 3;
                if (byte < q->lo[j] || byte > q->hi[j])
                    continue;
                if (j + 1u == q->n)
                    accept = true;
                else
                    scratch[m++] = (st[w].items[i] & ~3u) | (j + 1);
            }
            uint32_t to = GR_DFA_DEAD;
            if (accept) {
                to = GR_DFA_ACCEPT;
            } else if (m > 0) {
                uint32_t f = 0;
                for (; f < n_st; f++)
                    if (st[f].n == m && memcmp(st[f].items, scratch, m * sizeof *scratch) == 0)
                        break;
                if (f == n_st) {
                    if (n_st == cap_st) {
                        dstate *ns = realloc(st, cap_st * 2 * sizeof *ns);
                        if (!ns)
                            goto done;
                        st = ns;
                        cap_st *= 2;
                    }
                    st[f].items = malloc(m * sizeof *st[f].items);
                    if (!st[f].items)
                        goto done;
                    memcpy(st[f].items, scratch, m * sizeof *scratch);
                    st[f].n = m;
                    n_st++;
                    if (*n_dfa + 1 > 65535 || !grow_dfa(dfa, cap, *n_dfa + 1))
                        goto done;
                    st[f].id = (*n_dfa)++;
                    memset(*dfa + (size_t)st[f].id * 256, 0, 256 * sizeof **dfa);
                }
                to = st[f].id;
            }
            (*dfa)[(size_t)st[w].id * 256 + byte] = (uint16_t)to;
        }
    }
    start = st[0].id;
done:
    for (uint32_t i = 0; i < n_st; i++)
        free(st[i].items);
    if (st && n_st == 0)
        free(st[0].items);
    free(st);
    free(scratch);
    free(sq.v);
    return start;
}
