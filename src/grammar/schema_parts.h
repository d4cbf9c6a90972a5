/*
 * schema_parts.h — grammar-text helpers for the JSON Schema compiler (schema_parts.c).
 */
#ifndef PONDER_SCHEMA_PARTS_H
#define PONDER_SCHEMA_PARTS_H

#include "grammar/grammar_internal.h"

/* Digits an unbounded integer may have (as llama.cpp's integral-part, 16): enough for
 * any int64 JSON parsers keep exactly, and a random model cannot run on. */
#define SP_MAX_DIGITS 16

/* A GBNF string literal matching exactly s[0..n) (bytes). */
void sp_literal(gr_buf *b, const char *s, size_t n);
/* A GBNF expression (parenthesised) for the integers in [lo, hi]; has_lo/has_hi false:
 * unbounded on that side (up to SP_MAX_DIGITS digits). false when the range is empty. */
bool sp_int_range(gr_buf *b, bool has_lo, long long lo, bool has_hi, long long hi);
/* A GBNF expression for the JSON string contents (between the quotes) of the strings
 * matching pattern; false with a message in err on an unsupported or malformed pattern. */
bool sp_pattern(gr_buf *b, const char *pattern, char *err, size_t err_cap);

#endif /* PONDER_SCHEMA_PARTS_H */
