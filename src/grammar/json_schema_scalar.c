/*
 * json_schema_scalar.c — JSON Schema arrays (items, prefixItems, minItems/maxItems),
 * strings (lengths, pattern, format) and numbers (integer bounds, integer-valued bounds
 * on numbers) as GBNF, for json_schema.c.
 */
#include "grammar/json_schema_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* --- arrays, strings, numbers ----------------------------------------------------- */

static bool get_count(js *j, json_t *s, const char *k, const char *path, long long *v)
{
    json_t *x = json_object_get(s, k);
    if (!x)
        return false;
    if (!json_is_integer(x) || json_integer_value(x) < 0) {
        js_fail(j, PONDER_ERR_FORMAT, path, "%s must be a non-negative integer", k);
        return false;
    }
    *v = json_integer_value(x);
    if (*v > 10000) {
        js_fail(j, PONDER_ERR_UNSUPPORTED, path, "%s above 10000 is not supported", k);
        return false;
    }
    return true;
}

char *js_build_array(js *j, json_t *s, const char *hint, const char *path)
{
    json_t *items = json_object_get(s, "items"), *prefix = json_object_get(s, "prefixItems");
    long long min = 0, max = -1;
    bool has_min = get_count(j, s, "minItems", path, &min);
    bool has_max = get_count(j, s, "maxItems", path, &max);
    if (j->st != PONDER_OK)
        return NULL;
    if (!has_max)
        max = -1;
    if (has_max && max < min)
        return js_fail(j, PONDER_ERR_FORMAT, path, "%s is below minItems", "maxItems");
    gr_buf b = { 0 };
    char h[96], *ret = NULL;
    snprintf(h, sizeof h, "%s-item", hint);
    if (prefix) {
        if (!json_is_array(prefix))
            return js_fail(j, PONDER_ERR_FORMAT, path, "%s must be an array", "prefixItems");
        if (has_min || has_max)
            return js_fail(j, PONDER_ERR_UNSUPPORTED, path, "%s with prefixItems is not supported",
                           has_min ? "minItems" : "maxItems");
        gr_buf_puts(&b, "\"[\" space");
        for (size_t i = 0; i < json_array_size(prefix); i++) {
            char idx[24];
            snprintf(idx, sizeof idx, "%zu", i);
            char *r = js_visit_child(j, json_array_get(prefix, i), h, path, "prefixItems", idx);
            if (!r)
                goto done;
            gr_buf_printf(&b, "%s %s", i ? " \",\" space" : "", r);
            free(r);
        }
        if (items && !json_is_false(items)) {
            char *r = js_visit_child(j, items, h, path, "items", NULL);
            if (!r)
                goto done;
            gr_buf_printf(&b, json_array_size(prefix) ? " ( \",\" space %s )*" : " ( %s ( \",\" space %s )* )?", r,
                          r);
            free(r);
        }
        gr_buf_puts(&b, " \"]\" space");
    } else {
        char *r = items ? js_visit_child(j, items, h, path, "items", NULL) : strdup("value");
        if (!r) {
            if (j->st == PONDER_OK)
                j->rules.oom = true;
            goto done;
        }
        if (max == 0)
            gr_buf_puts(&b, "\"[\" space \"]\" space");
        else if (min == 0 && max < 0)
            gr_buf_printf(&b, "\"[\" space ( %s ( \",\" space %s )* )? \"]\" space", r, r);
        else if (min == 0)
            gr_buf_printf(&b, "\"[\" space ( %s ( \",\" space %s ){0,%lld} )? \"]\" space", r, r, max - 1);
        else if (max < 0)
            gr_buf_printf(&b, "\"[\" space %s ( \",\" space %s ){%lld,} \"]\" space", r, r, min - 1);
        else
            gr_buf_printf(&b, "\"[\" space %s ( \",\" space %s ){%lld,%lld} \"]\" space", r, r, min - 1, max - 1);
        free(r);
    }
    ret = b.oom ? NULL : js_add_rule(j, hint, b.s);
    if (b.oom)
        j->rules.oom = true;
done:
    free(b.s);
    return ret;
}

char *js_build_string(js *j, json_t *s, const char *hint, const char *path)
{
    json_t *fmt = json_object_get(s, "format"), *pat = json_object_get(s, "pattern");
    long long min = 0, max = -1;
    bool has_min = get_count(j, s, "minLength", path, &min);
    bool has_max = get_count(j, s, "maxLength", path, &max);
    if (j->st != PONDER_OK)
        return NULL;
    if (has_max && max < min)
        return js_fail(j, PONDER_ERR_FORMAT, path, "%s is below minLength", "maxLength");
    gr_buf b = { 0 };
    if (fmt) {
        const char *f = json_string_value(fmt);
        if (!f)
            return js_fail(j, PONDER_ERR_FORMAT, path, "%s must be a string", "format");
        static const char *const formats[] = { "date", "time", "date-time", "uuid", "email", "hostname",
                                               "ipv4", "ipv6", "uri", "duration" };
        if (!js_in_list(f, formats, sizeof formats / sizeof *formats))
            return js_fail(j, PONDER_ERR_UNSUPPORTED, path,
                           "unsupported string format '%s' (date, time, date-time, uuid, email, hostname, ipv4, "
                           "ipv6, uri and duration are)", f);
        if (pat || has_min || has_max)
            return js_fail(j, PONDER_ERR_UNSUPPORTED, path, "%s together with format is not supported",
                           pat ? "pattern" : has_min ? "minLength" : "maxLength");
        gr_buf_printf(&b, "\"\\\"\" %s \"\\\"\" space", f);
    } else if (pat) {
        const char *p = json_string_value(pat);
        if (!p)
            return js_fail(j, PONDER_ERR_FORMAT, path, "%s must be a string", "pattern");
        if (has_min || has_max)
            return js_fail(j, PONDER_ERR_UNSUPPORTED, path, "%s together with pattern is not supported",
                           has_min ? "minLength" : "maxLength");
        char msg[200];
        gr_buf_puts(&b, "\"\\\"\" ");
        if (!sp_pattern(&b, p, msg, sizeof msg)) {
            free(b.s);
            return js_fail(j, PONDER_ERR_UNSUPPORTED, path, "pattern: %s", msg);
        }
        gr_buf_puts(&b, " \"\\\"\" space");
    } else if (has_min || has_max) {
        if (has_max)
            gr_buf_printf(&b, "\"\\\"\" char{%lld,%lld} \"\\\"\" space", min, max);
        else
            gr_buf_printf(&b, "\"\\\"\" char{%lld,} \"\\\"\" space", min);
    } else {
        return strdup("string");
    }
    char *ret = b.oom ? NULL : js_add_rule(j, hint, b.s);
    if (b.oom)
        j->rules.oom = true;
    free(b.s);
    return ret;
}

/* A bound as an integer: ceil for lower bounds, floor for upper ones. */
static bool int_bound(js *j, json_t *s, const char *k, bool lower, const char *path, long long *v)
{
    json_t *x = json_object_get(s, k);
    if (!x)
        return false;
    if (!json_is_number(x)) {
        js_fail(j, PONDER_ERR_FORMAT, path, "%s must be a number", k);
        return false;
    }
    double d = json_number_value(x);
    if (!(fabs(d) < 1e17)) {
        js_fail(j, PONDER_ERR_UNSUPPORTED, path, "%s beyond 1e17 is not supported", k);
        return false;
    }
    const bool exclusive = strncmp(k, "exclusive", 9) == 0;
    double r = lower ? ceil(d) : floor(d);
    if (exclusive && r == d)
        r += lower ? 1 : -1;
    *v = (long long)r;
    return true;
}

char *js_build_integer(js *j, json_t *s, const char *hint, const char *path)
{
    long long lo = 0, hi = 0, t;
    bool has_lo = false, has_hi = false;
    if (int_bound(j, s, "minimum", true, path, &t))
        lo = t, has_lo = true;
    if (int_bound(j, s, "exclusiveMinimum", true, path, &t) && (!has_lo || t > lo))
        lo = t, has_lo = true;
    if (int_bound(j, s, "maximum", false, path, &t))
        hi = t, has_hi = true;
    if (int_bound(j, s, "exclusiveMaximum", false, path, &t) && (!has_hi || t < hi))
        hi = t, has_hi = true;
    if (j->st != PONDER_OK)
        return NULL;
    if (!has_lo && !has_hi)
        return strdup("integer");
    gr_buf b = { 0 };
    if (!sp_int_range(&b, has_lo, lo, has_hi, hi)) {
        free(b.s);
        return js_fail(j, PONDER_ERR_UNSUPPORTED, path, "%s", "integer bounds no integer of at most 16 digits meets");
    }
    gr_buf_puts(&b, " space");
    char *ret = b.oom ? NULL : js_add_rule(j, hint, b.s);
    if (b.oom)
        j->rules.oom = true;
    free(b.s);
    return ret;
}

/* y in [a, b] (b < 0: unbounded), y >= 0, a decimal without exponent. */
static void nonneg_real(gr_buf *b, long long a, long long z)
{
    if (z < 0 || z > a) {
        gr_buf_puts(b, "( ");
        sp_int_range(b, true, a, z >= 0, z - 1);
        gr_buf_puts(b, " ( \".\" decimal-part )? )");
        if (z < 0)
            return;
        gr_buf_puts(b, " | ");
    }
    gr_buf_printf(b, "( \"%lld\" ( \".\" \"0\"{1,16} )? )", z);
}

char *js_build_number(js *j, json_t *s, const char *hint, const char *path)
{
    if (json_object_get(s, "exclusiveMinimum") || json_object_get(s, "exclusiveMaximum"))
        return js_fail(j, PONDER_ERR_UNSUPPORTED, path, "%s on a number is not supported (on an integer it is)",
                       json_object_get(s, "exclusiveMinimum") ? "exclusiveMinimum" : "exclusiveMaximum");
    long long lo = 0, hi = 0;
    bool has_lo = int_bound(j, s, "minimum", true, path, &lo);
    bool has_hi = int_bound(j, s, "maximum", false, path, &hi);
    if (j->st != PONDER_OK)
        return NULL;
    if (!has_lo && !has_hi)
        return strdup("number");
    const char *k = has_lo ? "minimum" : "maximum";
    json_t *x = json_object_get(s, k);
    if ((has_lo && (double)lo != json_number_value(json_object_get(s, "minimum"))) ||
        (has_hi && (double)hi != json_number_value(json_object_get(s, "maximum"))) || !x)
        return js_fail(j, PONDER_ERR_UNSUPPORTED, path, "a non-integer %s on a number is not supported", k);
    if (has_lo && has_hi && lo > hi)
        return js_fail(j, PONDER_ERR_FORMAT, path, "%s is above maximum", "minimum");
    gr_buf b = { 0 };
    bool first = true;
    gr_buf_puts(&b, "( ");
    if (!has_hi || hi >= 0) { /* x >= 0 */
        nonneg_real(&b, has_lo && lo > 0 ? lo : 0, has_hi ? hi : -1);
        first = false;
    }
    if (!has_lo || lo < 0) { /* x = -y, y in [max(-hi, 0), -lo] */
        gr_buf_puts(&b, first ? "\"-\" ( " : " | \"-\" ( ");
        nonneg_real(&b, has_hi && hi < 0 ? -hi : 0, has_lo ? -lo : -1);
        gr_buf_puts(&b, " )");
    }
    gr_buf_puts(&b, " ) space");
    char *ret = b.oom ? NULL : js_add_rule(j, hint, b.s);
    if (b.oom)
        j->rules.oom = true;
    free(b.s);
    return ret;
}

