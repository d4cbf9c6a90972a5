/*
 * distill.c — the pieces of `ponder distill` (see distill.h): choosing the teacher's
 * chains by its own vote, collecting them as prompt/completion pairs, loading unlabeled
 * questions, the vocabulary check, greedy scoring of a student and one fine-tuning step.
 */
#include "ponder/distill.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DISTILL_MAX_FILE_BYTES ((size_t)1 << 30)

char *ponder_distill_prompt(const char *question)
{
    const size_t a = strlen(question), b = strlen(PONDER_DISTILL_PROMPT_SUFFIX);
    char *s = malloc(a + b + 1);
    if (!s)
        return NULL;
    memcpy(s, question, a);
    memcpy(s + a, PONDER_DISTILL_PROMPT_SUFFIX, b + 1);
    return s;
}

/* ---- selection ---- */

int32_t ponder_distill_select(const ponder_think_result *r, const ponder_distill_select_params *p, int32_t *keep)
{
    if (!r || !r->answer || !r->answer[0] || !keep)
        return 0;
    if (p && r->agreement < p->min_agreement)
        return 0;
    int32_t n = 0;
    for (int32_t i = 0; i < r->n_samples; i++) {
        const ponder_think_sample *s = &r->samples[i];
        /* the same comparison the vote used (ponder_vote_tally groups equal strings) */
        if (s->finish != PONDER_FINISH_STOP || strcmp(s->answer, r->answer) != 0)
            continue;
        bool dup = false;
        for (int32_t k = 0; p && p->unique && k < n && !dup; k++) {
            const ponder_think_sample *o = &r->samples[keep[k]];
            dup = o->text_len == s->text_len && memcmp(o->text, s->text, s->text_len) == 0;
        }
        if (!dup)
            keep[n++] = i;
    }
    return n;
}

/* ---- the set of kept chains ---- */

typedef struct distill_pair {
    char *prompt, *completion, *answer;
    double agreement;
} distill_pair;

struct ponder_distill_set {
    distill_pair *pairs;
    int64_t n, cap;
};

ponder_status ponder_distill_set_create(ponder_distill_set **out, ponder_error *err)
{
    *out = calloc(1, sizeof **out);
    return *out ? PONDER_OK : ponder_error_set(err, PONDER_ERR_NOMEM, "distill: out of memory");
}

void ponder_distill_set_free(ponder_distill_set *s)
{
    if (!s)
        return;
    for (int64_t i = 0; i < s->n; i++) {
        free(s->pairs[i].prompt);
        free(s->pairs[i].completion);
        free(s->pairs[i].answer);
    }
    free(s->pairs);
    free(s);
}

static char *dup_n(const char *s, size_t n)
{
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

ponder_status ponder_distill_set_add(ponder_distill_set *s, const char *prompt, const char *completion,
                                     size_t completion_len, const char *answer, double agreement, ponder_error *err)
{
    if (!s || !prompt || !completion)
        return ponder_error_set(err, PONDER_ERR_INVALID_ARG, "distill: NULL argument");
    if (s->n == s->cap) {
        const int64_t cap = s->cap ? s->cap * 2 : 256;
        distill_pair *p = realloc(s->pairs, (size_t)cap * sizeof *p);
        if (!p)
            return ponder_error_set(err, PONDER_ERR_NOMEM, "distill: out of memory");
        s->pairs = p;
        s->cap = cap;
    }
    distill_pair *p = &s->pairs[s->n];
    p->prompt = dup_n(prompt, strlen(prompt));
    p->completion = dup_n(completion, completion_len);
    p->answer = answer ? dup_n(answer, strlen(answer)) : NULL;
    p->agreement = agreement;
    if (!p->prompt || !p->completion || (answer && !p->answer)) {
        free(p->prompt);
        free(p->completion);
        free(p->answer);
        return ponder_error_set(err, PONDER_ERR_NOMEM, "distill: out of memory");
    }
    s->n++;
    return PONDER_OK;
}

int64_t ponder_distill_set_count(const ponder_distill_set *s) { return s ? s->n : 0; }

ponder_status ponder_distill_set_jsonl(const ponder_distill_set *s, char **out, size_t *len, ponder_error *err)
{
    *out = NULL;
    *len = 0;
    size_t n = 0, cap = 4096;
    char *buf = malloc(cap);
    if (!buf)
        return ponder_error_set(err, PONDER_ERR_NOMEM, "distill: out of memory");
    buf[0] = '\0';
    for (int64_t i = 0; i < s->n; i++) {
        const distill_pair *p = &s->pairs[i];
        /* json_string refuses invalid UTF-8 (NULL): say so rather than drop the key */
        json_t *ps = json_string(p->prompt), *cs = json_string(p->completion);
        json_t *o = ps && cs ? json_object() : NULL;
        char *line = NULL;
        if (o) {
            json_object_set_new(o, "prompt", ps);
            json_object_set_new(o, "completion", cs);
            json_object_set_new(o, "answer", p->answer ? json_string(p->answer) : json_null());
            json_object_set_new(o, "agreement", json_real(p->agreement));
            line = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(9));
            json_decref(o);
        } else {
            json_decref(ps);
            json_decref(cs);
        }
        if (!line) {
            free(buf);
            return ponder_error_set(err, PONDER_ERR_FORMAT, "distill: chain %lld is not valid UTF-8 text (or out of memory)",
                                    (long long)i);
        }
        const size_t l = strlen(line);
        if (n + l + 2 > cap) {
            while (n + l + 2 > cap)
                cap *= 2;
            char *nb = realloc(buf, cap);
            if (!nb) {
                free(line);
                free(buf);
                return ponder_error_set(err, PONDER_ERR_NOMEM, "distill: out of memory");
            }
            buf = nb;
        }
        memcpy(buf + n, line, l);
        n += l;
        buf[n++] = '\n';
        buf[n] = '\0';
        free(line);
    }
    *out = buf;
    *len = n;
    return PONDER_OK;
}

/* ---- questions ---- */

struct ponder_distill_questions {
    char **text, **gold;
    int32_t n, cap;
};

void ponder_distill_questions_free(ponder_distill_questions *q)
{
    if (!q)
        return;
    for (int32_t i = 0; i < q->n; i++) {
        free(q->text[i]);
        free(q->gold[i]);
    }
    free(q->text);
    free(q->gold);
    free(q);
}

int32_t ponder_distill_questions_count(const ponder_distill_questions *q) { return q ? q->n : 0; }

const char *ponder_distill_questions_text(const ponder_distill_questions *q, int32_t i)
{
    return q && i >= 0 && i < q->n ? q->text[i] : NULL;
}

const char *ponder_distill_questions_gold(const ponder_distill_questions *q, int32_t i)
{
    return q && i >= 0 && i < q->n ? q->gold[i] : NULL;
}

static ponder_status push_question(ponder_distill_questions *q, const char *text, const char *gold, ponder_error *err)
{
    if (q->n == q->cap) {
        const int32_t cap = q->cap ? q->cap * 2 : 256;
        char **t = realloc(q->text, (size_t)cap * sizeof *t);
        if (!t)
            return ponder_error_set(err, PONDER_ERR_NOMEM, "distill: out of memory");
        q->text = t;
        char **g = realloc(q->gold, (size_t)cap * sizeof *g);
        if (!g)
            return ponder_error_set(err, PONDER_ERR_NOMEM, "distill: out of memory");
        q->gold = g;
        q->cap = cap;
    }
    q->text[q->n] = dup_n(text, strlen(text));
    q->gold[q->n] = gold ? dup_n(gold, strlen(gold)) : NULL;
    if (!q->text[q->n] || (gold && !q->gold[q->n])) {
        free(q->text[q->n]);
        free(q->gold[q->n]);
        return ponder_error_set(err, PONDER_ERR_NOMEM, "distill: out of memory");
    }
    q->n++;
    return PONDER_OK;
}

static ponder_status read_all(const char *path, char **out, size_t *len, ponder_error *err)
{
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f)
        return ponder_error_set(err, PONDER_ERR_IO, "%s: cannot open", path);
    size_t n = 0, cap = 1 << 16;
    char *buf = malloc(cap);
    ponder_status st = buf ? PONDER_OK : ponder_error_set(err, PONDER_ERR_NOMEM, "%s: out of memory", path);
    while (st == PONDER_OK) {
        if (n + 1 >= cap) {
            char *nb = cap < DISTILL_MAX_FILE_BYTES ? realloc(buf, cap * 2) : NULL;
            if (!nb) {
                st = ponder_error_set(err, PONDER_ERR_RANGE, "%s: too large or out of memory", path);
                break;
            }
            buf = nb;
            cap *= 2;
        }
        const size_t got = fread(buf + n, 1, cap - n - 1, f);
        n += got;
        if (got == 0) {
            if (ferror(f))
                st = ponder_error_set(err, PONDER_ERR_IO, "%s: read error", path);
            break;
        }
    }
    fclose(f);
    if (st != PONDER_OK) {
        free(buf);
        return st;
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return PONDER_OK;
}

ponder_status ponder_distill_questions_load(const char *path, int32_t limit, ponder_distill_questions **out,
                                            ponder_error *err)
{
    *out = NULL;
    size_t len = 0;
    char *buf = NULL;
    ponder_status rs = read_all(path, &buf, &len, err);
    if (rs != PONDER_OK)
        return rs;
    ponder_distill_questions *q = calloc(1, sizeof *q);
    ponder_status st = q ? PONDER_OK : ponder_error_set(err, PONDER_ERR_NOMEM, "distill: out of memory");
    int line = 0;
    for (size_t pos = 0; st == PONDER_OK && pos < len && (limit <= 0 || q->n < limit);) {
        const char *nl = memchr(buf + pos, '\n', len - pos);
        const size_t end = nl ? (size_t)(nl - buf) : len;
        line++;
        size_t b = pos;
        while (b < end && (buf[b] == ' ' || buf[b] == '\t' || buf[b] == '\r'))
            b++;
        if (b < end) {
            json_error_t je;
            json_t *o = json_loadb(buf + b, end - b, 0, &je);
            json_t *qt = json_is_object(o) ? json_object_get(o, "question") : NULL;
            if (!json_is_string(qt) || !json_string_length(qt)) {
                st = ponder_error_set(err, PONDER_ERR_FORMAT, "%s:%d: expected a JSON object with a string \"question\"%s%s",
                                      path, line, o ? "" : ": ", o ? "" : je.text);
            } else {
                /* the label is read only so the report can say how right the teacher was */
                json_t *a = json_object_get(o, "answer");
                double v = 0;
                bool has = json_is_number(a) ? (v = json_number_value(a), true)
                           : json_is_string(a) ? ponder_answer_parse_number(json_string_value(a), &v)
                                               : false;
                char gold[PONDER_ANSWER_BYTES];
                if (has)
                    ponder_answer_format_number(v, gold);
                st = push_question(q, json_string_value(qt), has ? gold : NULL, err);
            }
            json_decref(o);
        }
        pos = end + 1;
    }
    free(buf);
    if (st == PONDER_OK && q->n == 0)
        st = ponder_error_set(err, PONDER_ERR_FORMAT, "%s: no questions", path);
    if (st != PONDER_OK) {
        ponder_distill_questions_free(q);
        return st;
    }
    *out = q;
    return PONDER_OK;
}

/* ---- vocabulary ---- */

ponder_status ponder_distill_check_vocab(const ponder_tokenizer *teacher, const ponder_tokenizer *student,
                                         ponder_error *err)
{
    if (!teacher || !student)
        return ponder_error_set(err, PONDER_ERR_INVALID_ARG, "distill: NULL tokenizer");
    const int32_t nt = ponder_tokenizer_n_vocab(teacher), ns = ponder_tokenizer_n_vocab(student);
    if (nt != ns)
        return ponder_error_set(err, PONDER_ERR_INVALID_ARG,
                                "the vocabularies differ: the teacher has %d tokens, the student %d", (int)nt, (int)ns);
    if (ponder_tokenizer_kind(teacher) != ponder_tokenizer_kind(student))
        return ponder_error_set(err, PONDER_ERR_INVALID_ARG, "the vocabularies differ: different tokenizer kinds");
    if (ponder_tokenizer_bos(teacher) != ponder_tokenizer_bos(student) ||
        ponder_tokenizer_eos(teacher) != ponder_tokenizer_eos(student) ||
        ponder_tokenizer_add_bos(teacher) != ponder_tokenizer_add_bos(student) ||
        ponder_tokenizer_add_eos(teacher) != ponder_tokenizer_add_eos(student))
        return ponder_error_set(err, PONDER_ERR_INVALID_ARG, "the vocabularies differ: BOS/EOS tokens or whether they are added");
    for (int32_t i = 0; i < nt; i++) {
        const char *a = ponder_tokenizer_token_text(teacher, i), *b = ponder_tokenizer_token_text(student, i);
        if (strcmp(a ? a : "", b ? b : "") != 0 ||
            ponder_tokenizer_token_kind(teacher, i) != ponder_tokenizer_token_kind(student, i))
            return ponder_error_set(err, PONDER_ERR_INVALID_ARG,
                                    "the vocabularies differ at token %d (teacher '%.40s', student '%.40s')", (int)i,
                                    a ? a : "", b ? b : "");
    }
    return PONDER_OK;
}

/* ---- teacher and student ---- */

ponder_think_params ponder_distill_teacher_params(ponder_strategy s, float temp, int32_t max_tokens, uint64_t seed)
{
    ponder_think_params p = ponder_think_params_default();
    p.strategy = s;
    p.sampling.temp = temp;
    p.sampling.seed = seed;
    p.max_tokens = max_tokens;
    p.cot_cue = NULL; /* the models learned question + "\n" → solution, nothing else */
    p.prefix = NULL;
    p.answer_kind = PONDER_ANSWER_NUMBER;
    return p;
}

/* The chain as it will be learned: trailing blanks dropped (the trainer appends EOS). */
static size_t trimmed_len(const char *s, size_t n)
{
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\n' || s[n - 1] == '\t' || s[n - 1] == '\r'))
        n--;
    return n;
}

ponder_status ponder_distill_teach(ponder_gen *g, const ponder_tokenizer *tok, const ponder_think_params *tp,
                                   const ponder_distill_select_params *sp, const char *question, const char *gold,
                                   ponder_distill_set *set, ponder_distill_answer *out, ponder_error *err)
{
    if (!g || !tok || !tp || !question || !set || !out)
        return ponder_error_set(err, PONDER_ERR_INVALID_ARG, "distill: NULL argument");
    memset(out, 0, sizeof *out);
    char *prompt = ponder_distill_prompt(question);
    if (!prompt)
        return ponder_error_set(err, PONDER_ERR_NOMEM, "distill: out of memory");
    ponder_think_result *r = NULL;
    ponder_status st = ponder_think_run(g, tok, tp, prompt, &r, err);
    int32_t *keep = NULL;
    if (st == PONDER_OK && !(keep = malloc((size_t)(r->n_samples > 0 ? r->n_samples : 1) * sizeof *keep)))
        st = ponder_error_set(err, PONDER_ERR_NOMEM, "distill: out of memory");
    if (st == PONDER_OK) {
        out->n_samples = r->n_samples;
        out->n_answered = r->n_answered;
        out->agreement = r->agreement;
        out->completion_tokens = r->usage.completion_tokens;
        out->flops = r->usage.flops;
        if (r->answer)
            snprintf(out->answer, sizeof out->answer, "%s", r->answer);
        const int32_t n = ponder_distill_select(r, sp, keep);
        for (int32_t k = 0; k < n && st == PONDER_OK; k++) {
            const ponder_think_sample *s = &r->samples[keep[k]];
            st = ponder_distill_set_add(set, prompt, s->text, trimmed_len(s->text, s->text_len), s->answer,
                                        r->agreement, err);
            if (st == PONDER_OK) {
                out->n_kept++;
                out->n_kept_correct += gold && ponder_answer_equal(PONDER_ANSWER_NUMBER, s->answer, gold);
            }
        }
    }
    free(keep);
    ponder_think_result_free(r);
    free(prompt);
    return st;
}

ponder_status ponder_distill_score(ponder_gen *g, const ponder_tokenizer *tok, const char *question, const char *gold,
                                   int32_t max_tokens, bool *correct, char answer[PONDER_ANSWER_BYTES],
                                   ponder_error *err)
{
    if (!g || !tok || !question || !gold || !correct)
        return ponder_error_set(err, PONDER_ERR_INVALID_ARG, "distill: NULL argument");
    *correct = false;
    if (answer)
        answer[0] = '\0';
    ponder_strategy s = { .kind = PONDER_THINK_DIRECT, .n_samples = 1 };
    ponder_think_params p = ponder_distill_teacher_params(s, 0.0f, max_tokens, 0);
    char *prompt = ponder_distill_prompt(question);
    if (!prompt)
        return ponder_error_set(err, PONDER_ERR_NOMEM, "distill: out of memory");
    ponder_think_result *r = NULL;
    ponder_status st = ponder_think_run(g, tok, &p, prompt, &r, err);
    free(prompt);
    if (st != PONDER_OK)
        return st;
    *correct = r->answer && ponder_answer_equal(PONDER_ANSWER_NUMBER, r->answer, gold);
    if (answer && r->answer)
        snprintf(answer, PONDER_ANSWER_BYTES, "%s", r->answer);
    ponder_think_result_free(r);
    return PONDER_OK;
}

ponder_status ponder_distill_train_step(ponder_trainer *t, const ponder_train_data *data, uint64_t data_seed,
                                        int32_t batch, int32_t accum, double *loss, ponder_error *err)
{
    if (!t || !data || batch < 1 || accum < 1)
        return ponder_error_set(err, PONDER_ERR_INVALID_ARG, "distill: bad training step arguments");
    ponder_train_seq *seqs = malloc((size_t)batch * sizeof *seqs);
    if (!seqs)
        return ponder_error_set(err, PONDER_ERR_NOMEM, "distill: out of memory");
    const int64_t step = ponder_trainer_step_count(t);
    double sum = 0;
    int64_t targets = 0;
    ponder_status st = PONDER_OK;
    for (int32_t a = 0; a < accum && st == PONDER_OK; a++) {
        for (int32_t i = 0; i < batch; i++)
            seqs[i] = ponder_train_data_seq(data, ponder_train_data_pick(data, data_seed, step, (int64_t)a * batch + i));
        double l = 0;
        int64_t c = 0;
        st = ponder_trainer_accumulate(t, seqs, batch, &l, &c, err);
        sum += l;
        targets += c;
    }
    free(seqs);
    if (st == PONDER_OK)
        st = ponder_trainer_step(t, NULL, err);
    else
        ponder_trainer_zero_grad(t);
    if (loss)
        *loss = targets > 0 ? sum / (double)targets : 0.0;
    return st;
}
