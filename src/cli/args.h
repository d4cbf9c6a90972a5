/*
 * args.h — the command line's small option parser, shared by every subcommand.
 *
 * Options are exact strings as llama.cpp spells them ("-m", "--model", "-ctk"); there is
 * no bundling of single-letter flags. A long option also accepts "--name=value". A value
 * is always the next argument, even if it starts with '-' (so "-n -1" works). "--" ends
 * the options. Numbers must be entirely numeric and in range, or the parse fails.
 * The same option given twice: the last one wins, as in llama.cpp.
 *
 * Exit-status convention for the whole binary: 0 success, 1 runtime error ("ponder:
 * <message>" on stderr), 2 usage error (one line on stderr ending with
 * "(try 'ponder CMD --help')").
 */
#ifndef PONDER_CLI_ARGS_H
#define PONDER_CLI_ARGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CLI_EXIT_OK 0
#define CLI_EXIT_RUNTIME 1
#define CLI_EXIT_USAGE 2

typedef enum cli_kind {
    CLI_FLAG,   /* bool *: set to true, takes no value */
    CLI_STRING, /* const char **: points into argv */
    CLI_INT,    /* int32_t *, within [min, max] */
    CLI_FLOAT,  /* float *, finite, within [min, max] */
    CLI_SEED,   /* uint64_t *: 0 … 2^64-2, or -1 meaning "random" (UINT64_MAX) */
} cli_kind;

typedef struct cli_opt {
    const char *name;  /* "-m" */
    const char *alias; /* "--model", or NULL */
    cli_kind kind;
    void *out;
    double min, max;   /* inclusive bounds for CLI_INT/CLI_FLOAT (ignored when min == max == 0) */
    bool *given;       /* set to true when the option appears; may be NULL */
} cli_opt;

typedef enum cli_result {
    CLI_PARSED = 0, /* options stored, positionals collected */
    CLI_HELP,       /* -h/--help seen: the caller prints its usage to stdout, exits 0 */
    CLI_BAD,        /* a usage error was printed to stderr: exit 2 */
} cli_result;

/* Parses argv[1..argc) (argv[0] is the subcommand name) against opts[0..n_opts).
 * Non-option arguments go to positional[0..max_positional); one more is a usage error.
 * cmd names the subcommand in messages ("run"). */
cli_result cli_parse(const char *cmd, int argc, char **argv, const cli_opt *opts, size_t n_opts,
                     const char **positional, int max_positional, int *n_positional);

/* Prints "ponder CMD: <message> (try 'ponder CMD --help')" to stderr; returns 2. */
int cli_usage_error(const char *cmd, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* Prints "ponder: <message>" to stderr; returns 1. */
int cli_runtime_error(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;

/* Strict number parsing (whole string, no overflow); false on failure. */
bool cli_parse_i64(const char *s, int64_t *out);
bool cli_parse_double(const char *s, double *out);

#endif
