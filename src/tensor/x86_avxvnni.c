/* x86_avxvnni.c — the AVX2 kernels with AVX-VNNI (VEX vpdpbusd) for the 8-bit dot step;
 * see the note at the top of x86_avx2.c. Compiled with -mavxvnni besides the AVX2 flags. */
#define PONDER_X86_VNNI 1
#include "x86_avx2.c"
