/*
 * tokenizer.h — text <-> token ids, from the vocabulary stored in a GGUF file.
 *
 * Supports tokenizer.ggml.model = "llama" (SentencePiece-style BPE over scores, with byte
 * fallback) and "gpt2" (byte-level BPE over merges, with the pre-tokenizer named by
 * tokenizer.ggml.pre, run with PCRE2). Behaviour follows llama.cpp's llama-vocab:
 * the same ids for the same text. A tokenizer is immutable after creation and may be
 * shared by threads; it copies what it needs, so the GGUF handle may be freed after.
 */
#ifndef PONDER_TOKENIZER_H
#define PONDER_TOKENIZER_H

#include "ponder/common.h"
#include "ponder/gguf.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef int32_t ponder_token;
#define PONDER_TOKEN_NULL (-1)

typedef struct ponder_tokenizer ponder_tokenizer;

typedef enum ponder_vocab_kind {
    PONDER_VOCAB_SPM = 0, /* "llama" */
    PONDER_VOCAB_BPE = 1, /* "gpt2" */
} ponder_vocab_kind;

/* Token attributes (tokenizer.ggml.token_type, as the GGUF spec numbers them). */
typedef enum ponder_token_kind {
    PONDER_TOKEN_UNDEFINED = 0,
    PONDER_TOKEN_NORMAL = 1,
    PONDER_TOKEN_UNKNOWN = 2,
    PONDER_TOKEN_CONTROL = 3,
    PONDER_TOKEN_USER_DEFINED = 4,
    PONDER_TOKEN_UNUSED = 5,
    PONDER_TOKEN_BYTE = 6,
} ponder_token_kind;

/* Reads the vocabulary from g. Unknown tokenizer model or pre-tokenizer →
 * PONDER_ERR_UNSUPPORTED naming it and listing the supported ones. */
ponder_status ponder_tokenizer_create(const ponder_gguf *g, ponder_tokenizer **out, ponder_error *err);
void ponder_tokenizer_free(ponder_tokenizer *tok); /* NULL is a no-op */

ponder_vocab_kind ponder_tokenizer_kind(const ponder_tokenizer *tok);
const char *ponder_tokenizer_pre(const ponder_tokenizer *tok); /* pre-tokenizer name in use */
int32_t ponder_tokenizer_n_vocab(const ponder_tokenizer *tok);

/* Special ids, PONDER_TOKEN_NULL when the vocabulary has none. */
ponder_token ponder_tokenizer_bos(const ponder_tokenizer *tok);
ponder_token ponder_tokenizer_eos(const ponder_tokenizer *tok);
ponder_token ponder_tokenizer_eot(const ponder_tokenizer *tok);
bool ponder_tokenizer_add_bos(const ponder_tokenizer *tok);
bool ponder_tokenizer_add_eos(const ponder_tokenizer *tok);
/* True for end-of-generation tokens (EOS, EOT and the like). */
bool ponder_tokenizer_is_eog(const ponder_tokenizer *tok, ponder_token id);
/* As the file types the token, except that tokens llama.cpp recognises by their text as
 * end-of-turn or FIM markers (<|im_end|>, <|endoftext|>, ...) are CONTROL. */
ponder_token_kind ponder_tokenizer_token_kind(const ponder_tokenizer *tok, ponder_token id);
/* The token's stored text (SPM: with U+2581 for spaces; BPE: byte-level symbols). */
const char *ponder_tokenizer_token_text(const ponder_tokenizer *tok, ponder_token id);

/* Tokenizes text[0..len). add_special: add BOS/EOS as the vocabulary asks.
 * parse_special: recognise control (and unknown) token texts inside the text; user-defined
 * token texts are recognised either way, as in llama.cpp. SPM vocabularies with
 * add_space_prefix put one space before the text (and after each special token found).
 * On success *out is a malloc'ed array of *n_out ids, owned by the caller (free()).
 * Invalid UTF-8 → PONDER_ERR_INVALID_ARG naming the byte offset. */
ponder_status ponder_tokenizer_encode(const ponder_tokenizer *tok, const char *text, size_t len,
                                      bool add_special, bool parse_special, ponder_token **out,
                                      size_t *n_out, ponder_error *err);

/* A span of text: [off, off + len). */
typedef struct ponder_text_span {
    size_t off, len;
} ponder_text_span;

/* As ponder_tokenizer_encode, except that inside the plain spans (sorted, not overlapping)
 * control and unknown token texts stay plain text even with parse_special: a chat's
 * message contents, where a user must not be able to write a real <|im_start|>. The text
 * is cut at specials only, never at span edges, so text without special-token texts in
 * its spans gives the very ids of ponder_tokenizer_encode. */
ponder_status ponder_tokenizer_encode_spans(const ponder_tokenizer *tok, const char *text, size_t len,
                                            bool add_special, bool parse_special, const ponder_text_span *plain,
                                            size_t n_plain, ponder_token **out, size_t *n_out, ponder_error *err);

/* Writes the bytes of one token into buf (not NUL-terminated) and returns their count,
 * or the negated needed size if cap is too small. special: render control tokens'
 * text (otherwise they render as nothing). Byte tokens render as their raw byte, so
 * a piece may be an incomplete UTF-8 sequence. */
int32_t ponder_tokenizer_token_to_piece(const ponder_tokenizer *tok, ponder_token id, char *buf,
                                        int32_t cap, bool special);

/* Detokenizes a whole sequence into a malloc'ed NUL-terminated string (*out, caller
 * frees). Follows llama.cpp's llama_detokenize: for SPM vocabularies that add a space
 * prefix, the leading space of the first piece is removed when remove_leading_space (the
 * first token's piece only: after a BOS, which renders as nothing, the space stays); for
 * BPE vocabularies whose pre-tokenizer asks for it (gpt-2, mpt, falcon, ...), llama.cpp's
 * clean_up_tokenization_spaces is applied (" ," -> ",", " 's" -> "'s", ...). An id outside
 * the vocabulary is PONDER_ERR_INVALID_ARG. */
ponder_status ponder_tokenizer_decode(const ponder_tokenizer *tok, const ponder_token *ids, size_t n,
                                      bool special, bool remove_leading_space, char **out,
                                      ponder_error *err);

/* Streaming detokenizer: feed tokens one at a time, receive only complete UTF-8
 * characters; an incomplete trailing sequence is held back until completed (or flushed). */
typedef struct ponder_detokenizer ponder_detokenizer;
ponder_status ponder_detokenizer_create(const ponder_tokenizer *tok, bool special,
                                        ponder_detokenizer **out, ponder_error *err);
void ponder_detokenizer_free(ponder_detokenizer *d);
/* Appends the token; *text and *len receive the bytes now ready (valid until the next call). */
void ponder_detokenizer_push(ponder_detokenizer *d, ponder_token id, const char **text, size_t *len);
/* Returns whatever is held back (possibly invalid UTF-8) and resets. */
void ponder_detokenizer_flush(ponder_detokenizer *d, const char **text, size_t *len);

#ifdef __cplusplus
}
#endif
#endif /* PONDER_TOKENIZER_H */
