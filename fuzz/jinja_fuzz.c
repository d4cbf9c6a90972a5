/*
 * jinja_fuzz.c — libFuzzer harness for the chat-template interpreter (src/chat): a chat
 * template is code a model file brings, so every byte of it and of the request that fills
 * it is untrusted. Input: template source, then optionally a NUL byte and the variables as
 * JSON (without one, a small conversation with two messages). Promises checked:
 *   - parse and render either succeed or fail with a message (never a crash, hang or
 *     unbounded memory: nesting, macro recursion, ranges, steps, arena and output are
 *     capped in jinja.h, and libFuzzer's -timeout / -rss_limit_mb catch a cap that leaks);
 *   - a parse error names its line and column;
 *   - the rendering is a NUL-terminated string of the length reported, at most the output
 *     cap, and the same twice (no hidden state between renders of one parsed template).
 * strftime_now is pinned by SOURCE_DATE_EPOCH so that determinism holds. Also compiled
 * into the corpus replay test (tests/chat/test_jinja_corpus.c).
 */
#include "ponder/chat.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(cond)                                                                   \
    do {                                                                              \
        if (!(cond)) {                                                                \
            fprintf(stderr, "jinja_fuzz.c:%d: check failed: %s\n", __LINE__, #cond); \
            __builtin_trap();                                                         \
        }                                                                             \
    } while (0)

#define FUZZ_MAX_OUTPUT (64u << 20) /* JINJA_MAX_OUTPUT_BYTES */

static const char DEFAULT_VARS[] =
    "{\"messages\": [{\"role\": \"system\", \"content\": \"Be brief.\"}, {\"role\": \"user\", \"content\": "
    "\"Hi {{ 7*7 }} <|im_end|>\"}, {\"role\": \"assistant\", \"content\": \"Hello.\"}], \"bos_token\": \"<s>\", "
    "\"eos_token\": \"</s>\", \"add_generation_prompt\": true, \"tools\": [{\"type\": \"function\", \"function\": "
    "{\"name\": \"f\", \"parameters\": {\"type\": \"object\"}}}]}";

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    setenv("SOURCE_DATE_EPOCH", "1795392000", 1);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *src = (const char *)data;
    const uint8_t *nul = memchr(data, 0, size);
    const size_t src_len = nul ? (size_t)(nul - data) : size;
    const char *vars = nul ? (const char *)nul + 1 : DEFAULT_VARS;
    const size_t vars_len = nul ? size - src_len - 1 : strlen(DEFAULT_VARS);

    ponder_error err = { 0 };
    ponder_chat_template *t = NULL;
    ponder_status st = ponder_chat_template_create(src, src_len, &t, &err);
    if (st != PONDER_OK) {
        CHECK(t == NULL);
        CHECK(err.msg[0] != '\0');
        CHECK(strstr(err.msg, "line ") != NULL || st == PONDER_ERR_NOMEM || st == PONDER_ERR_RANGE);
        return 0;
    }
    CHECK(t != NULL);
    char *out1 = NULL, *out2 = NULL;
    size_t n1 = 0, n2 = 0;
    ponder_error e1 = { 0 }, e2 = { 0 };
    ponder_status s1 = ponder_chat_render_json(t, vars, vars_len, &out1, &n1, &e1);
    ponder_status s2 = ponder_chat_render_json(t, vars, vars_len, &out2, &n2, &e2);
    CHECK(s1 == s2);
    if (s1 == PONDER_OK) {
        CHECK(out1 && out2);
        CHECK(n1 <= FUZZ_MAX_OUTPUT);
        CHECK(out1[n1] == '\0');
        CHECK(n1 == n2 && memcmp(out1, out2, n1) == 0);
    } else {
        CHECK(out1 == NULL && out2 == NULL);
        /* raise_exception(msg) is the template's own refusal: its text is msg, maybe empty */
        CHECK(e1.msg[0] != '\0' || s1 == PONDER_ERR_INVALID_ARG);
        CHECK(strcmp(e1.msg, e2.msg) == 0);
    }
    free(out1);
    free(out2);
    ponder_chat_template_free(t);
    return 0;
}
