/*
 * strategy.c — strategy strings ("sc:8") and optillm's model-name prefixes ("sc8-model").
 */
#include "ponder/think.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef struct kind_row {
    const char *name;
    ponder_think_kind kind;
    int32_t default_n; /* 0: takes no N */
} kind_row;

/* sc 8 / asc 16 / bon 4: the budgets `ponder eval --sweep` and the docs use by default */
static const kind_row kinds[] = {
    { "direct", PONDER_THINK_DIRECT, 0 },
    { "cot", PONDER_THINK_COT, 0 },
    { "sc", PONDER_THINK_SC, 8 },
    { "asc", PONDER_THINK_ASC, 16 },
    { "bon", PONDER_THINK_BON, 4 },
};

const char *ponder_think_kind_name(ponder_think_kind k)
{
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
        if (kinds[i].kind == k)
            return kinds[i].name;
    return "?";
}

/* Parses s[0..len) as NAME, NAME N, NAME:N or NAME-N. */
static bool parse_span(const char *s, size_t len, ponder_strategy *out)
{
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        size_t m = strlen(kinds[i].name);
        if (len < m || strncasecmp(s, kinds[i].name, m) != 0)
            continue;
        const char *rest = s + m;
        size_t rlen = len - m;
        if (rlen == 0) {
            out->kind = kinds[i].kind;
            out->n_samples = kinds[i].default_n > 0 ? kinds[i].default_n : 1;
            return true;
        }
        if (kinds[i].default_n == 0)
            continue; /* "cot2" is not a strategy */
        if (*rest == ':' || *rest == '-') {
            rest++;
            rlen--;
        }
        if (rlen == 0 || rlen > 6)
            return false;
        int32_t n = 0;
        for (size_t k = 0; k < rlen; k++) {
            if (!isdigit((unsigned char)rest[k]))
                return false;
            n = n * 10 + (rest[k] - '0');
        }
        if (n < 1 || n > PONDER_THINK_MAX_SAMPLES)
            return false;
        out->kind = kinds[i].kind;
        out->n_samples = n;
        return true;
    }
    return false;
}

ponder_status ponder_strategy_parse(const char *s, ponder_strategy *out, ponder_error *err)
{
    if (!s || !out)
        return ponder_error_set(err, PONDER_ERR_INVALID_ARG, "strategy: NULL argument");
    ponder_strategy st;
    if (!parse_span(s, strlen(s), &st))
        return ponder_error_set(err, PONDER_ERR_INVALID_ARG,
                                "unknown strategy '%s' (expected direct, cot, sc:N, asc:N or bon:N with 1 <= N <= %d)",
                                s, PONDER_THINK_MAX_SAMPLES);
    *out = st;
    return PONDER_OK;
}

const char *ponder_strategy_format(const ponder_strategy *s, char *buf, size_t cap)
{
    if (!buf || cap == 0)
        return buf;
    if (s->kind == PONDER_THINK_DIRECT || s->kind == PONDER_THINK_COT)
        snprintf(buf, cap, "%s", ponder_think_kind_name(s->kind));
    else
        snprintf(buf, cap, "%s:%d", ponder_think_kind_name(s->kind), (int)s->n_samples);
    return buf;
}

bool ponder_strategy_from_model_name(const char *name, ponder_strategy *out, const char **rest)
{
    if (rest)
        *rest = name;
    if (!name)
        return false;
    const char *dash = strchr(name, '-');
    if (!dash || dash == name || dash[1] == '\0')
        return false;
    ponder_strategy st;
    if (!parse_span(name, (size_t)(dash - name), &st))
        return false;
    if (out)
        *out = st;
    if (rest)
        *rest = dash + 1;
    return true;
}
