/* args.c — option parsing and error reporting for the ponder binary (see args.h). */
#include "cli/args.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (cmd)
        fprintf(stderr, "ponder %s: %s (try 'ponder %s --help')\n", cmd, msg, cmd);
    else
        fprintf(stderr, "ponder: %s (try 'ponder --help')\n", msg);
    return CLI_EXIT_USAGE;
}

int cli_runtime_error(const char *fmt, ...)
{
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "ponder: %s\n", msg);
    return CLI_EXIT_RUNTIME;
}

bool cli_parse_i64(const char *s, int64_t *out)
{
    /* strtoll would skip leading blanks and accept "12abc" up to the 'a': both refused. */
    if (!s || !*s || isspace((unsigned char)*s))
        return false;
    char *end = NULL;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno != 0 || *end != '\0')
        return false;
    *out = (int64_t)v;
    return true;
}

bool cli_parse_double(const char *s, double *out)
{
    if (!s || !*s || isspace((unsigned char)*s))
        return false;
    char *end = NULL;
    errno = 0;
    double v = strtod(s, &end);
    if (errno == ERANGE && (v == HUGE_VAL || v == -HUGE_VAL))
        return false;
    if (*end != '\0' || !isfinite(v))
        return false;
    *out = v;
    return true;
}

static bool has_range(const cli_opt *o)
{
    return !(o->min == 0.0 && o->max == 0.0);
}

/* Prints the allowed range in the form users type it. */
static int range_error(const char *cmd, const cli_opt *o, const char *value)
{
    if (o->kind == CLI_INT)
        return cli_usage_error(cmd, "%s must be an integer in [%.0f, %.0f], got '%s'", o->name, o->min,
                               o->max, value);
    return cli_usage_error(cmd, "%s must be a number in [%g, %g], got '%s'", o->name, o->min, o->max,
                           value);
}

static cli_result store(const char *cmd, const cli_opt *o, const char *value)
{
    switch (o->kind) {
    case CLI_FLAG:
        *(bool *)o->out = true;
        break;
    case CLI_STRING:
        *(const char **)o->out = value;
        break;
    case CLI_INT: {
        int64_t v;
        if (!cli_parse_i64(value, &v)) {
            cli_usage_error(cmd, "invalid value '%s' for %s: expected an integer", value, o->name);
            return CLI_BAD;
        }
        double lo = has_range(o) ? o->min : (double)INT32_MIN, hi = has_range(o) ? o->max : (double)INT32_MAX;
        if ((double)v < lo || (double)v > hi) {
            cli_opt r = *o;
            r.min = lo;
            r.max = hi;
            range_error(cmd, &r, value);
            return CLI_BAD;
        }
        *(int32_t *)o->out = (int32_t)v;
        break;
    }
    case CLI_FLOAT: {
        double v;
        if (!cli_parse_double(value, &v)) {
            cli_usage_error(cmd, "invalid value '%s' for %s: expected a number", value, o->name);
            return CLI_BAD;
        }
        if (has_range(o) && (v < o->min || v > o->max)) {
            range_error(cmd, o, value);
            return CLI_BAD;
        }
        *(float *)o->out = (float)v;
        break;
    }
    case CLI_SEED: {
        /* -1 (llama.cpp's LLAMA_DEFAULT_SEED convention) asks for a random seed; any
         * other value must be a plain non-negative integer below 2^64 - 1. */
        if (strcmp(value, "-1") == 0) {
            *(uint64_t *)o->out = UINT64_MAX;
            break;
        }
        char *end = NULL;
        errno = 0;
        unsigned long long v = (value[0] >= '0' && value[0] <= '9') ? strtoull(value, &end, 10) : 0;
        if (!end || *end != '\0' || errno != 0 || v == UINT64_MAX) {
            cli_usage_error(cmd, "invalid value '%s' for %s: expected -1 (random) or an integer in [0, %llu]",
                            value, o->name, (unsigned long long)(UINT64_MAX - 1));
            return CLI_BAD;
        }
        *(uint64_t *)o->out = (uint64_t)v;
        break;
    }
    }
    if (o->given)
        *o->given = true;
    return CLI_PARSED;
}

static const cli_opt *find_opt(const cli_opt *opts, size_t n_opts, const char *name, size_t name_len)
{
    for (size_t i = 0; i < n_opts; i++) {
        const char *names[2] = { opts[i].name, opts[i].alias };
        for (int k = 0; k < 2; k++)
            if (names[k] && strlen(names[k]) == name_len && strncmp(names[k], name, name_len) == 0)
                return &opts[i];
    }
    return NULL;
}

cli_result cli_parse(const char *cmd, int argc, char **argv, const cli_opt *opts, size_t n_opts,
                     const char **positional, int max_positional, int *n_positional)
{
    int n_pos = 0;
    bool options_done = false;
    if (n_positional)
        *n_positional = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool is_option = !options_done && a[0] == '-' && a[1] != '\0';
        if (is_option && strcmp(a, "--") == 0) {
            options_done = true;
            continue;
        }
        if (!is_option) {
            if (n_pos >= max_positional) {
                if (max_positional == 0)
                    cli_usage_error(cmd, "unexpected argument '%s'", a);
                else
                    cli_usage_error(cmd, "too many arguments ('%s')", a);
                return CLI_BAD;
            }
            positional[n_pos++] = a;
            if (n_positional)
                *n_positional = n_pos;
            continue;
        }
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0)
            return CLI_HELP;

        /* "--name=value" for long options; short ones take the next argument. */
        const char *eq = strncmp(a, "--", 2) == 0 ? strchr(a, '=') : NULL;
        size_t name_len = eq ? (size_t)(eq - a) : strlen(a);
        const cli_opt *o = find_opt(opts, n_opts, a, name_len);
        if (!o) {
            cli_usage_error(cmd, "unknown option '%.*s'", (int)name_len, a);
            return CLI_BAD;
        }
        const char *value = NULL;
        if (o->kind == CLI_FLAG) {
            if (eq) {
                cli_usage_error(cmd, "option %s takes no value", o->name);
                return CLI_BAD;
            }
        } else if (eq) {
            value = eq + 1;
        } else {
            if (i + 1 >= argc) {
                cli_usage_error(cmd, "option %.*s needs a value", (int)name_len, a);
                return CLI_BAD;
            }
            value = argv[++i];
        }
        if (store(cmd, o, value) != CLI_PARSED)
            return CLI_BAD;
    }
    return CLI_PARSED;
}
