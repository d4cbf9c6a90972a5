/*
 * json.h — JSON text whose numbers have the fewest digits that read back exactly.
 * jansson prints every real with 17 significant digits, so a float32 log-probability of
 * -2.345679 goes out as -2.3456790447235107; clients see noise and responses grow. Here a
 * real that is exactly a float (the model's outputs: logprobs, embeddings) prints as the
 * shortest text that reads back as that float, and any other real as the shortest text that
 * reads back as that double (what JavaScript's Number#toString and Python's repr print).
 */
#ifndef PONDER_JSON_H
#define PONDER_JSON_H

#include <stddef.h>

#include <jansson.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Bytes a number's text needs at most, with the NUL. */
#define PONDER_NUM_TEXT_BYTES 32

/* The fewest significant digits that strtof reads back as f (at most 9), laid out as
 * Python's repr does: positional for decimal exponents -4..15 (0.0001, 123.5, 100), else
 * with an exponent (1e-5, 3.4028235e38); "null" when f is not finite. buf holds
 * PONDER_NUM_TEXT_BYTES. Returns the length. */
int ponder_fmt_float(float f, char *buf);
/* The same for a double (at most 17 digits). */
int ponder_fmt_double(double d, char *buf);
/* A real as ponder_json_dumps prints it: ponder_fmt_float when d is exactly a float,
 * else ponder_fmt_double; with ".0" appended when the text would read as an integer. */
int ponder_fmt_real(double d, char *buf);

/* As json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY) — the same bytes for strings, integers,
 * keys (insertion order) and layout — with reals printed by ponder_fmt_real. Malloc'ed;
 * NULL when out of memory or j is NULL. */
char *ponder_json_dumps(const json_t *j);

#ifdef __cplusplus
}
#endif
#endif /* PONDER_JSON_H */
