/*
 * cmd_template.c — `ponder template`: renders a chat template with the variables of one
 * reference case (shared/reference/templates/cases.json format) and prints the result
 * byte for byte, nothing added. An external harness checks this contract:
 *   success → the rendering on stdout, exit 0;
 *   raise_exception(msg) → msg on stderr, exit 1;
 *   template error → "ponder: SOURCE: line L, column C: ..." on stderr, exit 1;
 *   usage error → exit 2.
 */
#include "cli/cli.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "ponder/chat.h"
#include "ponder/gguf.h"
#include "ponder/tokenizer.h"

static void usage(void)
{
    printf("usage: ponder template (--template FILE | -m MODEL | --chatml) --input CASE.json\n"
           "\n"
           "Renders a chat template as transformers' apply_chat_template does (jinja2,\n"
           "trim_blocks, lstrip_blocks, raise_exception, strftime_now) and prints the\n"
           "result to stdout exactly, with no newline added. strftime_now() gives the\n"
           "local time now, or with SOURCE_DATE_EPOCH=SECONDS that instant in UTC.\n"
           "\n"
           "CASE.json is one object in the format of shared/reference/templates/cases.json:\n"
           "messages, tools (null: undefined), bos_token, eos_token, add_generation_prompt\n"
           "and extra_context (more variables); other fields (id, expected) are ignored.\n"
           "\n"
           "options:\n"
           "      --template FILE  the Jinja template source\n"
           "  -m, --model MODEL    use the model's tokenizer.chat_template; bos_token and\n"
           "                       eos_token default to the model's token texts\n"
           "      --chatml         use the built-in ChatML template\n"
           "  -i, --input FILE     the case ('-' reads stdin)\n"
           "  -h, --help           this help\n"
           "\n"
           "Exit status: 0 rendered; 1 the template raised an exception (its message on\n"
           "stderr), a template error (with line and column) or unreadable input; 2 usage.\n");
}

static char *read_input(const char *path, size_t *len)
{
    if (strcmp(path, "-") != 0)
        return cli_read_file(path, len);
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        size_t got = fread(buf + n, 1, cap - n - 1, stdin);
        n += got;
        if (got == 0)
            break;
        if (n + 1 == cap) {
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
    }
    if (!buf) {
        cli_runtime_error("out of memory reading stdin");
        return NULL;
    }
    buf[n] = 0;
    *len = n;
    return buf;
}

/* The template variables of a case; bos/eos fall back to the model's when it omits them. */
static json_t *case_vars(json_t *c, const char *bos, const char *eos)
{
    json_t *v = json_object();
    json_t *x = json_object_get(c, "messages");
    if (x)
        json_object_set(v, "messages", x);
    else
        json_object_set_new(v, "messages", json_array());
    x = json_object_get(c, "bos_token");
    if (x)
        json_object_set(v, "bos_token", x);
    else if (bos)
        json_object_set_new(v, "bos_token", json_string(bos));
    x = json_object_get(c, "eos_token");
    if (x)
        json_object_set(v, "eos_token", x);
    else if (eos)
        json_object_set_new(v, "eos_token", json_string(eos));
    x = json_object_get(c, "add_generation_prompt");
    json_object_set_new(v, "add_generation_prompt", json_boolean(x && json_is_true(x)));
    x = json_object_get(c, "tools");
    if (x && !json_is_null(x))
        json_object_set(v, "tools", x);
    json_t *extra = json_object_get(c, "extra_context");
    const char *k;
    json_object_foreach(extra, k, x) {
        json_object_set(v, k, x);
    }
    return v;
}

static const char *token_text(const ponder_tokenizer *tok, ponder_token id)
{
    if (id < 0 || id >= ponder_tokenizer_n_vocab(tok))
        return "";
    const char *s = ponder_tokenizer_token_text(tok, id);
    return s ? s : "";
}

int cmd_template(int argc, char **argv)
{
    const char *cmd = "template";
    const char *tmpl_path = NULL, *model_arg = NULL, *input = NULL;
    bool chatml = false;
    const cli_opt opts[] = {
        { "--template", NULL, CLI_STRING, &tmpl_path, 0, 0, NULL },
        { "-m", "--model", CLI_STRING, &model_arg, 0, 0, NULL },
        { "--chatml", NULL, CLI_FLAG, &chatml, 0, 0, NULL },
        { "-i", "--input", CLI_STRING, &input, 0, 0, NULL },
    };
    const char *pos[1] = { NULL };
    int n_pos = 0;
    cli_result pr = cli_parse(cmd, argc, argv, opts, sizeof opts / sizeof opts[0], pos, 1, &n_pos);
    if (pr == CLI_HELP) {
        usage();
        return CLI_EXIT_OK;
    }
    if (pr != CLI_PARSED)
        return CLI_EXIT_USAGE;
    if (n_pos)
        return cli_usage_error(cmd, "unexpected argument '%s'", pos[0]);
    if ((tmpl_path != NULL) + (model_arg != NULL) + chatml != 1)
        return cli_usage_error(cmd, "give exactly one of --template FILE, -m MODEL or --chatml");
    if (!input)
        return cli_usage_error(cmd, "no case given (--input CASE.json)");

    int rc = CLI_EXIT_RUNTIME;
    char *src = NULL, *case_text = NULL, *vars_text = NULL, *out = NULL;
    char *bos = NULL, *eos = NULL;
    json_t *c = NULL, *vars = NULL;
    ponder_chat_template *t = NULL;
    ponder_gguf *g = NULL;
    ponder_tokenizer *tok = NULL;
    ponder_error err = { 0 };
    const char *source_name = chatml ? "chatml" : tmpl_path;
    char model_path[PATH_MAX];

    size_t case_len;
    case_text = read_input(input, &case_len);
    if (!case_text)
        goto done;
    json_error_t je;
    c = json_loadb(case_text, case_len, 0, &je);
    if (!c) {
        cli_runtime_error("%s: bad JSON at line %d, column %d: %s", input, je.line, je.column, je.text);
        goto done;
    }
    if (!json_is_object(c)) {
        cli_runtime_error("%s: the case must be a JSON object", input);
        goto done;
    }
    json_t *msgs = json_object_get(c, "messages");
    if (msgs && !json_is_array(msgs)) {
        cli_runtime_error("%s: \"messages\" must be an array", input);
        goto done;
    }

    if (model_arg) {
        int frc = cli_find_model(cmd, model_arg, model_path, sizeof model_path);
        if (frc != 0) {
            rc = frc;
            goto done;
        }
        source_name = model_path;
        if (ponder_gguf_open(model_path, &g, &err) != PONDER_OK) {
            cli_runtime_error("%s", err.msg);
            goto done;
        }
        if (ponder_chat_template_from_gguf(g, &t, &err) != PONDER_OK) {
            cli_runtime_error("%s: %s%s", model_path, err.msg,
                              err.code == PONDER_ERR_NOT_FOUND ? " (--chatml uses the ChatML fallback)" : "");
            goto done;
        }
        if (ponder_tokenizer_create(g, &tok, &err) == PONDER_OK) {
            bos = strdup(token_text(tok, ponder_tokenizer_bos(tok)));
            eos = strdup(token_text(tok, ponder_tokenizer_eos(tok)));
        }
    } else {
        size_t src_len;
        const char *s;
        if (chatml) {
            s = ponder_chat_template_chatml_source();
            src_len = strlen(s);
        } else {
            src = cli_read_file(tmpl_path, &src_len);
            if (!src)
                goto done;
            s = src;
        }
        if (ponder_chat_template_create(s, src_len, &t, &err) != PONDER_OK) {
            cli_runtime_error("%s: %s", source_name, err.msg);
            goto done;
        }
    }

    vars = case_vars(c, bos, eos);
    vars_text = json_dumps(vars, JSON_COMPACT | JSON_ENCODE_ANY);
    if (!vars_text) {
        cli_runtime_error("out of memory");
        goto done;
    }
    size_t out_len;
    ponder_status st = ponder_chat_render_json(t, vars_text, strlen(vars_text), &out, &out_len, &err);
    if (st == PONDER_ERR_INVALID_ARG) {
        /* raise_exception: the template's own message, verbatim */
        fprintf(stderr, "%s\n", err.msg);
        goto done;
    }
    if (st != PONDER_OK) {
        cli_runtime_error("%s: %s", source_name, err.msg);
        goto done;
    }
    if (fwrite(out, 1, out_len, stdout) != out_len || fflush(stdout) != 0) {
        cli_runtime_error("write error on stdout");
        goto done;
    }
    rc = CLI_EXIT_OK;
done:
    free(out);
    free(vars_text);
    json_decref(vars);
    json_decref(c);
    free(case_text);
    free(src);
    free(bos);
    free(eos);
    ponder_chat_template_free(t);
    ponder_tokenizer_free(tok);
    ponder_gguf_free(g);
    return rc;
}
