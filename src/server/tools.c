/*
 * tools.c — the tool-call fields of a chat request and of its answer: "tools",
 * "tool_choice" and "parallel_tool_calls" validated as OpenAI does (a field or type Ponder
 * does not support is a 400 naming it, never silently dropped), the messages' tool_calls
 * and tool_call_id checked, and the JSON of calls in a message and in stream deltas.
 */
#include "server/server_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool type_fail(http_api_error *e, const char *param, const char *expected)
{
    return http_fail(e, HTTP_ERR_BAD_REQUEST, param, "invalid_type", "Invalid type for '%s': expected %s.", param,
                     expected);
}

/* OpenAI's rule for function names: a-z, A-Z, 0-9, underscores and dashes, 1..64. */
static bool good_name(const char *s, size_t n)
{
    if (n == 0 || n > 64)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9') ||
              s[i] == '_' || s[i] == '-'))
            return false;
    return true;
}

static bool check_tool(json_t *t, size_t i, http_api_error *e)
{
    char p[192];
    snprintf(p, sizeof p, "tools.[%zu]", i);
    if (!json_is_object(t))
        return type_fail(e, p, "an object");
    const char *k;
    json_t *v;
    json_object_foreach(t, k, v)
    {
        if (strcmp(k, "type") != 0 && strcmp(k, "function") != 0) {
            snprintf(p, sizeof p, "tools.[%zu].%.40s", i, k);
            return http_fail(e, HTTP_ERR_BAD_REQUEST, p, "unsupported_parameter",
                             "Unsupported parameter: '%s' (a tool has 'type' and 'function').", p);
        }
    }
    json_t *type = json_object_get(t, "type");
    snprintf(p, sizeof p, "tools.[%zu].type", i);
    if (!json_is_string(type))
        return type ? type_fail(e, p, "a string")
                    : http_fail(e, HTTP_ERR_BAD_REQUEST, p, "missing_required_parameter",
                                "Missing required parameter: '%s'.", p);
    if (strcmp(json_string_value(type), "function") != 0)
        return http_fail(e, HTTP_ERR_BAD_REQUEST, p, "unsupported_value",
                         "Unsupported value: '%s' is '%.40s'; this server supports 'function' tools only.", p,
                         json_string_value(type));
    json_t *fn = json_object_get(t, "function");
    snprintf(p, sizeof p, "tools.[%zu].function", i);
    if (!json_is_object(fn))
        return fn ? type_fail(e, p, "an object")
                  : http_fail(e, HTTP_ERR_BAD_REQUEST, p, "missing_required_parameter",
                              "Missing required parameter: '%s'.", p);
    json_object_foreach(fn, k, v)
    {
        snprintf(p, sizeof p, "tools.[%zu].function.%.40s", i, k);
        if (strcmp(k, "name") == 0) {
            if (!json_is_string(v))
                return type_fail(e, p, "a string");
            if (!good_name(json_string_value(v), json_string_length(v)))
                return http_fail(e, HTTP_ERR_BAD_REQUEST, p, "invalid_value",
                                 "Invalid '%s': '%.64s' does not match '^[a-zA-Z0-9_-]{1,64}$'.", p,
                                 json_string_value(v));
        } else if (strcmp(k, "description") == 0) {
            if (!json_is_string(v) && !json_is_null(v))
                return type_fail(e, p, "a string");
        } else if (strcmp(k, "parameters") == 0) {
            if (!json_is_object(v) && !json_is_null(v))
                return type_fail(e, p, "an object (a JSON Schema)");
        } else if (strcmp(k, "strict") == 0) {
            if (!json_is_boolean(v) && !json_is_null(v))
                return type_fail(e, p, "a boolean");
        } else {
            return http_fail(e, HTTP_ERR_BAD_REQUEST, p, "unsupported_parameter",
                             "Unsupported parameter: '%s' (a function has name, description, parameters and "
                             "strict).",
                             p);
        }
    }
    if (!json_object_get(fn, "name")) {
        snprintf(p, sizeof p, "tools.[%zu].function.name", i);
        return http_fail(e, HTTP_ERR_BAD_REQUEST, p, "missing_required_parameter", "Missing required parameter: '%s'.",
                         p);
    }
    return true;
}

static bool tool_named(const json_t *tools, const char *name)
{
    for (size_t i = 0; i < json_array_size(tools); i++) {
        json_t *n = json_object_get(json_object_get(json_array_get(tools, i), "function"), "name");
        if (json_is_string(n) && strcmp(json_string_value(n), name) == 0)
            return true;
    }
    return false;
}

static bool parse_choice(json_t *tc, srv_request *r, http_api_error *e)
{
    if (json_is_string(tc)) {
        const char *s = json_string_value(tc);
        if (strcmp(s, "auto") == 0)
            r->tool_choice = SRV_TOOL_AUTO;
        else if (strcmp(s, "none") == 0)
            r->tool_choice = SRV_TOOL_NONE;
        else if (strcmp(s, "required") == 0)
            r->tool_choice = SRV_TOOL_REQUIRED;
        else
            return http_fail(e, HTTP_ERR_BAD_REQUEST, "tool_choice", "invalid_value",
                             "Invalid value for 'tool_choice': '%.40s'; expected 'none', 'auto', 'required' or "
                             "{\"type\": \"function\", \"function\": {\"name\": ...}}.",
                             s);
        return true;
    }
    if (!json_is_object(tc))
        return type_fail(e, "tool_choice", "a string or an object");
    json_t *type = json_object_get(tc, "type"), *fn = json_object_get(tc, "function");
    if (!json_is_string(type) || strcmp(json_string_value(type), "function") != 0)
        return http_fail(e, HTTP_ERR_BAD_REQUEST, "tool_choice.type", "unsupported_value",
                         "Invalid 'tool_choice.type': expected 'function'.");
    json_t *name = json_object_get(fn, "name");
    if (!json_is_string(name))
        return http_fail(e, HTTP_ERR_BAD_REQUEST, "tool_choice.function.name", "missing_required_parameter",
                         "Missing required parameter: 'tool_choice.function.name'.");
    if (!(r->tool_name = strdup(json_string_value(name))))
        return http_fail(e, HTTP_ERR_INTERNAL, NULL, NULL, "out of memory");
    r->tool_choice = SRV_TOOL_NAMED;
    return true;
}

/* An assistant message's tool_calls: [{id, type: "function", function: {name, arguments}}];
 * null or [] is dropped (some templates test only for the key). */
static bool check_calls(json_t *m, size_t im, http_api_error *e)
{
    json_t *calls = json_object_get(m, "tool_calls");
    char p[192];
    if (!calls)
        return true;
    if (json_is_null(calls) || (json_is_array(calls) && json_array_size(calls) == 0)) {
        json_object_del(m, "tool_calls");
        return true;
    }
    snprintf(p, sizeof p, "messages.[%zu].tool_calls", im);
    if (!json_is_array(calls))
        return type_fail(e, p, "an array");
    for (size_t i = 0; i < json_array_size(calls); i++) {
        json_t *c = json_array_get(calls, i), *fn = json_object_get(c, "function");
        json_t *name = json_object_get(fn, "name"), *args = json_object_get(fn, "arguments");
        json_t *type = json_object_get(c, "type");
        snprintf(p, sizeof p, "messages.[%zu].tool_calls.[%zu]", im, i);
        if (!json_is_object(c) || !json_is_object(fn) || !json_is_string(name))
            return http_fail(e, HTTP_ERR_BAD_REQUEST, p, "invalid_value",
                             "Invalid '%s': expected {\"id\", \"type\": \"function\", \"function\": {\"name\", "
                             "\"arguments\"}}.",
                             p);
        if (type && (!json_is_string(type) || strcmp(json_string_value(type), "function") != 0))
            return http_fail(e, HTTP_ERR_BAD_REQUEST, p, "unsupported_value",
                             "Invalid '%s.type': only 'function' calls are supported.", p);
        if (args && !json_is_string(args) && !json_is_object(args))
            return type_fail(e, p, "function.arguments as a string of JSON");
    }
    return true;
}

bool srv_request_parse_tools(json_t *root, srv_request *r, http_api_error *e)
{
    r->parallel_tool_calls = true;
    r->tool_choice = SRV_TOOL_AUTO;
    static const char *const legacy[] = { "functions", "function_call" };
    for (int i = 0; i < 2; i++) {
        json_t *v = json_object_get(root, legacy[i]);
        if (v && !json_is_null(v))
            return http_fail(e, HTTP_ERR_BAD_REQUEST, legacy[i], "unsupported_parameter",
                             "Unsupported parameter: '%s' (deprecated by OpenAI); use 'tools' and 'tool_choice'.",
                             legacy[i]);
    }
    for (size_t i = 0; i < json_array_size(r->messages); i++) {
        json_t *m = json_array_get(r->messages, i);
        if (!check_calls(m, i, e))
            return false;
        json_t *id = json_object_get(m, "tool_call_id");
        if (id && !json_is_string(id) && !json_is_null(id)) {
            char p[192];
            snprintf(p, sizeof p, "messages.[%zu].tool_call_id", i);
            return type_fail(e, p, "a string");
        }
    }
    json_t *tools = json_object_get(root, "tools");
    if (tools && !json_is_null(tools)) {
        if (!json_is_array(tools))
            return type_fail(e, "tools", "an array");
        for (size_t i = 0; i < json_array_size(tools); i++)
            if (!check_tool(json_array_get(tools, i), i, e))
                return false;
        if (json_array_size(tools) > 0)
            r->tools = json_incref(tools);
    }
    json_t *pv = json_object_get(root, "parallel_tool_calls");
    if (pv && !json_is_null(pv)) {
        if (!json_is_boolean(pv))
            return type_fail(e, "parallel_tool_calls", "a boolean");
        r->parallel_tool_calls = json_is_true(pv);
    }
    json_t *tc = json_object_get(root, "tool_choice");
    if (tc && !json_is_null(tc) && !parse_choice(tc, r, e))
        return false;
    bool forced = r->tool_choice == SRV_TOOL_REQUIRED || r->tool_choice == SRV_TOOL_NAMED;
    if (forced && !r->tools)
        return http_fail(e, HTTP_ERR_BAD_REQUEST, "tool_choice", "invalid_value",
                         "Invalid value for 'tool_choice': 'tool_choice' is only allowed when 'tools' are specified.");
    if (r->tool_choice == SRV_TOOL_NAMED && !tool_named(r->tools, r->tool_name))
        return http_fail(e, HTTP_ERR_BAD_REQUEST, "tool_choice", "invalid_value",
                         "Invalid value for 'tool_choice': no function named '%.64s' in 'tools'.", r->tool_name);
    r->tools_active = r->tools && r->tool_choice != SRV_TOOL_NONE;
    return true;
}

json_t *srv_tool_calls_json(const ponder_tool_calls *tc, char *const *ids, int32_t n)
{
    json_t *arr = json_array();
    for (int32_t i = 0; arr && i < n; i++) {
        json_t *c = json_pack("{s:s, s:s, s:{s:s, s:s}}", "id", ids[i], "type", "function", "function", "name",
                              tc->calls[i].name, "arguments", tc->calls[i].arguments);
        if (!c || json_array_append_new(arr, c) != 0) {
            json_decref(arr);
            return NULL;
        }
    }
    return arr;
}

void srv_tool_call_id(uint64_t *state, char *out, size_t cap)
{
    http_openai_id(state, "call", out, cap);
    char *dash = strchr(out, '-');
    if (dash)
        *dash = '_';
}
