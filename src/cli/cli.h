/*
 * cli.h — what the ponder binary's files share: the subcommands' entry points and a few
 * helpers (finding a model, reading a file, printing text safely, JSON strings) and the
 * common set-up of a model and what runs it (engine.c).
 * Everything here may print: this is the application, not libponder.
 */
#ifndef PONDER_CLI_H
#define PONDER_CLI_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "cli/args.h"
#include "ponder/gen.h"
#include "ponder/model.h"
#include "ponder/pool.h"
#include "ponder/tokenizer.h"

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
int cmd_pull(int argc, char **argv);
int cmd_list(int argc, char **argv);
int cmd_rm(int argc, char **argv);

/* Where the default model lives, relative to a "shared" folder and to the repository root. */
#define CLI_DEFAULT_MODEL_REL "models/stories260K/stories260K.gguf"

/* Resolves the model argument into out[cap]:
 *  - given: the path if it exists, else $PONDER_MODELS/NAME, else $PONDER_MODELS/NAME.gguf,
 *    else a pulled hf.co/OWNER/REPO[:QUANT], URL or catalogue name (ponder_hub_find;
 *    $PONDER_MODELS defaults to ~/.local/share/ponder/models); none → runtime error (1);
 *  - NULL: the default model, looked for at $PONDER_SHARED/<rel>, ./../shared/<rel>,
 *    <exe dir>/../../shared/<rel>, <exe dir>/../shared/<rel>, the shared folder known at
 *    build time, then the repository's own copy: ./<rel>, <exe dir>/../../<rel>, the
 *    source tree known at build time; none → usage error (2).
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

/* Applies -ctk/-ctv values ("f16"/"f32"/"q8_0"/"q4_0", any case; NULL keeps the default) to cp.
 * Returns 0, or 2 after printing the usage error for a bad value. */
int cli_set_cache_types(const char *cmd, const char *ctk, const char *ctv, ponder_context_params *cp);
/* Applies a -fa value (on/off/auto, or llama-bench's 1/0; NULL keeps auto) to cp.
 * Returns 0, or 2 after printing the usage error for a bad value. */
int cli_set_flash_attn(const char *cmd, const char *fa, ponder_context_params *cp);

/* The JSON object of a think strategy's result (shape in `ponder run --help`); NULL when
 * out of memory. Defined in cmd_eval.c, used by run --strategy --json and eval --log. */
struct ponder_think_result;
json_t *cli_think_json(const struct ponder_think_result *r);

/* ---- the common set-up (engine.c) ---- */

/* The flags every generating subcommand shares; CLI_MODEL_OPTS(&o) lists them in a
 * cli_opt table (-m, -c, -t, -ctk, -ctv). */
typedef struct cli_model_opts {
    const char *model;     /* -m: a path or a name ($PONDER_MODELS); NULL: the default model */
    const char *draft;     /* --draft (NULL: none) */
    const char *verifier;  /* --verifier: bon's judge (NULL: none; run and eval) */
    const char *ctk, *ctv; /* -ctk / -ctv (NULL: f16) */
    const char *fa;        /* -fa (NULL: auto) */
    int32_t n_ctx;         /* -c: 0 is the model's training context */
    bool n_ctx_given;
    int32_t n_threads;     /* -t (0: every CPU) */
    bool float_act;        /* --float-activations */
} cli_model_opts;

#define CLI_MODEL_OPTS(mo)                                                                 \
    { "-m", "--model", CLI_STRING, &(mo)->model, 0, 0, NULL },                             \
    { "-c", "--ctx-size", CLI_INT, &(mo)->n_ctx, 0, INT32_MAX, &(mo)->n_ctx_given },       \
    { "-t", "--threads", CLI_INT, &(mo)->n_threads, 1, 1024, NULL },                       \
    { "-ctk", "--cache-type-k", CLI_STRING, &(mo)->ctk, 0, 0, NULL },                      \
    { "-ctv", "--cache-type-v", CLI_STRING, &(mo)->ctv, 0, 0, NULL },                      \
    { "-fa", "--flash-attn", CLI_STRING, &(mo)->fa, 0, 0, NULL }

/* A loaded model with what runs it. cp is the context parameters the flags give (n_ctx
 * resolved, cache types, the pool), for a context or a gen engine. */
typedef struct cli_engine {
    const char *cmd;
    char path[PATH_MAX], draft_path[PATH_MAX], verifier_path[PATH_MAX];
    ponder_model *m, *draft, *verifier_model;
    ponder_tokenizer *tok, *verifier_tok;
    struct ponder_verifier *verifier; /* --verifier's judge, its own context at its training length */
    ponder_pool *pool;
    ponder_context_params cp;
} cli_engine;

/* Finds and loads the model (and the draft, checked against it; and the verifier), its
 * tokenizer and a pool;
 * n_ctx: -c, or default_n_ctx clipped to the training context when -c is not given.
 * Returns 0, or the exit status after printing the error (close e in either case). */
int cli_engine_open(const char *cmd, const cli_model_opts *o, int32_t default_n_ctx, cli_engine *e);
/* A context over e->cp; 0 or the exit status (printed). */
int cli_engine_context(cli_engine *e, ponder_context **out);
/* A gen engine over e->cp with n_seq_max sequences, n_kv_cells cells (0: n_ctx each) and
 * e's draft (if any) proposing draft_k tokens to start with (0: gen's default). */
int cli_engine_gen(cli_engine *e, int32_t n_seq_max, int32_t n_kv_cells, int32_t draft_k, ponder_gen **out);
/* Tokenizes a prompt as `ponder run` does (special: special-token texts parsed, no BOS)
 * into *ids (malloc'ed); an empty prompt or one longer than the context is an error. */
int cli_engine_encode(const cli_engine *e, const char *text, size_t len, bool special, ponder_token **ids,
                      size_t *n);
void cli_engine_close(cli_engine *e);

/* "1.13 MiB"-style size into buf. */
const char *cli_human_bytes(unsigned long long n, char *buf, size_t cap);

#endif
