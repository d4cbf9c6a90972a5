/*
 * grammar.h — grammar-constrained decoding: GBNF grammars, JSON Schema compiled to
 * grammars, and an incremental matcher that says which tokens may come next.
 *
 * Grammars use llama.cpp's GBNF syntax (grammars/README.md there), so existing grammar
 * files work: `name ::= alternatives`, literals "..." with \n \t \r \\ \" \xHH \uHHHH
 * \UHHHHHHHH escapes, character classes [a-z] [^"\\], `.`, grouping ( ), postfix * + ?
 * {m} {m,} {m,n} {,n}, `#` comments; the start rule is `root`. Errors carry line:col.
 *
 * The matcher works on bytes: every character class becomes a small UTF-8 automaton, so
 * tokens that end inside a multi-byte character (byte-fallback pieces, byte-level BPE)
 * are matched exactly. Its state is a set of parse stacks (a pushdown automaton, as in
 * llama.cpp); stacks and stack sets are interned, transitions memoised, and the token mask
 * of a state is computed by one walk over the vocabulary sorted by bytes (shared prefixes
 * walked once, dead prefixes skipped whole) and cached per state.
 *
 * Ownership: a grammar and a vocabulary are immutable once made and may be shared by
 * threads. A matcher and its clones share mutable caches: use them from one thread.
 */
#ifndef PONDER_GRAMMAR_H
#define PONDER_GRAMMAR_H

#include "ponder/common.h"
#include "ponder/tokenizer.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ponder_grammar ponder_grammar;

/* Parses GBNF text[0..len). Malformed text, an undefined or missing rule (root included),
 * left recursion → PONDER_ERR_FORMAT with "line:col: what". */
ponder_status ponder_grammar_parse(const char *text, size_t len, ponder_grammar **out, ponder_error *err);

/* JSON Schema (JSON text) → GBNF text, malloc'ed and NUL-terminated into *gbnf (caller
 * frees). Supported: type (string, integer, number, boolean, null, object, array, or a
 * list of those), properties, required, additionalProperties (false, true or a schema),
 * items, prefixItems, minItems, maxItems, enum, const, minLength, maxLength, pattern
 * (a subset of regular expressions: literals, classes, . ? * + {m,n}, groups,
 * alternation, anchored ^...$), format (date, time, date-time, uuid, email, hostname, ipv4,
 * ipv6, uri, duration: each a plain subset of what the format allows), minimum, maximum,
 * exclusiveMinimum, exclusiveMaximum (integers), anyOf, oneOf, allOf of one schema, $ref
 * to #/$defs/... or #/definitions/..., and annotations (title, description, default,
 * examples, $schema, $id, $comment). Anything else → PONDER_ERR_UNSUPPORTED naming the
 * keyword and where it is ("unsupported JSON Schema keyword 'not' at /properties/a").
 * Malformed JSON or an invalid schema → PONDER_ERR_FORMAT. Properties are generated in
 * the schema's order; whitespace between tokens is limited to one optional space or
 * newline-and-indent so a model cannot run on with blanks. */
ponder_status ponder_json_schema_to_gbnf(const char *schema, size_t len, char **gbnf, ponder_error *err);

/* ponder_json_schema_to_gbnf followed by ponder_grammar_parse. */
ponder_status ponder_grammar_from_json_schema(const char *schema, size_t len, ponder_grammar **out,
                                              ponder_error *err);

/* OpenAI's response_format {"type": "json_object"}: any JSON object. */
ponder_status ponder_grammar_json_object(ponder_grammar **out, ponder_error *err);

void ponder_grammar_free(ponder_grammar *g); /* NULL is a no-op */
int32_t ponder_grammar_n_rules(const ponder_grammar *g);

/* The vocabulary as the matcher sees it: each token's bytes. Tokens whose piece is empty
 * (control tokens) are never allowed; end-of-generation tokens are allowed exactly when
 * the grammar is complete. */
typedef struct ponder_grammar_vocab ponder_grammar_vocab;

/* pieces[i] holds lens[i] bytes (NULL with 0 for an empty piece); is_eog may be NULL. */
ponder_status ponder_grammar_vocab_create(int32_t n_vocab, const char *const *pieces, const int32_t *lens,
                                          const bool *is_eog, ponder_grammar_vocab **out, ponder_error *err);
/* The tokenizer's pieces (ponder_tokenizer_token_to_piece, control tokens rendering as
 * nothing) and its end-of-generation tokens. */
ponder_status ponder_grammar_vocab_from_tokenizer(const ponder_tokenizer *tok, ponder_grammar_vocab **out,
                                                  ponder_error *err);
void ponder_grammar_vocab_free(ponder_grammar_vocab *v);
int32_t ponder_grammar_vocab_n(const ponder_grammar_vocab *v);

/* Incremental matcher: the state after the tokens accepted so far. */
typedef struct ponder_grammar_matcher ponder_grammar_matcher;

/* g and v must outlive the matcher and its clones. */
ponder_status ponder_grammar_matcher_create(const ponder_grammar *g, const ponder_grammar_vocab *v,
                                            ponder_grammar_matcher **out, ponder_error *err);
/* A second matcher in the same state, sharing the caches (for n choices forked from one
 * prompt, or a draft's look-ahead). */
ponder_status ponder_grammar_matcher_clone(const ponder_grammar_matcher *m, ponder_grammar_matcher **out,
                                           ponder_error *err);
void ponder_grammar_matcher_free(ponder_grammar_matcher *m);

/* The tokens allowed next as a bitset: bit (t % 32) of word t / 32 is set when token t
 * is allowed. Valid until the next call on any matcher sharing these caches. NULL on
 * allocation failure (err filled). All zero when nothing can follow: after an
 * end-of-generation token, or in a state no token of this vocabulary can continue. */
const uint32_t *ponder_grammar_matcher_mask(ponder_grammar_matcher *m, ponder_error *err);
/* The mask kept to the tokens after which the text can still be completed within
 * n_tokens - 1 more tokens, counting one byte per token (every byte has a token in
 * byte-level and byte-fallback vocabularies): drawing only from these masks, a text is
 * complete by its n_tokens-th token, so a max_tokens budget closes the text instead of
 * cutting it (strings closed, brackets balanced). Costs a vocabulary walk only in the
 * last steps before the budget, when a token could leave too little room; otherwise it
 * is the plain mask. n_tokens <= 0, or no token fits: the plain mask. Same lifetime as
 * ponder_grammar_matcher_mask's result. */
const uint32_t *ponder_grammar_matcher_mask_within(ponder_grammar_matcher *m, int32_t n_tokens, ponder_error *err);
/* Fewest bytes that complete the text from here: 0 when complete, INT32_MAX when it
 * cannot complete. */
int32_t ponder_grammar_matcher_bytes_to_complete(ponder_grammar_matcher *m);
/* Is token t allowed next? Cheaper than a mask when only a few tokens are asked about. */
bool ponder_grammar_matcher_allows(ponder_grammar_matcher *m, ponder_token t);
/* Advances by token t. false (state unchanged) when t is not allowed, or on allocation
 * failure. Accepting an end-of-generation token ends the matcher (nothing is allowed
 * after it). */
bool ponder_grammar_matcher_accept(ponder_grammar_matcher *m, ponder_token t);
/* Advances by raw bytes (the prompt's prefill of a response, tests). */
bool ponder_grammar_matcher_accept_bytes(ponder_grammar_matcher *m, const char *bytes, size_t len);
/* Undoes the last n accepted tokens (or accept_bytes calls); n beyond the history stops
 * at the start. */
void ponder_grammar_matcher_rollback(ponder_grammar_matcher *m, int32_t n);
/* Number of accepts since creation (minus rollbacks). */
int32_t ponder_grammar_matcher_n_accepted(const ponder_grammar_matcher *m);
/* The text so far is a complete sentence of the grammar (end-of-generation allowed). */
bool ponder_grammar_matcher_is_complete(const ponder_grammar_matcher *m);
/* Complete and nothing else can follow (so generation can stop without asking). */
bool ponder_grammar_matcher_is_final(const ponder_grammar_matcher *m);
/* Ended by an end-of-generation token. */
bool ponder_grammar_matcher_is_ended(const ponder_grammar_matcher *m);

/* The mask is applied by the sampler (ponder_sampler_set_mask, sample.h), the one place
 * logits are filtered. */

#ifdef __cplusplus
}
#endif
#endif /* PONDER_GRAMMAR_H */
