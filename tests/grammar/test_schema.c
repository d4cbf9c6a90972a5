/*
 * test_schema.c — JSON Schema → grammar (label "grammar"). For every schema of
 * data/schemas.jsonl, random walks over the SmolLM2 vocabulary (each step a token drawn
 * uniformly from the mask, as a random-weight model would, leaning towards closing
 * tokens after a while so walks end) must give text that parses as JSON and validates
 * against the schema (jsv.c, an independent validator). Unsupported keywords and
 * malformed schemas fail with a message naming the keyword and where it is.
 */
#include "jsv.h"
#include "ponder/gguf.h"
#include "ponder/grammar.h"
#include "testutil.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#define WALKS_PER_SCHEMA 8
#define WALK_SOFT 48    /* steps before walks lean towards closing tokens */
#define WALK_MAX 3000

typedef struct env {
    ponder_gguf *gg;
    ponder_tokenizer *tok;
    ponder_grammar_vocab *v;
    int32_t n_vocab;
    char **piece;
    int32_t *piece_len;
} env;

static uint64_t rnd(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static bool closes(const char *p, int32_t n)
{
    for (int32_t i = 0; i < n; i++)
        if (p[i] == '"' || p[i] == ']' || p[i] == '}')
            return true;
    return false;
}

/* A walk: the text, or NULL (with *why) if it dead-ends or never completes. */
static char *walk(env *e, const ponder_grammar *g, uint64_t seed, char *why, size_t cap)
{
    ponder_grammar_matcher *m = NULL;
    ponder_error err;
    assert_int_equal(ponder_grammar_matcher_create(g, e->v, &m, &err), PONDER_OK);
    int32_t *allowed = malloc((size_t)e->n_vocab * sizeof *allowed);
    int32_t *closers = malloc((size_t)e->n_vocab * sizeof *closers);
    int32_t *shortest = malloc((size_t)e->n_vocab * sizeof *shortest);
    size_t n = 0, cap_text = 256;
    char *text = malloc(cap_text);
    uint64_t rng = seed * 0x9E3779B97F4A7C15ULL + 1;
    bool done = false;
    for (int step = 0; step < WALK_MAX && !done; step++) {
        if (ponder_grammar_matcher_is_final(m)) {
            done = true;
            break;
        }
        const uint32_t *mask = ponder_grammar_matcher_mask(m, &err);
        assert_non_null(mask);
        int32_t na = 0, nc = 0, ns = 0, min_len = INT32_MAX;
        for (int32_t t = 0; t < e->n_vocab; t++) {
            if (!mask[t >> 5]) { /* a whole word of refused tokens */
                t |= 31;
                continue;
            }
            if (!(mask[t >> 5] >> (t & 31) & 1u))
                continue;
            if (ponder_tokenizer_is_eog(e->tok, t)) {
                if (ponder_grammar_matcher_is_complete(m) && (step > WALK_SOFT || rnd(&rng) % 8 == 0)) {
                    done = true;
                    break;
                }
                continue;
            }
            allowed[na++] = t;
            if (closes(e->piece[t], e->piece_len[t]))
                closers[nc++] = t;
            if (e->piece_len[t] < min_len)
                min_len = e->piece_len[t], ns = 0;
            if (e->piece_len[t] == min_len)
                shortest[ns++] = t;
        }
        if (done)
            break;
        if (na == 0) {
            if (ponder_grammar_matcher_is_complete(m)) {
                done = true;
                break;
            }
            snprintf(why, cap, "dead end after %zu bytes: %.*s", n, (int)n, text);
            break;
        }
        /* late in a walk, mostly closing tokens, else the shortest ones (single
         * characters, so a pattern's next literal is 1 in a few, not 1 in thousands) */
        int32_t t = allowed[rnd(&rng) % (uint64_t)na];
        if (step > WALK_SOFT && rnd(&rng) % 4 != 0)
            t = nc > 0 ? closers[rnd(&rng) % (uint64_t)nc] : shortest[rnd(&rng) % (uint64_t)ns];
        assert_true(ponder_grammar_matcher_accept(m, t));
        while (n + (size_t)e->piece_len[t] + 1 > cap_text)
            text = realloc(text, cap_text *= 2);
        memcpy(text + n, e->piece[t], (size_t)e->piece_len[t]);
        n += (size_t)e->piece_len[t];
    }
    text[n] = '\0';
    if (!done && why[0] == '\0')
        snprintf(why, cap, "did not complete in %d tokens", WALK_MAX);
    ponder_grammar_matcher_free(m);
    free(allowed);
    free(closers);
    free(shortest);
    if (!done) {
        free(text);
        return NULL;
    }
    return text;
}

static int setup(void **state)
{
    const char *model = tu_model_path("shared/models/synthetic/syn-tiny-smollm-Q4_K_M.gguf");
    if (!model)
        return -1;
    env *e = calloc(1, sizeof *e);
    ponder_error err;
    if (ponder_gguf_open(model, &e->gg, &err) != PONDER_OK || ponder_tokenizer_create(e->gg, &e->tok, &err) != PONDER_OK ||
        ponder_grammar_vocab_from_tokenizer(e->tok, &e->v, &err) != PONDER_OK)
        return -1;
    e->n_vocab = ponder_tokenizer_n_vocab(e->tok);
    e->piece = calloc((size_t)e->n_vocab, sizeof *e->piece);
    e->piece_len = calloc((size_t)e->n_vocab, sizeof *e->piece_len);
    for (int32_t t = 0; t < e->n_vocab; t++) {
        char buf[512];
        int32_t k = ponder_tokenizer_token_to_piece(e->tok, t, buf, (int32_t)sizeof buf, false);
        if (k < 0)
            k = 0;
        e->piece[t] = malloc((size_t)k + 1);
        memcpy(e->piece[t], buf, (size_t)k);
        e->piece_len[t] = k;
    }
    *state = e;
    return 0;
}

static int teardown(void **state)
{
    env *e = *state;
    for (int32_t t = 0; t < e->n_vocab; t++)
        free(e->piece[t]);
    free(e->piece);
    free(e->piece_len);
    ponder_grammar_vocab_free(e->v);
    ponder_tokenizer_free(e->tok);
    ponder_gguf_free(e->gg);
    free(e);
    return 0;
}

static void test_suite_walks(void **state)
{
    env *e = *state;
    char path[512];
    snprintf(path, sizeof path, "%s/schemas.jsonl", GRAMMAR_DATA);
    size_t len;
    char *all = tu_read_file(path, &len);
    assert_non_null(all);
    int n_schemas = 0, n_walks = 0;
    for (char *line = strtok(all, "\n"); line; line = strtok(NULL, "\n")) {
        json_error_t je;
        json_t *c = json_loads(line, 0, &je);
        assert_non_null(c);
        const char *name = json_string_value(json_object_get(c, "name"));
        json_t *schema = json_object_get(c, "schema");
        char *stext = json_dumps(schema, JSON_COMPACT);
        ponder_grammar *g = NULL;
        ponder_error err;
        if (ponder_grammar_from_json_schema(stext, strlen(stext), &g, &err) != PONDER_OK)
            fail_msg("%s: %s", name, err.msg);
        for (int w = 0; w < WALKS_PER_SCHEMA; w++) {
            char why[512] = "";
            char *out = walk(e, g, (uint64_t)(n_schemas * 1000 + w), why, sizeof why);
            if (!out)
                fail_msg("%s walk %d: %s", name, w, why);
            json_t *inst = json_loads(out, JSON_DECODE_ANY, &je);
            if (!inst)
                fail_msg("%s walk %d: not JSON (%s): %s", name, w, je.text, out);
            if (!jsv_validate(schema, inst, why, sizeof why))
                fail_msg("%s walk %d: invalid (%s): %s", name, w, why, out);
            if (w == 0)
                print_message("%-20s %.160s\n", name, out);
            json_decref(inst);
            free(out);
            n_walks++;
        }
        ponder_grammar_free(g);
        free(stext);
        json_decref(c);
        n_schemas++;
    }
    print_message("%d schemas, %d walks, all valid\n", n_schemas, n_walks);
    assert_true(n_schemas >= 30);
    free(all);
}

static void test_errors(void **state)
{
    (void)state;
    static const struct {
        const char *schema;
        ponder_status st;
        const char *msg;
    } E[] = {
        { "{\"type\": \"object\", \"properties\": {\"a\": {\"not\": {}}}}", PONDER_ERR_UNSUPPORTED,
          "unsupported JSON Schema keyword 'not' at /properties/a" },
        { "{\"type\": \"array\", \"uniqueItems\": true}", PONDER_ERR_UNSUPPORTED,
          "unsupported JSON Schema keyword 'uniqueItems' at /" },
        { "{\"type\": \"object\", \"patternProperties\": {}}", PONDER_ERR_UNSUPPORTED, "'patternProperties'" },
        { "{\"type\": \"number\", \"multipleOf\": 3}", PONDER_ERR_UNSUPPORTED, "'multipleOf'" },
        { "{\"if\": {}, \"then\": {}}", PONDER_ERR_UNSUPPORTED, "keyword 'if'" },
        { "{\"type\": \"string\", \"format\": \"idn-email\"}", PONDER_ERR_UNSUPPORTED,
          "unsupported string format 'idn-email'" },
        { "{\"type\": \"string\", \"pattern\": \"^(?=a)b$\"}", PONDER_ERR_UNSUPPORTED, "pattern: unsupported group" },
        { "{\"type\": \"string\", \"pattern\": \"^a\\\\1$\"}", PONDER_ERR_UNSUPPORTED, "pattern: unsupported escape" },
        { "{\"type\": \"number\", \"minimum\": 0.5}", PONDER_ERR_UNSUPPORTED, "non-integer minimum" },
        { "{\"$ref\": \"http://example.com/s.json\"}", PONDER_ERR_UNSUPPORTED, "only local references" },
        { "{\"type\": \"object\", \"properties\": {\"a\": {}}, \"required\": [\"b\"]}", PONDER_ERR_UNSUPPORTED,
          "required property 'b' is not in properties" },
        { "{\"type\": \"objekt\"}", PONDER_ERR_FORMAT, "unknown type 'objekt' at /" },
        { "{\"type\": \"object\",", PONDER_ERR_FORMAT, "invalid JSON at line 1" },
        { "{\"$ref\": \"#/$defs/missing\"}", PONDER_ERR_FORMAT, "$ref '#/$defs/missing' points at nothing" },
        { "{\"enum\": []}", PONDER_ERR_FORMAT, "enum must be a non-empty array" },
        { "{\"type\": \"array\", \"minItems\": 3, \"maxItems\": 2}", PONDER_ERR_FORMAT, "maxItems is below minItems" },
        { "{\"type\": \"integer\", \"minimum\": 5, \"maximum\": 4}", PONDER_ERR_UNSUPPORTED, "no integer" },
        { "false", PONDER_ERR_FORMAT, "the schema false matches nothing" },
        { "{\"properties\": {\"a\": {\"type\": \"string\", \"minLength\": \"x\"}}}", PONDER_ERR_FORMAT,
          "minLength must be a non-negative integer at /properties/a" },
    };
    for (size_t i = 0; i < sizeof E / sizeof *E; i++) {
        ponder_grammar *g = NULL;
        ponder_error err = { 0 };
        ponder_status st = ponder_grammar_from_json_schema(E[i].schema, strlen(E[i].schema), &g, &err);
        if (st != E[i].st || !strstr(err.msg, E[i].msg))
            fail_msg("case %zu (%s): status %d, message '%s', expected '%s'", i, E[i].schema, (int)st, err.msg,
                     E[i].msg);
        assert_null(g);
    }
}

/* The GBNF text of a schema is readable and parses on its own. */
static void test_gbnf_text(void **state)
{
    (void)state;
    const char *s = "{\"type\": \"object\", \"properties\": {\"n\": {\"type\": \"integer\", \"minimum\": 1, "
                    "\"maximum\": 12}}, \"required\": [\"n\"]}";
    char *text = NULL;
    ponder_error err;
    assert_int_equal(ponder_json_schema_to_gbnf(s, strlen(s), &text, &err), PONDER_OK);
    assert_non_null(strstr(text, "root ::= "));
    assert_non_null(strstr(text, "\"\\\"n\\\"\" space \":\" space"));
    ponder_grammar *g = NULL;
    assert_int_equal(ponder_grammar_parse(text, strlen(text), &g, &err), PONDER_OK);
    ponder_grammar_free(g);
    free(text);
    assert_int_equal(ponder_grammar_json_object(&g, &err), PONDER_OK);
    ponder_grammar_free(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_suite_walks),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_gbnf_text),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
