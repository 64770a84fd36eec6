/* Your board's input and output, for main.c: an ADC reading, a PWM duty cycle... */
#ifndef BOARD_H
#define BOARD_H

float read_sensor(void);
void write_actuator(float value);

#endif
