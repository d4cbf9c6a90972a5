/*
 * cmd_data.c — `ponder data`: generators of training and evaluation data.
 *
 *   ponder data arith --difficulty D --count N --seed S [--split train|test] [--paths one|mixed]
 *
 * writes N JSONL lines {"question": ..., "solution": ..., "answer": N} to stdout (answer
 * an integer JSON number). The same arguments always give the same lines; the train and
 * test splits never share a question (see ponder_arith_generate in train.h).
 */
#include "cli/cli.h"

#include <stdlib.h>
#include <string.h>

#include "ponder/train.h"

static void usage(void)
{
    printf("usage: ponder data arith --difficulty D --count N [--seed S] [--split train|test]\n"
           "                        [--paths one|mixed]\n"
           "\n"
           "Writes N arithmetic word problems as JSONL to stdout, one object per line:\n"
           "  {\"question\": \"Tom has 3 apples. He gets 4 more. How many apples does Tom have?\",\n"
           "   \"solution\": \"3 + 4 = 7.\\nThe answer is 7.\", \"answer\": 7}\n"
           "The solution has one line per operation and ends with \"The answer is N.\";\n"
           "answer is that N as an integer JSON number (never negative).\n"
           "\n"
           "options:\n"
           "  --difficulty D   1..%d: D operations (+, -, and from 3 on also *), operands\n"
           "                   below 10, 20, 50, 100, 200 for D = 1..5; results stay <= 999\n"
           "  --count N        number of problems\n"
           "  --seed S         generator seed (default: 1); same arguments, same output\n"
           "  --split NAME     train (default) or test: disjoint, chosen by a hash of the\n"
           "                   question (%d%% of all questions are test)\n"
           "  --paths STYLE    one (default): each line as written, \"96 - 43 = 53.\";\n"
           "                   mixed: each line takes one of several equivalent paths\n"
           "                   (operands of + and * swapped, or through tens and units:\n"
           "                   \"96 - 43 = 96 - 40 - 3 = 56 - 3 = 53.\"), chosen per line;\n"
           "                   the questions are the same as with one\n"
           "  -h, --help       this help\n",
           PONDER_ARITH_MAX_DIFFICULTY, PONDER_ARITH_TEST_PERMILLE / 10);
}

static int cmd_arith(int argc, char **argv)
{
    int32_t difficulty = 0, count = -1;
    uint64_t seed = 1;
    const char *split_name = "train", *paths = "one";
    bool have_d = false, have_n = false;
    const cli_opt opts[] = {
        {"--difficulty", NULL, CLI_INT, &difficulty, 1, PONDER_ARITH_MAX_DIFFICULTY, &have_d},
        {"--count", "-n", CLI_INT, &count, 0, 2147483647.0, &have_n},
        {"--seed", "-s", CLI_SEED, &seed, 0, 0, NULL},
        {"--split", NULL, CLI_STRING, &split_name, 0, 0, NULL},
        {"--paths", NULL, CLI_STRING, &paths, 0, 0, NULL},
    };
    switch (cli_parse("data arith", argc, argv, opts, sizeof opts / sizeof opts[0], NULL, 0, NULL)) {
    case CLI_HELP:
        usage();
        return CLI_EXIT_OK;
    case CLI_BAD:
        return CLI_EXIT_USAGE;
    case CLI_PARSED:
        break;
    }
    if (!have_d || !have_n)
        return cli_usage_error("data", "arith needs --difficulty and --count");
    ponder_arith_split split;
    if (strcmp(split_name, "train") == 0)
        split = PONDER_ARITH_TRAIN;
    else if (strcmp(split_name, "test") == 0)
        split = PONDER_ARITH_TEST;
    else
        return cli_usage_error("data", "--split must be train or test, not '%s'", split_name);
    const bool mixed = strcmp(paths, "mixed") == 0;
    if (!mixed && strcmp(paths, "one") != 0)
        return cli_usage_error("data", "--paths must be one or mixed, not '%s'", paths);
    if (seed == UINT64_MAX) /* "-1": random is no use for a reproducible data set */
        return cli_usage_error("data", "--seed must be a fixed number");

    ponder_arith_item it;
    ponder_error err;
    for (int32_t i = 0; i < count; i++) {
        if (ponder_arith_generate(difficulty, seed, split, (uint64_t)i, &it, &err) != PONDER_OK)
            return cli_runtime_error("%s", err.msg);
        /* the paths' own stream per item, so the questions stay those of --paths one */
        const uint64_t path_seed = seed ^ ((uint64_t)difficulty << 56) ^ ((uint64_t)split << 52) ^ ((uint64_t)i << 8);
        if (mixed && ponder_arith_vary_paths(&it, path_seed, &err) != PONDER_OK)
            return cli_runtime_error("%s", err.msg);
        json_t *o = json_object();
        json_object_set_new(o, "question", json_string(it.question));
        json_object_set_new(o, "solution", json_string(it.solution));
        json_object_set_new(o, "answer", json_integer((json_int_t)it.answer));
        char *line = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
        json_decref(o);
        if (!line)
            return cli_runtime_error("out of memory");
        const bool ok = fputs(line, stdout) >= 0 && fputc('\n', stdout) != EOF;
        free(line);
        if (!ok)
            return cli_runtime_error("cannot write to stdout");
    }
    if (fflush(stdout) != 0)
        return cli_runtime_error("cannot write to stdout");
    return CLI_EXIT_OK;
}

int cmd_data(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
        usage();
        return argc < 2 ? CLI_EXIT_USAGE : CLI_EXIT_OK;
    }
    if (strcmp(argv[1], "arith") == 0)
        return cmd_arith(argc - 1, argv + 1);
    return cli_usage_error("data", "unknown generator '%s' (known: arith)", argv[1]);
}
