/* Calling the generated C on a Cortex-M board (or Arduino, from C++: the header has
 * extern "C" guards).
 *
 *   mlpcodegen convert generated/seed/seed.keras --target c --name seed -o seed.c --header \
 *       --profile embedded --optimize size          # or --optimize speed
 *   arm-none-eabi-gcc -std=c99 -Os -mthumb -mcpu=cortex-m4 -mfpu=fpv4-sp-d16 -mfloat-abi=hard \
 *       -ffunction-sections -fdata-sections -c seed.c main.c
 *
 * then link with your board's start-up code and linker script (CMSIS, the vendor's SDK)
 * and -Wl,--gc-sections.  `mlpcodegen size MODEL --core m4f` tells the flash and stack
 * it takes; `mlpcodegen verify MODEL --core m4f` runs it on an emulated core.
 *
 * The predictor has no globals, allocates nothing and calls no library function with
 * --math fast (its file comment says which math it needs otherwise): call it from any
 * task or interrupt, with x and y on the stack.  Its stack need, calls included, is
 * stated in the file comment of seed.c. */
#include "seed.h"

/* Replace with your board's input and output: an ADC reading, a PWM duty cycle... */
static volatile float sensor_value;
static volatile float actuator_value;

static float read_sensor(void)
{
    return sensor_value;
}

static void write_actuator(float value)
{
    actuator_value = value;
}

int main(void)
{
    for (;;) {
        float x[1], y[1];
        x[0] = read_sensor();
        seed(x, y); /* one sample: x[inputs] -> y[outputs] */
        write_actuator(y[0]);
    }
}
