/* Calling the generated C from a desktop program.
 *
 *   mlpcodegen convert generated/seed/seed.keras --scaling generated/seed/scaling.json \
 *       --target c --name seed -o seed.c --header
 *   cc -std=c99 -O2 main.c seed.c -o demo -lm && ./demo 0.5
 *
 * seed.keras is the bundled 1-3-2-1 model trained on y = sin(3x)*x for x in [-1, 1],
 * with x scaled to [0, 1]: --scaling folds that scaling in, so seed() takes x itself (without it,
 * the C would take the scaled input, as the Keras model does).  For your model, use its
 * name and sizes (the file comment of the .c states them).  tests/test_examples.py runs
 * these two commands and compares the printed values with the model. */
#include <stdio.h>
#include <stdlib.h>

#include "seed.h"

int main(int argc, char **argv)
{
    float x[1], y[1];
    float batch_x[3] = {-1.0f, 0.0f, 1.0f}, batch_y[3];
    size_t i;

    x[0] = argc > 1 ? strtof(argv[1], NULL) : 0.5f;
    seed(x, y); /* one sample */
    printf("seed(%.9g) = %.9g\n", (double)x[0], (double)y[0]); /* %.9g: every float32 digit */

    seed_batch(batch_x, batch_y, 3u); /* n samples, row-major */
    for (i = 0; i < 3u; ++i) printf("seed(%.9g) = %.9g\n", (double)batch_x[i], (double)batch_y[i]);
    return 0;
}
