/*
 * main.c — the ponder binary: global --help/--version and dispatch to one subcommand
 * per file (cmd_<name>.c). Exit status: 0 success, 1 runtime error, 2 usage error.
 */
#include "cli/cli.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>

#ifndef PONDER_VERSION
#define PONDER_VERSION "unknown"
#endif

typedef struct command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} command;

static const command commands[] = {
    { "info", cmd_info, "architecture, hyper-parameters, tensor types, parameters, FLOPs per token" },
    { "tokenize", cmd_tokenize, "text to token ids and pieces" },
    { "run", cmd_run, "generate text from a prompt" },
    { "chat", cmd_chat, "a conversation with the model's chat template (line editing, KV reuse)" },
    { "bench", cmd_bench, "prompt and generation speed, as llama-bench" },
    { "embed", cmd_embed, "sentence embeddings (pooled final-norm states, as llama-embedding)" },
    { "perplexity", cmd_perplexity, "perplexity of a model on a text (llama-perplexity's method)" },
    { "quantize", cmd_quantize, "convert a model's weights to another type (as llama-quantize)" },
    { "eval", cmd_eval, "accuracy on a task (GSM8K, ARC, ...) under test-time strategies, with compute" },
    { "serve", cmd_serve, "OpenAI-compatible HTTP server with continuous batching" },
    { "calibrate", cmd_calibrate, "accept thresholds of a cascade route (System 1 / System 2) from a validation split" },
    { "train", cmd_train, "train a small llama model on text or prompt/completion JSONL" },
    { "distill", cmd_distill, "fine-tune a student on a teacher's majority-voted chains (System 2 -> 1)" },
    { "data", cmd_data, "generate task data (arith: arithmetic word problems as JSONL)" },
    { "template", cmd_template, "render a chat template with a case's messages (as transformers)" },
    { "pull", cmd_pull, "download a model: hf.co/OWNER/REPO[:QUANT], a URL, or a catalogue name" },
    { "list", cmd_list, "the models in $PONDER_MODELS: name, size, quant, architecture, parameters" },
    { "rm", cmd_rm, "remove a model from $PONDER_MODELS" },
};

static void usage(FILE *f)
{
    fprintf(f, "usage: ponder [--help] [--version] COMMAND [ARGS]\n\n"
               "Runs GGUF language models on this machine.\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "  %-10s same as COMMAND --help\n\n"
               "'ponder COMMAND --help' describes a command's options.\n"
               "A MODEL is a GGUF path, a name looked up as $PONDER_MODELS/NAME[.gguf], or a\n"
               "pulled hf.co/OWNER/REPO[:QUANT] or catalogue name (see 'ponder pull --help';\n"
               "$PONDER_MODELS defaults to ~/.local/share/ponder/models).\n"
               "Exit status: 0 success, 1 runtime error, 2 usage error.\n",
            "help CMD");
}

static const command *find_command(const char *name)
{
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    return NULL;
}

int main(int argc, char **argv)
{
    /* A closed pipe (`ponder run | head`) becomes a write error we report and exit 1
     * on, rather than death by SIGPIPE. */
    signal(SIGPIPE, SIG_IGN);
    if (argc < 2) {
        usage(stderr);
        return CLI_EXIT_USAGE;
    }
    const char *a = argv[1];
    if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
        usage(stdout);
        return CLI_EXIT_OK;
    }
    if (strcmp(a, "--version") == 0 || strcmp(a, "-v") == 0) {
        printf("ponder %s\n", PONDER_VERSION);
        return CLI_EXIT_OK;
    }
    if (strcmp(a, "help") == 0) {
        if (argc < 3) {
            usage(stdout);
            return CLI_EXIT_OK;
        }
        const command *c = find_command(argv[2]);
        if (!c)
            return cli_usage_error(NULL, "unknown command '%s'", argv[2]);
        char *help_argv[] = { argv[2], "--help", NULL };
        return c->run(2, help_argv);
    }
    if (a[0] == '-')
        return cli_usage_error(NULL, "unknown option '%s' (options go after the command)", a);
    const command *c = find_command(a);
    if (!c)
        return cli_usage_error(NULL, "unknown command '%s'", a);
    return c->run(argc - 1, argv + 1);
}
