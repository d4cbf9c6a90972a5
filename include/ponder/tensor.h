/*
 * tensor.h — tensor element types, their block layouts and the scalar kernels over them.
 *
 * One traits row per type (as ggml's type_traits): name, block geometry, dequantize
 * (to_float), reference quantize (from_float), and the dot product of a weight row with
 * an activation row already converted to the type's `vec_dot_type` — exactly the
 * activation rounding llama.cpp uses (F16 weights dot F16 activations, Q4_0/Q5_0/Q8_0/
 * IQ4_NL dot Q8_0, Q4_1/Q5_1 dot Q8_1, K-quants dot Q8_K). The scalar kernels here are
 * the oracle for every faster kernel.
 *
 * Type ids are GGML's (they are what GGUF files store), so the enum has holes.
 */
#ifndef PONDER_TENSOR_H
#define PONDER_TENSOR_H

#include "ponder/common.h"
#include "ponder/pool.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum ponder_type {
    PONDER_TYPE_F32 = 0,
    PONDER_TYPE_F16 = 1,
    PONDER_TYPE_Q4_0 = 2,
    PONDER_TYPE_Q4_1 = 3,
    PONDER_TYPE_Q5_0 = 6,
    PONDER_TYPE_Q5_1 = 7,
    PONDER_TYPE_Q8_0 = 8,
    PONDER_TYPE_Q8_1 = 9,
    PONDER_TYPE_Q2_K = 10,
    PONDER_TYPE_Q3_K = 11,
    PONDER_TYPE_Q4_K = 12,
    PONDER_TYPE_Q5_K = 13,
    PONDER_TYPE_Q6_K = 14,
    PONDER_TYPE_Q8_K = 15,
    PONDER_TYPE_IQ2_XXS = 16,
    PONDER_TYPE_IQ2_XS = 17,
    PONDER_TYPE_IQ3_XXS = 18,
    PONDER_TYPE_IQ1_S = 19,
    PONDER_TYPE_IQ4_NL = 20,
    PONDER_TYPE_IQ3_S = 21,
    PONDER_TYPE_IQ2_S = 22,
    PONDER_TYPE_IQ4_XS = 23,
    PONDER_TYPE_I8 = 24,
    PONDER_TYPE_I16 = 25,
    PONDER_TYPE_I32 = 26,
    PONDER_TYPE_I64 = 27,
    PONDER_TYPE_F64 = 28,
    PONDER_TYPE_IQ1_M = 29,
    PONDER_TYPE_BF16 = 30,
    PONDER_TYPE_TQ1_0 = 34,
    PONDER_TYPE_TQ2_0 = 35,
    PONDER_TYPE_COUNT = 40, /* one past the largest id we know the geometry of */
} ponder_type;

/* Converts n elements of one block-aligned row. */
typedef void (*ponder_to_float_fn)(const void *src, float *dst, int64_t n);
typedef void (*ponder_from_float_fn)(const float *src, void *dst, int64_t n);
/* *out = dot(x[0..n), y[0..n)) where x is in the weight type and y in its vec_dot_type. */
typedef void (*ponder_vec_dot_fn)(int64_t n, float *out, const void *x, const void *y);

/* The kernels in this table are the scalar reference (the oracle). The products and row
 * conversions below run the fastest path the CPU supports, chosen once at run time (see
 * ponder_cpu_isa); its activation conversions give the same bytes as from_float here. */
typedef struct ponder_type_traits {
    const char *name;          /* "Q4_K", as ggml names it */
    int64_t block_elems;       /* elements per block (1 for plain float types) */
    size_t block_bytes;        /* bytes per block */
    bool is_quantized;
    ponder_to_float_fn to_float;      /* NULL if we cannot dequantize this type */
    ponder_from_float_fn from_float;  /* reference quantizer; NULL if none */
    ponder_vec_dot_fn vec_dot;        /* NULL if no dot product */
    ponder_type vec_dot_type;         /* activation type vec_dot expects */
} ponder_type_traits;

/* Traits of t, or NULL if t is not a type id we know (holes and ids >= COUNT). Types we
 * know the geometry of but cannot compute with have to_float == NULL. */
const ponder_type_traits *ponder_type_get_traits(int t);

/* Name of t, or "unknown(N)"-style text written into buf if unknown. */
const char *ponder_type_name(int t);

/* True if weights of type t can be used in ponder_matmul. */
bool ponder_type_is_supported(int t);

/* Bytes of a row of n elements; PONDER_ERR_FORMAT if n is not a multiple of the block
 * size, PONDER_ERR_UNSUPPORTED if t is unknown. */
ponder_status ponder_type_row_bytes(int t, int64_t n, size_t *out, ponder_error *err);

/* ---- scalar conversions ---- */
typedef uint16_t ponder_f16;   /* IEEE binary16 bits */
typedef uint16_t ponder_bf16;  /* bfloat16 bits */

float ponder_f16_to_f32(ponder_f16 h);
ponder_f16 ponder_f32_to_f16(float f);     /* round to nearest even, as F16C */
float ponder_bf16_to_f32(ponder_bf16 h);
ponder_bf16 ponder_f32_to_bf16(float f);   /* round to nearest even; NaN kept quiet */

/* ---- kernel paths ----
 * The path in use: "scalar", "avx2" (AVX2+FMA+F16C), "avx512vnni" / "avxvnni" (the AVX2
 * kernels with a VNNI 8-bit dot step), "avx512" (AVX-512 F/BW/VL/VNNI: 512-bit tile
 * kernels over weights repacked at load, see ponder_matrix_pack). Chosen once per
 * process: the best one this CPU and OS support, unless the environment variable
 * PONDER_ISA names another supported one (an unknown or unsupported name is ignored). */
const char *ponder_cpu_isa(void);
/* True if `name` is a path this build has and this CPU runs. */
bool ponder_tensor_isa_available(const char *name);
/* Switches every later product to path `name` ("auto" or NULL: the best one), for tests
 * and users. PONDER_ERR_INVALID_ARG for an unknown name, PONDER_ERR_UNSUPPORTED for a
 * path not built in or that needs features this CPU lacks. Do not call it while another
 * thread is inside a tensor call it expects to use the previous path. */
ponder_status ponder_tensor_force_isa(const char *name, ponder_error *err);

/* Rows of f16, for the model's F16 KV cache (Q and the softmax weights are rounded to
 * f16 before their products with K and V, as llama.cpp does). */
void ponder_f32_to_f16_row(const float *x, ponder_f16 *y, int64_t n);
void ponder_f16_to_f32_row(const ponder_f16 *x, float *y, int64_t n);
/* *out = sum x[i]*y[i]; the scalar path accumulates in double as ggml's scalar
 * ggml_vec_dot_f16, vector paths in float (as ggml's SIMD ones). */
void ponder_vec_dot_f16(int64_t n, float *out, const ponder_f16 *x, const ponder_f16 *y);
/* y[i] += a * x[i] for an F16 row x (attention's weighted sum of V rows). The product is
 * rounded to float before the add (no fused multiply-add), so every path gives the same
 * bits as the scalar loop `y[i] += a * ponder_f16_to_f32(x[i])`. */
void ponder_vec_mad_f16(int64_t n, float *y, const ponder_f16 *x, float a);
/* Row-batched forms for attention over a KV cache: row j of n f16 values starts at byte
 * j * row_stride of rows. One call per head instead of one per position, with the query
 * or the output kept in registers:
 * out[j] = dot(rows[j], x) for j < n_rows, the same bits as ponder_vec_dot_f16 per row; */
void ponder_vec_dot_f16_rows(int64_t n, int64_t n_rows, float *out, const ponder_f16 *rows, size_t row_stride,
                             const ponder_f16 *x);
/* y[i] += w[j] * rows[j][i] for j = 0 .. n_rows-1 in order, the same bits as n_rows calls
 * of ponder_vec_mad_f16. */
void ponder_vec_mad_f16_rows(int64_t n, int64_t n_rows, float *y, const ponder_f16 *rows, size_t row_stride,
                             const float *w);
/* Softmax numerator: y[i] = expf(x[i] - max) for i < n (y may alias x); returns the sum
 * of the y[i] as written, accumulated in double. The scalar path calls expf and adds in
 * index order; vector paths use a polynomial within 2 ulp of expf (0 below the float
 * range, +inf above it, NaN for NaN, -inf -> 0) and add in lanes, so the sum's order and
 * the y bits differ from the scalar path (each path is deterministic). */
double ponder_vec_exp_sub(int64_t n, float *y, const float *x, float max);

/* ---- rows ---- */
/* Dequantize n elements (a multiple of the block size) of type t. */
ponder_status ponder_dequantize_row(int t, const void *src, float *dst, int64_t n, ponder_error *err);
/* Reference-quantize n floats into type t. */
ponder_status ponder_quantize_row(int t, const float *src, void *dst, int64_t n, ponder_error *err);

/* ---- matrix products ----
 * A weight matrix as stored in GGUF: n_rows rows of n_cols elements (ne0 = n_cols), each
 * row `row_bytes` long, rows contiguous. */
typedef struct ponder_matrix {
    ponder_type type;
    int64_t n_cols;
    int64_t n_rows;
    size_t row_bytes;
    const void *data;
    /* Optional (zero when unused): rows [0, packed_rows) again in a kernel path's
     * interleaved tile layout, made by ponder_matrix_pack; ponder_matmul reads them there
     * instead of data when the active path computes with that layout (packed_layout), and
     * data otherwise. data stays valid either way (row lookups, other paths). */
    const void *packed;
    int64_t packed_rows;
    int packed_layout;
} ponder_matrix;

/* Repacks w for the active kernel path when that path has an interleaved tile layout for
 * w's type (on x86 with AVX-512 VNNI: 16 rows of the Q8_0 family interleaved by 4 bytes,
 * as llama.cpp's CPU repack and ik_llama.cpp's run-time repacking do), so prompts and
 * single tokens run the same tile kernel. Sets w->packed (owned by w: release it with
 * ponder_matrix_unpack); leaves w as it is, returning PONDER_OK, when there is no layout
 * for it. With drop_source, w->data must be a read-only private file mapping: the pages
 * of the packed rows are handed back to the page cache (madvise), so the process keeps
 * one copy of those weights in memory. */
ponder_status ponder_matrix_pack(ponder_matrix *w, bool drop_source, ponder_error *err);
/* Frees w->packed (if any) and clears the packed fields. */
void ponder_matrix_unpack(ponder_matrix *w);

/* Bytes of scratch ponder_matmul needs to hold n_tokens activation rows converted to
 * the weight type's vec_dot_type; never less than n_cols floats (kept so one buffer
 * serves both modes). 0 if w's type cannot be multiplied (see ponder_type_is_supported)
 * or n_cols is not block-aligned; SIZE_MAX on overflow. */
size_t ponder_matmul_work_bytes(const ponder_matrix *w, int64_t n_tokens);

/* One product of a batch: y = w . x, y holding n_tokens rows of w->n_rows floats. */
typedef struct ponder_matmul_job {
    const ponder_matrix *w;
    float *y;
} ponder_matmul_job;

/* y_j[t][r] = dot(w_j row r, x[t]) for every job j, t < n_tokens, r < w_j->n_rows.
 * All jobs share the input x (n_tokens rows of n_cols floats, the same n_cols for every
 * job). The activations are converted once per distinct vec_dot_type (as llama.cpp
 * does), then the rows of all jobs are split across the pool's threads in ONE parallel
 * region (a NULL pool runs on the calling thread). Results are bit-identical for any
 * thread count. With float_activations the weight rows are dequantized and dotted with
 * the float activations in double instead (an exact-float mode used to check
 * dequantization; it needs no work).
 * Preconditions (not checked in release builds): every type supported
 * (ponder_type_is_supported), n_cols a multiple of the block sizes, row_bytes at least
 * the row size, work at least ponder_matmul_multi_work_bytes bytes and aligned as malloc
 * aligns (Q8_K activations hold floats), y buffers disjoint from each other and from x
 * and work. Not reentrant on one pool. */
void ponder_matmul_multi(const ponder_matmul_job *jobs, int n_jobs, int64_t n_tokens, const float *x,
                         void *work, bool float_activations, ponder_pool *pool);

/* Work bytes ponder_matmul_multi needs for these jobs: the converted activations, one
 * cache-line-aligned region per distinct vec_dot_type (none for F32). For one job it is
 * at most ponder_matmul_work_bytes. 0 if nothing is needed or a job's type cannot be
 * multiplied; SIZE_MAX on overflow. n_threads is reserved for per-thread scratch. */
size_t ponder_matmul_multi_work_bytes(const ponder_matmul_job *jobs, int n_jobs, int64_t n_tokens, int n_threads);

/* One job: ponder_matmul_multi(&(ponder_matmul_job){w, y}, 1, ...). work: the multi
 * work bytes of that one job (ponder_matmul_work_bytes(w, n_tokens) is always enough). */
void ponder_matmul(const ponder_matrix *w, int64_t n_tokens, const float *x, float *y, void *work,
                   bool float_activations, ponder_pool *pool);

#ifdef __cplusplus
}
#endif
#endif /* PONDER_TENSOR_H */
