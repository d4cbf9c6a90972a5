/*
 * test_server_corpus.c — replays the request fuzz corpus (fuzz/corpus/server_request)
 * through the fuzz harness in the normal build, so its checks run everywhere. Seeds
 * named bad-* must be rejected as chat and as completions requests; the others must be
 * accepted by the endpoint their name starts with.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/server_internal.h"
#include "testutil.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size); /* fuzz/server_request_fuzz.c */

static const char *g_dir;

/* bad-*: refused as chat and as completion; chat-* / completion-*: accepted as that. */
static void check(const char *name, uint8_t *data, size_t len, void *user)
{
    (void)user;
    srv_request r;
    http_api_error err;
    bool chat = srv_request_parse(SRV_EP_CHAT, (const char *)data, len, &r, &err);
    if (chat)
        srv_request_free(&r);
    bool compl = srv_request_parse(SRV_EP_COMPLETION, (const char *)data, len, &r, &err);
    if (compl)
        srv_request_free(&r);
    if (strncmp(name, "bad-", 4) == 0) {
        if (chat || compl)
            fail_msg("%s: accepted", name);
    } else if (strncmp(name, "chat-", 5) == 0) {
        if (!chat)
            fail_msg("%s: rejected as chat", name);
    } else if (strncmp(name, "completion-", 11) == 0) {
        if (!compl)
            fail_msg("%s: rejected as completion", name);
    }
}

static void test_replay(void **state)
{
    (void)state;
    assert_true(tu_corpus_replay(g_dir, LLVMFuzzerTestOneInput, check, NULL) >= 8);
}

int main(int argc, char **argv)
{
    g_dir = argc > 1 ? argv[1] : "fuzz/corpus/server_request";
    const struct CMUnitTest tests[] = { cmocka_unit_test(test_replay) };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
