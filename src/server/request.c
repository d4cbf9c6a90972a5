/*
 * request.c — an OpenAI request body → srv_request, validated field by field.
 *
 * Every check names the offending param, as OpenAI's 400s do ("Invalid type for
 * 'temperature': expected a number, but got a string instead."). Unknown fields are
 * ignored and null means absent (the openai clients send nulls). Ranges are OpenAI's:
 * temperature 0..2, top_p 0..1, penalties -2..2, n 1..128, up to 4 stop strings,
 * top_logprobs 0..20 (chat) and logprobs 0..5 (completions). top_k and min_p are
 * llama.cpp-style extensions. Sampling defaults are OpenAI's (temperature 1, no top-k,
 * top-p or min-p truncation), not llama.cpp's, so a stock client gets OpenAI semantics.
 */
#include "server/server_internal.h"
#include "ponder/grammar.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static bool bad_type(http_api_error *e, const char *param, const char *expected, const json_t *got)
{
    return http_fail(e, HTTP_ERR_BAD_REQUEST, param, "invalid_type",
                     "Invalid type for '%s': expected %s, but got %s instead.", param, expected, http_json_kind(got));
}

/* Field present and not null. */
static json_t *field(json_t *root, const char *key)
{
    json_t *v = json_object_get(root, key);
    return v && !json_is_null(v) ? v : NULL;
}

static bool get_number(json_t *root, const char *key, double lo, double hi, float *out, http_api_error *e)
{
    json_t *v = field(root, key);
    if (!v)
        return true;
    if (!json_is_number(v))
        return bad_type(e, key, "a number", v);
    double x = json_number_value(v);
    if (!isfinite(x) || x < lo || x > hi)
        return http_fail(e, HTTP_ERR_BAD_REQUEST, key, "invalid_value",
                         "Invalid '%s': %g is out of range; expected a value between %g and %g.", key, x, lo, hi);
    *out = (float)x;
    return true;
}

static bool get_int(json_t *root, const char *key, int64_t lo, int64_t hi, int64_t *out, bool *given,
                    http_api_error *e)
{
    json_t *v = field(root, key);
    if (!v)
        return true;
    /* 3.0 is an integer to Python clients; accept whole reals as OpenAI does */
    int64_t x;
    if (json_is_integer(v)) {
        x = json_integer_value(v);
    } else if (json_is_real(v) && json_real_value(v) == floor(json_real_value(v)) &&
               fabs(json_real_value(v)) < 9.0e15) {
        x = (int64_t)json_real_value(v);
    } else {
        return bad_type(e, key, "an integer", v);
    }
    if (x < lo || x > hi)
        return http_fail(e, HTTP_ERR_BAD_REQUEST, key, "invalid_value",
                         "Invalid '%s': %lld is out of range; expected a value between %lld and %lld.", key,
                         (long long)x, (long long)lo, (long long)hi);
    *out = x;
    if (given)
        *given = true;
    return true;
}

static bool get_bool(json_t *root, const char *key, bool *out, http_api_error *e)
{
    json_t *v = field(root, key);
    if (!v)
        return true;
    if (!json_is_boolean(v))
        return bad_type(e, key, "a boolean", v);
    *out = json_is_true(v);
    return true;
}

/* A message's content as one string: a string, null (assistant turns with tool calls),
 * or an array of {"type": "text", "text": ...} parts, concatenated. */
static bool content_text(json_t *content, size_t im, json_t **out, http_api_error *e)
{
    char param[HTTP_ERR_TAG_BYTES];
    snprintf(param, sizeof param, "messages.[%zu].content", im);
    if (!content || json_is_null(content)) {
        *out = json_string("");
        return true;
    }
    if (json_is_string(content)) {
        *out = json_incref(content);
        return true;
    }
    if (!json_is_array(content))
        return bad_type(e, param, "a string or an array of content parts", content);
    http_buf b = { 0 };
    size_t i;
    json_t *part;
    json_array_foreach(content, i, part) {
        json_t *type = json_is_object(part) ? json_object_get(part, "type") : NULL;
        json_t *text = json_is_object(part) ? json_object_get(part, "text") : NULL;
        if (!json_is_string(type) || strcmp(json_string_value(type), "text") != 0 || !json_is_string(text)) {
            free(b.data);
            return http_fail(e, HTTP_ERR_BAD_REQUEST, param, "invalid_value",
                             "Invalid '%s': part %zu is not a {\"type\": \"text\", \"text\": ...} part (this model "
                             "reads text only).",
                             param, i);
        }
        http_buf_append(&b, json_string_value(text), json_string_length(text));
    }
    *out = b.oom ? NULL : json_stringn(b.data ? b.data : "", b.len);
    free(b.data);
    if (!*out)
        return http_fail(e, HTTP_ERR_INTERNAL, NULL, NULL, "out of memory");
    return true;
}

static bool parse_messages(json_t *root, srv_request *r, http_api_error *e)
{
    static const char *const roles[] = { "system", "developer", "user", "assistant", "tool", "function" };
    json_t *msgs = json_object_get(root, "messages");
    if (!msgs || json_is_null(msgs))
        return http_fail(e, HTTP_ERR_BAD_REQUEST, "messages", "missing_required_parameter",
                         "Missing required parameter: 'messages'.");
    if (!json_is_array(msgs))
        return bad_type(e, "messages", "an array", msgs);
    if (json_array_size(msgs) == 0)
        return http_fail(e, HTTP_ERR_BAD_REQUEST, "messages", "empty_array",
                         "Invalid 'messages': empty array. Expected an array with minimum length 1.");
    r->messages = json_array();
    if (!r->messages)
        return http_fail(e, HTTP_ERR_INTERNAL, NULL, NULL, "out of memory");
    size_t i;
    json_t *m;
    json_array_foreach(msgs, i, m) {
        char param[HTTP_ERR_TAG_BYTES];
        snprintf(param, sizeof param, "messages.[%zu]", i);
        if (!json_is_object(m))
            return bad_type(e, param, "an object", m);
        json_t *role = json_object_get(m, "role");
        snprintf(param, sizeof param, "messages.[%zu].role", i);
        if (!role)
            return http_fail(e, HTTP_ERR_BAD_REQUEST, param, "missing_required_parameter",
                             "Missing required parameter: '%s'.", param);
        if (!json_is_string(role))
            return bad_type(e, param, "a string", role);
        bool known = false;
        for (size_t k = 0; k < sizeof roles / sizeof roles[0]; k++)
            known = known || strcmp(json_string_value(role), roles[k]) == 0;
        if (!known)
            return http_fail(e, HTTP_ERR_BAD_REQUEST, param, "invalid_value",
                             "Invalid value for '%s': expected one of 'system', 'developer', 'user', 'assistant', "
                             "'tool' or 'function'.",
                             param);
        json_t *text;
        if (!content_text(json_object_get(m, "content"), i, &text, e))
            return false;
        /* the template sees every other key too (name, tool_calls, tool_call_id); an assistant
         * turn of only tool calls keeps its null content (DeepSeek's templates test `is none`) */
        json_t *c0 = json_object_get(m, "content"), *calls = json_object_get(m, "tool_calls");
        if ((!c0 || json_is_null(c0)) && json_is_array(calls) && json_array_size(calls) > 0) {
            json_decref(text);
            text = json_null();
        }
        json_t *copy = json_deep_copy(m);
        if (!copy || json_object_set_new(copy, "content", text) != 0 || json_array_append_new(r->messages, copy) != 0)
            return http_fail(e, HTTP_ERR_INTERNAL, NULL, NULL, "out of memory");
    }
    if (!srv_request_parse_tools(root, r, e))
        return false;
    /* continue_final_message (vLLM's name): the last message is the start of the answer
     * itself, not a turn; the router continues a stream that died this way */
    bool cont = false;
    if (!get_bool(root, "continue_final_message", &cont, e))
        return false;
    if (cont) {
        size_t last = json_array_size(r->messages) - 1;
        json_t *lm = json_array_get(r->messages, last);
        if (strcmp(json_string_value(json_object_get(lm, "role")), "assistant") != 0)
            return http_fail(e, HTTP_ERR_BAD_REQUEST, "continue_final_message", "invalid_value",
                             "'continue_final_message' needs the last message to be the assistant's.");
        const char *pv = json_string_value(json_object_get(lm, "content")); /* null: only tool calls */
        if (!(r->assistant_prefix = strdup(pv ? pv : "")))
            return http_fail(e, HTTP_ERR_INTERNAL, NULL, NULL, "out of memory");
        json_array_remove(r->messages, last);
    }
    return true;
}

/* Token ids from an array of integers into *pr; param names the element for errors. */
static bool prompt_ids(json_t *arr, const char *param, srv_prompt *pr, http_api_error *e)
{
    size_t n = json_array_size(arr);
    if (n == 0)
        return http_fail(e, HTTP_ERR_BAD_REQUEST, param, "empty_array", "Invalid '%s': empty array.", param);
    if (n > INT32_MAX)
        return http_fail(e, HTTP_ERR_BAD_REQUEST, param, "invalid_value", "Invalid '%s': too many tokens.", param);
    pr->ids = malloc(n * sizeof *pr->ids);
    if (!pr->ids)
        return http_fail(e, HTTP_ERR_INTERNAL, NULL, NULL, "out of memory");
    for (size_t i = 0; i < n; i++) {
        json_t *t = json_array_get(arr, i);
        if (!json_is_integer(t) || json_integer_value(t) < 0 || json_integer_value(t) > INT32_MAX)
            return http_fail(e, HTTP_ERR_BAD_REQUEST, param, "invalid_type",
                             "Invalid '%s': element %zu is not a token id (a non-negative integer).", param, i);
        pr->ids[i] = (ponder_token)json_integer_value(t);
    }
    pr->n_ids = (int32_t)n;
    return true;
}

static bool prompt_text(json_t *str, srv_prompt *pr, http_api_error *e)
{
    pr->len = json_string_length(str);
    pr->text = malloc(pr->len + 1);
    if (!pr->text)
        return http_fail(e, HTTP_ERR_INTERNAL, NULL, NULL, "out of memory");
    memcpy(pr->text, json_string_value(str), pr->len + 1);
    return true;
}

/* OpenAI's four forms: "text", ["text", ...], [id, ...], [[id, ...], ...]. A list of
 * prompts is answered with n choices per prompt, prompt-major. */
static bool parse_prompt(json_t *root, srv_request *r, http_api_error *e)
{
    json_t *p = json_object_get(root, "prompt");
    if (!p || json_is_null(p))
        return http_fail(e, HTTP_ERR_BAD_REQUEST, "prompt", "missing_required_parameter",
                         "Missing required parameter: 'prompt'.");
    if (!json_is_string(p) && !json_is_array(p))
        return bad_type(e, "prompt", "a string, an array of strings, an array of token ids or an array of token-id arrays", p);
    size_t n = json_is_string(p) ? 1 : json_array_size(p);
    if (n == 0)
        return http_fail(e, HTTP_ERR_BAD_REQUEST, "prompt", "empty_array", "Invalid 'prompt': empty array.");
    json_t *first = json_is_array(p) ? json_array_get(p, 0) : p;
    bool list = json_is_array(p) && (json_is_string(first) || json_is_array(first));
    if (json_is_array(p) && !list)
        n = 1; /* one prompt of token ids */
    if (n > SRV_MAX_PROMPTS)
        return http_fail(e, HTTP_ERR_BAD_REQUEST, "prompt", "invalid_value",
                         "Invalid 'prompt': %zu prompts given; at most %d are allowed in one request.", n,
                         SRV_MAX_PROMPTS);
    r->prompts = calloc(n, sizeof *r->prompts);
    if (!r->prompts)
        return http_fail(e, HTTP_ERR_INTERNAL, NULL, NULL, "out of memory");
    r->n_prompts = (int32_t)n;
    if (json_is_string(p))
        return prompt_text(p, &r->prompts[0], e);
    if (!list)
        return prompt_ids(p, "prompt", &r->prompts[0], e);
    for (size_t i = 0; i < n; i++) {
        json_t *item = json_array_get(p, i);
        char param[HTTP_ERR_TAG_BYTES];
        snprintf(param, sizeof param, "prompt.[%zu]", i);
        /* all items of one kind, as OpenAI's schema (array of strings or of token arrays) */
        if (json_is_string(first) ? !json_is_string(item) : !json_is_array(item))
            return bad_type(e, param, json_is_string(first) ? "a string" : "an array of token ids", item);
        if (json_is_string(item) ? !prompt_text(item, &r->prompts[i], e) : !prompt_ids(item, param, &r->prompts[i], e))
            return false;
    }
    return true;
}

static bool parse_stop(json_t *root, srv_request *r, http_api_error *e)
{
    json_t *s = field(root, "stop");
    if (!s)
        return true;
    json_t *one[1] = { s };
    json_t **items = one;
    size_t n = 1;
    json_t *arr[SRV_MAX_STOP];
    if (json_is_array(s)) {
        n = json_array_size(s);
        if (n > SRV_MAX_STOP)
            return http_fail(e, HTTP_ERR_BAD_REQUEST, "stop", "invalid_value",
                             "Invalid 'stop': %zu sequences given; at most %d are allowed.", n, SRV_MAX_STOP);
        for (size_t i = 0; i < n; i++)
            arr[i] = json_array_get(s, i);
        items = arr;
    } else if (!json_is_string(s)) {
        return bad_type(e, "stop", "a string or an array of strings", s);
    }
    for (size_t i = 0; i < n; i++) {
        if (!json_is_string(items[i]))
            return bad_type(e, "stop", "a string or an array of strings", items[i]);
        if (json_string_length(items[i]) == 0)
            continue; /* an empty stop string would end every answer at once; OpenAI ignores it */
        r->stop[r->n_stop] = strdup(json_string_value(items[i]));
        if (!r->stop[r->n_stop])
            return http_fail(e, HTTP_ERR_INTERNAL, NULL, NULL, "out of memory");
        r->n_stop++;
    }
    return true;
}

static bool parse_logprobs(json_t *root, srv_request *r, http_api_error *e)
{
    int64_t k = 0;
    bool given = false;
    if (r->kind == SRV_EP_CHAT) {
        if (!get_bool(root, "logprobs", &r->logprobs, e))
            return false;
        if (!get_int(root, "top_logprobs", 0, PONDER_GEN_MAX_TOP_LOGPROBS, &k, &given, e))
            return false;
        if (given && !r->logprobs)
            return http_fail(e, HTTP_ERR_BAD_REQUEST, "top_logprobs", "invalid_value",
                             "Invalid 'top_logprobs': 'logprobs' must be set to true when 'top_logprobs' is used.");
    } else {
        if (!get_int(root, "logprobs", 0, SRV_MAX_LEGACY_LOGPROBS, &k, &given, e))
            return false;
        r->logprobs = given;
    }
    r->top_logprobs = (int32_t)k;
    return true;
}

/* Ponder's own request fields: "ponder": {"strategy": "sc" | "sc:8" | ..., "samples": N,
 * "answer": "number" | "choice" | "text", "cue": true | false}, type-checked here and kept as
 * given: what they mean (with a model-name prefix, the model's cue default) is decided in
 * one place, ponder_strategy_plan_make (src/think), when the job is prepared (prompt.c). */
/* A schema or grammar that does not compile: a 400 naming the param, with the compiler's
 * message (the unsupported keyword and where, or line:col); out of memory is a 500. */
static bool grammar_fail(http_api_error *e, const char *param, const ponder_error *err)
{
    if (err->code == PONDER_ERR_NOMEM)
        return http_fail(e, HTTP_ERR_INTERNAL, NULL, NULL, "Out of memory compiling '%s'.", param);
    const char *code = err->code == PONDER_ERR_UNSUPPORTED ? "unsupported_value" : "invalid_value";
    return http_fail(e, HTTP_ERR_BAD_REQUEST, param, code, "Invalid '%s': %s", param, err->msg);
}

/* response_format (OpenAI): {"type": "text"}, {"type": "json_object"} (any JSON object;
 * with llama-server's "schema" beside it, that schema), {"type": "json_schema",
 * "json_schema": {"name", "schema", "strict"}}; and llama-server's "grammar" (GBNF text).
 * The result is r->grammar, compiled here so a bad schema is this request's 400. */
static bool parse_response_format(json_t *root, srv_request *r, http_api_error *e)
{
    json_t *rf = field(root, "response_format"), *gr = field(root, "grammar");
    ponder_error err = { 0 };
    if (rf && gr)
        return http_fail(e, HTTP_ERR_BAD_REQUEST, "grammar", "invalid_value",
                         "Invalid 'grammar': give 'grammar' or 'response_format', not both.");
    if (gr) {
        if (!json_is_string(gr))
            return bad_type(e, "grammar", "a string", gr);
        if (ponder_grammar_parse(json_string_value(gr), json_string_length(gr), &r->grammar, &err) != PONDER_OK)
            return grammar_fail(e, "grammar", &err);
        return true;
    }
    if (!rf)
        return true;
    if (!json_is_object(rf))
        return bad_type(e, "response_format", "an object", rf);
    json_t *type = json_object_get(rf, "type");
    if (!type)
        return http_fail(e, HTTP_ERR_BAD_REQUEST, "response_format.type", "missing_required_parameter",
                         "Missing required parameter: 'response_format.type'.");
    if (!json_is_string(type))
        return bad_type(e, "response_format.type", "a string", type);
    const char *t = json_string_value(type);
    json_t *schema = NULL;
    const char *param = "response_format.schema";
    if (strcmp(t, "text") == 0)
        return true;
    if (strcmp(t, "json_object") == 0) {
        schema = field(rf, "schema");
        if (!schema) {
            if (ponder_grammar_json_object(&r->grammar, &err) != PONDER_OK)
                return grammar_fail(e, "response_format", &err);
            return true;
        }
    } else if (strcmp(t, "json_schema") == 0) {
        json_t *js = json_object_get(rf, "json_schema");
        if (!js)
            return http_fail(e, HTTP_ERR_BAD_REQUEST, "response_format.json_schema", "missing_required_parameter",
                             "Missing required parameter: 'response_format.json_schema'.");
        if (!json_is_object(js))
            return bad_type(e, "response_format.json_schema", "an object", js);
        json_t *strict = field(js, "strict"), *name = field(js, "name");
        if (strict && !json_is_boolean(strict))
            return bad_type(e, "response_format.json_schema.strict", "a boolean", strict);
        if (name && !json_is_string(name))
            return bad_type(e, "response_format.json_schema.name", "a string", name);
        schema = json_object_get(js, "schema");
        param = "response_format.json_schema.schema";
        if (!schema)
            return http_fail(e, HTTP_ERR_BAD_REQUEST, param, "missing_required_parameter",
                             "Missing required parameter: '%s'.", param);
    } else {
        return http_fail(e, HTTP_ERR_BAD_REQUEST, "response_format.type", "invalid_value",
                         "Invalid 'response_format.type': '%.64s' is not one of 'text', 'json_object' and "
                         "'json_schema'.", t);
    }
    char *text = json_dumps(schema, JSON_COMPACT | JSON_ENCODE_ANY);
    if (!text)
        return http_fail(e, HTTP_ERR_INTERNAL, NULL, NULL, "Out of memory.");
    ponder_status st = ponder_grammar_from_json_schema(text, strlen(text), &r->grammar, &err);
    free(text);
    return st == PONDER_OK || grammar_fail(e, param, &err);
}

static bool parse_ponder(json_t *root, srv_request *r, http_api_error *e)
{
    r->cue = PONDER_CUE_MODEL;
    json_t *po = field(root, "ponder");
    if (!po)
        return true;
    if (!json_is_object(po))
        return bad_type(e, "ponder", "an object", po);
    json_t *st = field(po, "strategy");
    if (st && !json_is_string(st))
        return bad_type(e, "ponder.strategy", "a string", st);
    int64_t samples = 0;
    if (!get_int(po, "samples", 1, PONDER_THINK_MAX_SAMPLES, &samples, NULL, e)) {
        snprintf(e->param, sizeof e->param, "ponder.samples");
        return false;
    }
    r->samples = (int32_t)samples;
    json_t *cue = field(po, "cue");
    if (cue && !json_is_boolean(cue))
        return bad_type(e, "ponder.cue", "a boolean", cue);
    r->cue = !cue ? PONDER_CUE_MODEL : json_is_true(cue) ? PONDER_CUE_ON : PONDER_CUE_OFF;
    json_t *ak = field(po, "answer");
    if (ak && !json_is_string(ak))
        return bad_type(e, "ponder.answer", "a string", ak);
    if ((st && !(r->strategy_text = strdup(json_string_value(st)))) ||
        (ak && !(r->answer_text = strdup(json_string_value(ak)))))
        return http_fail(e, HTTP_ERR_INTERNAL, NULL, NULL, "out of memory");
    return true;
}

bool srv_request_parse(srv_endpoint kind, const char *body, size_t len, srv_request *r, http_api_error *e)
{
    memset(r, 0, sizeof *r);
    r->kind = kind;
    json_t *root = http_json_body(body, len, e);
    if (!root)
        return false;
    bool ok = false;
    json_t *model = field(root, "model");
    if (model && !(r->model = strdup(json_string_value(model)))) {
        http_fail(e, HTTP_ERR_INTERNAL, NULL, NULL, "out of memory");
        goto done;
    }
    if (kind == SRV_EP_CHAT ? !parse_messages(root, r, e) : !parse_prompt(root, r, e))
        goto done;

    /* max_completion_tokens is the chat name that replaced max_tokens; the later one wins */
    int64_t max_tokens = -1;
    if (!get_int(root, "max_tokens", 1, INT32_MAX, &max_tokens, NULL, e) ||
        !get_int(root, "max_completion_tokens", 1, INT32_MAX, &max_tokens, NULL, e))
        goto done;
    r->max_tokens = (int32_t)max_tokens;

    r->sampling = ponder_sampler_params_default();
    r->sampling.temp = 1.0f;
    r->sampling.top_p = 1.0f;
    r->sampling.top_k = 0;
    r->sampling.min_p = 0.0f;
    r->sampling.repeat_penalty = 1.0f;
    r->sampling.seed = PONDER_SEED_RANDOM;
    int64_t top_k = 0, seed = 0, n = 1;
    bool seed_given = false;
    r->temp_given = field(root, "temperature") != NULL;
    if (!get_number(root, "temperature", 0.0, 2.0, &r->sampling.temp, e) ||
        !get_number(root, "top_p", 0.0, 1.0, &r->sampling.top_p, e) ||
        !get_number(root, "min_p", 0.0, 1.0, &r->sampling.min_p, e) ||
        !get_int(root, "top_k", -1, INT32_MAX, &top_k, NULL, e) ||
        !get_int(root, "seed", INT64_MIN, INT64_MAX, &seed, &seed_given, e) ||
        !get_number(root, "presence_penalty", -2.0, 2.0, &r->presence_penalty, e) ||
        !get_number(root, "frequency_penalty", -2.0, 2.0, &r->frequency_penalty, e) ||
        !get_int(root, "n", 1, SRV_MAX_N, &n, NULL, e))
        goto done;
    r->sampling.top_k = (int32_t)top_k;
    if (seed_given)
        r->sampling.seed = (uint64_t)seed; /* -1 wraps to PONDER_SEED_RANDOM: a random seed, as llama.cpp */
    r->n = (int32_t)n;
    if (!parse_stop(root, r, e) || !parse_logprobs(root, r, e))
        goto done;
    if (!get_bool(root, "stream", &r->stream, e))
        goto done;
    r->cache_prompt = true;
    if (!get_bool(root, "cache_prompt", &r->cache_prompt, e))
        goto done;
    if (kind == SRV_EP_COMPLETION) { /* chat has no echo: ignored there, as other unknown fields */
        if (!get_bool(root, "echo", &r->echo, e))
            goto done;
        if (r->echo && r->logprobs) {
            http_fail(e, HTTP_ERR_BAD_REQUEST, "echo", "invalid_value",
                      "'echo' with 'logprobs' is not supported: the prompt's log-probabilities are not computed. "
                      "Drop one of the two.");
            goto done;
        }
    }
    json_t *so = field(root, "stream_options");
    if (so) {
        if (!json_is_object(so)) {
            bad_type(e, "stream_options", "an object", so);
            goto done;
        }
        if (!r->stream) {
            http_fail(e, HTTP_ERR_BAD_REQUEST, "stream_options", "invalid_value",
                      "The 'stream_options' parameter is only allowed when 'stream' is enabled.");
            goto done;
        }
        if (!get_bool(so, "include_usage", &r->include_usage, e)) {
            snprintf(e->param, sizeof e->param, "stream_options.include_usage");
            goto done;
        }
    }
    if (!parse_ponder(root, r, e) || !parse_response_format(root, r, e))
        goto done;
    if (r->grammar && r->tools_active &&
        (r->tool_choice == SRV_TOOL_REQUIRED || r->tool_choice == SRV_TOOL_NAMED)) {
        http_fail(e, HTTP_ERR_BAD_REQUEST, "tool_choice", "invalid_value",
                  "Invalid 'tool_choice': a required tool call is constrained to the tools' schemas; it cannot also "
                  "follow 'response_format' or 'grammar'.");
        goto done;
    }
    json_t *user = field(root, "user");
    if (user && !json_is_string(user)) {
        bad_type(e, "user", "a string", user);
        goto done;
    }
    ok = true;
done:
    json_decref(root);
    if (!ok)
        srv_request_free(r);
    return ok;
}

void srv_request_free(srv_request *r)
{
    if (!r)
        return;
    free(r->model);
    free(r->tool_name);
    free(r->assistant_prefix);
    free(r->strategy_text);
    free(r->answer_text);
    ponder_grammar_free(r->grammar);
    json_decref(r->messages);
    json_decref(r->tools);
    for (int32_t i = 0; r->prompts && i < r->n_prompts; i++) {
        free(r->prompts[i].text);
        free(r->prompts[i].ids);
    }
    free(r->prompts);
    for (int32_t i = 0; i < r->n_stop; i++)
        free(r->stop[i]);
    srv_endpoint kind = r->kind;
    memset(r, 0, sizeof *r);
    r->kind = kind;
}

char *srv_chat_vars_json(const srv_request *r, const json_t *tools, const char *bos, const char *eos)
{
    json_t *v = json_object();
    if (!v)
        return NULL;
    json_object_set(v, "messages", r->messages);
    json_object_set_new(v, "bos_token", http_json_string_lossy(bos ? bos : "", bos ? strlen(bos) : 0));
    json_object_set_new(v, "eos_token", http_json_string_lossy(eos ? eos : "", eos ? strlen(eos) : 0));
    json_object_set_new(v, "add_generation_prompt", json_true());
    if (tools)
        json_object_set(v, "tools", (json_t *)tools);
    char *s = json_dumps(v, JSON_COMPACT);
    json_decref(v);
    return s;
}

char *srv_render_chatml(const json_t *messages)
{
    http_buf b = { 0 };
    size_t i;
    json_t *m;
    json_array_foreach(messages, i, m) {
        json_t *role = json_object_get(m, "role");
        json_t *content = json_object_get(m, "content");
        http_buf_append(&b, "<|im_start|>", 12);
        http_buf_append(&b, json_string_value(role), json_string_length(role));
        http_buf_append(&b, "\n", 1);
        http_buf_append(&b, json_string_value(content), json_string_length(content));
        http_buf_append(&b, "<|im_end|>\n", 11);
    }
    http_buf_append(&b, "<|im_start|>assistant\n", 22);
    if (b.oom) {
        free(b.data);
        return NULL;
    }
    return b.data;
}
