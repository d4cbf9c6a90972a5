/* x86_avx512vnni.c — the AVX2 kernels with AVX512-VNNI (EVEX vpdpbusd on 256-bit
 * registers) for the 8-bit dot step, for CPUs that have AVX-512 VNNI but not AVX-VNNI
 * (Ice Lake, Zen 4); see the note at the top of x86_avx2.c. */
#define PONDER_X86_VNNI 2
#include "x86_avx2.c"
