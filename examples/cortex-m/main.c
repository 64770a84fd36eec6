/* Calling the generated C on a Cortex-M board (or Arduino, from C++: the header has
 * extern "C" guards).
 *
 *   mlpcodegen convert generated/seed/seed.keras --scaling generated/seed/scaling.json \
 *       --target c --name seed -o seed.c --header --profile embedded --optimize size
 *   arm-none-eabi-gcc -std=c99 -Os -mthumb -mcpu=cortex-m4 -mfpu=fpv4-sp-d16 -mfloat-abi=hard \
 *       -ffunction-sections -fdata-sections -c seed.c main.c board.c
 *
 * (--optimize speed: faster, larger; --scaling: seed() takes x in the units it was
 * trained on, [-1, 1], not the scaled [0, 1] the Keras model takes.)  Then link with your
 * board's start-up code and linker script (CMSIS, the vendor's SDK) and -Wl,--gc-sections.
 * `mlpcodegen size MODEL --core m4f` tells the flash and stack it takes; `mlpcodegen
 * verify MODEL --core m4f` runs it on an emulated core.
 *
 * The predictor has no globals, allocates nothing and calls no library function with
 * --math fast (its file comment says which math it needs otherwise): call it from any
 * task or interrupt, with x and y on the stack.  Its stack need, calls included, is
 * stated in the file comment of seed.c.  tests/test_examples.py builds this file with
 * the commands above and runs it on QEMU (M0+, M4F, M7) with a board of its own that
 * feeds a table of inputs and prints the outputs, compared with the model. */
#include "board.h"
#include "seed.h"

int main(void)
{
    for (;;) {
        float x[1], y[1];
        x[0] = read_sensor();
        seed(x, y); /* one sample: x[inputs] -> y[outputs] */
        write_actuator(y[0]);
    }
}
