/*
 * chat.h — chat templates: the model's own `tokenizer.chat_template` (Jinja) rendered by
 * Ponder's Jinja interpreter the way Hugging Face transformers renders it (sandboxed,
 * trim_blocks, lstrip_blocks, loopcontrols, raise_exception, strftime_now, Python-style
 * values), byte for byte.
 *
 * A template is parsed once (immutable, shareable by threads) and rendered per request.
 */
#ifndef PONDER_CHAT_H
#define PONDER_CHAT_H

#include "ponder/common.h"
#include "ponder/gguf.h"
#include "ponder/tokenizer.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ponder_chat_template ponder_chat_template;

/* Parses template source (not NUL-terminated necessarily). Syntax errors and unsupported
 * constructs → PONDER_ERR_FORMAT / PONDER_ERR_UNSUPPORTED with "line L, column C: ...". */
ponder_status ponder_chat_template_create(const char *source, size_t len, ponder_chat_template **out,
                                          ponder_error *err);
void ponder_chat_template_free(ponder_chat_template *t); /* NULL is a no-op */

/* The GGUF's tokenizer.chat_template, parsed; PONDER_ERR_NOT_FOUND when the file has none. */
ponder_status ponder_chat_template_from_gguf(const ponder_gguf *g, ponder_chat_template **out, ponder_error *err);

/* The documented fallback for models without a template (used only when asked for). */
const char *ponder_chat_template_chatml_source(void);

/* Renders with the variables of a JSON object (UTF-8 text, key order kept): typically
 * {"messages": [...], "bos_token": "...", "eos_token": "...", "add_generation_prompt": true,
 * "tools": [...]} plus any extra variables. A key that is absent is undefined in the template.
 * On success *out is a malloc'ed NUL-terminated string of *out_len bytes (caller frees).
 * raise_exception(msg) → PONDER_ERR_INVALID_ARG with msg exactly as err->msg (the input was
 * rejected by the template); an error while rendering (type error, undefined call) →
 * PONDER_ERR_FORMAT with line and column; bad JSON → PONDER_ERR_INVALID_ARG. */
ponder_status ponder_chat_render_json(const ponder_chat_template *t, const char *vars_json, size_t vars_len,
                                      char **out, size_t *out_len, ponder_error *err);

/* The conversation of vars_json (as ponder_chat_render_json) rendered and tokenized, then
 * suffix (may be NULL: the answer so far, for continue_final_message) appended as content.
 * The template's text is tokenized with special-token parsing, the messages' contents
 * (content strings, and the text of content parts) and suffix without it, so a content
 * cannot forge a turn; parse_special_in_content parses them too (the old behaviour).
 * add_special: BOS/EOS as the vocabulary asks. *ids is malloc'ed (caller frees). Errors
 * as ponder_chat_render_json and ponder_tokenizer_encode. */
ponder_status ponder_chat_tokenize(const ponder_chat_template *t, const ponder_tokenizer *tok, const char *vars_json,
                                   size_t vars_len, const char *suffix, bool add_special,
                                   bool parse_special_in_content, ponder_token **ids, size_t *n, ponder_error *err);

#ifdef __cplusplus
}
#endif
#endif /* PONDER_CHAT_H */
