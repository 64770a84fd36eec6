/* mlpcodegen verification driver: runs the predictor on a table of inputs and prints
   each output's bits in hex, then (on an emulated core) what the predictor took: on
   Cortex-M instructions counted by SysTick under QEMU's -icount, elsewhere the platform's
   counter (mlpc_count: minstret on RISC-V, Timer1's cycles on AVR; MLPC_COUNTER defined).
   The same file builds on the host, to compare the bits.  No C library: the platform
   provides mlpc_write. */
#include <stddef.h>
#include <stdint.h>
#include "mlpc_net.h"
#ifndef MLPC_Y_T /* the outputs' type: MLPC_T, but int32 logits of an integer predictor with int16 inputs */
#define MLPC_Y_T MLPC_T
#endif

#if defined(__AVR__) /* 2 KiB of RAM: the table stays in flash, a row is copied before each call */
#include <avr/pgmspace.h>
#define MLPC_TABLE_STORAGE PROGMEM
#else
#define MLPC_TABLE_STORAGE
#endif
#include "mlpc_table.h"
#if defined(__AVR__)
static MLPC_T mlpc_in[MLPC_INPUTS];
static const MLPC_T *mlpc_row(size_t i)
{
    memcpy_P(mlpc_in, mlpc_x[i], sizeof mlpc_in);
    return mlpc_in;
}
#define MLPC_ROW(i) mlpc_row(i)
#else
#define MLPC_ROW(i) mlpc_x[i]
#endif

void mlpc_write(const char *text);

static void mlpc_hex(char *out, uint32_t value)
{
    int i;
    for (i = 0; i < 8; ++i) {
        const uint32_t digit = (value >> (28 - 4 * i)) & 0xFu;
        out[i] = (char)(digit < 10u ? '0' + (int)digit : 'a' + (int)digit - 10);
    }
}

static void mlpc_print_row(const MLPC_Y_T *y)
{
    char line[MLPC_OUTPUTS * 17 + 2];
    size_t j, at = 0;
    for (j = 0; j < MLPC_OUTPUTS; ++j) {
        const unsigned char *bytes = (const unsigned char *)&y[j];
        uint32_t words[2] = {0u, 0u};
        size_t b;
        for (b = 0; b < sizeof(MLPC_Y_T); ++b) words[b / 4u] |= (uint32_t)bytes[b] << (8u * (b % 4u));
        if (sizeof(MLPC_Y_T) == 8u) {
            mlpc_hex(line + at, words[1]);
            at += 8u;
        }
        mlpc_hex(line + at, words[0]);
        at += 8u;
        line[at++] = j + 1u < MLPC_OUTPUTS ? ' ' : '\n';
    }
    line[at] = '\0';
    mlpc_write(line);
}

static MLPC_Y_T mlpc_y[MLPC_OUTPUTS];

#if defined(__arm__) || defined(MLPC_COUNTER)
__attribute__((noinline)) static void mlpc_empty(const MLPC_T *x, MLPC_Y_T *y)
{
    __asm__ volatile("" : : "r"(x), "r"(y) : "memory");
}
#endif

#if defined(__arm__)
#define MLPC_SYST_CSR (*(volatile uint32_t *)0xE000E010u)
#define MLPC_SYST_RVR (*(volatile uint32_t *)0xE000E014u)
#define MLPC_SYST_CVR (*(volatile uint32_t *)0xE000E018u)

#define MLPC_COUNTFLAG(csr) (((csr) >> 16) & 1u)
#ifndef MLPC_SYST_RELOAD
#define MLPC_SYST_RELOAD 0xFFFFFFu /* the largest: a tests' table may define a short period */
#endif

/* SysTick ticks for MLPC_REPEAT passes over the first MLPC_TIMED rows.  The counter is 24
   bits (at most 2^24 ticks: 671M instructions under -icount shift=0) and a big network's passes
   take longer: COUNTFLAG (CSR bit 16, set at each reload, cleared by reading CSR) is
   polled after every call, each far shorter than one period, so every reload is counted.
   The empty call pays the same polling, subtracted with it.  Total < 2^32 ticks (QEMU's
   time limit ends the run long before). */
static uint32_t mlpc_ticks(void (*function)(const MLPC_T *, MLPC_Y_T *))
{
    uint32_t start, end, wraps = 0u;
    size_t i, r;
    (void)MLPC_SYST_CSR; /* clears a reload flagged before the timing */
    start = MLPC_SYST_CVR;
    for (r = 0; r < MLPC_REPEAT; ++r)
        for (i = 0; i < MLPC_TIMED; ++i) {
            function(mlpc_x[i], mlpc_y);
            wraps += MLPC_COUNTFLAG(MLPC_SYST_CSR);
        }
    end = MLPC_SYST_CVR;
    /* a reload between the last poll and reading end: end is then near the top */
    if (MLPC_COUNTFLAG(MLPC_SYST_CSR) != 0u && end > MLPC_SYST_RELOAD / 2u) ++wraps;
    return wraps * (MLPC_SYST_RELOAD + 1u) + start - end;
}
#elif defined(MLPC_COUNTER)
uint32_t mlpc_count(void);

/* the platform's count for MLPC_REPEAT passes over the first MLPC_TIMED rows (32 bits:
   modular differences; a run is far shorter than 2^32 instructions or cycles) */
static uint32_t mlpc_ticks(void (*function)(const MLPC_T *, MLPC_Y_T *))
{
    size_t i, r;
    const uint32_t start = mlpc_count();
    for (r = 0; r < MLPC_REPEAT; ++r)
        for (i = 0; i < MLPC_TIMED; ++i) function(MLPC_ROW(i), mlpc_y);
    return mlpc_count() - start;
}
#endif

int main(void)
{
    size_t i;
    for (i = 0; i < MLPC_ROWS; ++i) {
        MLPC_NAME(MLPC_ROW(i), mlpc_y);
        mlpc_print_row(mlpc_y);
    }
#if defined(__arm__) || defined(MLPC_COUNTER)
    {
        char line[32] = "ticks ";
#if defined(__arm__)
        MLPC_SYST_RVR = MLPC_SYST_RELOAD;
        MLPC_SYST_CVR = 0u;
        MLPC_SYST_CSR = 5u; /* enabled, processor clock, no interrupt */
        while (MLPC_SYST_CVR == 0u) {
            /* until the first load of RVR: a start at 0 would reload without COUNTFLAG */
        }
#endif
        mlpc_hex(line + 6, mlpc_ticks(MLPC_NAME));
        line[14] = ' ';
        mlpc_hex(line + 15, mlpc_ticks(mlpc_empty));
        line[23] = '\n';
        line[24] = '\0';
        mlpc_write(line);
    }
#endif
    return 0;
}
