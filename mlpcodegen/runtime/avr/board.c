/* mlpcodegen board file for the ATmega328P on simavr (avr-libc's start-up copies .data and
   zeroes .bss): the UART (simavr echoes what is sent), Timer1 counting CPU cycles (its
   overflow interrupt extends it to 32 bits: about 30 cycles each 65536 counted) and the
   end of the run (sleep with interrupts off: simavr quits). */
#include <stdint.h>
#include <avr/interrupt.h>
#include <avr/io.h>
#include <avr/sleep.h>

void mlpc_write(const char *text);
uint32_t mlpc_count(void);
void mlpc_init(void);
void mlpc_stop(void);

static volatile uint16_t mlpc_wraps;

ISR(TIMER1_OVF_vect)
{
    ++mlpc_wraps;
}

/* before main (avr-libc's .init8): transmitter on, Timer1 at the CPU clock, interrupts on */
__attribute__((naked, used, section(".init8"))) void mlpc_init(void)
{
    UCSR0B = (uint8_t)(1u << TXEN0);
    TCCR1A = 0u;
    TCCR1B = (uint8_t)(1u << CS10);
    TIMSK1 = (uint8_t)(1u << TOIE1);
    sei();
}

/* after main returns (exit runs .fini8 before its endless loop) */
__attribute__((naked, used, section(".fini8"))) void mlpc_stop(void)
{
    cli();
    sleep_enable();
    sleep_cpu();
}

void mlpc_write(const char *text)
{
    for (; *text != '\0'; ++text) {
        while ((UCSR0A & (1u << UDRE0)) == 0u) {
        }
        UDR0 = (uint8_t)*text;
    }
}

uint32_t mlpc_count(void)
{
    uint16_t low, high;
    uint8_t pending;
    cli();
    low = TCNT1;
    high = mlpc_wraps;
    pending = (uint8_t)(TIFR1 & (1u << TOV1));
    sei();
    if (pending != 0u && low < 0x8000u) ++high; /* wrapped before TCNT1 was read, not yet counted */
    return ((uint32_t)high << 16) | low;
}
