/*
 * task.c — the evaluation sets in shared/data, read in their distributed layouts (each
 * folder's README gives the format): GSM8K / arith JSONL, SVAMP / MultiArith / AddSub /
 * SingleEq JSON arrays, ARC JSONL (llm-foundry), HellaSwag's 6-line text, MMLU CSVs.
 * Choice tasks are turned into a context and continuations the way lm-eval-harness scores
 * them: ARC "Question: ...\nAnswer:" + " <choice>", HellaSwag "<ctx>" + " <ending>", MMLU
 * the 0-shot prompt with lettered options + " A" .. " D".
 */
#include "ponder/think.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

typedef struct task_row {
    const char *name;
    ponder_task_kind kind;
    const char *default_data; /* under shared/ */
} task_row;

static const task_row tasks[] = {
    { "gsm8k", PONDER_TASK_GENERATIVE, "data/gsm8k/test.jsonl" },
    { "svamp", PONDER_TASK_GENERATIVE, "data/svamp/SVAMP.json" },
    { "multiarith", PONDER_TASK_GENERATIVE, "data/multiarith/MultiArith.json" },
    { "addsub", PONDER_TASK_GENERATIVE, "data/addsub/AddSub.json" },
    { "singleeq", PONDER_TASK_GENERATIVE, "data/singleeq/questions.json" },
    { "arith", PONDER_TASK_GENERATIVE, NULL },
    { "arc-easy", PONDER_TASK_CHOICE, "data/arc/arc_easy.jsonl" },
    { "arc-challenge", PONDER_TASK_CHOICE, "data/arc/arc_challenge.jsonl" },
    { "hellaswag", PONDER_TASK_CHOICE, "data/hellaswag/hellaswag_val_full.txt" },
    { "mmlu", PONDER_TASK_CHOICE, "data/mmlu/test" },
};

static const task_row *find_task(const char *name)
{
    for (size_t i = 0; name && i < sizeof tasks / sizeof tasks[0]; i++)
        if (strcmp(tasks[i].name, name) == 0)
            return &tasks[i];
    return NULL;
}

ponder_status ponder_task_kind_of(const char *task, ponder_task_kind *out, ponder_error *err)
{
    const task_row *t = find_task(task);
    if (!t)
        return ponder_error_set(err, PONDER_ERR_INVALID_ARG,
                                "unknown task '%s' (expected gsm8k, svamp, multiarith, addsub, singleeq, arith, "
                                "arc-easy, arc-challenge, hellaswag or mmlu)",
                                task ? task : "(null)");
    *out = t->kind;
    return PONDER_OK;
}

const char *ponder_task_default_data(const char *task)
{
    const task_row *t = find_task(task);
    return t ? t->default_data : NULL;
}

static void item_free(ponder_eval_item *it)
{
    free(it->question);
    free(it->gold);
    free(it->subject);
    free(it->solution);
    for (int32_t c = 0; c < PONDER_EVAL_MAX_CHOICES; c++)
        free(it->choices[c]);
}

void ponder_eval_items_free(ponder_eval_items *items)
{
    if (!items)
        return;
    for (int32_t i = 0; i < items->n; i++)
        item_free(&items->items[i]);
    free(items->items);
    free(items);
}

/* Growable item list; every item pushed is owned by the list. */
typedef struct loader {
    ponder_eval_items *out;
    int32_t cap, limit;
    const char *path;
} loader;

static bool full(const loader *l) { return l->limit > 0 && l->out->n >= l->limit; }

static ponder_eval_item *push(loader *l)
{
    if (l->out->n == l->cap) {
        int32_t cap = l->cap ? l->cap * 2 : 64;
        ponder_eval_item *p = realloc(l->out->items, (size_t)cap * sizeof *p);
        if (!p)
            return NULL;
        l->out->items = p;
        l->cap = cap;
    }
    ponder_eval_item *it = &l->out->items[l->out->n++];
    memset(it, 0, sizeof *it);
    return it;
}

/* strdup of s[0..n) with surrounding whitespace removed */
static char *dup_trim(const char *s, size_t n)
{
    while (n > 0 && isspace((unsigned char)*s)) {
        s++;
        n--;
    }
    while (n > 0 && isspace((unsigned char)s[n - 1]))
        n--;
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

static char *dup_str(const char *s) { return dup_trim(s, strlen(s)); }

static char *dup_printf2(const char *a, const char *b, const char *c)
{
    size_t la = strlen(a), lb = strlen(b), lc = strlen(c);
    char *d = malloc(la + lb + lc + 1);
    if (d) {
        memcpy(d, a, la);
        memcpy(d + la, b, lb);
        memcpy(d + la + lb, c, lc + 1);
    }
    return d;
}

static char *gold_number(double v)
{
    char buf[PONDER_ANSWER_BYTES];
    ponder_answer_format_number(v, buf);
    return dup_str(buf);
}

/* A GSM8K worked solution as an exemplar: calculator annotations "<<48/2=24>>" dropped and
 * the final "#### N" line turned into Wang et al.'s "The answer is N." */
static char *gsm8k_solution(const char *a, const char *gold)
{
    size_t n = strlen(a);
    char *d = malloc(n + PONDER_ANSWER_BYTES + 32);
    if (!d)
        return NULL;
    size_t k = 0;
    const char *hash = strstr(a, "####");
    const char *end = hash ? hash : a + n;
    for (const char *c = a; c < end; c++) {
        if (c[0] == '<' && c[1] == '<') {
            const char *close = strstr(c, ">>");
            if (close && close < end) {
                c = close + 1;
                continue;
            }
        }
        d[k++] = *c;
    }
    while (k > 0 && (d[k - 1] == '\n' || d[k - 1] == ' '))
        k--;
    k += (size_t)snprintf(d + k, PONDER_ANSWER_BYTES + 32, "%sThe answer is %s.", k > 0 ? "\n" : "", gold);
    d[k] = '\0';
    return d;
}

/* A gold number given as a JSON number or a numeric string. */
static bool json_gold(json_t *v, double *out)
{
    if (json_is_number(v)) {
        *out = json_number_value(v);
        return true;
    }
    if (json_is_string(v))
        return ponder_answer_parse_number(json_string_value(v), out);
    return false;
}

static ponder_status oom(ponder_error *err) { return ponder_error_set(err, PONDER_ERR_NOMEM, "out of memory loading items"); }

static char *read_all(const char *path, size_t *len, ponder_error *err)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        ponder_error_set(err, PONDER_ERR_IO, "%s: %s", path, strerror(errno));
        return NULL;
    }
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        if (n + 1 >= cap) {
            char *b = realloc(buf, cap * 2);
            if (!b) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = b;
            cap *= 2;
        }
        size_t got = fread(buf + n, 1, cap - n - 1, f);
        n += got;
        if (got == 0)
            break;
    }
    bool bad = ferror(f);
    fclose(f);
    if (!buf) {
        ponder_error_set(err, PONDER_ERR_NOMEM, "%s: out of memory", path);
        return NULL;
    }
    if (bad) {
        free(buf);
        ponder_error_set(err, PONDER_ERR_IO, "%s: read error", path);
        return NULL;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

/* ---- JSONL: gsm8k, arith, arc ---- */

static ponder_status jsonl_item(loader *l, const char *task, json_t *o, int line, ponder_error *err)
{
    ponder_eval_item *it;
    if (strcmp(task, "arc-easy") == 0 || strcmp(task, "arc-challenge") == 0) {
        json_t *q = json_object_get(o, "query"), *ch = json_object_get(o, "choices"), *g = json_object_get(o, "gold");
        if (!json_is_string(q) || !json_is_array(ch) || !json_is_integer(g) || json_array_size(ch) < 2 ||
            json_array_size(ch) > PONDER_EVAL_MAX_CHOICES || json_integer_value(g) < 0 ||
            json_integer_value(g) >= (json_int_t)json_array_size(ch))
            return ponder_error_set(err, PONDER_ERR_FORMAT,
                                    "%s:%d: expected {\"query\": str, \"choices\": [2..%d str], \"gold\": index}", l->path,
                                    line, PONDER_EVAL_MAX_CHOICES);
        if (!(it = push(l)))
            return oom(err);
        it->question = dup_printf2(json_string_value(q), "\nAnswer:", "");
        it->n_choices = (int32_t)json_array_size(ch);
        it->gold_index = (int32_t)json_integer_value(g);
        char letter[2] = { (char)('A' + it->gold_index), '\0' };
        it->gold = dup_str(letter);
        for (int32_t c = 0; c < it->n_choices; c++) {
            json_t *s = json_array_get(ch, (size_t)c);
            if (!json_is_string(s))
                return ponder_error_set(err, PONDER_ERR_FORMAT, "%s:%d: choice %d is not a string", l->path, line, (int)c);
            it->choices[c] = dup_printf2(" ", json_string_value(s), "");
            if (!it->choices[c])
                return oom(err);
        }
        return it->question && it->gold ? PONDER_OK : oom(err);
    }
    /* gsm8k: {"question", "answer": "... #### 72"}; arith: {"question", "solution", "answer"} */
    json_t *q = json_object_get(o, "question"), *a = json_object_get(o, "answer");
    double gold;
    bool ok = json_is_string(q) && a;
    if (ok && strcmp(task, "gsm8k") == 0) {
        char buf[PONDER_ANSWER_BYTES];
        const char *s = json_string_value(a);
        const char *hash = s ? strstr(s, "####") : NULL;
        ok = hash && ponder_answer_extract(PONDER_ANSWER_NUMBER, 0, hash, strlen(hash), buf) &&
             ponder_answer_parse_number(buf, &gold);
    } else if (ok) {
        ok = json_gold(a, &gold);
    }
    if (!ok)
        return ponder_error_set(err, PONDER_ERR_FORMAT, "%s:%d: expected {\"question\": str, \"answer\": %s}", l->path, line,
                                strcmp(task, "gsm8k") == 0 ? "\"... #### N\"" : "number");
    if (!(it = push(l)))
        return oom(err);
    it->question = dup_str(json_string_value(q));
    it->gold = gold_number(gold);
    if (!it->question || !it->gold)
        return oom(err);
    json_t *sol = json_object_get(o, "solution");
    if (strcmp(task, "gsm8k") == 0)
        it->solution = gsm8k_solution(json_string_value(a), it->gold);
    else if (json_is_string(sol))
        it->solution = dup_str(json_string_value(sol));
    it->plain_prompt = strcmp(task, "arith") == 0;
    return !it->solution && (strcmp(task, "gsm8k") == 0 || json_is_string(sol)) ? oom(err) : PONDER_OK;
}

static ponder_status load_jsonl(loader *l, const char *task, ponder_error *err)
{
    size_t len;
    char *buf = read_all(l->path, &len, err);
    if (!buf)
        return err ? err->code : PONDER_ERR_IO;
    ponder_status st = PONDER_OK;
    int line = 0;
    for (char *p = buf; *p && !full(l) && st == PONDER_OK;) {
        char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) : strlen(p);
        line++;
        size_t k = 0;
        while (k < n && isspace((unsigned char)p[k]))
            k++;
        if (k < n) {
            json_error_t je;
            json_t *o = json_loadb(p, n, 0, &je);
            if (!json_is_object(o))
                st = ponder_error_set(err, PONDER_ERR_FORMAT, "%s:%d: not a JSON object (%s)", l->path, line,
                                      o ? "another JSON value" : je.text);
            else
                st = jsonl_item(l, task, o, line, err);
            json_decref(o);
        }
        p = nl ? nl + 1 : p + n;
    }
    free(buf);
    return st;
}

/* ---- JSON arrays: svamp, multiarith, addsub, singleeq ---- */

static ponder_status load_json_array(loader *l, const char *task, ponder_error *err)
{
    json_error_t je;
    json_t *root = json_load_file(l->path, 0, &je);
    if (!root)
        return ponder_error_set(err, PONDER_ERR_FORMAT, "%s:%d: %s", l->path, je.line, je.text);
    ponder_status st = PONDER_OK;
    if (!json_is_array(root)) {
        st = ponder_error_set(err, PONDER_ERR_FORMAT, "%s: expected a JSON array of items", l->path);
        goto done;
    }
    const bool svamp = strcmp(task, "svamp") == 0;
    for (size_t i = 0; i < json_array_size(root) && !full(l); i++) {
        json_t *o = json_array_get(root, i);
        double gold;
        char *q = NULL;
        if (svamp) {
            json_t *b = json_object_get(o, "Body"), *qq = json_object_get(o, "Question");
            if (json_is_string(b) && json_is_string(qq) && json_gold(json_object_get(o, "Answer"), &gold)) {
                char *body = dup_str(json_string_value(b));
                /* Body + " " + Question, as the README says */
                q = body ? dup_printf2(body, " ", json_string_value(qq)) : NULL;
                free(body);
                if (!q) {
                    st = oom(err);
                    goto done;
                }
            }
        } else {
            json_t *sq = json_object_get(o, "sQuestion"), *sol = json_object_get(o, "lSolutions");
            if (json_is_string(sq) && json_is_array(sol) && json_array_size(sol) > 0 &&
                json_gold(json_array_get(sol, 0), &gold)) {
                q = dup_str(json_string_value(sq));
                if (!q) {
                    st = oom(err);
                    goto done;
                }
            }
        }
        if (!q) {
            st = ponder_error_set(err, PONDER_ERR_FORMAT, "%s: item %zu: expected %s", l->path, i,
                                  svamp ? "{\"Body\", \"Question\", \"Answer\"}" : "{\"sQuestion\", \"lSolutions\": [N, ...]}");
            goto done;
        }
        ponder_eval_item *it = push(l);
        if (!it) {
            free(q);
            st = oom(err);
            goto done;
        }
        it->question = q;
        it->gold = gold_number(gold);
        if (!it->gold) {
            st = oom(err);
            goto done;
        }
    }
done:
    json_decref(root);
    return st;
}

/* ---- hellaswag: 6 lines per item (context, gold index, 4 endings) ---- */

static ponder_status load_hellaswag(loader *l, ponder_error *err)
{
    size_t len;
    char *buf = read_all(l->path, &len, err);
    if (!buf)
        return err ? err->code : PONDER_ERR_IO;
    ponder_status st = PONDER_OK;
    char *lines[6];
    int line = 0;
    char *p = buf;
    while (*p && !full(l)) {
        int k = 0;
        for (; k < 6 && *p; k++) {
            lines[k] = p;
            char *nl = strchr(p, '\n');
            if (nl) {
                if (nl > p && nl[-1] == '\r')
                    nl[-1] = '\0';
                *nl = '\0';
                p = nl + 1;
            } else {
                p += strlen(p);
            }
        }
        line += k;
        if (k < 6) {
            st = ponder_error_set(err, PONDER_ERR_FORMAT, "%s:%d: item cut short (6 lines per item)", l->path, line);
            break;
        }
        char *end;
        long gold = strtol(lines[1], &end, 10);
        if (end == lines[1] || *end != '\0' || gold < 0 || gold > 3) {
            st = ponder_error_set(err, PONDER_ERR_FORMAT, "%s:%d: expected the gold ending index 0..3, got '%s'", l->path,
                                  line - 4, lines[1]);
            break;
        }
        ponder_eval_item *it = push(l);
        if (!it) {
            st = oom(err);
            break;
        }
        it->question = dup_str(lines[0]);
        it->gold_index = (int32_t)gold;
        char letter[2] = { (char)('A' + gold), '\0' };
        it->gold = dup_str(letter);
        it->n_choices = 4;
        for (int c = 0; c < 4; c++)
            if (!(it->choices[c] = dup_printf2(" ", lines[2 + c], "")))
                st = oom(err);
        if (!it->question || !it->gold)
            st = oom(err);
        if (st != PONDER_OK)
            break;
    }
    free(buf);
    return st;
}

/* ---- mmlu: CSV (RFC 4180) question,choice0..3,answer ---- */

/* Reads one CSV record from *p into fields (malloc'ed); returns the field count, -1 at the
 * end, -2 on an unterminated quote. */
static int csv_record(char **p, char **fields, int max_fields)
{
    char *s = *p;
    if (!*s)
        return -1;
    int n = 0;
    for (;;) {
        size_t cap = 64, len = 0;
        char *f = malloc(cap);
        if (!f)
            return -3;
        bool quoted = *s == '"';
        if (quoted)
            s++;
        for (;;) {
            char ch = *s;
            if (quoted) {
                if (!ch) {
                    free(f);
                    return -2;
                }
                if (ch == '"') {
                    if (s[1] == '"') {
                        s += 2;
                        ch = '"';
                    } else {
                        s++;
                        quoted = false;
                        continue;
                    }
                } else {
                    s++;
                }
            } else {
                if (!ch || ch == ',' || ch == '\n' || ch == '\r')
                    break;
                s++;
            }
            if (len + 2 > cap) {
                char *g = realloc(f, cap * 2);
                if (!g) {
                    free(f);
                    return -3;
                }
                f = g;
                cap *= 2;
            }
            f[len++] = ch;
        }
        f[len] = '\0';
        if (n < max_fields)
            fields[n] = f;
        else
            free(f);
        n++;
        if (*s == ',') {
            s++;
            continue;
        }
        if (*s == '\r')
            s++;
        if (*s == '\n')
            s++;
        break;
    }
    *p = s;
    return n;
}

static ponder_status load_mmlu_file(loader *l, const char *path, const char *subject, ponder_error *err)
{
    size_t len;
    char *buf = read_all(path, &len, err);
    if (!buf)
        return err ? err->code : PONDER_ERR_IO;
    ponder_status st = PONDER_OK;
    char *p = buf, *f[6];
    int rec = 0, n;
    while (!full(l) && (n = csv_record(&p, f, 6)) != -1) {
        rec++;
        if (n < 0) {
            st = n == -3 ? oom(err) : ponder_error_set(err, PONDER_ERR_FORMAT, "%s: record %d: unterminated quote", path, rec);
            break;
        }
        int got = n < 6 ? n : 6;
        bool header = rec == 1 && strcmp(f[0], "question") == 0;
        char *end = NULL;
        long gold = n == 6 ? strtol(f[5], &end, 10) : -1;
        if (!header && (n != 6 || end == f[5] || *end != '\0' || gold < 0 || gold > 3)) {
            for (int k = 0; k < got; k++)
                free(f[k]);
            st = ponder_error_set(err, PONDER_ERR_FORMAT,
                                  "%s: record %d: expected question,choice0,choice1,choice2,choice3,answer(0-3)", path, rec);
            break;
        }
        if (!header) {
            ponder_eval_item *it = push(l);
            if (!it) {
                for (int k = 0; k < got; k++)
                    free(f[k]);
                st = oom(err);
                break;
            }
            /* lm-eval-harness's MMLU prompt (0-shot), scored on the letter */
            size_t need = strlen(subject) + strlen(f[0]) + strlen(f[1]) + strlen(f[2]) + strlen(f[3]) + strlen(f[4]) + 160;
            it->question = malloc(need);
            if (it->question)
                snprintf(it->question, need,
                         "The following are multiple choice questions (with answers) about %s.\n\n%s\nA. %s\nB. %s\nC. %s\nD. "
                         "%s\nAnswer:",
                         subject, f[0], f[1], f[2], f[3], f[4]);
            it->gold_index = (int32_t)gold;
            char letter[2] = { (char)('A' + gold), '\0' };
            it->gold = dup_str(letter);
            it->subject = dup_str(subject);
            it->n_choices = 4;
            static const char *const letters[] = { " A", " B", " C", " D" };
            for (int c = 0; c < 4; c++) {
                it->choices[c] = malloc(3);
                if (it->choices[c])
                    memcpy(it->choices[c], letters[c], 3);
            }
            if (!it->question || !it->gold || !it->subject || !it->choices[3])
                st = oom(err);
        }
        for (int k = 0; k < got; k++)
            free(f[k]);
        if (st != PONDER_OK)
            break;
    }
    free(buf);
    return st;
}

/* "high_school_biology_test.csv" → "high school biology" */
static void subject_of(const char *file, char *out, size_t cap)
{
    const char *base = strrchr(file, '/');
    base = base ? base + 1 : file;
    snprintf(out, cap, "%s", base);
    char *suffix = strstr(out, "_test.csv");
    if (!suffix)
        suffix = strstr(out, "_dev.csv");
    if (!suffix)
        suffix = strstr(out, ".csv");
    if (suffix)
        *suffix = '\0';
    for (char *c = out; *c; c++)
        if (*c == '_')
            *c = ' ';
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(const char *const *)a, *(const char *const *)b); }

static ponder_status load_mmlu(loader *l, ponder_error *err)
{
    char subject[256];
    DIR *d = opendir(l->path);
    if (!d) {
        if (errno != ENOTDIR)
            return ponder_error_set(err, PONDER_ERR_IO, "%s: %s", l->path, strerror(errno));
        subject_of(l->path, subject, sizeof subject);
        return load_mmlu_file(l, l->path, subject, err);
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    ponder_status st = PONDER_OK;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t nl = strlen(e->d_name);
        if (nl < 4 || strcmp(e->d_name + nl - 4, ".csv") != 0)
            continue;
        if (n == cap) {
            size_t c2 = cap ? cap * 2 : 64;
            char **nn = realloc(names, c2 * sizeof *nn);
            if (!nn) {
                st = oom(err);
                break;
            }
            names = nn;
            cap = c2;
        }
        if (!(names[n] = dup_str(e->d_name))) {
            st = oom(err);
            break;
        }
        n++;
    }
    closedir(d);
    if (st == PONDER_OK && n == 0)
        st = ponder_error_set(err, PONDER_ERR_NOT_FOUND, "%s: no .csv files", l->path);
    if (names)
        qsort(names, n, sizeof *names, cmp_str);
    for (size_t i = 0; i < n && st == PONDER_OK && !full(l); i++) {
        size_t need = strlen(l->path) + strlen(names[i]) + 2;
        char *path = malloc(need);
        if (!path) {
            st = oom(err);
            break;
        }
        snprintf(path, need, "%s/%s", l->path, names[i]);
        subject_of(names[i], subject, sizeof subject);
        st = load_mmlu_file(l, path, subject, err);
        free(path);
    }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    return st;
}

ponder_status ponder_eval_load(const char *task, const char *path, int32_t limit, ponder_eval_items **out,
                               ponder_error *err)
{
    const task_row *t = find_task(task);
    ponder_task_kind kind = PONDER_TASK_GENERATIVE;
    ponder_status st = ponder_task_kind_of(task, &kind, err);
    if (st != PONDER_OK)
        return st;
    if (!path || !out)
        return ponder_error_set(err, PONDER_ERR_INVALID_ARG, "task %s: no data file given", task);
    *out = NULL;
    ponder_eval_items *items = calloc(1, sizeof *items);
    if (!items)
        return oom(err);
    items->kind = kind;
    items->task = t->name;
    loader l = { .out = items, .limit = limit, .path = path };
    if (strcmp(task, "gsm8k") == 0 || strcmp(task, "arith") == 0 || strncmp(task, "arc-", 4) == 0)
        st = load_jsonl(&l, task, err);
    else if (strcmp(task, "hellaswag") == 0)
        st = load_hellaswag(&l, err);
    else if (strcmp(task, "mmlu") == 0)
        st = load_mmlu(&l, err);
    else
        st = load_json_array(&l, task, err);
    if (st == PONDER_OK && items->n == 0)
        st = ponder_error_set(err, PONDER_ERR_FORMAT, "%s: no items for task %s", path, task);
    if (st != PONDER_OK) {
        ponder_eval_items_free(items);
        return st;
    }
    *out = items;
    return PONDER_OK;
}

ponder_status ponder_eval_exemplars(const ponder_eval_items *items, int32_t k, char **out, ponder_error *err)
{
    *out = NULL;
    if (k < 1 || k > items->n)
        return ponder_error_set(err, PONDER_ERR_RANGE, "%d exemplars asked, %d items available", (int)k, (int)items->n);
    size_t need = 1;
    for (int32_t i = 0; i < k; i++) {
        if (!items->items[i].solution)
            return ponder_error_set(err, PONDER_ERR_UNSUPPORTED, "task %s: item %d has no worked solution for an exemplar",
                                    items->task, (int)i);
        need += strlen(items->items[i].question) + strlen(items->items[i].solution) + 24;
    }
    char *s = malloc(need);
    if (!s)
        return oom(err);
    size_t n = 0;
    for (int32_t i = 0; i < k; i++)
        n += (size_t)snprintf(s + n, need - n,
                              items->items[i].plain_prompt ? "%s\n%s\n\n" : "Question: %s\nAnswer: %s\n\n",
                              items->items[i].question, items->items[i].solution);
    *out = s;
    return PONDER_OK;
}

char *ponder_eval_prompt(const ponder_eval_item *it, ponder_think_kind kind)
{
    /* direct: the answer is cued, so the first number generated is the answer */
    if (it->plain_prompt)
        return dup_printf2("", it->question, kind == PONDER_THINK_DIRECT ? "\nThe answer is" : "\n");
    return dup_printf2("Question: ", it->question, kind == PONDER_THINK_DIRECT ? "\nAnswer: The answer is" : "\nAnswer:");
}
