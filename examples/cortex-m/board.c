/* Replace with your board's input and output (board.h): an ADC reading scaled to the
 * model's units, a PWM duty cycle... */
#include "board.h"

static volatile float sensor_value;
static volatile float actuator_value;

float read_sensor(void)
{
    return sensor_value;
}

void write_actuator(float value)
{
    actuator_value = value;
}
