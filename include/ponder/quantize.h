/*
 * quantize.h — convert a GGUF model to another weight type, as llama-quantize does.
 *
 * A target is a preset named as llama.cpp names its file types (LLAMA_FTYPE_MOSTLY_*,
 * matched case-insensitively): "Q4_K_M", "Q8_0", "F16", ... A preset gives a base type
 * for the 2-D weight matrices and, unless it is pure, the per-tensor adjustments of
 * llama.cpp's llama_tensor_get_type (src/llama-quant.cpp at c392e509, Feb 2025): the
 * output / tied embedding in Q6_K, more bits for attn_v and ffn_down in some layers, and
 * so on. Norms, biases and other 1-D tensors, and tensors llama.cpp never quantizes (the
 * MoE router ffn_gate_inp, ...) are copied unchanged. A matrix whose row length does not
 * fit the chosen type's block gets llama.cpp's fallback type (Q4_K -> Q5_0, Q5_K -> Q5_1,
 * Q6_K -> Q8_0, Q2_K/Q3_K -> IQ4_NL), and F16 when that does not fit either.
 *
 * The output keeps the input's metadata (general.file_type and
 * general.quantization_version are set), tensor order and alignment. It is written to a
 * temporary file next to the destination and renamed into place only when complete, so
 * a failure never leaves a partial file under the output name.
 */
#ifndef PONDER_QUANTIZE_H
#define PONDER_QUANTIZE_H

#include "ponder/common.h"
#include "ponder/gguf.h"
#include "ponder/pool.h"
#include "ponder/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- presets ---- */
typedef struct ponder_quantize_preset {
    const char *name;       /* "Q4_K_M" */
    uint32_t ftype;         /* llama_ftype number written as general.file_type */
    ponder_type base_type;  /* type of the 2-D weights before per-tensor adjustments */
    bool pure;              /* no per-tensor adjustments (only the row-length fallback) */
    const char *summary;    /* one line for help texts */
} ponder_quantize_preset;

/* The i-th preset (0-based) in the order help texts list them; NULL past the end. */
const ponder_quantize_preset *ponder_quantize_preset_at(int i);
/* The preset called `name` (any case); NULL if there is none. */
const ponder_quantize_preset *ponder_quantize_preset_find(const char *name);

/* ---- per-tensor type choice ----
 * What the choice depends on besides the tensor itself, read from the GGUF metadata. */
typedef struct ponder_quantize_model_info {
    char arch[64];      /* general.architecture ("llama", "qwen2", "falcon", ...); "" if absent */
    int32_t n_layer;    /* <arch>.block_count */
    int32_t n_head;     /* <arch>.attention.head_count (of layer 0 if per layer) */
    int32_t n_head_kv;  /* <arch>.attention.head_count_kv (n_head if absent) */
    int32_t n_expert;   /* <arch>.expert_count (0 if absent) */
} ponder_quantize_model_info;

typedef struct ponder_quantize_tensor_desc {
    const char *name;
    int64_t ne[PONDER_GGUF_MAX_DIMS]; /* ne[0] is the row length; unused dims are 1 */
    ponder_type type;                 /* type in the input file */
} ponder_quantize_tensor_desc;

/* Chooses the output type of each of the n tensors of one model (the whole list is
 * needed: llama.cpp counts attn_v tensors, looks for an output.weight and walks the
 * tensors in (layer, name) order). out_types[i] is the type tensors[i] gets; it equals
 * the input type for tensors that are copied. With `pure`, every quantizable tensor gets
 * the preset's base type (then the fallback). n_fallback (may be NULL) receives the
 * number of tensors that needed the row-length fallback.
 * PONDER_ERR_FORMAT if the metadata the preset needs is missing or inconsistent (no
 * block count, an expert tensor whose layer is out of range). */
ponder_status ponder_quantize_plan(const ponder_quantize_preset *preset, bool pure,
                                   const ponder_quantize_model_info *model,
                                   const ponder_quantize_tensor_desc *tensors, int64_t n,
                                   ponder_type *out_types, int64_t *n_fallback, ponder_error *err);

/* Reads the fields of *out from a GGUF file's metadata. Absent keys are left 0 (n_head_kv:
 * n_head); PONDER_ERR_FORMAT for a value of the wrong type or range. */
ponder_status ponder_quantize_model_info_read(const ponder_gguf *g, ponder_quantize_model_info *out,
                                              ponder_error *err);

/* ---- whole files ---- */

/* One tensor done (index counts from 0, in file order). Return false to stop: the call
 * then fails with PONDER_ERR_INVALID_ARG ("stopped by the caller") and writes nothing. */
typedef struct ponder_quantize_progress {
    int64_t index, n_tensors;
    const char *name;
    ponder_type type_in, type_out;
    bool converted;             /* false: copied unchanged */
    uint64_t bytes_in, bytes_out;
} ponder_quantize_progress;
typedef bool (*ponder_quantize_progress_fn)(const ponder_quantize_progress *p, void *user);

/* A metadata key the output gets (added, or replacing the input's), as llama-quantize's
 * --override-kv KEY=TYPE:VALUE: type FLOAT32 (f), BOOL (b) or STRING (str). */
typedef struct ponder_quantize_kv {
    const char *key;
    ponder_gguf_type type;
    double f;
    bool b;
    const char *str;
} ponder_quantize_kv;

typedef struct ponder_quantize_params {
    const char *target;           /* preset name (required) */
    bool pure;                    /* llama-quantize --pure */
    bool allow_requantize;        /* convert tensors that are already quantized (dequantized first) */
    ponder_pool *pool;            /* rows of each tensor are split across its threads; NULL: calling thread */
    ponder_quantize_progress_fn progress; /* called on the calling thread after each tensor; may be NULL */
    void *progress_user;
    const ponder_quantize_kv *kv; /* n_kv keys written after the input's metadata */
    int n_kv;
} ponder_quantize_params;

ponder_quantize_params ponder_quantize_params_default(void);

typedef struct ponder_quantize_report {
    const ponder_quantize_preset *preset;
    int64_t n_tensors;
    int64_t n_converted;                       /* tensors whose type changed */
    int64_t n_fallback;                        /* tensors that got a fallback type */
    int64_t n_by_type[PONDER_TYPE_COUNT];      /* output tensors per type */
    uint64_t n_elems;                          /* weights in all tensors */
    uint64_t bytes_in, bytes_out;              /* tensor data, without padding */
    uint64_t file_bytes_in, file_bytes_out;
    double bits_per_weight;                    /* 8 * bytes_out / n_elems */
} ponder_quantize_report;

/* Converts the GGUF file `in` to `out` (they may be the same path). report (may be NULL)
 * is filled on success. Errors: PONDER_ERR_INVALID_ARG for an unknown target,
 * PONDER_ERR_IO / PONDER_ERR_FORMAT for unreadable or invalid input, or an output that
 * cannot be created, PONDER_ERR_UNSUPPORTED for a quantized input tensor that would need
 * converting without allow_requantize, or a type we cannot convert from or to. */
ponder_status ponder_quantize_file(const char *in, const char *out, const ponder_quantize_params *p,
                                   ponder_quantize_report *report, ponder_error *err);

#ifdef __cplusplus
}
#endif
#endif /* PONDER_QUANTIZE_H */
