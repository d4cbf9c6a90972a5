/*
 * test_server_tools.c — multi-turn tool histories rendered as the model authors render them:
 * each "06-tools" case of ../shared/reference/templates (a system message, a user question,
 * an assistant turn with tool_calls, the tool's result, the tools list) is sent as an OpenAI
 * client sends it — arguments as a JSON string — through the server's request parser and
 * its tool adaptation (the template's capabilities probed as at load), and the rendering
 * must equal the reference byte for byte (templates that want an object get one back).
 * (Templates that print no tools get the history alone.) Also: what the probe finds per template, and a template without tools (ChatML), where the
 * tools go to the system message and the calls and results become text.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ponder/chat.h"
#include "server/server_state.h"
#include "testutil.h"

/* A server with only a template: what srv_tools_probe and srv_tools_prepare use. */
static struct ponder_server *fake_server(const char *src, size_t len)
{
    struct ponder_server *s = calloc(1, sizeof *s);
    assert_non_null(s);
    ponder_error err = { 0 };
    if (src && ponder_chat_template_create(src, len, &s->tmpl, &err) != PONDER_OK)
        fail_msg("template: %s", err.msg);
    srv_tools_probe(s, src, len);
    return s;
}

static void free_server(struct ponder_server *s)
{
    ponder_chat_template_free(s->tmpl);
    free(s);
}

/* The case's messages with every tool call's arguments as JSON text (as clients send them). */
static json_t *client_body(json_t *c, bool with_tools)
{
    json_t *msgs = json_deep_copy(json_object_get(c, "messages"));
    size_t i;
    json_t *m;
    json_array_foreach(msgs, i, m) {
        size_t k;
        json_t *call;
        json_array_foreach(json_object_get(m, "tool_calls"), k, call) {
            json_t *fn = json_object_get(call, "function"), *a = json_object_get(fn, "arguments");
            if (json_is_object(a)) {
                char *t = json_dumps(a, JSON_COMPACT | JSON_PRESERVE_ORDER);
                json_object_set_new(fn, "arguments", json_string(t));
                free(t);
            }
        }
    }
    json_t *body = json_pack("{s:o}", "messages", msgs);
    if (with_tools && json_is_array(json_object_get(c, "tools")))
        json_object_set(body, "tools", json_object_get(c, "tools"));
    return body;
}

static void test_reference_histories(void **state)
{
    (void)state;
    if (!tu_shared_exists("reference/templates/cases.json")) {
        printf("SKIP: reference/templates/cases.json missing\n");
        return;
    }
    setenv("SOURCE_DATE_EPOCH", "1795392000", 1); /* the cases' clock (Llama 3.2 prints today) */
    json_t *cases = json_load_file(tu_shared("reference/templates/cases.json"), 0, NULL);
    assert_non_null(cases);
    int checked = 0;
    size_t i;
    json_t *c;
    json_array_foreach(cases, i, c) {
        const char *id = json_string_value(json_object_get(c, "id"));
        if (!strstr(id, "/06-tools") || !json_object_get(c, "expected") ||
            json_object_size(json_object_get(c, "extra_context")) > 0)
            continue;
        char rel[256];
        snprintf(rel, sizeof rel, "reference/templates/%s", json_string_value(json_object_get(c, "template")));
        size_t len;
        char *src = tu_read_file(tu_shared(rel), &len);
        assert_non_null(src);
        struct ponder_server *s = fake_server(src, len);
        free(src);
        /* a template that ignores the tools (DeepSeek R1) is sent the history alone: with
         * tools the server would describe them in the system message */
        json_t *body = client_body(c, s->tool_caps.tools);
        char *text = json_dumps(body, JSON_COMPACT | JSON_PRESERVE_ORDER);
        json_decref(body);
        srv_request r;
        http_api_error e;
        if (!srv_request_parse(SRV_EP_CHAT, text, strlen(text), &r, &e))
            fail_msg("%s: %s", id, e.message);
        free(text);
        assert_true(srv_tools_prepare(s, &r, &e));
        assert_true(r.tools_in_template == s->tool_caps.tools);
        char *vars = srv_chat_vars_json(&r, r.tools, json_string_value(json_object_get(c, "bos_token")),
                                        json_string_value(json_object_get(c, "eos_token")));
        char *out = NULL;
        size_t n = 0;
        ponder_error err = { 0 };
        if (ponder_chat_render_json(s->tmpl, vars, strlen(vars), &out, &n, &err) != PONDER_OK)
            fail_msg("%s: %s", id, err.msg);
        const char *want = json_string_value(json_object_get(c, "expected"));
        if (n != strlen(want) || memcmp(out, want, n) != 0)
            fail_msg("%s: rendering differs\n--- got\n%s\n--- expected\n%s", id, out, want);
        printf("%-28s %s, %s arguments: identical (%zu bytes)\n", id, ponder_tool_format_name(s->tool_caps.format),
               s->tool_caps.object_args ? "object" : "string", n);
        free(out);
        free(vars);
        srv_request_free(&r);
        free_server(s);
        checked++;
    }
    json_decref(cases);
    assert_true(checked >= 12);
}

static void test_probe(void **state)
{
    (void)state;
    static const struct {
        const char *file;
        ponder_tool_format f;
        bool tools, object_args;
    } cases[] = {
        { "Qwen-Qwen2.5-7B-Instruct.jinja", PONDER_TOOL_FORMAT_HERMES, true, true },
        { "meta-llama-Llama-3.1-8B-Instruct.jinja", PONDER_TOOL_FORMAT_LLAMA3, true, true },
        { "mistralai-Mistral-Nemo-Instruct-2407.jinja", PONDER_TOOL_FORMAT_MISTRAL, true, true },
        { "deepseek-ai-DeepSeek-R1-Distill-Qwen-32B.jinja", PONDER_TOOL_FORMAT_GENERIC, false, false },
        { "ponder-smollm2-chatml.jinja", PONDER_TOOL_FORMAT_GENERIC, false, false },
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char rel[256];
        snprintf(rel, sizeof rel, "reference/templates/templates/%s", cases[i].file);
        if (!tu_shared_exists(rel)) {
            printf("SKIP: %s missing\n", rel);
            return;
        }
        size_t len;
        char *src = tu_read_file(tu_shared(rel), &len);
        struct ponder_server *s = fake_server(src, len);
        free(src);
        if (s->tool_caps.format != cases[i].f || s->tool_caps.tools != cases[i].tools ||
            s->tool_caps.object_args != cases[i].object_args)
            fail_msg("%s: format %s, tools %d, object arguments %d", cases[i].file,
                     ponder_tool_format_name(s->tool_caps.format), s->tool_caps.tools, s->tool_caps.object_args);
        free_server(s);
    }
}

/* No template (ChatML): the tools in the system message, calls and results as text. */
static void test_chatml_generic(void **state)
{
    (void)state;
    struct ponder_server *s = fake_server(NULL, 0);
    const char *body =
        "{\"messages\": [{\"role\": \"user\", \"content\": \"Weather?\"}, {\"role\": \"assistant\", \"content\": null, "
        "\"tool_calls\": [{\"id\": \"call_1\", \"type\": \"function\", \"function\": {\"name\": \"w\", \"arguments\": "
        "\"{\\\"c\\\": \\\"Oslo\\\"}\"}}]}, {\"role\": \"tool\", \"tool_call_id\": \"call_1\", \"content\": \"5 C\"}], "
        "\"tools\": [{\"type\": \"function\", \"function\": {\"name\": \"w\", \"parameters\": {\"type\": \"object\"}}}], "
        "\"tool_choice\": \"required\"}";
    srv_request r;
    http_api_error e;
    assert_true(srv_request_parse(SRV_EP_CHAT, body, strlen(body), &r, &e));
    assert_true(srv_tools_prepare(s, &r, &e));
    assert_false(r.tools_in_template);
    assert_int_equal(r.tool_format, PONDER_TOOL_FORMAT_GENERIC);
    assert_non_null(r.grammar); /* required: constrained */
    char *text = srv_render_chatml(r.messages);
    assert_non_null(strstr(text, "<|im_start|>system\nYou can call these tools"));
    assert_non_null(strstr(text, "<|im_start|>assistant\n{\"tool_call\":{\"name\":\"w\",\"arguments\":{\"c\":\"Oslo\"}}}"
                                 "<|im_end|>"));
    assert_non_null(strstr(text, "<|im_start|>tool\n5 C<|im_end|>"));
    free(text);
    srv_request_free(&r);
    free_server(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reference_histories),
        cmocka_unit_test(test_probe),
        cmocka_unit_test(test_chatml_generic),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
