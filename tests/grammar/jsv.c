/*
 * jsv.c — a small JSON Schema validator for the grammar tests, written independently of
 * the compiler (json_schema.c): it checks instances against the keywords the compiler
 * takes, with JSON Schema's own semantics (patterns with PCRE2, searched unless
 * anchored; lengths in code points; oneOf exactly one).
 */
#include "jsv.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdio.h>
#include <string.h>

static bool fail(char *why, size_t cap, const char *path, const char *what)
{
    if (why && why[0] == '\0')
        snprintf(why, cap, "%s: %s", path[0] ? path : "/", what);
    return false;
}

static json_t *resolve(json_t *root, const char *ref)
{
    if (ref[0] != '#')
        return NULL;
    json_t *t = root;
    const char *p = ref + 1;
    while (t && *p == '/') {
        const char *e = strchr(p + 1, '/');
        size_t n = e ? (size_t)(e - p - 1) : strlen(p + 1);
        char tok[256];
        snprintf(tok, sizeof tok, "%.*s", (int)n, p + 1);
        t = json_is_array(t) ? json_array_get(t, (size_t)atoi(tok)) : json_object_get(t, tok);
        p = e ? e : p + 1 + n;
    }
    return t;
}

static size_t cp_len(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += ((unsigned char)*s & 0xC0) != 0x80;
    return n;
}

static bool re_search(const char *pattern, const char *s, size_t len)
{
    int rc;
    PCRE2_SIZE off;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED, PCRE2_UTF, &rc, &off, NULL);
    if (!re)
        return false;
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(re, NULL);
    rc = pcre2_match(re, (PCRE2_SPTR)s, len, 0, 0, md, NULL);
    pcre2_match_data_free(md);
    pcre2_code_free(re);
    return rc >= 0;
}

static bool type_is(const json_t *v, const char *t)
{
    if (strcmp(t, "object") == 0)
        return json_is_object(v);
    if (strcmp(t, "array") == 0)
        return json_is_array(v);
    if (strcmp(t, "string") == 0)
        return json_is_string(v);
    if (strcmp(t, "integer") == 0)
        return json_is_integer(v);
    if (strcmp(t, "number") == 0)
        return json_is_number(v);
    if (strcmp(t, "boolean") == 0)
        return json_is_boolean(v);
    if (strcmp(t, "null") == 0)
        return json_is_null(v);
    return false;
}

static bool check(json_t *root, json_t *s, json_t *v, const char *path, char *why, size_t cap);

static bool check_object(json_t *root, json_t *s, json_t *v, const char *path, char *why, size_t cap)
{
    json_t *props = json_object_get(s, "properties"), *req = json_object_get(s, "required");
    json_t *addl = json_object_get(s, "additionalProperties");
    for (size_t i = 0; i < json_array_size(req); i++)
        if (!json_object_get(v, json_string_value(json_array_get(req, i))))
            return fail(why, cap, path, "a required property is missing");
    const char *k;
    json_t *x;
    json_object_foreach(v, k, x) {
        char sub[512];
        snprintf(sub, sizeof sub, "%s/%s", path, k);
        json_t *ps = props ? json_object_get(props, k) : NULL;
        if (ps) {
            if (!check(root, ps, x, sub, why, cap))
                return false;
        } else if (addl) {
            if (json_is_false(addl))
                return fail(why, cap, sub, "additional property not allowed");
            if (json_is_object(addl) && !check(root, addl, x, sub, why, cap))
                return false;
        }
    }
    return true;
}

static bool check_array(json_t *root, json_t *s, json_t *v, const char *path, char *why, size_t cap)
{
    json_t *items = json_object_get(s, "items"), *prefix = json_object_get(s, "prefixItems"), *x;
    const size_t n = json_array_size(v);
    if ((x = json_object_get(s, "minItems")) && n < (size_t)json_integer_value(x))
        return fail(why, cap, path, "fewer items than minItems");
    if ((x = json_object_get(s, "maxItems")) && n > (size_t)json_integer_value(x))
        return fail(why, cap, path, "more items than maxItems");
    for (size_t i = 0; i < n; i++) {
        char sub[512];
        snprintf(sub, sizeof sub, "%s/%zu", path, i);
        json_t *is = i < json_array_size(prefix) ? json_array_get(prefix, i) : items;
        if (is && json_is_false(is))
            return fail(why, cap, sub, "item not allowed");
        if (is && !check(root, is, json_array_get(v, i), sub, why, cap))
            return false;
    }
    return true;
}

static bool check_scalar(json_t *s, json_t *v, const char *path, char *why, size_t cap)
{
    json_t *x;
    if (json_is_string(v)) {
        const char *str = json_string_value(v);
        const size_t n = cp_len(str);
        if ((x = json_object_get(s, "minLength")) && n < (size_t)json_integer_value(x))
            return fail(why, cap, path, "shorter than minLength");
        if ((x = json_object_get(s, "maxLength")) && n > (size_t)json_integer_value(x))
            return fail(why, cap, path, "longer than maxLength");
        if ((x = json_object_get(s, "pattern")) && !re_search(json_string_value(x), str, json_string_length(v)))
            return fail(why, cap, path, "does not match pattern");
        const char *f = json_string_value(json_object_get(s, "format"));
        static const char *const fmts[][2] = {
            { "date", "^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$" },
            { "time", "^([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\\.[0-9]+)?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])$" },
            { "date-time", "^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5]"
                           "[0-9](\\.[0-9]+)?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])$" },
            { "uuid", "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$" },
            { "email", "^[^@\\s]+@[A-Za-z0-9-]+(\\.[A-Za-z0-9-]+)+$" },
            { "hostname", "^[A-Za-z0-9-]{1,63}(\\.[A-Za-z0-9-]{1,63})*$" },
            { "ipv4", "^((25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\\.){3}(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])$" },
            { "ipv6", "^([0-9a-fA-F]{1,4}:){7}[0-9a-fA-F]{1,4}$" },
            { "uri", "^[A-Za-z][A-Za-z0-9+.-]*://[^\\s]+$" },
            { "duration", "^P(\\d+Y)?(\\d+M)?(\\d+W)?(\\d+D)?(T(\\d+H)?(\\d+M)?(\\d+S)?)?$" },
        };
        for (size_t i = 0; f && i < sizeof fmts / sizeof *fmts; i++)
            if (strcmp(f, fmts[i][0]) == 0 && !re_search(fmts[i][1], str, json_string_length(v)))
                return fail(why, cap, path, "does not match its format");
    }
    if (json_is_number(v)) {
        const double d = json_number_value(v);
        if ((x = json_object_get(s, "minimum")) && d < json_number_value(x))
            return fail(why, cap, path, "below minimum");
        if ((x = json_object_get(s, "maximum")) && d > json_number_value(x))
            return fail(why, cap, path, "above maximum");
        if ((x = json_object_get(s, "exclusiveMinimum")) && d <= json_number_value(x))
            return fail(why, cap, path, "not above exclusiveMinimum");
        if ((x = json_object_get(s, "exclusiveMaximum")) && d >= json_number_value(x))
            return fail(why, cap, path, "not below exclusiveMaximum");
    }
    return true;
}

static bool check(json_t *root, json_t *s, json_t *v, const char *path, char *why, size_t cap)
{
    if (json_is_true(s))
        return true;
    if (json_is_false(s))
        return fail(why, cap, path, "schema false");
    json_t *x;
    if ((x = json_object_get(s, "$ref"))) {
        json_t *t = resolve(root, json_string_value(x));
        return t ? check(root, t, v, path, why, cap) : fail(why, cap, path, "unresolvable $ref");
    }
    if ((x = json_object_get(s, "const")) && !json_equal(x, v))
        return fail(why, cap, path, "not the const value");
    if ((x = json_object_get(s, "enum"))) {
        bool found = false;
        for (size_t i = 0; i < json_array_size(x) && !found; i++)
            found = json_equal(json_array_get(x, i), v);
        if (!found)
            return fail(why, cap, path, "not one of the enum values");
    }
    if ((x = json_object_get(s, "anyOf"))) {
        bool ok = false;
        for (size_t i = 0; i < json_array_size(x) && !ok; i++)
            ok = check(root, json_array_get(x, i), v, path, NULL, 0);
        if (!ok)
            return fail(why, cap, path, "matches no anyOf alternative");
    }
    if ((x = json_object_get(s, "oneOf"))) {
        int n = 0;
        for (size_t i = 0; i < json_array_size(x); i++)
            n += check(root, json_array_get(x, i), v, path, NULL, 0);
        if (n != 1)
            return fail(why, cap, path, n ? "matches several oneOf alternatives" : "matches no oneOf alternative");
    }
    if ((x = json_object_get(s, "allOf")))
        for (size_t i = 0; i < json_array_size(x); i++)
            if (!check(root, json_array_get(x, i), v, path, why, cap))
                return false;
    if ((x = json_object_get(s, "type"))) {
        bool ok = false;
        if (json_is_string(x))
            ok = type_is(v, json_string_value(x));
        for (size_t i = 0; i < json_array_size(x) && !ok; i++)
            ok = type_is(v, json_string_value(json_array_get(x, i)));
        if (!ok)
            return fail(why, cap, path, "wrong type");
    }
    if (json_is_object(v) && !check_object(root, s, v, path, why, cap))
        return false;
    if (json_is_array(v) && !check_array(root, s, v, path, why, cap))
        return false;
    return check_scalar(s, v, path, why, cap);
}

bool jsv_validate(json_t *schema, json_t *instance, char *why, size_t cap)
{
    if (why && cap)
        why[0] = '\0';
    return check(schema, schema, instance, "", why, cap);
}
