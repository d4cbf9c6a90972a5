/* testmodel.h — a model and its tokenizer loaded for a cmocka test (include after
 * <cmocka.h>): false when the file is absent (the test skips), a failed test when it
 * does not load. */
#ifndef PONDER_TESTMODEL_H
#define PONDER_TESTMODEL_H

#include <string.h>
#include <unistd.h>

#include "ponder/model.h"
#include "ponder/tokenizer.h"

typedef struct loaded {
    ponder_model *m;
    ponder_tokenizer *tok;
} loaded;

static inline bool load(const char *path, loaded *out)
{
    ponder_error err = { 0 };
    memset(out, 0, sizeof *out);
    if (!path || access(path, R_OK) != 0)
        return false;
    if (ponder_model_load(path, NULL, &out->m, &err) != PONDER_OK)
        fail_msg("%s: %s", path, err.msg);
    if (ponder_tokenizer_create(ponder_model_gguf(out->m), &out->tok, &err) != PONDER_OK)
        fail_msg("%s: %s", path, err.msg);
    return true;
}

static inline void unload(loaded *l)
{
    ponder_tokenizer_free(l->tok);
    ponder_model_free(l->m);
    memset(l, 0, sizeof *l);
}

#endif /* PONDER_TESTMODEL_H */
