/* mlpcodegen: what the generated C uses of <string.h> (gcc inlines fixed-size copies), for sizes on lx106. */
#ifndef MLPC_XTENSA_STRING_H
#define MLPC_XTENSA_STRING_H
#include <stddef.h>
void *memcpy(void *dst, const void *src, size_t n);
#endif
