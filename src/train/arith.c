/*
 * arith.c — the arithmetic word-problem task: a question, one solution line per
 * operation and "The answer is N.", deterministic by (difficulty, seed, split, index).
 *
 * The vocabulary is kept small (five names, five objects, three phrasings, digits and
 * "+ - * = .") so a 512-token vocabulary such as stories260K's covers it and a small
 * model spends its capacity on the arithmetic, not the words.
 */
#include "train/train_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define ARITH_MAX_RESULT 999 /* keeps every number three digits at most */
#define ARITH_MAX_TRIES 10000 /* rejection sampling for the split; a split has >= 10% of the space */

static const struct {
    const char *name, *pron;
} PEOPLE[] = {{"Tom", "He"}, {"Sam", "He"}, {"Ben", "He"}, {"Ann", "She"}, {"Mia", "She"}};
static const char *const OBJECTS[] = {"apples", "cards", "coins", "books", "shells"};
/* operands are below this bound at each difficulty */
static const int OPERAND_BOUND[PONDER_ARITH_MAX_DIFFICULTY] = {10, 20, 50, 100, 200};

/* FNV-1a, 64 bit */
static uint64_t fnv1a(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
    return h;
}

ponder_arith_split ponder_arith_split_of(const char *question)
{
    /* a second mix so the split does not correlate with the low bits FNV leaves weak */
    uint64_t h = fnv1a(question);
    return tr_splitmix64(&h) % 1000 < PONDER_ARITH_TEST_PERMILLE ? PONDER_ARITH_TEST : PONDER_ARITH_TRAIN;
}

static int uniform(uint64_t *rng, int lo, int hi) /* [lo, hi] */
{
    return lo + (int)(tr_splitmix64(rng) % (uint64_t)(hi - lo + 1));
}

/* Appends printf output to buf[cap] at *len; false if it would not fit. */
__attribute__((format(printf, 4, 5))) static bool append(char *buf, size_t cap, size_t *len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    const int n = vsnprintf(buf + *len, cap - *len, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= cap - *len)
        return false;
    *len += (size_t)n;
    return true;
}

static bool make_item(int d, uint64_t *rng, ponder_arith_item *it)
{
    const int who = uniform(rng, 0, 4), what = uniform(rng, 0, 4);
    const int bound = OPERAND_BOUND[d - 1];
    size_t ql = 0, sl = 0;
    int value = uniform(rng, 2, bound - 1);
    bool ok = append(it->question, sizeof it->question, &ql, "%s has %d %s.", PEOPLE[who].name, value,
                     OBJECTS[what]);
    for (int step = 0; ok && step < d; step++) {
        /* operations: 0 add, 1 subtract, 2 multiply (from difficulty 3, small factors) */
        int op = uniform(rng, 0, d >= 3 ? 2 : 1);
        if (op == 1 && value == 0)
            op = 0;
        if (op == 2 && (value == 0 || value * 2 > ARITH_MAX_RESULT))
            op = value == 0 ? 0 : 1;
        if (op == 0 && value >= ARITH_MAX_RESULT)
            op = 1;
        int b, next;
        if (op == 0) {
            const int room = ARITH_MAX_RESULT - value;
            b = uniform(rng, 1, room < bound - 1 ? room : bound - 1);
            next = value + b;
            ok = append(it->question, sizeof it->question, &ql, " %s gets %d more.", PEOPLE[who].pron, b) &&
                 append(it->solution, sizeof it->solution, &sl, "%d + %d = %d.\n", value, b, next);
        } else if (op == 1) {
            b = uniform(rng, 1, value < bound - 1 ? value : bound - 1);
            next = value - b;
            ok = append(it->question, sizeof it->question, &ql, " %s gives away %d.", PEOPLE[who].pron, b) &&
                 append(it->solution, sizeof it->solution, &sl, "%d - %d = %d.\n", value, b, next);
        } else {
            const int kmax = ARITH_MAX_RESULT / value < 4 ? ARITH_MAX_RESULT / value : 4;
            b = uniform(rng, 2, kmax);
            next = value * b;
            ok = append(it->question, sizeof it->question, &ql, " Then %s has %d times as many.",
                        PEOPLE[who].pron[0] == 'H' ? "he" : "she", b) &&
                 append(it->solution, sizeof it->solution, &sl, "%d * %d = %d.\n", value, b, next);
        }
        value = next;
    }
    ok = ok && append(it->question, sizeof it->question, &ql, " How many %s does %s have?", OBJECTS[what],
                      PEOPLE[who].name);
    ok = ok && append(it->solution, sizeof it->solution, &sl, "The answer is %d.", value);
    it->answer = value;
    return ok;
}

ponder_status ponder_arith_generate(int difficulty, uint64_t seed, ponder_arith_split split, uint64_t index,
                                    ponder_arith_item *out, ponder_error *err)
{
    if (difficulty < 1 || difficulty > PONDER_ARITH_MAX_DIFFICULTY)
        return ponder_error_set(err, PONDER_ERR_INVALID_ARG, "arith: difficulty %d is outside 1..%d", difficulty,
                                PONDER_ARITH_MAX_DIFFICULTY);
    if (!out || (split != PONDER_ARITH_TRAIN && split != PONDER_ARITH_TEST))
        return ponder_error_set(err, PONDER_ERR_INVALID_ARG, "arith: bad arguments");
    /* one stream per (seed, difficulty, split, index): items are independent of the count */
    uint64_t rng = seed;
    rng ^= tr_splitmix64(&rng) + (uint64_t)difficulty * 0x9E3779B97F4A7C15ull;
    rng ^= tr_splitmix64(&rng) + (uint64_t)split * 0xD1B54A32D192ED03ull;
    rng ^= tr_splitmix64(&rng) + index;
    for (int tries = 0; tries < ARITH_MAX_TRIES; tries++) {
        memset(out, 0, sizeof *out);
        if (make_item(difficulty, &rng, out) && ponder_arith_split_of(out->question) == split)
            return PONDER_OK;
    }
    return ponder_error_set(err, PONDER_ERR_INTERNAL, "arith: no item of the requested split after %d tries",
                            ARITH_MAX_TRIES);
}

/* One solution line "a op b = c." rewritten along a path chosen by rng (see
 * ponder_arith_vary_paths in train.h); false if it does not fit. Two more paths were
 * tried and dropped: units before tens, and a small product as a sum ("28 * 3 = 28 + 28
 * + 28 = ..."): System 1 continued on all five measured worse greedy and voted
 * (bench/results/arith/paths.md). */
static bool vary_line(long a, char op, long b, long c, uint64_t *rng, char *out, size_t cap, size_t *len)
{
    enum { AS_WRITTEN, SWAPPED, TENS_UNITS } paths[3];
    int n = 0;
    paths[n++] = AS_WRITTEN;
    if (op == '+' || op == '*')
        paths[n++] = SWAPPED;
    /* + and - split the second operand, * the first (the factor is a single digit) */
    const long split = op == '*' ? a : b;
    if (split >= 10 && split % 10 != 0)
        paths[n++] = TENS_UNITS;
    const long tens = split - split % 10, units = split % 10;
    switch (paths[uniform(rng, 0, n - 1)]) {
    case AS_WRITTEN:
        return append(out, cap, len, "%ld %c %ld = %ld.\n", a, op, b, c);
    case SWAPPED:
        return append(out, cap, len, "%ld %c %ld = %ld.\n", b, op, a, c);
    case TENS_UNITS:
        if (op == '*')
            return append(out, cap, len, "%ld * %ld = %ld * %ld + %ld * %ld = %ld + %ld = %ld.\n", a, b, tens, b,
                          units, b, tens * b, units * b, c);
        return append(out, cap, len, "%ld %c %ld = %ld %c %ld %c %ld = %ld %c %ld = %ld.\n", a, op, b, a, op, tens,
                      op, units, op == '+' ? a + tens : a - tens, op, units, c);
    }
    return false;
}

ponder_status ponder_arith_vary_paths(ponder_arith_item *it, uint64_t seed, ponder_error *err)
{
    if (!it)
        return ponder_error_set(err, PONDER_ERR_INVALID_ARG, "arith: bad arguments");
    char out[sizeof it->solution];
    size_t len = 0;
    uint64_t rng = seed;
    const char *s = it->solution;
    for (;;) {
        long a, b, c;
        char op;
        int used = 0;
        if (sscanf(s, "%ld %c %ld = %ld.%n", &a, &op, &b, &c, &used) != 4 || used == 0 || s[used] != '\n')
            break;
        if ((op != '+' && op != '-' && op != '*') || !vary_line(a, op, b, c, &rng, out, sizeof out, &len))
            return ponder_error_set(err, PONDER_ERR_INVALID_ARG, "arith: a solution line is not 'a op b = c.'");
        s += used + 1;
    }
    if (strncmp(s, "The answer is ", 14) != 0 || !append(out, sizeof out, &len, "%s", s))
        return ponder_error_set(err, PONDER_ERR_INVALID_ARG, "arith: the solution does not end in its answer line");
    memcpy(it->solution, out, len + 1);
    return PONDER_OK;
}
