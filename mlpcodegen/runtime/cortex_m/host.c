/* mlpcodegen verification driver, host side: the platform's text output. */
#include <stdio.h>

void mlpc_write(const char *text);

void mlpc_write(const char *text)
{
    fputs(text, stdout);
}
