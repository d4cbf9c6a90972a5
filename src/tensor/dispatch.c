/*
 * dispatch.c — picks the kernel path once per process and serves the active table.
 *
 * At first use (pthread_once) every path the CPU can run is resolved into a complete
 * read-only table: the scalar reference row of each type (types.c), overridden by the
 * non-NULL slots of the ISA's own table. The best path is active unless $PONDER_ISA
 * names another one this CPU supports (an unknown or unsupported name is ignored:
 * ponder_cpu_isa() tells which path runs). ponder_tensor_force_isa swaps the active
 * pointer afterwards; the tables themselves never change after init.
 */
#include "tensor/kernels.h"
#include "tensor/quants.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

enum { ISA_SCALAR, ISA_AVX2, ISA_AVX512VNNI, ISA_AVXVNNI, ISA_AVX512, ISA_COUNT };

/* Paths in order of preference (later is better). `table` is NULL for a path whose
 * kernels are not built; `base` is a path whose table is laid under this one's (avx512
 * adds its 512-bit kernels to the avx512vnni ones). */
static const struct {
    const char *name;
    const ponder_isa_kernels *table;
    int base;
} PATHS[ISA_COUNT] = {
    [ISA_SCALAR] = {.name = "scalar", .table = NULL},
#ifdef PONDER_HAVE_X86_KERNELS
    [ISA_AVX2] = {.name = "avx2", .table = &ponder_kernels_avx2},
    [ISA_AVX512VNNI] = {.name = "avx512vnni", .table = &ponder_kernels_avx512vnni},
    [ISA_AVXVNNI] = {.name = "avxvnni", .table = &ponder_kernels_avxvnni},
    [ISA_AVX512] = {.name = "avx512", .table = &ponder_kernels_avx512, .base = ISA_AVX512VNNI},
#else
    [ISA_AVX2] = {.name = "avx2", .table = NULL},
    [ISA_AVX512VNNI] = {.name = "avx512vnni", .table = NULL},
    [ISA_AVXVNNI] = {.name = "avxvnni", .table = NULL},
    [ISA_AVX512] = {.name = "avx512", .table = NULL},
#endif
};

static ponder_isa_kernels RESOLVED[ISA_COUNT];
static bool AVAILABLE[ISA_COUNT];
static int BEST;
static _Atomic(const ponder_isa_kernels *) ACTIVE;
static pthread_once_t ONCE = PTHREAD_ONCE_INIT;

/* Row-batched f16 kernels for paths without their own: the single-row kernels in a loop. */
static void dot_f16_rows_generic(int64_t n, int64_t n_rows, float *out, const ponder_f16 *rows, size_t row_stride,
                                 const ponder_f16 *x)
{
    for (int64_t j = 0; j < n_rows; j++)
        ponder_vec_dot_f16_ref(n, &out[j], (const ponder_f16 *)((const char *)rows + (size_t)j * row_stride), x);
}

static void mad_f16_rows_generic(int64_t n, int64_t n_rows, float *y, const ponder_f16 *rows, size_t row_stride,
                                 const float *w)
{
    for (int64_t j = 0; j < n_rows; j++)
        ponder_vec_mad_f16_ref(n, y, (const ponder_f16 *)((const char *)rows + (size_t)j * row_stride), w[j]);
}

static void fill_scalar(ponder_isa_kernels *k)
{
    memset(k, 0, sizeof *k);
    k->name = PATHS[ISA_SCALAR].name;
    for (int t = 0; t < PONDER_TYPE_COUNT; t++) {
        const ponder_type_traits *tr = ponder_type_get_traits(t);
        if (!tr)
            continue;
        k->type[t].vec_dot = tr->vec_dot;
        k->type[t].from_float = tr->from_float;
    }
    k->f32_to_f16_row = ponder_f32_to_f16_row_ref;
    k->f16_to_f32_row = ponder_f16_to_f32_row_ref;
    k->vec_dot_f16 = ponder_vec_dot_f16_ref;
    k->vec_mad_f16 = ponder_vec_mad_f16_ref;
    k->vec_dot_f16_rows = dot_f16_rows_generic;
    k->vec_mad_f16_rows = mad_f16_rows_generic;
    k->vec_exp_sub = ponder_vec_exp_sub_ref;
}

/* Every non-NULL slot of `isa` laid over the table in out. */
static void overlay(ponder_isa_kernels *out, const ponder_isa_kernels *isa)
{
    for (int t = 0; t < PONDER_TYPE_COUNT; t++) {
        const ponder_type_kernels *s = &isa->type[t];
        if (s->vec_dot)
            out->type[t].vec_dot = s->vec_dot;
        if (s->from_float)
            out->type[t].from_float = s->from_float;
        if (s->to_q8_0_row)
            out->type[t].to_q8_0_row = s->to_q8_0_row;
        if (s->packed_gemm) {
            out->type[t].pack_layout = s->pack_layout;
            out->type[t].packed_gemm = s->packed_gemm;
        }
        if (s->gemm) {
            out->type[t].gemm = s->gemm;
            out->type[t].gemm_rows = s->gemm_rows;
            out->type[t].gemm_tokens = s->gemm_tokens;
        }
    }
    if (isa->f32_to_f16_row)
        out->f32_to_f16_row = isa->f32_to_f16_row;
    if (isa->f16_to_f32_row)
        out->f16_to_f32_row = isa->f16_to_f32_row;
    if (isa->vec_dot_f16)
        out->vec_dot_f16 = isa->vec_dot_f16;
    if (isa->vec_mad_f16)
        out->vec_mad_f16 = isa->vec_mad_f16;
    if (isa->vec_exp_sub)
        out->vec_exp_sub = isa->vec_exp_sub;
    if (isa->vec_dot_f16_rows)
        out->vec_dot_f16_rows = isa->vec_dot_f16_rows;
    if (isa->vec_mad_f16_rows)
        out->vec_mad_f16_rows = isa->vec_mad_f16_rows;
    if (isa->attn_f16)
        out->attn_f16 = isa->attn_f16;
}

/* The scalar table with path i's base (if any) and then path i's own slots over it. */
static void resolve(ponder_isa_kernels *out, int i)
{
    fill_scalar(out);
    if (PATHS[i].base > ISA_SCALAR && PATHS[PATHS[i].base].table)
        overlay(out, PATHS[PATHS[i].base].table);
    overlay(out, PATHS[i].table);
    out->name = PATHS[i].name;
}

static bool cpu_runs(int isa, const ponder_cpu_features *f)
{
    switch (isa) {
    case ISA_SCALAR:
        return true;
    case ISA_AVX2:
        return f->avx2 && f->fma && f->f16c;
    case ISA_AVX512VNNI:
        return f->avx2 && f->fma && f->f16c && f->avx512f && f->avx512bw && f->avx512vl && f->avx512vnni;
    case ISA_AVXVNNI:
        return f->avx2 && f->fma && f->f16c && f->avx_vnni;
    case ISA_AVX512:
        return cpu_runs(ISA_AVX512VNNI, f);
    default:
        return false;
    }
}

static int find_path(const char *name)
{
    for (int i = 0; i < ISA_COUNT; i++)
        if (strcmp(PATHS[i].name, name) == 0)
            return i;
    return -1;
}

static void init_once(void)
{
    const ponder_cpu_features f = ponder_cpu_detect();
    fill_scalar(&RESOLVED[ISA_SCALAR]);
    AVAILABLE[ISA_SCALAR] = true;
    BEST = ISA_SCALAR;
    for (int i = ISA_SCALAR + 1; i < ISA_COUNT; i++) {
        if (!PATHS[i].table || !cpu_runs(i, &f))
            continue;
        resolve(&RESOLVED[i], i);
        AVAILABLE[i] = true;
        BEST = i;
    }
    int use = BEST;
    const char *env = getenv("PONDER_ISA");
    if (env && *env) {
        const int i = find_path(env);
        if (i >= 0 && AVAILABLE[i])
            use = i;
    }
    atomic_store(&ACTIVE, &RESOLVED[use]);
}

const ponder_isa_kernels *ponder_kernels(void)
{
    pthread_once(&ONCE, init_once);
    return atomic_load_explicit(&ACTIVE, memory_order_acquire);
}

const char *ponder_cpu_isa(void)
{
    return ponder_kernels()->name;
}

bool ponder_tensor_isa_available(const char *name)
{
    pthread_once(&ONCE, init_once);
    const int i = name ? find_path(name) : -1;
    return i >= 0 && AVAILABLE[i];
}

ponder_status ponder_tensor_force_isa(const char *name, ponder_error *err)
{
    pthread_once(&ONCE, init_once);
    int i = BEST;
    if (name && strcmp(name, "auto") != 0) {
        i = find_path(name);
        if (i < 0)
            return ponder_error_set(err, PONDER_ERR_INVALID_ARG,
                                    "unknown kernel path '%s' (known: auto, scalar, avx2, avx512vnni, avxvnni, avx512)", name);
        if (!PATHS[i].table && i != ISA_SCALAR)
            return ponder_error_set(err, PONDER_ERR_UNSUPPORTED,
                                    "kernel path '%s' is not built into this libponder", name);
        if (!AVAILABLE[i])
            return ponder_error_set(err, PONDER_ERR_UNSUPPORTED,
                                    "kernel path '%s' needs CPU features this machine lacks", name);
    }
    atomic_store_explicit(&ACTIVE, &RESOLVED[i], memory_order_release);
    return PONDER_OK;
}

/* ---- public row kernels, dispatched ---- */

void ponder_f32_to_f16_row(const float *x, ponder_f16 *y, int64_t n)
{
    ponder_kernels()->f32_to_f16_row(x, y, n);
}

void ponder_f16_to_f32_row(const ponder_f16 *x, float *y, int64_t n)
{
    ponder_kernels()->f16_to_f32_row(x, y, n);
}

void ponder_vec_dot_f16(int64_t n, float *out, const ponder_f16 *x, const ponder_f16 *y)
{
    ponder_kernels()->vec_dot_f16(n, out, x, y);
}

void ponder_vec_mad_f16(int64_t n, float *y, const ponder_f16 *x, float a)
{
    ponder_kernels()->vec_mad_f16(n, y, x, a);
}

void ponder_vec_dot_f16_rows(int64_t n, int64_t n_rows, float *out, const ponder_f16 *rows, size_t row_stride,
                             const ponder_f16 *x)
{
    ponder_kernels()->vec_dot_f16_rows(n, n_rows, out, rows, row_stride, x);
}

void ponder_vec_mad_f16_rows(int64_t n, int64_t n_rows, float *y, const ponder_f16 *rows, size_t row_stride,
                             const float *w)
{
    ponder_kernels()->vec_mad_f16_rows(n, n_rows, y, rows, row_stride, w);
}

double ponder_vec_exp_sub(int64_t n, float *y, const float *x, float max)
{
    return ponder_kernels()->vec_exp_sub(n, y, x, max);
}
