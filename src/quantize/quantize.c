/*
 * quantize.c — ponder_quantize_file: read a GGUF, plan each tensor's type (plan.c),
 * convert the tensors whose type changes and write the result.
 *
 * Conversion goes through float rows, as llama-quantize's does: the input row is
 * expanded with its type's to_float (F16, BF16, or a quantized type when requantizing is
 * allowed), then packed with the output type's reference quantizer (from_float), which
 * gives the bytes llama-quantize writes without an importance matrix. Each tensor's rows
 * are split across the pool's threads; every block is independent, so the bytes do not
 * depend on the thread count.
 *
 * The output is assembled with the GGUF writer, which writes it crash-safely (a temporary
 * file beside the destination, fsynced and renamed over it: ponder_atomic_file). An empty
 * probe file created before the work makes an unwritable destination fail early; it is
 * removed at the end. An existing destination is untouched until the rename.
 */
#include "ponder/quantize.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define QUANT_VERSION 2          /* GGML_QNT_VERSION, written as general.quantization_version */
#define STEP_ELEMS (64 * 1024)   /* floats a thread converts per step (256 KiB of scratch) */
#define TEMP_TRIES 100

ponder_quantize_params ponder_quantize_params_default(void)
{
    return (ponder_quantize_params){0};
}

/* ---- one tensor across the pool ---- */

typedef struct convert_job {
    const ponder_type_traits *in, *out;
    const uint8_t *src;
    uint8_t *dst;
    size_t src_row_bytes, dst_row_bytes;
    int64_t ne0, n_rows;
    int64_t step_rows;  /* rows per step, so a step fits the scratch */
    float *scratch;     /* n_threads * scratch_elems floats */
    size_t scratch_elems;
} convert_job;

static void convert_rows(void *arg, int ith, int nth)
{
    const convert_job *j = arg;
    const int64_t r0 = j->n_rows * ith / nth, r1 = j->n_rows * (ith + 1) / nth;
    float *f = j->scratch + (size_t)ith * j->scratch_elems;
    for (int64_t r = r0; r < r1; r += j->step_rows) {
        const int64_t k = r1 - r < j->step_rows ? r1 - r : j->step_rows;
        j->in->to_float(j->src + (size_t)r * j->src_row_bytes, f, k * j->ne0);
        j->out->from_float(f, j->dst + (size_t)r * j->dst_row_bytes, k * j->ne0);
    }
}

static int64_t step_rows_for(int64_t ne0)
{
    return ne0 <= 0 || ne0 >= STEP_ELEMS ? 1 : STEP_ELEMS / ne0;
}

/* ---- the temporary output file ---- */

/* Creates the probe "<out>.tmp-<pid>-<k>" exclusively (mode 0666 less the umask, or the mode
 * of an existing destination) and returns its malloc'ed path. */
static ponder_status temp_create(const char *out, char **tmp_out, ponder_error *err)
{
    struct stat st;
    bool exists = stat(out, &st) == 0;
    if (exists && !S_ISREG(st.st_mode))
        return ponder_error_set(err, PONDER_ERR_IO, "%s: exists and is not a regular file; refusing to replace it",
                                out);
    size_t cap = strlen(out) + 48;
    char *tmp = malloc(cap);
    if (!tmp)
        return ponder_error_set(err, PONDER_ERR_NOMEM, "%s: out of memory", out);
    for (int k = 0; k < TEMP_TRIES; k++) {
        snprintf(tmp, cap, "%s.tmp-%ld-%d", out, (long)getpid(), k);
        int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (fd < 0 && errno == EEXIST)
            continue;
        if (fd < 0) {
            int e = errno;
            free(tmp);
            return ponder_error_set(err, PONDER_ERR_IO, "%s: cannot create: %s", out, strerror(e));
        }
        if (exists)
            (void)fchmod(fd, st.st_mode & 07777); /* best effort: keep the old file's mode */
        close(fd);
        *tmp_out = tmp;
        return PONDER_OK;
    }
    free(tmp);
    return ponder_error_set(err, PONDER_ERR_IO, "%s: cannot create a temporary file next to it", out);
}

/* ---- the file ---- */

typedef struct run {
    const ponder_quantize_params *p;
    const ponder_quantize_preset *preset;
    ponder_gguf *g;
    ponder_quantize_tensor_desc *desc;
    ponder_type *types;
    int64_t n;
    const char *in;
} run;

/* Checks that every tensor whose type changes can be converted. */
static ponder_status check_conversions(const run *r, ponder_error *err)
{
    for (int64_t i = 0; i < r->n; i++) {
        const ponder_quantize_tensor_desc *t = &r->desc[i];
        if (r->types[i] == t->type)
            continue;
        const ponder_type_traits *in = ponder_type_get_traits((int)t->type);
        const ponder_type_traits *out = ponder_type_get_traits((int)r->types[i]);
        if (!out || !out->from_float)
            return ponder_error_set(err, PONDER_ERR_UNSUPPORTED, "%s: tensor '%s': cannot quantize to %s",
                                    r->in, t->name, ponder_type_name((int)r->types[i]));
        if (in->is_quantized && !r->p->allow_requantize)
            return ponder_error_set(err, PONDER_ERR_UNSUPPORTED,
                                    "%s: tensor '%s' is already quantized (%s); requantizing it to %s would lose "
                                    "accuracy and is disabled",
                                    r->in, t->name, in->name, out->name);
        if (!in->to_float)
            return ponder_error_set(err, PONDER_ERR_UNSUPPORTED, "%s: tensor '%s': cannot convert from %s",
                                    r->in, t->name, in->name);
    }
    return PONDER_OK;
}

static ponder_status tensor_bytes(const char *in, const char *name, ponder_type t, const int64_t *ne, size_t *out,
                                  ponder_error *err)
{
    size_t row;
    ponder_status st = ponder_type_row_bytes((int)t, ne[0], &row, err);
    if (st != PONDER_OK) {
        ponder_error_prefix(err, "%s: tensor '%s'", in, name);
        return st;
    }
    uint64_t n = row;
    for (int d = 1; d < PONDER_GGUF_MAX_DIMS; d++)
        if (__builtin_mul_overflow(n, (uint64_t)ne[d], &n) || n > SIZE_MAX / 2)
            return ponder_error_set(err, PONDER_ERR_RANGE, "%s: tensor '%s' as %s is too large", in, name,
                                    ponder_type_name((int)t));
    *out = (size_t)n;
    return PONDER_OK;
}

/* Quantizes tensor i into a new buffer (*data, *size). */
static ponder_status convert_tensor(const run *r, int64_t i, float *scratch, size_t scratch_elems, void **data,
                                    size_t *size, ponder_error *err)
{
    const ponder_quantize_tensor_desc *t = &r->desc[i];
    const ponder_gguf_tensor *gt = ponder_gguf_tensor_at(r->g, i);
    convert_job j = {
        .in = ponder_type_get_traits((int)t->type),
        .out = ponder_type_get_traits((int)r->types[i]),
        .src = gt->data,
        .ne0 = t->ne[0],
        /* with ne0 > 0 the reader's size checks bound this product; with 0 it is unchecked */
        .n_rows = t->ne[0] > 0 ? t->ne[1] * t->ne[2] * t->ne[3] : 0,
        .scratch = scratch,
        .scratch_elems = scratch_elems,
    };
    ponder_status st;
    if ((st = ponder_type_row_bytes((int)t->type, t->ne[0], &j.src_row_bytes, err)) != PONDER_OK ||
        (st = ponder_type_row_bytes((int)r->types[i], t->ne[0], &j.dst_row_bytes, err)) != PONDER_OK ||
        (st = tensor_bytes(r->in, t->name, r->types[i], t->ne, size, err)) != PONDER_OK)
        return st;
    j.step_rows = step_rows_for(j.ne0);
    j.dst = malloc(*size ? *size : 1);
    if (!j.dst)
        return ponder_error_set(err, PONDER_ERR_NOMEM, "%s: tensor '%s': out of memory for %zu bytes", r->in, t->name,
                                *size);
    if (j.n_rows > 0 && j.ne0 > 0)
        ponder_pool_run(r->p->pool, convert_rows, &j);
    *data = j.dst;
    return PONDER_OK;
}

/* The caller's metadata keys over the copied ones (llama-quantize's --override-kv). */
static ponder_status set_overrides(ponder_gguf_writer *w, const ponder_quantize_params *p, ponder_error *err)
{
    for (int i = 0; i < p->n_kv; i++) {
        const ponder_quantize_kv *kv = &p->kv[i];
        ponder_status st;
        if (!kv->key || !*kv->key)
            return ponder_error_set(err, PONDER_ERR_INVALID_ARG, "quantize: a metadata override has no key");
        switch (kv->type) {
        case PONDER_GGUF_FLOAT32:
            st = ponder_gguf_writer_set_f32(w, kv->key, (float)kv->f, err);
            break;
        case PONDER_GGUF_BOOL:
            st = ponder_gguf_writer_set_bool(w, kv->key, kv->b, err);
            break;
        case PONDER_GGUF_STRING:
            st = kv->str ? ponder_gguf_writer_set_str(w, kv->key, kv->str, err)
                         : ponder_error_set(err, PONDER_ERR_INVALID_ARG, "quantize: %s: no string", kv->key);
            break;
        default:
            return ponder_error_set(err, PONDER_ERR_INVALID_ARG, "quantize: %s: only float, bool and str overrides",
                                    kv->key);
        }
        if (st != PONDER_OK)
            return st;
    }
    return PONDER_OK;
}

static ponder_status start_writer(const run *r, ponder_gguf_writer **out, ponder_error *err)
{
    ponder_gguf_writer *w = NULL;
    ponder_status st = ponder_gguf_writer_create(&w, err);
    if (st != PONDER_OK)
        return st;
    /* Metadata in input order; llama-quantize appends or updates these two keys. */
    if ((st = ponder_gguf_writer_copy_kv(w, r->g, err)) != PONDER_OK ||
        (st = ponder_gguf_writer_set_u32(w, "general.quantization_version", QUANT_VERSION, err)) != PONDER_OK ||
        (st = ponder_gguf_writer_set_u32(w, "general.file_type", r->preset->ftype, err)) != PONDER_OK ||
        (st = set_overrides(w, r->p, err)) != PONDER_OK)
        goto fail;
    /* The writer accepts alignments of 8 and more; a smaller one (legal, never seen)
     * becomes the default 32. */
    uint32_t align = ponder_gguf_alignment(r->g);
    if (ponder_gguf_find_kv(r->g, "general.alignment") >= 0 && align >= 8 &&
        (st = ponder_gguf_writer_set_alignment(w, align, err)) != PONDER_OK)
        goto fail;
    *out = w;
    return PONDER_OK;
fail:
    ponder_gguf_writer_free(w);
    return st;
}

ponder_status ponder_quantize_file(const char *in, const char *out, const ponder_quantize_params *p,
                                   ponder_quantize_report *report, ponder_error *err)
{
    if (!in || !out || !p)
        return ponder_error_set(err, PONDER_ERR_INVALID_ARG, "ponder_quantize_file: NULL argument");
    const ponder_quantize_preset *preset = ponder_quantize_preset_find(p->target);
    if (!preset)
        return ponder_error_set(err, PONDER_ERR_INVALID_ARG, "unknown quantization type '%s'",
                                p->target ? p->target : "(null)");

    run r = {.p = p, .preset = preset, .in = in};
    ponder_gguf_writer *w = NULL;
    char *tmp = NULL;
    float *scratch = NULL;
    ponder_quantize_report rep = {.preset = preset};
    ponder_status st;

    if ((st = ponder_gguf_open(in, &r.g, err)) != PONDER_OK)
        goto done;
    r.n = ponder_gguf_n_tensors(r.g);
    r.desc = calloc((size_t)(r.n > 0 ? r.n : 1), sizeof *r.desc);
    r.types = calloc((size_t)(r.n > 0 ? r.n : 1), sizeof *r.types);
    if (!r.desc || !r.types) {
        st = ponder_error_set(err, PONDER_ERR_NOMEM, "%s: out of memory for %" PRId64 " tensors", in, r.n);
        goto done;
    }
    for (int64_t i = 0; i < r.n; i++) {
        const ponder_gguf_tensor *t = ponder_gguf_tensor_at(r.g, i);
        r.desc[i].name = t->name;
        r.desc[i].type = t->type;
        memcpy(r.desc[i].ne, t->ne, sizeof t->ne);
    }
    ponder_quantize_model_info info;
    if ((st = ponder_quantize_model_info_read(r.g, &info, err)) != PONDER_OK)
        goto done;
    if ((st = ponder_quantize_plan(preset, p->pure, &info, r.desc, r.n, r.types, &rep.n_fallback, err)) != PONDER_OK) {
        ponder_error_prefix(err, "%s", in);
        goto done;
    }
    if ((st = check_conversions(&r, err)) != PONDER_OK)
        goto done;

    /* Fail on an unwritable destination before doing the work. */
    if ((st = temp_create(out, &tmp, err)) != PONDER_OK)
        goto done;
    if ((st = start_writer(&r, &w, err)) != PONDER_OK)
        goto done;

    size_t scratch_elems = 0;
    for (int64_t i = 0; i < r.n; i++) {
        if (r.types[i] == r.desc[i].type || r.desc[i].ne[0] <= 0)
            continue;
        size_t e = (size_t)(step_rows_for(r.desc[i].ne[0]) * r.desc[i].ne[0]);
        scratch_elems = e > scratch_elems ? e : scratch_elems;
    }
    if (scratch_elems > 0) {
        const int nth = ponder_pool_n_threads(p->pool);
        scratch = malloc((size_t)nth * scratch_elems * sizeof *scratch);
        if (!scratch) {
            st = ponder_error_set(err, PONDER_ERR_NOMEM, "%s: out of memory for conversion buffers", in);
            goto done;
        }
    }

    for (int64_t i = 0; i < r.n; i++) {
        const ponder_gguf_tensor *t = ponder_gguf_tensor_at(r.g, i);
        const bool convert = r.types[i] != t->type;
        void *buf = NULL;
        size_t size = (size_t)t->n_bytes;
        if (convert && (st = convert_tensor(&r, i, scratch, scratch_elems, &buf, &size, err)) != PONDER_OK)
            goto done;
        st = ponder_gguf_writer_add_tensor(w, t->name, r.types[i], t->n_dims, t->ne, convert ? buf : t->data, err);
        free(buf);
        if (st != PONDER_OK)
            goto done;

        uint64_t elems = 1;
        for (int d = 0; d < PONDER_GGUF_MAX_DIMS; d++)
            elems *= (uint64_t)t->ne[d]; /* bounded by the reader's size checks */
        rep.n_tensors++;
        rep.n_converted += convert;
        rep.n_by_type[r.types[i]]++;
        rep.n_elems += elems;
        rep.bytes_in += t->n_bytes;
        rep.bytes_out += size;
        if (p->progress) {
            ponder_quantize_progress pr = {i, r.n, t->name, t->type, r.types[i], convert, t->n_bytes, size};
            if (!p->progress(&pr, p->progress_user)) {
                st = ponder_error_set(err, PONDER_ERR_INVALID_ARG, "%s: stopped by the caller after tensor %" PRId64
                                      " of %" PRId64, out, i + 1, r.n);
                goto done;
            }
        }
    }

    if ((st = ponder_gguf_writer_write(w, out, err)) != PONDER_OK)
        goto done;

    struct stat sb;
    rep.file_bytes_in = ponder_gguf_file_size(r.g);
    rep.file_bytes_out = stat(out, &sb) == 0 ? (uint64_t)sb.st_size : 0;
    rep.bits_per_weight = rep.n_elems ? 8.0 * (double)rep.bytes_out / (double)rep.n_elems : 0.0;
    if (report)
        *report = rep;

done:
    if (tmp) {
        unlink(tmp);
        free(tmp);
    }
    free(scratch);
    ponder_gguf_writer_free(w);
    free(r.types);
    free(r.desc);
    ponder_gguf_free(r.g);
    return st;
}
