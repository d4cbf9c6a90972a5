/*
 * tool_calls_fuzz.c — libFuzzer harness for src/tools: the first byte picks the format, the
 * rest is a model's answer. Checks what the server relies on: parsing never fails (only
 * out of memory), content is the whole text when there are no calls, every call has a
 * non-empty name and arguments that are a JSON object, and the streaming rule never lets
 * out more than the content before the first call, for every prefix of the text.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ponder/tools.h"

static void check(int ok)
{
    if (!ok)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    ponder_tool_format f = (ponder_tool_format)(data[0] % 4);
    const char *text = (const char *)data + 1;
    size_t len = size - 1;
    ponder_tool_calls c;
    ponder_error err;
    check(ponder_tool_calls_parse(f, text, len, &c, &err) == PONDER_OK);
    check(c.content != NULL && c.content[c.content_len] == '\0');
    if (c.n_calls == 0 && f != PONDER_TOOL_FORMAT_GENERIC)
        check(c.content_len == len && memcmp(c.content, text, len) == 0);
    for (int32_t i = 0; i < c.n_calls; i++) {
        check(c.calls[i].name && c.calls[i].name[0]);
        json_error_t je;
        json_t *a = json_loads(c.calls[i].arguments, JSON_ALLOW_NUL, &je); /* "\u0000" is JSON */
        check(json_is_object(a));
        json_decref(a);
    }
    for (size_t k = 0; k <= len; k++) {
        size_t p = ponder_tool_calls_content_prefix(f, text, k);
        check(p <= k);
        if (c.n_calls > 0)
            check(p <= c.content_len && memcmp(text, c.content, p) == 0);
    }
    ponder_tool_calls_clear(&c);
    return 0;
}
