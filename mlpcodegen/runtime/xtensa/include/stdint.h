/* mlpcodegen: Debian's gcc-xtensa-lx106 ships no C library headers; sizes only need gcc's own types. */
#include <stdint-gcc.h>
