/*
 * cpu.c — run-time CPU feature detection (cpuid + xgetbv).
 *
 * A feature counts only if the CPU has it AND the OS saves the register state it needs
 * (XCR0 bits, read with xgetbv once CPUID says OSXSAVE): a kernel may not use YMM
 * registers under an OS that does not preserve them across context switches. Bits are
 * from the Intel SDM vol. 2A, CPUID leaves 1 and 7 (AMD uses the same bits).
 */
#include "tensor/kernels.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>

#define XCR0_SSE_AVX 0x06u        /* XMM (bit 1) and YMM upper halves (bit 2) */
#define XCR0_AVX512 0xe0u         /* opmask (5), ZMM_Hi256 (6), Hi16_ZMM (7) */

static uint64_t read_xcr0(void)
{
    uint32_t eax, edx;
    /* the xgetbv opcode, so no -mxsave is needed for _xgetbv */
    __asm__ volatile(".byte 0x0f, 0x01, 0xd0" : "=a"(eax), "=d"(edx) : "c"(0));
    return ((uint64_t)edx << 32) | eax;
}

ponder_cpu_features ponder_cpu_detect(void)
{
    ponder_cpu_features f = {0};
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d))
        return f;
    const bool osxsave = c & (1u << 27);
    const bool has_avx = c & (1u << 28);
    const bool has_fma = c & (1u << 12);
    const bool has_f16c = c & (1u << 29);
    if (!osxsave)
        return f;
    const uint64_t xcr0 = read_xcr0();
    const bool ymm_ok = (xcr0 & XCR0_SSE_AVX) == XCR0_SSE_AVX;
    const bool zmm_ok = ymm_ok && (xcr0 & XCR0_AVX512) == XCR0_AVX512;
    if (!ymm_ok)
        return f;
    f.avx = has_avx;
    f.fma = has_avx && has_fma;
    f.f16c = has_avx && has_f16c;
    unsigned max_leaf = __get_cpuid_max(0, NULL);
    if (max_leaf < 7)
        return f;
    __cpuid_count(7, 0, a, b, c, d);
    f.avx2 = has_avx && (b & (1u << 5));
    if (zmm_ok) {
        f.avx512f = b & (1u << 16);
        f.avx512bw = f.avx512f && (b & (1u << 30));
        f.avx512vl = f.avx512f && (b & (1u << 31));
        f.avx512vnni = f.avx512f && (c & (1u << 11));
    }
    if (a < 1) /* leaf 7 has no sub-leaf 1 */
        return f;
    unsigned a1, b1, c1, d1;
    __cpuid_count(7, 1, a1, b1, c1, d1);
    (void)b1;
    (void)c1;
    (void)d1;
    f.avx_vnni = f.avx2 && (a1 & (1u << 4));
    f.avx512bf16 = f.avx512f && (a1 & (1u << 5));
    return f;
}

#else

ponder_cpu_features ponder_cpu_detect(void)
{
    ponder_cpu_features f = {0};
    return f;
}

#endif
