/*
 * cmd_tokenize.c — `ponder tokenize`: text → token ids (and pieces), like llama.cpp's
 * llama-tokenize. Only the vocabulary is read (ponder_gguf + ponder_tokenizer), so it
 * also works on vocabulary-only GGUF files and on architectures `run` cannot run.
 */
#include "cli/cli.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "ponder/gguf.h"
#include "ponder/tokenizer.h"

static void usage(void)
{
    printf("usage: ponder tokenize [-m] MODEL (-p TEXT | -f FILE | TEXT) [options]\n"
           "\n"
           "Prints the tokens of TEXT: one line per token (id, then its piece quoted, with\n"
           "control characters and invalid UTF-8 escaped), or with --ids one JSON array.\n"
           "\n"
           "options:\n"
           "  -m, --model MODEL    GGUF file, or a name in $PONDER_MODELS (default: the\n"
           "                       stories260K model from ../shared, if found)\n"
           "  -p, --prompt TEXT    text to tokenize\n"
           "  -f, --file FILE      read the text from FILE (bytes as they are)\n"
           "      --ids            print only the ids, as a JSON array: [1, 403, 407]\n"
           "      --no-bos         add no BOS/EOS, even if the model asks for them\n"
           "                       (default: add them as the vocabulary says)\n"
           "      --parse-special  recognise special-token texts such as <s> in the text\n"
           "                       (default: they are tokenized as plain text)\n"
           "  -h, --help           this help\n");
}

int cmd_tokenize(int argc, char **argv)
{
    const char *cmd = "tokenize";
    const char *model_arg = NULL, *prompt = NULL, *file = NULL;
    bool ids_only = false, no_bos = false, parse_special = false;
    const cli_opt opts[] = {
        { "-m", "--model", CLI_STRING, &model_arg, 0, 0, NULL },
        { "-p", "--prompt", CLI_STRING, &prompt, 0, 0, NULL },
        { "-f", "--file", CLI_STRING, &file, 0, 0, NULL },
        { "--ids", NULL, CLI_FLAG, &ids_only, 0, 0, NULL },
        { "--no-bos", NULL, CLI_FLAG, &no_bos, 0, 0, NULL },
        { "--parse-special", NULL, CLI_FLAG, &parse_special, 0, 0, NULL },
    };
    const char *pos[2] = { NULL, NULL };
    int n_pos = 0;
    cli_result r = cli_parse(cmd, argc, argv, opts, sizeof opts / sizeof opts[0], pos, 2, &n_pos);
    if (r == CLI_HELP) {
        usage();
        return CLI_EXIT_OK;
    }
    if (r != CLI_PARSED)
        return CLI_EXIT_USAGE;

    /* Positionals fill what the options left open: MODEL first, then TEXT. */
    int next = 0;
    if (!model_arg && next < n_pos)
        model_arg = pos[next++];
    if (!prompt && !file && next < n_pos)
        prompt = pos[next++];
    if (next < n_pos)
        return cli_usage_error(cmd, "unexpected argument '%s'", pos[next]);
    if (prompt && file)
        return cli_usage_error(cmd, "give the text with -p or -f, not both");
    if (!prompt && !file)
        return cli_usage_error(cmd, "no text to tokenize (pass -p TEXT or -f FILE)");

    char model_path[PATH_MAX];
    int rc = cli_find_model(cmd, model_arg, model_path, sizeof model_path);
    if (rc != 0)
        return rc;

    char *text_buf = NULL;
    size_t text_len;
    if (file) {
        text_buf = cli_read_file(file, &text_len);
        if (!text_buf)
            return CLI_EXIT_RUNTIME;
    } else {
        text_len = strlen(prompt);
    }
    const char *text = file ? text_buf : prompt;

    ponder_error err = { 0 };
    ponder_gguf *g = NULL;
    ponder_tokenizer *tok = NULL;
    ponder_token *ids = NULL;
    size_t n_ids = 0;
    rc = CLI_EXIT_RUNTIME;
    if (ponder_gguf_open(model_path, &g, &err) != PONDER_OK) {
        cli_runtime_error("%s", err.msg);
        goto done;
    }
    if (ponder_tokenizer_create(g, &tok, &err) != PONDER_OK) {
        cli_runtime_error("%s: %s", model_path, err.msg);
        goto done;
    }
    if (ponder_tokenizer_encode(tok, text, text_len, !no_bos, parse_special, &ids, &n_ids, &err) != PONDER_OK) {
        cli_runtime_error("%s: %s", file ? file : "text", err.msg);
        goto done;
    }

    if (ids_only) {
        putchar('[');
        for (size_t i = 0; i < n_ids; i++)
            printf(i ? ", %d" : "%d", (int)ids[i]);
        printf("]\n");
    } else {
        char small[256];
        for (size_t i = 0; i < n_ids; i++) {
            /* special = true: control tokens such as <s> show their text here. */
            int32_t n = ponder_tokenizer_token_to_piece(tok, ids[i], small, (int32_t)sizeof small, true);
            char *piece = small;
            if (n < 0) {
                piece = malloc((size_t)-n);
                if (!piece) {
                    cli_runtime_error("out of memory");
                    goto done;
                }
                n = ponder_tokenizer_token_to_piece(tok, ids[i], piece, -n, true);
                if (n < 0)
                    n = 0;
            }
            printf("%6d -> ", (int)ids[i]);
            cli_fput_quoted(stdout, piece, (size_t)n);
            putchar('\n');
            if (piece != small)
                free(piece);
        }
    }
    rc = fflush(stdout) == 0 ? CLI_EXIT_OK : cli_runtime_error("writing the output failed");

done:
    free(ids);
    ponder_tokenizer_free(tok);
    ponder_gguf_free(g);
    free(text_buf);
    return rc;
}
