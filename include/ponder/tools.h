/*
 * tools.h — tool calls (OpenAI's "tools" / "tool_calls"): which text format a model's chat
 * template teaches it to call tools in, the parser from a generated text to calls, what
 * part of a text streamed so far is surely content, and the grammar that forces a call
 * (tool_choice "required" or a named function) in that format.
 *
 * Formats (the way llama.cpp's chat-format detection picks them, from marks in the
 * template's source):
 *   HERMES   <tool_call>\n{"name": N, "arguments": {...}}\n</tool_call> (Hermes 2 Pro/3,
 *            Qwen 2.5), text before the calls is content; several calls in a row.
 *   LLAMA3   {"name": N, "parameters": {...}} as the whole answer (Llama 3.1/3.2/3.3), or
 *            <|python_tag|> and then that JSON or `tool.call(key="value", ...)` (built-in
 *            tools); several objects separated by ";" or newlines.
 *   MISTRAL  [TOOL_CALLS][{"name": N, "arguments": {...}}, ...] (Mistral Nemo and v0.3);
 *            [TOOL_CALLS] is a control token that a detokenizer may leave out, so the bare
 *            array at the start of the answer is a call too.
 *   GENERIC  a template that knows no tools: the tools are described in the system message
 *            (ponder_tool_calls_generic_prompt) and the answer is a JSON object
 *            {"tool_call": {"name", "arguments"}}, {"tool_calls": [...]} or
 *            {"response": "text"}.
 * Every format also takes, as the last resort, an answer that is only
 * {"name": N, "arguments"|"parameters": {...}}. A text that is not a well-formed call in
 * its format is content: the parser never fails on what a model wrote.
 *
 * libponder rule: nothing here prints or exits.
 */
#ifndef PONDER_TOOLS_H
#define PONDER_TOOLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ponder/common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum ponder_tool_format {
    PONDER_TOOL_FORMAT_GENERIC = 0,
    PONDER_TOOL_FORMAT_HERMES,
    PONDER_TOOL_FORMAT_LLAMA3,
    PONDER_TOOL_FORMAT_MISTRAL,
} ponder_tool_format;

/* The format a chat template's source teaches: "<tool_call>" → HERMES, "[TOOL_CALLS]" →
 * MISTRAL, "<|python_tag|>" or an "ipython" header → LLAMA3, else GENERIC. */
ponder_tool_format ponder_tool_format_detect(const char *template_source, size_t len);
const char *ponder_tool_format_name(ponder_tool_format f); /* "hermes", "llama3", "mistral", "generic" */

/* Text a forced call starts with that a grammar over token pieces cannot produce (a
 * control token), to be appended to the prompt: "[TOOL_CALLS]" for MISTRAL, else NULL. */
const char *ponder_tool_format_prefill(ponder_tool_format f);

typedef struct ponder_tool_call {
    char *name;      /* NUL-terminated */
    char *arguments; /* a JSON object as compact JSON text */
} ponder_tool_call;

typedef struct ponder_tool_calls {
    char *content;   /* the text that is not a call (NUL-terminated, content_len bytes;
                        whitespace around calls trimmed); "" when none */
    size_t content_len;
    ponder_tool_call *calls;
    int32_t n_calls; /* 0: the text is all content */
} ponder_tool_calls;

/* Parses a generated text. A malformed call leaves the whole text as content (n_calls 0).
 * Fails only for a NULL argument or out of memory; *out is then empty. */
ponder_status ponder_tool_calls_parse(ponder_tool_format f, const char *text, size_t len, ponder_tool_calls *out,
                                      ponder_error *err);
void ponder_tool_calls_clear(ponder_tool_calls *c); /* frees the fields, zeroes *c */

/* Streaming: how many leading bytes of text (the answer so far) are content whatever comes
 * next, i.e. end before anything that is, or may grow into, the start of a call. The rest is
 * held back until more text (or the end) decides. Never more than the start of the first
 * call ponder_tool_calls_parse finds in the finished text. */
size_t ponder_tool_calls_content_prefix(ponder_tool_format f, const char *text, size_t len);

#define PONDER_TOOL_GRAMMAR_PARALLEL 1u  /* one or more calls (not LLAMA3: its templates take one) */
#define PONDER_TOOL_GRAMMAR_BARE 2u      /* HERMES whose <tool_call> is a control token (a grammar over
                                            token texts cannot write it): the call's JSON alone, one
                                            call, after "<tool_call>\n" put in the prompt */

/* A GBNF grammar (malloc'ed into *gbnf) whose sentences are well-formed calls in format f
 * of the tools in tools_json (OpenAI's array: {"type": "function", "function": {"name",
 * "parameters"}}), each call's arguments valid against its function's parameters (JSON
 * Schema; absent: any object). name non-NULL: only that function. flags: PONDER_TOOL_GRAMMAR_*;
 * without PARALLEL exactly one call. The text starts after ponder_tool_format_prefill(f).
 * Schema keywords the grammar compiler does not support → PONDER_ERR_UNSUPPORTED naming the
 * keyword and "tools[i].function.parameters"; an unknown name → PONDER_ERR_NOT_FOUND. */
ponder_status ponder_tool_calls_grammar(ponder_tool_format f, const char *tools_json, size_t len, const char *name,
                                        unsigned flags, char **gbnf, ponder_error *err);

/* GENERIC: the system-message text that lists the tools and asks for the JSON answer
 * (malloc'ed). parallel: the "tool_calls" array form is offered too. */
char *ponder_tool_calls_generic_prompt(const char *tools_json, size_t len, bool parallel);

#ifdef __cplusplus
}
#endif
#endif /* PONDER_TOOLS_H */
