/*
 * types.c — the type traits table: one row per GGML type id.
 *
 * Geometry (block_elems, block_bytes) is given for every id GGUF files may contain, so
 * the GGUF reader can validate tensor sizes even for types we cannot compute with; those
 * rows have to_float == NULL and model loading reports them by name.
 * Kernel pointers are filled from the scalar reference implementations (quants.c).
 */
#include "ponder/tensor.h"
#include "tensor/quants.h"

#include <stdio.h>

#define QK_K 256 /* super-block size of the K-quants (ggml-common.h) */

static const ponder_type_traits TRAITS[PONDER_TYPE_COUNT] = {
    [PONDER_TYPE_F32] = {"F32", 1, 4, false,
        ponder_f32_to_float, ponder_f32_from_float, ponder_vec_dot_f32, PONDER_TYPE_F32},
    [PONDER_TYPE_F16] = {"F16", 1, 2, false,
        ponder_f16_to_float, ponder_f16_from_float, ponder_vec_dot_f16_f16, PONDER_TYPE_F16},
    [PONDER_TYPE_Q4_0] = {"Q4_0", 32, 18, true,
        ponder_q4_0_to_float, ponder_q4_0_from_float, ponder_vec_dot_q4_0_q8_0, PONDER_TYPE_Q8_0},
    [PONDER_TYPE_Q4_1] = {"Q4_1", 32, 20, true,
        ponder_q4_1_to_float, ponder_q4_1_from_float, ponder_vec_dot_q4_1_q8_1, PONDER_TYPE_Q8_1},
    [PONDER_TYPE_Q5_0] = {"Q5_0", 32, 22, true,
        ponder_q5_0_to_float, ponder_q5_0_from_float, ponder_vec_dot_q5_0_q8_0, PONDER_TYPE_Q8_0},
    [PONDER_TYPE_Q5_1] = {"Q5_1", 32, 24, true,
        ponder_q5_1_to_float, ponder_q5_1_from_float, ponder_vec_dot_q5_1_q8_1, PONDER_TYPE_Q8_1},
    [PONDER_TYPE_Q8_0] = {"Q8_0", 32, 34, true,
        ponder_q8_0_to_float, ponder_q8_0_from_float, ponder_vec_dot_q8_0_q8_0, PONDER_TYPE_Q8_0},
    [PONDER_TYPE_Q8_1] = {"Q8_1", 32, 36, true,
        ponder_q8_1_to_float, ponder_q8_1_from_float, NULL, PONDER_TYPE_Q8_1},
    [PONDER_TYPE_Q2_K] = {"Q2_K", QK_K, 84, true,
        ponder_q2_K_to_float, ponder_q2_K_from_float, ponder_vec_dot_q2_K_q8_K, PONDER_TYPE_Q8_K},
    [PONDER_TYPE_Q3_K] = {"Q3_K", QK_K, 110, true,
        ponder_q3_K_to_float, ponder_q3_K_from_float, ponder_vec_dot_q3_K_q8_K, PONDER_TYPE_Q8_K},
    [PONDER_TYPE_Q4_K] = {"Q4_K", QK_K, 144, true,
        ponder_q4_K_to_float, ponder_q4_K_from_float, ponder_vec_dot_q4_K_q8_K, PONDER_TYPE_Q8_K},
    [PONDER_TYPE_Q5_K] = {"Q5_K", QK_K, 176, true,
        ponder_q5_K_to_float, ponder_q5_K_from_float, ponder_vec_dot_q5_K_q8_K, PONDER_TYPE_Q8_K},
    [PONDER_TYPE_Q6_K] = {"Q6_K", QK_K, 210, true,
        ponder_q6_K_to_float, ponder_q6_K_from_float, ponder_vec_dot_q6_K_q8_K, PONDER_TYPE_Q8_K},
    [PONDER_TYPE_Q8_K] = {"Q8_K", QK_K, 292, true,
        ponder_q8_K_to_float, ponder_q8_K_from_float, NULL, PONDER_TYPE_Q8_K},
    [PONDER_TYPE_IQ2_XXS] = {"IQ2_XXS", QK_K, 66, true, NULL, NULL, NULL, PONDER_TYPE_Q8_K},
    [PONDER_TYPE_IQ2_XS] = {"IQ2_XS", QK_K, 74, true, NULL, NULL, NULL, PONDER_TYPE_Q8_K},
    [PONDER_TYPE_IQ3_XXS] = {"IQ3_XXS", QK_K, 98, true, NULL, NULL, NULL, PONDER_TYPE_Q8_K},
    [PONDER_TYPE_IQ1_S] = {"IQ1_S", QK_K, 50, true, NULL, NULL, NULL, PONDER_TYPE_Q8_K},
    [PONDER_TYPE_IQ4_NL] = {"IQ4_NL", 32, 18, true,
        ponder_iq4_nl_to_float, ponder_iq4_nl_from_float, ponder_vec_dot_iq4_nl_q8_0, PONDER_TYPE_Q8_0},
    [PONDER_TYPE_IQ3_S] = {"IQ3_S", QK_K, 110, true, NULL, NULL, NULL, PONDER_TYPE_Q8_K},
    [PONDER_TYPE_IQ2_S] = {"IQ2_S", QK_K, 82, true, NULL, NULL, NULL, PONDER_TYPE_Q8_K},
    [PONDER_TYPE_IQ4_XS] = {"IQ4_XS", QK_K, 136, true, NULL, NULL, NULL, PONDER_TYPE_Q8_K},
    [PONDER_TYPE_I8] = {"I8", 1, 1, false, NULL, NULL, NULL, PONDER_TYPE_I8},
    [PONDER_TYPE_I16] = {"I16", 1, 2, false, NULL, NULL, NULL, PONDER_TYPE_I16},
    [PONDER_TYPE_I32] = {"I32", 1, 4, false, NULL, NULL, NULL, PONDER_TYPE_I32},
    [PONDER_TYPE_I64] = {"I64", 1, 8, false, NULL, NULL, NULL, PONDER_TYPE_I64},
    [PONDER_TYPE_F64] = {"F64", 1, 8, false, NULL, NULL, NULL, PONDER_TYPE_F64},
    [PONDER_TYPE_IQ1_M] = {"IQ1_M", QK_K, 56, true, NULL, NULL, NULL, PONDER_TYPE_Q8_K},
    [PONDER_TYPE_BF16] = {"BF16", 1, 2, false,
        ponder_bf16_to_float, ponder_bf16_from_float, ponder_vec_dot_bf16, PONDER_TYPE_BF16},
    [PONDER_TYPE_TQ1_0] = {"TQ1_0", QK_K, 54, true, NULL, NULL, NULL, PONDER_TYPE_Q8_K},
    [PONDER_TYPE_TQ2_0] = {"TQ2_0", QK_K, 66, true, NULL, NULL, NULL, PONDER_TYPE_Q8_K},
    [39] = {"MXFP4", 32, 17, true, NULL, NULL, NULL, PONDER_TYPE_Q8_0}, /* GGML_TYPE_MXFP4 */
};

const ponder_type_traits *ponder_type_get_traits(int t)
{
    if (t < 0 || t >= PONDER_TYPE_COUNT || TRAITS[t].name == NULL)
        return NULL;
    return &TRAITS[t];
}

const char *ponder_type_name(int t)
{
    const ponder_type_traits *tr = ponder_type_get_traits(t);
    return tr ? tr->name : "unknown";
}

bool ponder_type_is_supported(int t)
{
    const ponder_type_traits *tr = ponder_type_get_traits(t);
    return tr && tr->to_float && tr->vec_dot;
}

ponder_status ponder_type_row_bytes(int t, int64_t n, size_t *out, ponder_error *err)
{
    const ponder_type_traits *tr = ponder_type_get_traits(t);
    if (!tr)
        return ponder_error_set(err, PONDER_ERR_UNSUPPORTED, "unknown tensor type id %d", t);
    if (n < 0 || n % tr->block_elems != 0)
        return ponder_error_set(err, PONDER_ERR_FORMAT,
                                "row of %lld elements is not a multiple of the %s block size %lld",
                                (long long)n, tr->name, (long long)tr->block_elems);
    *out = (size_t)(n / tr->block_elems) * tr->block_bytes;
    return PONDER_OK;
}
