/*
 * checkpoint.c — trainer checkpoints as GGUF: the model file the engine (and llama.cpp)
 * loads, and the "<path>.optim" sidecar with the Adam moments for an exact resume.
 *
 * Both files are written crash-safely by the GGUF writer (a temporary file, fsynced and
 * renamed), so a reader, a kill -9 or a power loss never sees half a checkpoint while a
 * long run saves periodically.
 */
#include "train/train_internal.h"
#include "train/trainer_internal.h"

#include "ponder/think.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#define OPTIM_SUFFIX ".optim"
#define OPTIM_ARCH "ponder-train-optim"
#define LLAMA_FTYPE_ALL_F32 0 /* llama.cpp's LLAMA_FTYPE_ALL_F32 */

#define TRY(expr)                                                                                                 \
    do {                                                                                                          \
        if ((st = (expr)) != PONDER_OK)                                                                           \
            goto done;                                                                                            \
    } while (0)

static ponder_status set_u64(ponder_gguf_writer *w, const char *key, uint64_t v, ponder_error *err)
{
    ponder_gguf_value val = {.type = PONDER_GGUF_UINT64};
    val.v.u64 = v;
    return ponder_gguf_writer_set(w, key, &val, err);
}

static ponder_status add_tensor(ponder_gguf_writer *w, const char *name, const tr_tensor *x, const float *data,
                                ponder_error *err)
{
    const int64_t ne[2] = {x->ne0, x->ne1};
    return ponder_gguf_writer_add_tensor(w, name, PONDER_TYPE_F32, x->ne1 > 1 ? 2 : 1, ne, data, err);
}

static ponder_status write_atomic(ponder_gguf_writer *w, const char *path, ponder_error *err)
{
    return ponder_gguf_writer_write(w, path, err); /* temporary file, fsync, rename (ponder_atomic_file) */
}

static ponder_status copy_tokenizer(ponder_gguf_writer *w, const ponder_gguf *src, int32_t n_vocab,
                                    ponder_error *err)
{
    const ponder_gguf_value *tokens = ponder_gguf_get(src, "tokenizer.ggml.tokens");
    if (!tokens || tokens->type != PONDER_GGUF_ARRAY)
        return ponder_error_set(err, PONDER_ERR_NOT_FOUND, "%s: no tokenizer.ggml.tokens array to copy",
                                ponder_gguf_path(src));
    if (tokens->v.arr.n != (uint64_t)n_vocab)
        return ponder_error_set(err, PONDER_ERR_INVALID_ARG,
                                "%s: vocabulary has %llu tokens but the model has n_vocab %d", ponder_gguf_path(src),
                                (unsigned long long)tokens->v.arr.n, n_vocab);
    for (int64_t i = 0; i < ponder_gguf_n_kv(src); i++) {
        const char *key = ponder_gguf_kv_key(src, i);
        if (strncmp(key, "tokenizer.", 10) != 0)
            continue;
        ponder_status st = ponder_gguf_writer_set(w, key, ponder_gguf_kv_value(src, i), err);
        if (st != PONDER_OK)
            return st;
    }
    return PONDER_OK;
}

static ponder_status save_model(const ponder_trainer *t, const char *path, const ponder_gguf *vocab_src,
                                ponder_error *err)
{
    const ponder_train_shape *s = &t->p.shape;
    ponder_gguf_writer *w = NULL;
    ponder_status st;
    TRY(ponder_gguf_writer_create(&w, err));
    TRY(ponder_gguf_writer_set_str(w, "general.architecture", "llama", err));
    TRY(ponder_gguf_writer_set_str(w, "general.name", "ponder-train", err));
    TRY(ponder_gguf_writer_set_u32(w, "general.file_type", LLAMA_FTYPE_ALL_F32, err));
    TRY(ponder_gguf_writer_set_u32(w, "llama.vocab_size", (uint32_t)s->n_vocab, err));
    TRY(ponder_gguf_writer_set_u32(w, "llama.context_length", (uint32_t)s->n_ctx, err));
    TRY(ponder_gguf_writer_set_u32(w, "llama.embedding_length", (uint32_t)s->n_embd, err));
    TRY(ponder_gguf_writer_set_u32(w, "llama.block_count", (uint32_t)s->n_layer, err));
    TRY(ponder_gguf_writer_set_u32(w, "llama.feed_forward_length", (uint32_t)s->n_ff, err));
    TRY(ponder_gguf_writer_set_u32(w, "llama.attention.head_count", (uint32_t)s->n_head, err));
    TRY(ponder_gguf_writer_set_u32(w, "llama.attention.head_count_kv", (uint32_t)s->n_head_kv, err));
    TRY(ponder_gguf_writer_set_u32(w, "llama.rope.dimension_count", (uint32_t)(s->n_embd / s->n_head), err));
    TRY(ponder_gguf_writer_set_f32(w, "llama.rope.freq_base", s->rope_base, err));
    TRY(ponder_gguf_writer_set_f32(w, "llama.attention.layer_norm_rms_epsilon", s->norm_eps, err));
    TRY(set_u64(w, "ponder.train.step", (uint64_t)t->step, err));
    TRY(set_u64(w, "ponder.train.seed", t->p.seed, err));
    /* a model trained here learned its data's own question/solution format, never the
     * zero-shot "Let's think step by step" cue: strategies run it without the cue unless
     * a request asks for it (think.h's rule) */
    TRY(ponder_gguf_writer_set_bool(w, PONDER_THINK_CUE_KEY, false, err));
    if (vocab_src)
        TRY(copy_tokenizer(w, vocab_src, s->n_vocab, err));
    for (int i = 0; i < t->n_tensors; i++)
        TRY(add_tensor(w, t->tensors[i].name, &t->tensors[i], t->w + t->tensors[i].offset, err));
    TRY(write_atomic(w, path, err));
done:
    ponder_gguf_writer_free(w);
    return st;
}

static ponder_status save_optim(const ponder_trainer *t, const char *path, ponder_error *err)
{
    const ponder_train_params *p = &t->p;
    ponder_gguf_writer *w = NULL;
    ponder_status st;
    char name[96];
    TRY(ponder_gguf_writer_create(&w, err));
    TRY(ponder_gguf_writer_set_str(w, "general.architecture", OPTIM_ARCH, err));
    TRY(set_u64(w, "ponder.train.step", (uint64_t)t->step, err));
    TRY(set_u64(w, "ponder.train.n_params", (uint64_t)t->n_params, err));
    TRY(set_u64(w, "ponder.train.seed", p->seed, err));
    TRY(ponder_gguf_writer_set_f32(w, "ponder.train.lr", p->lr, err));
    TRY(ponder_gguf_writer_set_f32(w, "ponder.train.lr_min", p->lr_min, err));
    TRY(ponder_gguf_writer_set_u32(w, "ponder.train.warmup_steps", (uint32_t)p->warmup_steps, err));
    TRY(ponder_gguf_writer_set_u32(w, "ponder.train.total_steps", (uint32_t)p->total_steps, err));
    TRY(ponder_gguf_writer_set_f32(w, "ponder.train.beta1", p->beta1, err));
    TRY(ponder_gguf_writer_set_f32(w, "ponder.train.beta2", p->beta2, err));
    TRY(ponder_gguf_writer_set_f32(w, "ponder.train.adam_eps", p->adam_eps, err));
    TRY(ponder_gguf_writer_set_f32(w, "ponder.train.weight_decay", p->weight_decay, err));
    TRY(ponder_gguf_writer_set_f32(w, "ponder.train.grad_clip", p->grad_clip, err));
    TRY(ponder_gguf_writer_set_f32(w, "ponder.train.init_std", p->init_std, err));
    for (int i = 0; i < t->n_tensors; i++) {
        const tr_tensor *x = &t->tensors[i];
        snprintf(name, sizeof name, "m.%s", x->name);
        TRY(add_tensor(w, name, x, t->m + x->offset, err));
        snprintf(name, sizeof name, "v.%s", x->name);
        TRY(add_tensor(w, name, x, t->v + x->offset, err));
    }
    TRY(write_atomic(w, path, err));
done:
    ponder_gguf_writer_free(w);
    return st;
}

ponder_status ponder_trainer_save(const ponder_trainer *t, const char *path, const ponder_gguf *vocab_src,
                                  bool with_optim, ponder_error *err)
{
    if (!t || !path)
        return ponder_error_set(err, PONDER_ERR_INVALID_ARG, "train: save needs a trainer and a path");
    ponder_status st = save_model(t, path, vocab_src, err);
    if (st != PONDER_OK || !with_optim)
        return st;
    char opath[4096];
    if (snprintf(opath, sizeof opath, "%s" OPTIM_SUFFIX, path) >= (int)sizeof opath)
        return ponder_error_set(err, PONDER_ERR_INVALID_ARG, "train: checkpoint path too long");
    return save_optim(t, opath, err);
}

/* ---- loading ---- */

static ponder_status get_i32(const ponder_gguf *g, const char *key, int32_t *out, ponder_error *err)
{
    int64_t v = 0;
    ponder_status st = ponder_gguf_get_i64(g, key, &v, err);
    if (st != PONDER_OK)
        return st;
    if (v <= 0 || v > INT32_MAX)
        return ponder_error_set(err, PONDER_ERR_FORMAT, "%s: key '%s' = %lld is out of range", ponder_gguf_path(g),
                                key, (long long)v);
    *out = (int32_t)v;
    return PONDER_OK;
}

static ponder_status get_f32(const ponder_gguf *g, const char *key, float *out, ponder_error *err)
{
    double v = 0;
    ponder_status st = ponder_gguf_get_f64(g, key, &v, err);
    if (st == PONDER_OK)
        *out = (float)v;
    return st;
}

/* Copies tensor `name` of g into dst after checking its type and shape against x. */
static ponder_status read_tensor(const ponder_gguf *g, const char *name, const tr_tensor *x, float *dst,
                                 ponder_error *err)
{
    const ponder_gguf_tensor *gt = ponder_gguf_find_tensor(g, name);
    if (!gt)
        return ponder_error_set(err, PONDER_ERR_NOT_FOUND, "%s: tensor '%s' is missing", ponder_gguf_path(g), name);
    /* F16 is accepted so that a shipped (halved) model can be fine-tuned; it widens exactly. */
    if ((gt->type != PONDER_TYPE_F32 && gt->type != PONDER_TYPE_F16) || gt->ne[0] != x->ne0 ||
        gt->ne[1] != x->ne1 || gt->ne[2] != 1 || gt->ne[3] != 1)
        return ponder_error_set(err, PONDER_ERR_FORMAT,
                                "%s: tensor '%s' is %s [%lld, %lld]; the trainer needs F32 or F16 [%lld, %lld]",
                                ponder_gguf_path(g), name, ponder_type_name(gt->type), (long long)gt->ne[0],
                                (long long)gt->ne[1], (long long)x->ne0, (long long)x->ne1);
    size_t n = (size_t)(x->ne0 * x->ne1);
    if (gt->type == PONDER_TYPE_F32) {
        memcpy(dst, gt->data, n * sizeof(float));
    } else {
        const ponder_f16 *h = (const ponder_f16 *)gt->data;
        for (size_t i = 0; i < n; i++)
            dst[i] = ponder_f16_to_f32(h[i]);
    }
    return PONDER_OK;
}

static ponder_status load_optim(ponder_trainer *t, const char *opath, ponder_error *err)
{
    ponder_gguf *g = NULL;
    ponder_status st;
    char name[96];
    TRY(ponder_gguf_open(opath, &g, err));
    ponder_gguf_str arch;
    TRY(ponder_gguf_get_str(g, "general.architecture", &arch, err));
    if (!ponder_gguf_str_eq(arch, OPTIM_ARCH)) {
        st = ponder_error_set(err, PONDER_ERR_FORMAT, "%s: not a ponder optimizer sidecar", opath);
        goto done;
    }
    int64_t step = 0, np = 0, seed = 0;
    TRY(ponder_gguf_get_i64(g, "ponder.train.step", &step, err));
    TRY(ponder_gguf_get_i64(g, "ponder.train.n_params", &np, err));
    TRY(ponder_gguf_get_i64(g, "ponder.train.seed", &seed, err));
    if (np != t->n_params || step < 0) {
        st = ponder_error_set(err, PONDER_ERR_FORMAT, "%s: holds %lld parameters at step %lld; the model has %lld",
                              opath, (long long)np, (long long)step, (long long)t->n_params);
        goto done;
    }
    ponder_train_params *p = &t->p;
    p->seed = (uint64_t)seed;
    TRY(get_f32(g, "ponder.train.lr", &p->lr, err));
    TRY(get_f32(g, "ponder.train.lr_min", &p->lr_min, err));
    TRY(get_i32(g, "ponder.train.total_steps", &p->total_steps, err));
    int64_t warm = 0;
    TRY(ponder_gguf_get_i64(g, "ponder.train.warmup_steps", &warm, err));
    p->warmup_steps = (int32_t)(warm < 0 ? 0 : warm > INT32_MAX ? INT32_MAX : warm);
    TRY(get_f32(g, "ponder.train.beta1", &p->beta1, err));
    TRY(get_f32(g, "ponder.train.beta2", &p->beta2, err));
    TRY(get_f32(g, "ponder.train.adam_eps", &p->adam_eps, err));
    TRY(get_f32(g, "ponder.train.weight_decay", &p->weight_decay, err));
    TRY(get_f32(g, "ponder.train.grad_clip", &p->grad_clip, err));
    TRY(get_f32(g, "ponder.train.init_std", &p->init_std, err));
    for (int i = 0; i < t->n_tensors; i++) {
        const tr_tensor *x = &t->tensors[i];
        snprintf(name, sizeof name, "m.%s", x->name);
        TRY(read_tensor(g, name, x, t->m + x->offset, err));
        snprintf(name, sizeof name, "v.%s", x->name);
        TRY(read_tensor(g, name, x, t->v + x->offset, err));
    }
    t->step = step;
done:
    ponder_gguf_free(g);
    return st;
}

ponder_status ponder_trainer_load(const char *path, const ponder_train_params *p, ponder_trainer **out,
                                  ponder_error *err)
{
    *out = NULL;
    ponder_gguf *g = NULL;
    ponder_trainer *t = NULL;
    ponder_status st;
    TRY(ponder_gguf_open(path, &g, err));
    ponder_gguf_str arch;
    TRY(ponder_gguf_get_str(g, "general.architecture", &arch, err));
    if (!ponder_gguf_str_eq(arch, "llama")) {
        st = ponder_error_set(err, PONDER_ERR_UNSUPPORTED, "%s: the trainer resumes llama models only", path);
        goto done;
    }
    if (ponder_gguf_find_tensor(g, "output.weight")) {
        st = ponder_error_set(err, PONDER_ERR_UNSUPPORTED,
                              "%s: has an untied output.weight; the trainer uses a tied output", path);
        goto done;
    }
    ponder_train_params q = *p;
    ponder_train_shape *s = &q.shape;
    const ponder_gguf_tensor *te = ponder_gguf_find_tensor(g, "token_embd.weight");
    if (!te) {
        st = ponder_error_set(err, PONDER_ERR_NOT_FOUND, "%s: tensor 'token_embd.weight' is missing", path);
        goto done;
    }
    if (te->ne[1] <= 0 || te->ne[1] > INT32_MAX) {
        st = ponder_error_set(err, PONDER_ERR_FORMAT, "%s: token_embd.weight has a bad row count", path);
        goto done;
    }
    s->n_vocab = (int32_t)te->ne[1];
    TRY(get_i32(g, "llama.context_length", &s->n_ctx, err));
    TRY(get_i32(g, "llama.embedding_length", &s->n_embd, err));
    TRY(get_i32(g, "llama.block_count", &s->n_layer, err));
    TRY(get_i32(g, "llama.feed_forward_length", &s->n_ff, err));
    TRY(get_i32(g, "llama.attention.head_count", &s->n_head, err));
    TRY(get_i32(g, "llama.attention.head_count_kv", &s->n_head_kv, err));
    TRY(get_f32(g, "llama.attention.layer_norm_rms_epsilon", &s->norm_eps, err));
    s->rope_base = 10000.0f; /* llama.cpp's default when the key is absent */
    if (ponder_gguf_find_kv(g, "llama.rope.freq_base") >= 0)
        TRY(get_f32(g, "llama.rope.freq_base", &s->rope_base, err));
    int32_t n_rot = 0;
    if (ponder_gguf_find_kv(g, "llama.rope.dimension_count") >= 0) {
        TRY(get_i32(g, "llama.rope.dimension_count", &n_rot, err));
        if (s->n_head > 0 && n_rot != s->n_embd / s->n_head) {
            st = ponder_error_set(err, PONDER_ERR_UNSUPPORTED, "%s: partial RoPE (%d dims) is not supported", path,
                                  n_rot);
            goto done;
        }
    }
    TRY(tr_trainer_alloc(&q, &t, err));
    for (int i = 0; i < t->n_tensors; i++)
        TRY(read_tensor(g, t->tensors[i].name, &t->tensors[i], t->w + t->tensors[i].offset, err));
    char opath[4096];
    if (snprintf(opath, sizeof opath, "%s" OPTIM_SUFFIX, path) >= (int)sizeof opath) {
        st = ponder_error_set(err, PONDER_ERR_INVALID_ARG, "train: checkpoint path too long");
        goto done;
    }
    struct stat sb;
    if (stat(opath, &sb) == 0) {
        TRY(load_optim(t, opath, err));
        /* Model and sidecar are two renames: a save killed between them leaves a pair
         * from different steps, which must not resume as if it were one. */
        int64_t model_step = -1;
        if (ponder_gguf_find_kv(g, "ponder.train.step") >= 0)
            TRY(ponder_gguf_get_i64(g, "ponder.train.step", &model_step, err));
        if (model_step >= 0 && model_step != t->step) {
            st = ponder_error_set(err, PONDER_ERR_FORMAT,
                                  "%s: the model is from step %lld but %s is from step %lld (a save was "
                                  "interrupted); remove the sidecar to resume without the optimizer state",
                                  path, (long long)model_step, opath, (long long)t->step);
            goto done;
        }
    }
    tr_refresh_transposes(t);
    *out = t;
    t = NULL;
done:
    ponder_trainer_free(t);
    ponder_gguf_free(g);
    return st;
}
