/*
 * cli.h — what the ponder binary's files share: the subcommands' entry points and a few
 * helpers (finding a model, reading a file, printing text safely, JSON strings, clocks).
 * Everything here may print: this is the application, not libponder.
 */
#ifndef PONDER_CLI_H
#define PONDER_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include <jansson.h>

#include "cli/args.h"
#include "ponder/model.h"

/* Subcommands: argv[0] is the subcommand's name; they return the process exit status. */
int cmd_info(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_chat(int argc, char **argv);
int cmd_perplexity(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_quantize(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_calibrate(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_distill(int argc, char **argv);
int cmd_data(int argc, char **argv);
int cmd_template(int argc, char **argv);
int cmd_embed(int argc, char **argv);

/* Where the default model lives, relative to a "shared" folder. */
#define CLI_DEFAULT_MODEL_REL "models/stories260K/stories260K.gguf"

/* Resolves the model argument into out[cap]:
 *  - given: the path if it exists, else $PONDER_MODELS/NAME, else $PONDER_MODELS/NAME.gguf
 *    ($PONDER_MODELS defaults to ~/.local/share/ponder/models); none → runtime error (1);
 *  - NULL: the default model, looked for at $PONDER_SHARED/<rel>, ./../shared/<rel>,
 *    <exe dir>/../../shared/<rel>, <exe dir>/../shared/<rel>, then the shared folder
 *    known at build time; none → usage error (2).
 * Returns 0 on success, else the exit status (the message is printed). */
int cli_find_model(const char *cmd, const char *given, char *out, size_t cap);

/* Reads a whole file (malloc'ed, NUL-terminated; *len excludes the NUL). On failure
 * prints "ponder: PATH: <reason>" and returns NULL. */
char *cli_read_file(const char *path, size_t *len);

/* Writes s[0..n) between single quotes with C-style escapes for quotes, backslashes and
 * control characters, and \xNN for bytes that are not valid UTF-8. */
void cli_fput_quoted(FILE *f, const char *s, size_t n);

/* A JSON string of s[0..n), invalid UTF-8 bytes replaced by U+FFFD (jansson requires
 * valid UTF-8). NULL only when out of memory. */
json_t *cli_json_string(const char *s, size_t n);

/* Applies -ctk/-ctv values ("f16"/"f32", any case; NULL keeps the default) to cp.
 * Returns 0, or 2 after printing the usage error for a bad value. */
int cli_set_cache_types(const char *cmd, const char *ctk, const char *ctv, ponder_context_params *cp);

/* The JSON object of a think strategy's result (shape in `ponder run --help`); NULL when
 * out of memory. Defined in cmd_eval.c, used by run --strategy --json and eval --log. */
struct ponder_think_result;
json_t *cli_think_json(const struct ponder_think_result *r);

/* Monotonic clock in milliseconds. */
double cli_now_ms(void);

/* "1.13 MiB"-style size into buf. */
const char *cli_human_bytes(unsigned long long n, char *buf, size_t cap);

#endif
