/* mlpcodegen: what the generated C uses of <math.h>, for sizes on lx106 (Debian's gcc-xtensa-lx106 has no
   C library: the fast-math C needs none; a libm call does not link and says so). */
#ifndef MLPC_XTENSA_MATH_H
#define MLPC_XTENSA_MATH_H
#define HUGE_VALF __builtin_huge_valf()
#define HUGE_VAL __builtin_huge_val()
#define INFINITY __builtin_inff()
#define NAN __builtin_nanf("")
#define isnan(x) __builtin_isnan(x)
#define isinf(x) __builtin_isinf(x)
float expf(float), expm1f(float), logf(float), log1pf(float), tanhf(float), erff(float), sqrtf(float);
float fabsf(float), fmaxf(float, float), fminf(float, float);
double exp(double), expm1(double), log(double), log1p(double), tanh(double), erf(double), sqrt(double);
double fabs(double), fmax(double, double), fmin(double, double);
#endif
