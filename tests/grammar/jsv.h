/* jsv.h — a small JSON Schema validator for the grammar tests (jsv.c). */
#ifndef PONDER_TEST_JSV_H
#define PONDER_TEST_JSV_H

#include <jansson.h>
#include <stdbool.h>
#include <stdlib.h>

/* Does instance satisfy schema (the schema document's root, for $ref)? On false, why
 * (cap bytes) holds the path and the reason. */
bool jsv_validate(json_t *schema, json_t *instance, char *why, size_t cap);

#endif
