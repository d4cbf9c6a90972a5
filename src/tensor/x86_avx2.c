/*
 * x86_avx2.c — AVX2 + FMA + F16C kernels and their table. Compiled with -mavx2 -mfma
 * -mf16c -ffp-contract=off (CMakeLists.txt), called only when dispatch.c has seen those
 * features at run time. The kernels live in three files this one includes, by concern:
 * x86_avx2_floats.inc (F32/F16/BF16 rows, F16 tiles), x86_avx2_quants.inc (activation
 * quantizers, the 32-element block family and its tiles) and x86_avx2_kquants.inc
 * (K-quants and their tiles), over the helpers of x86_avx2_internal.h. They are included
 * rather than compiled apart so each build below is still one translation unit of static
 * kernels, compiled with its own flags.
 *
 * The same source is built twice more as the VNNI paths (x86_avxvnni.c and
 * x86_avx512vnni.c include it, with -mavxvnni or the AVX-512 flags besides): with
 * PONDER_X86_VNNI set to 1 (AVX-VNNI, VEX) or 2 (AVX512-VNNI on 256-bit registers,
 * EVEX), the 8-bit dot step of the Q8_0 family (maddubs, then madd with ones) becomes one
 * vpdpbusd. The int32 lane sums are the same numbers (maddubs cannot saturate here: one
 * operand is at most 128 and the other at most 127 in magnitude), so every VNNI result is
 * bit-identical to this path's; only the speed differs.
 *
 * Contract with the scalar oracle (quants.c, quants_k.c, floats.c):
 *  - activation quantizers (Q8_0, Q8_1, Q8_K, F16, BF16) give identical bytes, NaN and
 *    ties included: roundf is rebuilt from truncation (half away from zero), Q8_K's
 *    nearest_int keeps its magic-number form, max-abs ignores NaN as the scalar compare
 *    does, and out-of-range Q8_K values wrap as the scalar (int8_t) cast does;
 *  - dots compute the same exact integer block sums and the same scale products, so
 *    they differ from the oracle only in the order float terms are added.
 * Layout facts (nibble order, Q5 high bits, K-quant scale packing) are documented at the
 * block structs in quants.h and at the scalar kernels; the vector forms follow them.
 *
 * Tile kernels (gemm_*) serve prompt processing: several weight rows x several tokens per
 * pass, so decoded weights and loaded activations are reused from registers (llamafile's
 * tinyBLAS idea). Single tokens use the vec_dots, which stream one row at a time.
 * Matrices repacked at load (pack.c) use x86_avx2_packed.inc's kernels instead, for
 * prompts and single tokens alike (avx2 and avxvnni; avx512vnni stays on file rows).
 */
#include "tensor/x86_avx2_internal.h"

#include "tensor/x86_avx2_floats.inc"
#include "tensor/x86_avx2_quants.inc"
#include "tensor/x86_avx2_kquants.inc"
#if PONDER_X86_VNNI != 2
#include "tensor/x86_avx2_packed.inc"
/* weights repacked at load (not on avx512vnni: that path is the unpacked comparison) */
#define PACKED(layout, fn) .pack_layout = (layout), .packed_gemm = (fn)
#else
#define PACKED(layout, fn) .pack_layout = PONDER_PACK_NONE
#endif

/* ---- the table ---- */

#if PONDER_X86_VNNI == 1
const ponder_isa_kernels ponder_kernels_avxvnni = {
    .name = "avxvnni",
#elif PONDER_X86_VNNI == 2
const ponder_isa_kernels ponder_kernels_avx512vnni = {
    .name = "avx512vnni",
#else
const ponder_isa_kernels ponder_kernels_avx2 = {
    .name = "avx2",
#endif
    .type = {
        [PONDER_TYPE_F32] = {.vec_dot = vec_dot_f32},
        [PONDER_TYPE_F16] = {.vec_dot = vec_dot_f16_f16, .from_float = f16_from_float,
                             .gemm = gemm_f16, .gemm_rows = F16_RM, .gemm_tokens = F16_RN,
                             PACKED(PONDER_PACK_F16_R16, gemm_f16_r16)},
        [PONDER_TYPE_BF16] = {.vec_dot = vec_dot_bf16, .from_float = bf16_from_float,
                              PACKED(PONDER_PACK_BF16_R16, gemm_bf16_r16)},
        [PONDER_TYPE_Q4_0] = {.vec_dot = vec_dot_q4_0, .gemm = gemm_q4_0, .gemm_rows = Q8_RM, .gemm_tokens = Q8_RN,
                              .to_q8_0_row = q4_0_to_q8_0_row, PACKED(PONDER_PACK_Q8U_R16, gemm_q8u_small4)},
        [PONDER_TYPE_Q4_1] = {.vec_dot = vec_dot_q4_1},
        [PONDER_TYPE_Q5_0] = {.vec_dot = vec_dot_q5_0, .gemm = gemm_q5_0, .gemm_rows = Q8_RM, .gemm_tokens = Q8_RN,
                              .to_q8_0_row = q5_0_to_q8_0_row, PACKED(PONDER_PACK_Q5U_R16, gemm_q5u)},
        [PONDER_TYPE_Q5_1] = {.vec_dot = vec_dot_q5_1},
        [PONDER_TYPE_Q8_0] = {.vec_dot = vec_dot_q8_0, .from_float = quantize_q8_0,
                              .gemm = gemm_q8_0, .gemm_rows = Q8_RM, .gemm_tokens = Q8_RN,
                              PACKED(PONDER_PACK_Q8U_R16, gemm_q8u_signed)},
        [PONDER_TYPE_Q8_1] = {.from_float = quantize_q8_1},
        [PONDER_TYPE_IQ4_NL] = {.vec_dot = vec_dot_iq4_nl, .gemm = gemm_iq4_nl, .gemm_rows = Q8_RM,
                                .gemm_tokens = Q8_RN, .to_q8_0_row = iq4_nl_to_q8_0_row,
                                PACKED(PONDER_PACK_Q8U_R16, gemm_q8u_signed)},
        [PONDER_TYPE_Q2_K] = {.vec_dot = vec_dot_q2_K},
        [PONDER_TYPE_Q3_K] = {.vec_dot = vec_dot_q3_K},
        [PONDER_TYPE_Q4_K] = {.vec_dot = vec_dot_q4_K, .gemm = gemm_q4_K, .gemm_rows = K_RM, .gemm_tokens = K_RN,
                              PACKED(PONDER_PACK_Q4K_R16, gemm_q4k_r16)},
        [PONDER_TYPE_Q5_K] = {.vec_dot = vec_dot_q5_K},
        [PONDER_TYPE_Q6_K] = {.vec_dot = vec_dot_q6_K, .gemm = gemm_q6_K, .gemm_rows = K_RM, .gemm_tokens = K_RN,
                              PACKED(PONDER_PACK_Q6K_R16, gemm_q6k_r16)},
        [PONDER_TYPE_Q8_K] = {.from_float = quantize_q8_K},
    },
    .f32_to_f16_row = f32_to_f16_row,
    .f16_to_f32_row = f16_to_f32_row,
    .vec_dot_f16 = vec_dot_f16,
    .vec_mad_f16 = vec_mad_f16,
    .vec_dot_f16_rows = vec_dot_f16_rows,
    .vec_mad_f16_rows = vec_mad_f16_rows,
    .vec_exp_sub = vec_exp_sub,
};
