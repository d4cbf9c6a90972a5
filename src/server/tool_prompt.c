/*
 * tool_prompt.c — tools on the prompt side: what the model's chat template can render
 * (probed once at load by rendering small conversations, as llama.cpp's minja
 * capabilities are: does it print the tools, assistant tool calls with arguments as a
 * JSON string or only as an object, tool results), the request's messages adapted to
 * that (arguments as the template wants them, Mistral's nine-character call ids, calls and
 * results written as text for templates that know no tools), the tools themselves given
 * to the template or described in the system message, and the grammar of a forced call.
 */
#include "server/server_state.h"

#include "ponder/grammar.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef PONDER_SERVER_HAVE_CHAT
static const char PROBE_TOOL[] = "[{\"type\": \"function\", \"function\": {\"name\": \"ponder_probe_tool\", "
                                 "\"description\": \"probe\", \"parameters\": {\"type\": \"object\", \"properties\": "
                                 "{\"argument_needle\": {\"type\": \"string\", \"description\": \"d\"}}, \"required\": "
                                 "[\"argument_needle\"]}}}]";

/* Renders messages (JSON text) with the probe tool when with_tools; true when it rendered
 * and the output holds needle. */
static bool renders(const struct ponder_server *s, const char *messages, bool with_tools, bool gen_prompt,
                    const char *needle)
{
    char *vars = NULL;
    const char *fmt = "{\"messages\": %s, \"bos_token\": \"\", \"eos_token\": \"\", \"add_generation_prompt\": %s%s%s}";
    size_t n = strlen(fmt) + strlen(messages) + strlen(PROBE_TOOL) + 32;
    if (!(vars = malloc(n)))
        return false;
    snprintf(vars, n, fmt, messages, gen_prompt ? "true" : "false", with_tools ? ", \"tools\": " : "",
             with_tools ? PROBE_TOOL : "");
    char *out = NULL;
    size_t len = 0;
    ponder_error err;
    bool ok = ponder_chat_render_json(s->tmpl, vars, strlen(vars), &out, &len, &err) == PONDER_OK &&
              memmem(out, len, needle, strlen(needle)) != NULL;
    free(out);
    free(vars);
    return ok;
}

#define PROBE_USER "{\"role\": \"user\", \"content\": \"Hi\"}"
#define PROBE_CALL_WITH(content, args)                                                                             \
    "{\"role\": \"assistant\", \"content\": " content ", \"tool_calls\": [{\"id\": \"abcdefghi\", \"type\": "      \
    "\"function\", \"function\": {\"name\": \"ponder_probe_tool\", \"arguments\": " args "}}]}"
#define PROBE_CALL(args) PROBE_CALL_WITH("null", args)
#define PROBE_CALL_EMPTY(args) PROBE_CALL_WITH("\"\"", args)
#define PROBE_STR_ARGS "\"{\\\"argument_needle\\\": \\\"x\\\"}\""
#define PROBE_OBJ_ARGS "{\"argument_needle\": \"x\"}"
#define PROBE_RESULT                                                                                               \
    "{\"role\": \"tool\", \"tool_call_id\": \"abcdefghi\", \"name\": \"ponder_probe_tool\", \"content\": "        \
    "\"ponder_result_needle\"}"

/* Does the model's text show mark? A control token (an empty piece) does not: a grammar
 * cannot write it and the parser never sees it. */
static bool mark_visible(const struct ponder_server *s, const char *mark)
{
    ponder_token *ids = NULL;
    size_t n = 0;
    char *back = NULL;
    ponder_error err;
    bool ok = ponder_tokenizer_encode(s->tok, mark, strlen(mark), false, true, &ids, &n, &err) == PONDER_OK &&
              ponder_tokenizer_decode(s->tok, ids, n, false, false, &back, &err) == PONDER_OK &&
              strcmp(back, mark) == 0;
    free(ids);
    free(back);
    return ok;
}
#endif

void srv_tools_probe(struct ponder_server *s, const char *src, size_t len)
{
    srv_tool_caps *c = &s->tool_caps;
    memset(c, 0, sizeof *c);
    c->format = PONDER_TOOL_FORMAT_GENERIC;
    c->tool_role = true; /* ChatML (--chatml) writes any role */
#ifdef PONDER_SERVER_HAVE_CHAT
    if (!s->tmpl)
        return;
    c->format = ponder_tool_format_detect(src, len);
    c->tools = renders(s, "[" PROBE_USER "]", true, true, "ponder_probe_tool");
    /* a string that a template prints with tojson comes out escaped (\"argument_needle\":) */
    /* (without the tools, whose schema holds the needle too); a turn of only calls has null
     * content (DeepSeek's templates test `is none`), or "" for templates that need a string */
    const char *needle = "\"argument_needle\":";
    bool str = renders(s, "[" PROBE_USER ", " PROBE_CALL(PROBE_STR_ARGS) "]", false, false, needle);
    bool obj = renders(s, "[" PROBE_USER ", " PROBE_CALL(PROBE_OBJ_ARGS) "]", false, false, needle);
    if (!str && !obj) {
        str = renders(s, "[" PROBE_USER ", " PROBE_CALL_EMPTY(PROBE_STR_ARGS) "]", false, false, needle);
        obj = renders(s, "[" PROBE_USER ", " PROBE_CALL_EMPTY(PROBE_OBJ_ARGS) "]", false, false, needle);
        c->empty_content = str || obj;
    }
    c->calls = str || obj;
    /* objects whenever the template prints them (its tojson writes the arguments as the
     * model saw them in training, {"a": 1}), else the JSON text as the client sent it */
    c->object_args = obj;
    const char *result = "ponder_result_needle";
    if (!c->calls)
        c->tool_role = renders(s, "[" PROBE_USER ", " PROBE_RESULT "]", true, true, result);
    else if (c->empty_content)
        c->tool_role = renders(s, "[" PROBE_USER ", " PROBE_CALL_EMPTY(PROBE_OBJ_ARGS) ", " PROBE_RESULT "]", true, true,
                               result) ||
                       renders(s, "[" PROBE_USER ", " PROBE_CALL_EMPTY(PROBE_STR_ARGS) ", " PROBE_RESULT "]", true, true,
                               result);
    else
        c->tool_role = renders(s, "[" PROBE_USER ", " PROBE_CALL(PROBE_OBJ_ARGS) ", " PROBE_RESULT "]", true, true,
                               result) ||
                       renders(s, "[" PROBE_USER ", " PROBE_CALL(PROBE_STR_ARGS) ", " PROBE_RESULT "]", true, true,
                               result);
    if (!c->tools)
        c->format = PONDER_TOOL_FORMAT_GENERIC; /* the tools are described in the system message */
    if (c->format == PONDER_TOOL_FORMAT_HERMES && s->tok)
        c->hidden_mark = !mark_visible(s, "<tool_call>");
    srv_log(s, PONDER_LOG_INFO, "chat template tools: %s (renders tools %s, calls %s%s, tool results %s)%s",
            ponder_tool_format_name(c->format), c->tools ? "yes" : "no", c->calls ? "yes" : "no",
            c->object_args ? " with object arguments" : "", c->tool_role ? "yes" : "no",
            c->hidden_mark ? "; <tool_call> is a control token: forced calls start after it" : "");
#else
    (void)src;
    (void)len;
#endif
}

/* Mistral's templates take only nine alphanumerics as a call id: the same id always maps
 * to the same nine, so a call and its result still match. */
static void mistral_id(const char *id, char out[10])
{
    static const char alnum[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    uint64_t h = 1469598103934665603ull;
    for (const char *p = id; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ull;
    for (int i = 0; i < 9; i++) {
        out[i] = alnum[h % 62];
        h /= 62;
        if (h == 0)
            h = 0x9E3779B97F4A7C15ull + (uint64_t)i;
    }
    out[9] = '\0';
}

static bool set_mistral_id(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    if (!json_is_string(v) || (json_string_length(v) == 9 && strspn(json_string_value(v), "abcdefghijklmnopqrstuvwxyz"
                                                                                          "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                                                                          "0123456789") == 9))
        return true;
    char id[10];
    mistral_id(json_string_value(v), id);
    return json_object_set_new(o, key, json_string(id)) == 0;
}

/* Appends text to a message's content (a string after parse_messages). */
static bool append_content(json_t *m, const char *sep, const char *text)
{
    json_t *c = json_object_get(m, "content");
    http_buf b = { 0 };
    if (json_is_string(c) && json_string_length(c)) {
        http_buf_append(&b, json_string_value(c), json_string_length(c));
        http_buf_append(&b, sep, strlen(sep));
    }
    http_buf_append(&b, text, strlen(text));
    json_t *s = b.oom ? NULL : json_stringn(b.data ? b.data : "", b.len);
    free(b.data);
    return s && json_object_set_new(m, "content", s) == 0;
}

/* An assistant turn's calls as the template wants them; as GENERIC's JSON text when it
 * cannot print them. */
static bool adapt_calls(const srv_tool_caps *c, json_t *m)
{
    json_t *calls = json_object_get(m, "tool_calls");
    if (!calls)
        return true;
    json_t *plain = c->calls ? NULL : json_array();
    for (size_t i = 0; i < json_array_size(calls); i++) {
        json_t *call = json_array_get(calls, i), *fn = json_object_get(call, "function");
        json_t *args = json_object_get(fn, "arguments");
        json_t *obj = json_is_string(args) ? json_loads(json_string_value(args), 0, NULL) : json_incref(args);
        bool ok = true;
        if (!c->calls) {
            json_t *o = json_pack("{s:O, s:o}", "name", json_object_get(fn, "name"), "arguments",
                                  json_is_object(obj) ? obj : json_object());
            if (!json_is_object(obj))
                json_decref(obj);
            ok = o && json_array_append_new(plain, o) == 0;
            obj = NULL;
        } else if (c->object_args && json_is_object(obj)) {
            ok = json_object_set(fn, "arguments", obj) == 0;
        } else if (!c->object_args && json_is_object(args)) {
            char *t = json_dumps(args, JSON_COMPACT | JSON_PRESERVE_ORDER);
            ok = t && json_object_set_new(fn, "arguments", json_string(t)) == 0;
            free(t);
        }
        json_decref(obj);
        if (ok && c->calls && c->format == PONDER_TOOL_FORMAT_MISTRAL)
            ok = set_mistral_id(call, "id");
        if (ok && c->empty_content && json_is_null(json_object_get(m, "content")))
            ok = json_object_set_new(m, "content", json_string("")) == 0;
        if (!ok) {
            json_decref(plain);
            return false;
        }
    }
    if (c->calls)
        return true;
    json_t *w = json_array_size(plain) == 1 ? json_pack("{s:O}", "tool_call", json_array_get(plain, 0))
                                            : json_pack("{s:O}", "tool_calls", plain);
    json_decref(plain);
    char *text = w ? json_dumps(w, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(w);
    bool ok = text && append_content(m, "\n", text);
    free(text);
    return ok && json_object_del(m, "tool_calls") == 0;
}

/* A tool result for a template without the tool role: a user turn saying what it is. */
static bool adapt_result(const srv_tool_caps *c, json_t *m)
{
    if (c->format == PONDER_TOOL_FORMAT_MISTRAL && c->calls && !set_mistral_id(m, "tool_call_id"))
        return false;
    if (c->tool_role)
        return true;
    json_t *name = json_object_get(m, "name"), *content = json_object_get(m, "content");
    http_buf b = { 0 };
    http_buf_printf(&b, "Result of the tool call%s%s:\n", json_is_string(name) ? " to " : "",
                    json_is_string(name) ? json_string_value(name) : "");
    http_buf_append(&b, json_string_value(content), json_string_length(content));
    json_t *s = b.oom ? NULL : json_stringn(b.data, b.len);
    free(b.data);
    return s && json_object_set_new(m, "content", s) == 0 && json_object_set_new(m, "role", json_string("user")) == 0;
}

/* GENERIC: the tools described in the system message (the first one, or a new one). */
static bool describe_tools(srv_request *r)
{
    char *tools = json_dumps(r->tools, JSON_COMPACT);
    char *text = tools ? ponder_tool_calls_generic_prompt(tools, strlen(tools), r->parallel_tool_calls) : NULL;
    free(tools);
    if (!text)
        return false;
    json_t *first = json_array_get(r->messages, 0);
    json_t *role = json_object_get(first, "role");
    bool ok;
    if (json_is_string(role) && strcmp(json_string_value(role), "system") == 0)
        ok = append_content(first, "\n\n", text);
    else
        ok = json_array_insert_new(r->messages, 0, json_pack("{s:s, s:s}", "role", "system", "content", text)) == 0;
    free(text);
    return ok;
}

/* The grammar of a forced call (tool_choice required or a named function). */
static bool forced_grammar(const struct ponder_server *s, srv_request *r, http_api_error *e)
{
    char *tools = json_dumps(r->tools, JSON_COMPACT);
    if (!tools)
        return http_fail(e, HTTP_ERR_INTERNAL, NULL, NULL, "out of memory");
    char *gbnf = NULL;
    ponder_error err = { 0 };
    ponder_status st =
        ponder_tool_calls_grammar(r->tool_format, tools, strlen(tools),
                                  r->tool_choice == SRV_TOOL_NAMED ? r->tool_name : NULL,
                                  (r->parallel_tool_calls ? PONDER_TOOL_GRAMMAR_PARALLEL : 0) |
                                      (s->tool_caps.hidden_mark ? PONDER_TOOL_GRAMMAR_BARE : 0),
                                  &gbnf, &err);
    free(tools);
    if (st == PONDER_OK) {
        st = ponder_grammar_parse(gbnf, strlen(gbnf), &r->grammar, &err);
        free(gbnf);
    }
    if (st == PONDER_ERR_NOMEM)
        return http_fail(e, HTTP_ERR_INTERNAL, NULL, NULL, "Out of memory compiling the tools' schemas.");
    if (st != PONDER_OK)
        return http_fail(e, HTTP_ERR_BAD_REQUEST, "tools", st == PONDER_ERR_UNSUPPORTED ? "unsupported_value" : "invalid_value",
                         "Invalid 'tools' for tool_choice '%s': %s",
                         r->tool_choice == SRV_TOOL_NAMED ? r->tool_name : "required", err.msg);
    return true;
}

bool srv_tools_prepare(struct ponder_server *s, srv_request *r, http_api_error *e)
{
    const srv_tool_caps *c = &s->tool_caps;
    r->tools_in_template = false;
    for (size_t i = 0; i < json_array_size(r->messages); i++) {
        json_t *m = json_array_get(r->messages, i);
        const char *role = json_string_value(json_object_get(m, "role"));
        bool ok = strcmp(role, "assistant") == 0 ? adapt_calls(c, m)
                  : strcmp(role, "tool") == 0    ? adapt_result(c, m)
                                                 : true;
        if (!ok)
            return http_fail(e, HTTP_ERR_INTERNAL, NULL, NULL, "out of memory");
    }
    if (!r->tools_active)
        return true;
    r->tool_format = c->tools ? c->format : PONDER_TOOL_FORMAT_GENERIC;
    if (c->tools) {
        /* templates print description and walk parameters.properties without a test
         * (Hermes 2 Pro): what OpenAI takes as absent is given as empty */
        for (size_t i = 0; i < json_array_size(r->tools); i++) {
            json_t *fn = json_object_get(json_array_get(r->tools, i), "function");
            json_t *d = json_object_get(fn, "description"), *p = json_object_get(fn, "parameters");
            if ((!json_is_string(d) && json_object_set_new(fn, "description", json_string("")) != 0) ||
                (!json_is_object(p) &&
                 json_object_set_new(fn, "parameters", json_pack("{s:s, s:{}}", "type", "object", "properties")) != 0))
                return http_fail(e, HTTP_ERR_INTERNAL, NULL, NULL, "out of memory");
        }
        r->tools_in_template = true;
    } else if (!describe_tools(r))
        return http_fail(e, HTTP_ERR_INTERNAL, NULL, NULL, "out of memory");
    if (r->tool_choice == SRV_TOOL_REQUIRED || r->tool_choice == SRV_TOOL_NAMED)
        return forced_grammar(s, r, e);
    return true;
}

const char *srv_tools_prefill(const struct ponder_server *s, const srv_request *r)
{
    bool forced = r->tools_active && (r->tool_choice == SRV_TOOL_REQUIRED || r->tool_choice == SRV_TOOL_NAMED);
    if (!forced || !s->tool_caps.tools || r->assistant_prefix)
        return NULL;
    if (r->tool_format == PONDER_TOOL_FORMAT_HERMES && s->tool_caps.hidden_mark)
        return "<tool_call>\n";
    return ponder_tool_format_prefill(r->tool_format);
}

