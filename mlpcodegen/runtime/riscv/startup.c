/* mlpcodegen bare-metal start-up for RV32 on QEMU's virt board (-bios none): stack and
   global pointer, a trap vector, the FPU enabled when there is one (mstatus.FS), .bss
   zeroed (QEMU loads .data in place: the image runs from RAM), RISC-V semihosting (write
   a string, exit with a status) and the instruction counter (minstret, exact under
   -icount shift=0).  No C library start-up is used. */
#include <stdint.h>

extern uint32_t __bss_start, __bss_end;
int main(void);
void mlpc_reset(void);
void mlpc_trap(void);
void mlpc_write(const char *text);
void mlpc_exit(int status);
uint32_t mlpc_count(void);

__attribute__((naked, section(".init"))) void _start(void);
__attribute__((naked, section(".init"))) void _start(void)
{
    __asm__ volatile(".option push\n\t.option norelax\n\tla gp, __global_pointer$\n\t.option pop\n\t"
                     "la sp, __stack_top\n\tla t0, mlpc_trap\n\tcsrw mtvec, t0\n\t"
#if defined(__riscv_flen)
                     "li t0, 0x2000\n\tcsrs mstatus, t0\n\t" /* FS = initial: the FPU on */
#endif
                     "j mlpc_reset");
}

/* the semihosting call: these three uncompressed instructions, in one page */
static uint32_t mlpc_semihost(uint32_t op, const void *arg)
{
    register uint32_t a0 __asm__("a0") = op;
    register const void *a1 __asm__("a1") = arg;
    __asm__ volatile(".option push\n\t.option norvc\n\t.balign 16\n\tslli x0, x0, 0x1f\n\tebreak\n\t"
                     "srai x0, x0, 7\n\t.option pop" : "+r"(a0) : "r"(a1) : "memory");
    return a0;
}

void mlpc_write(const char *text)
{
    (void)mlpc_semihost(0x04u, text); /* SYS_WRITE0 */
}

void mlpc_exit(int status)
{
    static uint32_t block[2]; /* SYS_EXIT_EXTENDED: ADP_Stopped_ApplicationExit and the status */
    block[0] = 0x20026u;
    block[1] = (uint32_t)status;
    (void)mlpc_semihost(0x20u, block);
    for (;;) {
    }
}

__attribute__((aligned(4))) void mlpc_trap(void)
{
    mlpc_write("FAULT\n");
    mlpc_exit(3);
}

uint32_t mlpc_count(void)
{
    uint32_t value;
    __asm__ volatile("csrr %0, minstret" : "=r"(value));
    return value;
}

/* the zeroing loop stays a loop: no memset the image would then pull in */
__attribute__((optimize("no-tree-loop-distribute-patterns"))) void mlpc_reset(void)
{
    uint32_t *dst;
    for (dst = &__bss_start; dst < &__bss_end; ++dst) *dst = 0u;
    mlpc_exit(main());
}
