/* cli_util.h — temporary input files and a
 * copy of the default model that carries a chat template, for the chat CLI tests. */
#ifndef PONDER_TESTS_CHAT_CLI_UTIL_H
#define PONDER_TESTS_CHAT_CLI_UTIL_H

#include <stddef.h>

#include "testutil.h" /* tu_run_cli */

/* Writes text to a new temporary file; returns its malloc'ed path. */
char *cu_temp_file(const char *text, size_t len);

/* Copies the stories260K model to a temporary GGUF with tokenizer.chat_template = tmpl;
 * returns its malloc'ed path (NULL on failure). */
char *cu_model_with_template(const char *tmpl);

#endif
