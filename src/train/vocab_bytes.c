/*
 * vocab_bytes.c — the byte-level vocabulary for models trained from scratch on any text:
 * a SentencePiece ("llama") vocabulary with no merges, so every character falls back to
 * its UTF-8 bytes, as llama.cpp's SPM tokenizer does for pieces it lacks.
 *
 *   0 <unk>   1 <s>   2 </s>   3..258 <0x00>..<0xFF> (type BYTE)   259 "▁" (U+2581)
 *
 * The one normal piece is SentencePiece's space: SPM writes every space as U+2581, which
 * would otherwise cost three byte tokens. No space prefix is added (a byte model has no
 * use for it), BOS is added, EOS ends each training sequence.
 */
#include "ponder/train.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BYTE_VOCAB_N (3 + 256 + 1)

enum { TOKEN_NORMAL = 1, TOKEN_UNKNOWN = 2, TOKEN_CONTROL = 3, TOKEN_BYTE = 6 }; /* llama.cpp's token types */

int32_t ponder_train_byte_vocab_size(void)
{
    return BYTE_VOCAB_N;
}

ponder_status ponder_train_write_byte_vocab(const char *path, ponder_error *err)
{
    char names[BYTE_VOCAB_N][8];
    ponder_gguf_value tokens[BYTE_VOCAB_N];
    float scores[BYTE_VOCAB_N];
    int32_t types[BYTE_VOCAB_N];
    static const char *const specials[3] = {"<unk>", "<s>", "</s>"};
    for (int i = 0; i < BYTE_VOCAB_N; i++) {
        if (i < 3)
            snprintf(names[i], sizeof names[i], "%s", specials[i]);
        else if (i < 3 + 256)
            snprintf(names[i], sizeof names[i], "<0x%02X>", i - 3);
        else
            snprintf(names[i], sizeof names[i], "\xe2\x96\x81");
        tokens[i] = (ponder_gguf_value){.type = PONDER_GGUF_STRING,
                                        .v.str = {.data = names[i], .len = strlen(names[i])}};
        scores[i] = 0.0f;
        types[i] = i == 0 ? TOKEN_UNKNOWN : i < 3 ? TOKEN_CONTROL : i < 3 + 256 ? TOKEN_BYTE : TOKEN_NORMAL;
    }
    const ponder_gguf_value tok_arr = {.type = PONDER_GGUF_ARRAY,
                                       .v.arr = {.elem_type = PONDER_GGUF_STRING, .n = BYTE_VOCAB_N, .elems = tokens}};
    const ponder_gguf_value score_arr = {.type = PONDER_GGUF_ARRAY,
                                         .v.arr = {.elem_type = PONDER_GGUF_FLOAT32, .n = BYTE_VOCAB_N, .data = scores}};
    const ponder_gguf_value type_arr = {.type = PONDER_GGUF_ARRAY,
                                        .v.arr = {.elem_type = PONDER_GGUF_INT32, .n = BYTE_VOCAB_N, .data = types}};
    ponder_gguf_writer *w = NULL;
    ponder_status st = ponder_gguf_writer_create(&w, err);
    if (st != PONDER_OK)
        return st;
    if ((st = ponder_gguf_writer_set_str(w, "general.architecture", "llama", err)) == PONDER_OK &&
        (st = ponder_gguf_writer_set_str(w, "general.name", "ponder byte-level vocabulary", err)) == PONDER_OK &&
        (st = ponder_gguf_writer_set_str(w, "tokenizer.ggml.model", "llama", err)) == PONDER_OK &&
        (st = ponder_gguf_writer_set(w, "tokenizer.ggml.tokens", &tok_arr, err)) == PONDER_OK &&
        (st = ponder_gguf_writer_set(w, "tokenizer.ggml.scores", &score_arr, err)) == PONDER_OK &&
        (st = ponder_gguf_writer_set(w, "tokenizer.ggml.token_type", &type_arr, err)) == PONDER_OK &&
        (st = ponder_gguf_writer_set_u32(w, "tokenizer.ggml.unknown_token_id", 0, err)) == PONDER_OK &&
        (st = ponder_gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id", 1, err)) == PONDER_OK &&
        (st = ponder_gguf_writer_set_u32(w, "tokenizer.ggml.eos_token_id", 2, err)) == PONDER_OK &&
        (st = ponder_gguf_writer_set_bool(w, "tokenizer.ggml.add_bos_token", true, err)) == PONDER_OK &&
        (st = ponder_gguf_writer_set_bool(w, "tokenizer.ggml.add_eos_token", false, err)) == PONDER_OK &&
        (st = ponder_gguf_writer_set_bool(w, "tokenizer.ggml.add_space_prefix", false, err)) == PONDER_OK)
        st = ponder_gguf_writer_write(w, path, err);
    ponder_gguf_writer_free(w);
    return st;
}

ponder_status ponder_train_byte_vocab(ponder_gguf **out, ponder_error *err)
{
    *out = NULL;
    const char *dir = getenv("TMPDIR");
    char path[4096];
    if (snprintf(path, sizeof path, "%s/ponder-vocab-XXXXXX", dir && *dir ? dir : "/tmp") >= (int)sizeof path)
        return ponder_error_set(err, PONDER_ERR_INVALID_ARG, "train: $TMPDIR is too long");
    const int fd = mkstemp(path);
    if (fd < 0)
        return ponder_error_set(err, PONDER_ERR_IO, "train: cannot make a temporary file in %s", dir ? dir : "/tmp");
    close(fd);
    ponder_status st = ponder_train_write_byte_vocab(path, err);
    if (st == PONDER_OK)
        st = ponder_gguf_open(path, out, err);
    unlink(path); /* the open file stays mapped; nothing is left behind */
    return st;
}
