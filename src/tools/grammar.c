/*
 * grammar.c — forced tool calls: one JSON Schema over the tools' calls (an anyOf of
 * {"name": const, "arguments": that function's parameters}, each function's schema moved
 * under $defs with its local $refs re-rooted there) compiled by the grammar module, then
 * wrapped in the format's own text (<tool_call>…</tool_call>, a [..] list, {"tool_call": …}).
 * Also the GENERIC format's system-message text.
 */
#include "ponder/tools.h"

#include "ponder/grammar.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Local $refs of a function's schema re-rooted at #/$defs/<def> (const, enum, default and
 * examples are values, not schemas: left alone). */
static bool reroot(json_t *s, const char *def)
{
    if (json_is_array(s)) {
        for (size_t i = 0; i < json_array_size(s); i++)
            if (!reroot(json_array_get(s, i), def))
                return false;
        return true;
    }
    if (!json_is_object(s))
        return true;
    const char *k;
    json_t *v;
    json_object_foreach(s, k, v)
    {
        if (strcmp(k, "$ref") == 0 && json_is_string(v) && json_string_value(v)[0] == '#') {
            const char *rest = json_string_value(v) + 1;
            size_t n = strlen(def) + strlen(rest) + 16;
            char *ref = malloc(n);
            if (!ref)
                return false;
            snprintf(ref, n, "#/$defs/%s%s", def, rest);
            int rc = json_object_set_new(s, k, json_string(ref));
            free(ref);
            if (rc != 0)
                return false;
        } else if (strcmp(k, "const") != 0 && strcmp(k, "enum") != 0 && strcmp(k, "default") != 0 &&
                   strcmp(k, "examples") != 0 && !reroot(v, def)) {
            return false;
        }
    }
    return true;
}

/* {"type": "object", "properties": {"name": {"const": N}, ARGS: {"$ref": ...}}, ...} */
static json_t *call_schema(const char *name, const char *args_key, const char *def)
{
    char ref[96];
    snprintf(ref, sizeof ref, "#/$defs/%s", def);
    return json_pack("{s:s, s:{s:{s:s}, s:{s:s}}, s:[s,s], s:b}", "type", "object", "properties", "name", "const",
                     name, args_key, "$ref", ref, "required", "name", args_key, "additionalProperties", 0);
}

/* The schema of one call (an anyOf when several functions qualify) with $defs. */
static ponder_status calls_schema(ponder_tool_format f, json_t *tools, const char *only, json_t **out,
                                  ponder_error *err)
{
    json_t *defs = json_object(), *any = json_array();
    const char *args_key = f == PONDER_TOOL_FORMAT_LLAMA3 ? "parameters" : "arguments";
    ponder_status st = PONDER_OK;
    for (size_t i = 0; st == PONDER_OK && i < json_array_size(tools); i++) {
        json_t *fn = json_object_get(json_array_get(tools, i), "function");
        json_t *name = json_object_get(fn, "name");
        if (!json_is_string(name))
            st = ponder_error_set(err, PONDER_ERR_FORMAT, "tools[%zu].function.name must be a string", i);
        else if (only && strcmp(only, json_string_value(name)) != 0)
            continue;
        if (st != PONDER_OK)
            break;
        json_t *params = json_object_get(fn, "parameters");
        json_t *p = params ? json_deep_copy(params) : json_pack("{s:s}", "type", "object");
        char def[32];
        snprintf(def, sizeof def, "tool%zu", i);
        if (!p || !reroot(p, def) || json_object_set_new(defs, def, p) != 0 ||
            json_array_append_new(any, call_schema(json_string_value(name), args_key, def)) != 0)
            st = ponder_error_set(err, PONDER_ERR_NOMEM, "out of memory");
    }
    if (st == PONDER_OK && json_array_size(any) == 0)
        st = only ? ponder_error_set(err, PONDER_ERR_NOT_FOUND, "no function named '%s' in tools", only)
                  : ponder_error_set(err, PONDER_ERR_FORMAT, "tools is empty");
    if (st != PONDER_OK) {
        json_decref(defs);
        json_decref(any);
        return st;
    }
    json_t *one = json_array_size(any) == 1 ? json_incref(json_array_get(any, 0)) : json_pack("{s:O}", "anyOf", any);
    json_decref(any);
    *out = json_pack("{s:o, s:o}", "$defs", defs, "x", one);
    return *out ? PONDER_OK : ponder_error_set(err, PONDER_ERR_NOMEM, "out of memory");
}

/* The whole schema the format's JSON part must satisfy. */
static json_t *format_schema(ponder_tool_format f, json_t *wrapped, bool parallel)
{
    json_t *one = json_incref(json_object_get(wrapped, "x"));
    json_t *root = NULL;
    if (f == PONDER_TOOL_FORMAT_MISTRAL || (f == PONDER_TOOL_FORMAT_GENERIC && parallel)) {
        json_t *arr = parallel ? json_pack("{s:s, s:o, s:i}", "type", "array", "items", one, "minItems", 1)
                               : json_pack("{s:s, s:o, s:i, s:i}", "type", "array", "items", one, "minItems", 1,
                                           "maxItems", 1);
        root = f == PONDER_TOOL_FORMAT_MISTRAL
                   ? arr
                   : json_pack("{s:s, s:{s:o}, s:[s], s:b}", "type", "object", "properties", "tool_calls", arr,
                               "required", "tool_calls", "additionalProperties", 0);
    } else if (f == PONDER_TOOL_FORMAT_GENERIC) {
        root = json_pack("{s:s, s:{s:o}, s:[s], s:b}", "type", "object", "properties", "tool_call", one, "required",
                         "tool_call", "additionalProperties", 0);
    } else {
        root = one; /* HERMES's object inside its tags; LLAMA3's whole answer */
    }
    if (root && json_object_set(root, "$defs", json_object_get(wrapped, "$defs")) != 0) {
        json_decref(root);
        root = NULL;
    }
    return root;
}

/* Renames the schema grammar's start rule "root" to a fresh name (returned) so the
 * format's own root can wrap it. */
static char *rename_root(char *gbnf, char *name, size_t cap)
{
    for (int k = 0;; k++) {
        snprintf(name, cap, "tool-call-%d", k);
        char def[64];
        snprintf(def, sizeof def, "\n%s ::=", name);
        if (!strstr(gbnf, def) && strncmp(gbnf, def + 1, strlen(def + 1)) != 0)
            break;
    }
    char *at = strncmp(gbnf, "root ::=", 8) == 0 ? gbnf : strstr(gbnf, "\nroot ::=");
    if (!at)
        return NULL;
    if (at != gbnf)
        at++;
    size_t head = (size_t)(at - gbnf), n = strlen(gbnf), nl = strlen(name);
    char *r = malloc(n - 4 + nl + 1);
    if (!r)
        return NULL;
    memcpy(r, gbnf, head);
    memcpy(r + head, name, nl);
    memcpy(r + head + nl, at + 4, n - head - 4 + 1);
    return r;
}

ponder_status ponder_tool_calls_grammar(ponder_tool_format f, const char *tools_json, size_t len, const char *name,
                                        unsigned flags, char **gbnf, ponder_error *err)
{
    bool parallel = (flags & PONDER_TOOL_GRAMMAR_PARALLEL) != 0;
    const bool bare = f == PONDER_TOOL_FORMAT_HERMES && (flags & PONDER_TOOL_GRAMMAR_BARE);
    if (!tools_json || !gbnf)
        return ponder_error_set(err, PONDER_ERR_INVALID_ARG, "ponder_tool_calls_grammar: NULL argument");
    *gbnf = NULL;
    json_error_t je;
    json_t *tools = json_loadb(tools_json, len, 0, &je);
    if (!json_is_array(tools)) {
        json_decref(tools);
        return ponder_error_set(err, PONDER_ERR_FORMAT, "tools must be a JSON array");
    }
    if (f == PONDER_TOOL_FORMAT_LLAMA3 || bare)
        parallel = false;
    json_t *wrapped = NULL;
    ponder_status st = calls_schema(f, tools, name, &wrapped, err);
    json_decref(tools);
    if (st != PONDER_OK)
        return st;
    json_t *root = format_schema(f, wrapped, parallel);
    json_decref(wrapped);
    char *schema = root ? json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(root);
    if (!schema)
        return ponder_error_set(err, PONDER_ERR_NOMEM, "out of memory");
    char *g = NULL;
    st = ponder_json_schema_to_gbnf(schema, strlen(schema), &g, err);
    free(schema);
    if (st != PONDER_OK) {
        /* the failing place is inside $defs/toolN: say which function */
        const char *at = strstr(err->msg, "/$defs/tool");
        if (at) {
            int idx = atoi(at + 11);
            ponder_error_prefix(err, "tools[%d].function.parameters", idx);
        }
        return st;
    }
    if (f != PONDER_TOOL_FORMAT_HERMES || bare) {
        *gbnf = g;
        return PONDER_OK;
    }
    char rule[32];
    char *body = rename_root(g, rule, sizeof rule);
    free(g);
    if (!body)
        return ponder_error_set(err, PONDER_ERR_NOMEM, "out of memory");
    size_t n = strlen(body) + 3 * strlen(rule) + 160;
    char *out = malloc(n);
    if (out)
        snprintf(out, n, "root ::= \"<tool_call>\\n\" %s \"\\n</tool_call>\"%s%s%s\n%s", rule,
                 parallel ? " (\"\\n<tool_call>\\n\" " : "", parallel ? rule : "",
                 parallel ? " \"\\n</tool_call>\")*" : "", body);
    free(body);
    if (!out)
        return ponder_error_set(err, PONDER_ERR_NOMEM, "out of memory");
    *gbnf = out;
    return PONDER_OK;
}

char *ponder_tool_calls_generic_prompt(const char *tools_json, size_t len, bool parallel)
{
    json_error_t je;
    json_t *tools = json_loadb(tools_json ? tools_json : "", len, 0, &je);
    if (!json_is_array(tools)) {
        json_decref(tools);
        return NULL;
    }
    json_t *fns = json_array();
    for (size_t i = 0; i < json_array_size(tools); i++) {
        json_t *fn = json_object_get(json_array_get(tools, i), "function");
        if (fn)
            json_array_append(fns, fn);
    }
    char *list = json_dumps(fns, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(fns);
    json_decref(tools);
    if (!list)
        return NULL;
    static const char head[] = "You can call these tools (JSON Schema of each function's arguments):\n";
    static const char one[] =
        "\n\nTo call a tool, answer with only this JSON object and nothing else:\n"
        "{\"tool_call\": {\"name\": \"<function name>\", \"arguments\": {<arguments>}}}\n";
    static const char many[] =
        "To call several tools at once, answer with only:\n"
        "{\"tool_calls\": [{\"name\": \"<function name>\", \"arguments\": {<arguments>}}, ...]}\n";
    static const char tail[] = "Otherwise answer the user in plain text.";
    size_t n = strlen(head) + strlen(list) + strlen(one) + (parallel ? strlen(many) : 0) + strlen(tail) + 1;
    char *s = malloc(n);
    if (s)
        snprintf(s, n, "%s%s%s%s%s", head, list, one, parallel ? many : "", tail);
    free(list);
    return s;
}
