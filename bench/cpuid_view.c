/* A CPU without AVX-512, as a peer library sees it: an LD_PRELOAD object for bench/batch.py's
 * AVX2 column.  XNNPACK (LiteRT) and ONNX Runtime's MLAS choose their kernels from CPUID at
 * start-up, so on an AVX-512 host they would run AVX-512 kernels beside our AVX2 build.  Linux
 * CPUID faulting (arch_prctl ARCH_SET_CPUID, flag "cpuid_fault" in /proc/cpuinfo) makes each
 * CPUID instruction raise SIGSEGV; the handler runs the real CPUID and clears the AVX-512 (and
 * AVX-VNNI, AMX) bits of leaf 7, so cpuid-based dispatch picks its AVX2 + FMA kernels.
 *
 * Only python processes are affected: compilers the bench runs (gcc's cc1 installs its own
 * SIGSEGV handler) and shells (pyenv's wrapper) inherit LD_PRELOAD but are left alone.  glibc's
 * own choices are made by the loader before this runs and stay as they are.  A SIGSEGV handler
 * installed later (Python's faulthandler) would take the traps: the child runs without it.  Never
 * linked into anything mlpcodegen ships. */
#define _GNU_SOURCE
#include <asm/prctl.h>
#include <cpuid.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#define BIT(n) (1u << (n))
/* leaf 7 subleaf 0: EBX AVX512F/DQ/IFMA/PF/ER/CD/BW/VL; ECX VBMI/VBMI2/VNNI/BITALG/VPOPCNTDQ;
   EDX 4VNNIW/4FMAPS/VP2INTERSECT/AMX-BF16/FP16/AMX-TILE/AMX-INT8; subleaf 1: EAX AVX-VNNI/AVX512-BF16 */
static const unsigned HIDE_B = BIT(16) | BIT(17) | BIT(21) | BIT(26) | BIT(27) | BIT(28) | BIT(30) | BIT(31);
static const unsigned HIDE_C = BIT(1) | BIT(6) | BIT(11) | BIT(12) | BIT(14);
static const unsigned HIDE_D = BIT(2) | BIT(3) | BIT(8) | BIT(22) | BIT(23) | BIT(24) | BIT(25);
static const unsigned HIDE_1A = BIT(4) | BIT(5);

static void on_cpuid(int sig, siginfo_t *info, void *context)
{
    greg_t *r = ((ucontext_t *)context)->uc_mcontext.gregs;
    const unsigned char *ip = (const unsigned char *)r[REG_RIP];
    unsigned leaf = (unsigned)r[REG_RAX], sub = (unsigned)r[REG_RCX], a, b, c, d;
    if (info->si_code <= 0 || ip[0] != 0x0f || ip[1] != 0xa2) { /* a real fault: die as without us */
        signal(sig, SIG_DFL);
        if (info->si_code <= 0) /* sent by kill(): no instruction to fault again */
            raise(sig);
        return;
    }
    syscall(SYS_arch_prctl, ARCH_SET_CPUID, 1);
    __cpuid_count(leaf, sub, a, b, c, d);
    syscall(SYS_arch_prctl, ARCH_SET_CPUID, 0);
    if (leaf == 7 && sub == 0) {
        b &= ~HIDE_B;
        c &= ~HIDE_C;
        d &= ~HIDE_D;
    } else if (leaf == 7 && sub == 1) {
        a &= ~HIDE_1A;
    }
    r[REG_RAX] = a;
    r[REG_RBX] = b;
    r[REG_RCX] = c;
    r[REG_RDX] = d;
    r[REG_RIP] += 2;
}

__attribute__((constructor)) static void hide_avx512(void)
{
    char exe[4096];
    const char *base;
    struct sigaction action;
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0)
        return;
    exe[n] = 0;
    base = strrchr(exe, '/');
    base = base ? base + 1 : exe;
    if (strncmp(base, "python", 6) != 0)
        return;
    memset(&action, 0, sizeof action);
    action.sa_sigaction = on_cpuid;
    action.sa_flags = SA_SIGINFO;
    sigaction(SIGSEGV, &action, 0);
    syscall(SYS_arch_prctl, ARCH_SET_CPUID, 0);
}
