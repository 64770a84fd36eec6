/* mlpcodegen size probe: calls the predictor once so that the linker keeps it and
   whatever library code it needs (math functions, soft-float helpers). */
#include "mlpc_net.h"

static volatile MLPC_T mlpc_in[MLPC_INPUTS];
static volatile MLPC_T mlpc_out[MLPC_OUTPUTS];

__attribute__((optimize("no-tree-loop-distribute-patterns"))) int main(void)
{
    MLPC_T x[MLPC_INPUTS], y[MLPC_OUTPUTS];
    unsigned i;
    for (i = 0; i < MLPC_INPUTS; ++i) x[i] = mlpc_in[i];
    MLPC_NAME(x, y);
    for (i = 0; i < MLPC_OUTPUTS; ++i) mlpc_out[i] = y[i];
    return 0;
}
