/* mlpcodegen bare-metal start-up for Cortex-M on QEMU: vector table, reset handler
   (copy .data, zero .bss, enable the FPU when there is one, run main) and ARM
   semihosting (write a string, exit with a status).  No C library is used. */
#include <stdint.h>

extern uint32_t __data_load, __data_start, __data_end, __bss_start, __bss_end, __stack_top;
int main(void);
void mlpc_reset(void);
void mlpc_write(const char *text);
void mlpc_exit(int status);

static uint32_t mlpc_semihost(uint32_t op, const void *arg)
{
    register uint32_t r0 __asm__("r0") = op;
    register const void *r1 __asm__("r1") = arg;
    __asm__ volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}

void mlpc_write(const char *text)
{
    (void)mlpc_semihost(0x04u, text); /* SYS_WRITE0 */
}

void mlpc_exit(int status)
{
    /* SYS_EXIT_EXTENDED: ADP_Stopped_ApplicationExit and the status (AArch32's SYS_EXIT
       cannot pass a status) */
    static uint32_t block[2];
    block[0] = 0x20026u;
    block[1] = (uint32_t)status;
    (void)mlpc_semihost(0x20u, block);
    for (;;) {
    }
}

static void mlpc_fault(void)
{
    mlpc_write("FAULT\n");
    mlpc_exit(3);
}

/* the copy loops stay loops: no memcpy/memset the image would then pull in */
__attribute__((optimize("no-tree-loop-distribute-patterns"))) void mlpc_reset(void)
{
    uint32_t *src = &__data_load, *dst = &__data_start;
    while (dst < &__data_end) *dst++ = *src++;
    for (dst = &__bss_start; dst < &__bss_end; ++dst) *dst = 0u;
#if defined(__ARM_FP)
    *(volatile uint32_t *)0xE000ED88u |= 0xFu << 20; /* CPACR: CP10 and CP11 full access */
    __asm__ volatile("dsb\n\tisb" ::: "memory");
#endif
    mlpc_exit(main());
}

__attribute__((section(".vectors"), used)) static void (*const mlpc_vectors[16])(void) = {
    (void (*)(void))(&__stack_top), mlpc_reset, mlpc_fault, mlpc_fault, mlpc_fault, mlpc_fault, mlpc_fault,
    0, 0, 0, 0, mlpc_fault, mlpc_fault, 0, mlpc_fault, mlpc_fault,
};
