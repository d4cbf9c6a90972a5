/*
 * strategy.c — strategy strings ("sc:8"), optillm's model-name prefixes ("sc8-model"), and
 * the one place a front end's strategy request (text, prefix, samples, cue, answer kind)
 * becomes think parameters, so `ponder run`, the server and the router mean the same thing.
 */
#include "ponder/think.h"

#include "ponder/gguf.h"

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

bool ponder_answer_kind_parse(const char *s, ponder_answer_kind *out)
{
    static const struct {
        const char *name;
        ponder_answer_kind kind;
    } names[] = { { "number", PONDER_ANSWER_NUMBER }, { "choice", PONDER_ANSWER_CHOICE }, { "text", PONDER_ANSWER_TEXT } };
    for (size_t i = 0; s && i < sizeof names / sizeof names[0]; i++) {
        if (strcmp(s, names[i].name) == 0) {
            *out = names[i].kind;
            return true;
        }
    }
    return false;
}

static bool one_chain(ponder_think_kind k)
{
    return k == PONDER_THINK_DIRECT || k == PONDER_THINK_COT;
}

ponder_status ponder_strategy_plan_make(const ponder_strategy_ask *ask, const ponder_think_model_prefs *prefs,
                                        ponder_strategy_plan *out,
                                        ponder_error *err)
{
    if (!ask || !out)
        return ponder_error_set(err, PONDER_ERR_INVALID_ARG, "strategy: NULL argument");
    ponder_strategy_plan p = { 0 };
    p.strategy.kind = PONDER_THINK_DIRECT;
    p.strategy.n_samples = 1;
    p.answer = PONDER_ANSWER_NUMBER;
    p.model = ask->model;
    ponder_strategy from_name;
    const char *rest = ask->model;
    p.prefixed = ask->model && ponder_strategy_from_model_name(ask->model, &from_name, &rest);
    if (p.prefixed)
        p.model = rest;
    if (ask->strategy) {
        ponder_status st = ponder_strategy_parse(ask->strategy, &p.strategy, err);
        if (st != PONDER_OK) {
            out->field = "strategy";
            return st;
        }
        p.given = true;
    } else if (p.prefixed) {
        p.strategy = from_name;
        p.given = true;
    }
    if (ask->samples != 0) {
        if (ask->samples < 1 || ask->samples > PONDER_THINK_MAX_SAMPLES) {
            out->field = "samples";
            return ponder_error_set(err, PONDER_ERR_INVALID_ARG, "samples must be 1 to %d, got %d",
                                    PONDER_THINK_MAX_SAMPLES, (int)ask->samples);
        }
        if (one_chain(p.strategy.kind) && ask->samples > 1) {
            out->field = "samples";
            return ponder_error_set(err, PONDER_ERR_INVALID_ARG,
                                    "the %s strategy runs one chain; use sc, asc or bon for %d",
                                    ponder_think_kind_name(p.strategy.kind), (int)ask->samples);
        }
        if (!one_chain(p.strategy.kind))
            p.strategy.n_samples = ask->samples;
    }
    if (ask->answer && !ponder_answer_kind_parse(ask->answer, &p.answer)) {
        out->field = "answer";
        return ponder_error_set(err, PONDER_ERR_INVALID_ARG, "answer must be number, choice or text, got '%s'",
                                ask->answer);
    }
    p.cue = p.strategy.kind != PONDER_THINK_DIRECT &&
            (ask->cue == PONDER_CUE_ON || (ask->cue == PONDER_CUE_MODEL && (!prefs || prefs->cue)));
    p.sampled_temp = prefs ? prefs->sampled_temp : PONDER_THINK_SAMPLED_TEMP;
    *out = p;
    return PONDER_OK;
}

float ponder_strategy_default_temp(const ponder_strategy *s)
{
    return one_chain(s->kind) ? 0.0f : PONDER_THINK_SAMPLED_TEMP;
}

void ponder_think_params_from_plan(ponder_think_params *p, const ponder_strategy_plan *plan, bool temp_given)
{
    p->strategy = plan->strategy;
    p->cot_cue = plan->cue ? PONDER_THINK_COT_CUE : NULL;
    p->answer_kind = plan->answer;
    if (!temp_given)
        p->sampling.temp = one_chain(plan->strategy.kind) ? 0.0f : plan->sampled_temp;
}

bool ponder_think_model_cue(const ponder_model *m)
{
    const ponder_gguf_value *v = m ? ponder_gguf_get(ponder_model_gguf(m), PONDER_THINK_CUE_KEY) : NULL;
    if (!v)
        return true;
    switch (v->type) {
    case PONDER_GGUF_BOOL:
        return v->v.b;
    case PONDER_GGUF_UINT8:
    case PONDER_GGUF_UINT16:
    case PONDER_GGUF_UINT32:
    case PONDER_GGUF_UINT64:
        return v->v.u64 != 0;
    case PONDER_GGUF_INT8:
    case PONDER_GGUF_INT16:
    case PONDER_GGUF_INT32:
    case PONDER_GGUF_INT64:
        return v->v.i64 != 0;
    default:
        return true; /* not a flag: the key means nothing we can read */
    }
}

ponder_think_model_prefs ponder_think_model_defaults(const ponder_model *m)
{
    ponder_think_model_prefs p = {.cue = ponder_think_model_cue(m), .sampled_temp = PONDER_THINK_SAMPLED_TEMP};
    const ponder_gguf_value *v = m ? ponder_gguf_get(ponder_model_gguf(m), PONDER_THINK_TEMP_KEY) : NULL;
    if (v && (v->type == PONDER_GGUF_FLOAT32 || v->type == PONDER_GGUF_FLOAT64) && v->v.f64 > 0 && v->v.f64 <= 2)
        p.sampled_temp = (float)v->v.f64;
    return p;
}
