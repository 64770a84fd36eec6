"""Names a generated C function may not take: every identifier and macro of the C99
standard library headers, the names C99 7.26 reserves for future library use, the GNU
and POSIX extensions those headers declare in gcc's default modes, and the keywords of
C (C99 to C23) and C++ (to C++20), since the header is included from C++ too.

A clash shows only when the user's program includes the header that declares the name
(``bool`` compiles alone and breaks next to ``<stdbool.h>``), so the table is checked
whole, whatever the generated file includes itself.  Data only: :func:`reserved_by`
says why a name is refused, or None.

Beyond this hand-kept table: c_reserved.txt, next to this file, holds every further name
the same headers define in gcc's and g++'s GNU modes (glibc) and in newlib
(arm-none-eabi-gcc), read from the compilers by bench/c_reserved_names.py
(``acosf64``, ``pthread_create``, ``BIG_ENDIAN``, ``PATH_MAX``, ``gammaf``...).
"""
from __future__ import annotations

import functools

import re
from pathlib import Path

#: header -> kind -> names (space separated).
_C99_HEADERS: dict[str, dict[str, str]] = {
    "<assert.h>": {"macro": "assert NDEBUG"},
    "<complex.h>": {
        "macro": "complex imaginary I _Complex_I _Imaginary_I CX_LIMITED_RANGE",
        "function": " ".join(f"{name}{suffix}" for name in (
            "cacos casin catan ccos csin ctan cacosh casinh catanh ccosh csinh ctanh cexp clog cabs cpow csqrt "
            "carg cimag conj cproj creal").split() for suffix in ("", "f", "l")),
    },
    "<ctype.h>": {"function": "isalnum isalpha isblank iscntrl isdigit isgraph islower isprint ispunct isspace "
                              "isupper isxdigit tolower toupper"},
    "<errno.h>": {"macro": "errno EDOM EILSEQ ERANGE"},
    "<fenv.h>": {
        "type": "fenv_t fexcept_t",
        "macro": "FE_DIVBYZERO FE_INEXACT FE_INVALID FE_OVERFLOW FE_UNDERFLOW FE_ALL_EXCEPT FE_DOWNWARD "
                 "FE_TONEAREST FE_TOWARDZERO FE_UPWARD FE_DFL_ENV FENV_ACCESS",
        "function": "feclearexcept fegetexceptflag feraiseexcept fesetexceptflag fetestexcept fegetround "
                    "fesetround fegetenv feholdexcept fesetenv feupdateenv",
    },
    "<float.h>": {"macro": "FLT_ROUNDS FLT_EVAL_METHOD FLT_RADIX DECIMAL_DIG " + " ".join(
        f"{p}_{s}" for p in ("FLT", "DBL", "LDBL")
        for s in "MANT_DIG DIG MIN_EXP MIN_10_EXP MAX_EXP MAX_10_EXP MAX EPSILON MIN".split())},
    "<inttypes.h>": {"type": "imaxdiv_t",
                     "function": "imaxabs imaxdiv strtoimax strtoumax wcstoimax wcstoumax"},
    "<iso646.h>": {"macro": "and and_eq bitand bitor compl not not_eq or or_eq xor xor_eq"},
    "<limits.h>": {"macro": "CHAR_BIT SCHAR_MIN SCHAR_MAX UCHAR_MAX CHAR_MIN CHAR_MAX MB_LEN_MAX SHRT_MIN "
                            "SHRT_MAX USHRT_MAX INT_MIN INT_MAX UINT_MAX LONG_MIN LONG_MAX ULONG_MAX LLONG_MIN "
                            "LLONG_MAX ULLONG_MAX"},
    "<locale.h>": {"type": "lconv", "function": "setlocale localeconv",
                   "macro": "LC_ALL LC_COLLATE LC_CTYPE LC_MONETARY LC_NUMERIC LC_TIME NULL"},
    "<math.h>": {
        "type": "float_t double_t",
        "macro": "HUGE_VAL HUGE_VALF HUGE_VALL INFINITY NAN FP_INFINITE FP_NAN FP_NORMAL FP_SUBNORMAL FP_ZERO "
                 "FP_FAST_FMA FP_FAST_FMAF FP_FAST_FMAL FP_ILOGB0 FP_ILOGBNAN MATH_ERRNO MATH_ERREXCEPT "
                 "math_errhandling fpclassify isfinite isinf isnan isnormal signbit isgreater isgreaterequal "
                 "isless islessequal islessgreater isunordered FP_CONTRACT",
        "function": " ".join(f"{name}{suffix}" for name in (
            "acos asin atan atan2 cos sin tan acosh asinh atanh cosh sinh tanh exp exp2 expm1 frexp ilogb ldexp "
            "log log10 log1p log2 logb modf scalbn scalbln cbrt fabs hypot pow sqrt erf erfc lgamma tgamma ceil "
            "floor nearbyint rint lrint llrint round lround llround trunc fmod remainder remquo copysign nan "
            "nextafter nexttoward fdim fmax fmin fma").split() for suffix in ("", "f", "l")),
    },
    "<setjmp.h>": {"type": "jmp_buf", "function": "longjmp", "macro": "setjmp"},
    "<signal.h>": {"type": "sig_atomic_t", "function": "signal raise",
                   "macro": "SIG_DFL SIG_ERR SIG_IGN SIGABRT SIGFPE SIGILL SIGINT SIGSEGV SIGTERM"},
    "<stdarg.h>": {"type": "va_list", "macro": "va_start va_arg va_copy va_end"},
    "<stdbool.h>": {"macro": "bool true false __bool_true_false_are_defined"},
    "<stddef.h>": {"type": "ptrdiff_t size_t wchar_t", "macro": "NULL offsetof"},
    "<stdint.h>": {
        "type": " ".join(f"{u}int{kind}{bits}_t" for u in ("", "u") for kind in ("", "_least", "_fast")
                         for bits in (8, 16, 32, 64)) + " intptr_t uintptr_t intmax_t uintmax_t",
        "macro": " ".join(f"{u}INT{kind}{bits}_{end}" for u in ("", "U") for kind in ("", "_LEAST", "_FAST")
                          for bits in (8, 16, 32, 64) for end in ("MIN", "MAX")) + " " + " ".join(
            f"{u}INT{bits}_C" for u in ("", "U") for bits in (8, 16, 32, 64, "MAX")) + " INTPTR_MIN INTPTR_MAX "
            "UINTPTR_MAX INTMAX_MIN INTMAX_MAX UINTMAX_MAX PTRDIFF_MIN PTRDIFF_MAX SIG_ATOMIC_MIN SIG_ATOMIC_MAX "
            "SIZE_MAX WCHAR_MIN WCHAR_MAX WINT_MIN WINT_MAX",
    },
    "<stdio.h>": {
        "type": "FILE fpos_t",
        "macro": "_IOFBF _IOLBF _IONBF BUFSIZ EOF FOPEN_MAX FILENAME_MAX L_tmpnam SEEK_CUR SEEK_END SEEK_SET "
                 "TMP_MAX stderr stdin stdout",
        "function": "remove rename tmpfile tmpnam fclose fflush fopen freopen setbuf setvbuf fprintf fscanf "
                    "printf scanf snprintf sprintf sscanf vfprintf vfscanf vprintf vscanf vsnprintf vsprintf "
                    "vsscanf fgetc fgets fputc fputs getc getchar gets putc putchar puts ungetc fread fwrite "
                    "fgetpos fseek fsetpos ftell rewind clearerr feof ferror perror",
    },
    "<stdlib.h>": {
        "type": "div_t ldiv_t lldiv_t",
        "macro": "EXIT_FAILURE EXIT_SUCCESS RAND_MAX MB_CUR_MAX",
        "function": "atof atoi atol atoll strtod strtof strtold strtol strtoll strtoul strtoull rand srand "
                    "calloc free malloc realloc abort atexit exit _Exit getenv system bsearch qsort abs labs "
                    "llabs div ldiv lldiv mblen mbtowc wctomb mbstowcs wcstombs",
    },
    "<string.h>": {"function": "memcpy memmove strcpy strncpy strcat strncat memcmp strcmp strcoll strncmp "
                               "strxfrm memchr strchr strcspn strpbrk strrchr strspn strstr strtok memset "
                               "strerror strlen"},
    "<tgmath.h>": {"macro": "carg cimag conj cproj creal"},
    "<time.h>": {"type": "clock_t time_t tm", "macro": "CLOCKS_PER_SEC",
                 "function": "clock difftime mktime time asctime ctime gmtime localtime strftime"},
    "<wchar.h>": {
        "type": "mbstate_t wint_t",
        "macro": "WEOF",
        "function": "fwprintf fwscanf swprintf swscanf vfwprintf vfwscanf vswprintf vswscanf vwprintf vwscanf "
                    "wprintf wscanf fgetwc fgetws fputwc fputws fwide getwc getwchar putwc putwchar ungetwc "
                    "wcstod wcstof wcstold wcstol wcstoll wcstoul wcstoull wcscpy wcsncpy wmemcpy wmemmove "
                    "wcscat wcsncat wcscmp wcscoll wcsncmp wcsxfrm wmemcmp wcschr wcscspn wcspbrk wcsrchr "
                    "wcsspn wcsstr wcstok wmemchr wcslen wmemset wcsftime btowc wctob mbsinit mbrlen mbrtowc "
                    "wcrtomb mbsrtowcs wcsrtombs",
    },
    "<wctype.h>": {"type": "wctrans_t wctype_t",
                   "function": "iswalnum iswalpha iswblank iswcntrl iswdigit iswgraph iswlower iswprint "
                               "iswpunct iswspace iswupper iswxdigit iswctype wctype towlower towupper "
                               "towctrans wctrans"},
}
C99_HEADERS = tuple(_C99_HEADERS)

#: What else the same headers declare in gcc's default (GNU) modes, and the macros gcc
#: predefines there: a program built without -std=c99 sees these too.
_EXTENSIONS: dict[str, str] = {
    "<math.h> (GNU/POSIX)": "j0 j1 jn y0 y1 yn gamma drem finite significand exp10 pow10 sincos scalb "
                            "isinff isnanf finitef",
    "<stdlib.h> (POSIX)": "random srandom drand48 erand48 lrand48 nrand48 mrand48 jrand48 srand48 seed48 "
                          "lcong48 posix_memalign aligned_alloc putenv setenv unsetenv mkstemp realpath",
    "<string.h> (POSIX)": "index rindex bzero bcopy bcmp ffs",
    "<stdio.h> (POSIX)": "fileno popen pclose fdopen getline getdelim dprintf",
    "gcc's predefined macros (GNU modes)": "unix linux i386",
}

_C_KEYWORDS = ("auto break case char const continue default do double else enum extern float for goto if inline "
               "int long register restrict return short signed sizeof static struct switch typedef union "
               "unsigned void volatile while alignas alignof bool constexpr false nullptr static_assert "
               "thread_local true typeof typeof_unqual asm")
#: C++20 keywords and alternative tokens (and the contextual ones, which would read oddly).
_CXX_KEYWORDS = ("alignas alignof and and_eq asm auto bitand bitor bool break case catch char char8_t char16_t "
                 "char32_t class compl concept const consteval constexpr constinit const_cast continue co_await "
                 "co_return co_yield decltype default delete do double dynamic_cast else enum explicit export "
                 "extern false float for friend goto if inline int long mutable namespace new noexcept not "
                 "not_eq nullptr operator or or_eq private protected public register reinterpret_cast requires "
                 "return short signed sizeof static static_assert static_cast struct switch template this "
                 "thread_local throw true try typedef typeid typename union unsigned using virtual void "
                 "volatile wchar_t while xor xor_eq final override import module")


def _index() -> dict[str, str]:
    reasons: dict[str, str] = {}
    for where, names in [("a C++ keyword or alternative token", _CXX_KEYWORDS), ("a C keyword", _C_KEYWORDS)]:
        reasons.update((name, f"is {where}") for name in names.split())
    for where, names in _EXTENSIONS.items():
        reasons.update((name, f"is declared by {where}") for name in names.split())
    for header, kinds in _C99_HEADERS.items():
        for kind, names in kinds.items():
            reasons.update((name, f"is a {kind} of {header}") for name in names.split())
    return reasons


#: name -> why it is reserved ("is a macro of <math.h>").
RESERVED: dict[str, str] = _index()
RESERVED_NAMES = frozenset(RESERVED)

#: Reserved by pattern (C99 7.1.3 and 7.26 future library directions, C++ [lex.name],
#: POSIX): regex -> why.
RESERVED_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = tuple((re.compile(p), why) for p, why in (
    (r"_", "starts with an underscore (reserved at file scope, C99 7.1.3)"),
    (r".*__", "contains a double underscore (reserved in C++)"),
    (r"E[0-9A-Z]", "is reserved for <errno.h> macros (E followed by a digit or capital)"),
    (r"(is|to)[a-z]", "is reserved for <ctype.h> and <wctype.h> (is... / to...)"),
    (r"(str|mem|wcs)[a-z]", "is reserved for <string.h>, <stdlib.h> and <wchar.h> (str... / mem... / wcs...)"),
    (r"SIG_?[A-Z]", "is reserved for <signal.h> macros (SIG...)"),
    (r"LC_[A-Z]", "is reserved for <locale.h> macros (LC_...)"),
    (r"(PRI|SCN)[a-zX]", "is reserved for <inttypes.h> macros (PRI... / SCN...)"),
    (r"u?int\w*_t\Z", "is reserved for <stdint.h> types (int..._t)"),
    (r"U?INT\w*_(MAX|MIN|C)\Z", "is reserved for <stdint.h> macros (INT..._MAX / _MIN / _C)"),
    (r"\w*_t\Z", "ends in _t (reserved for types by POSIX)"),
    (r"(FE|FP)_[A-Z]", "is reserved for <fenv.h> and <math.h> macros (FE_... / FP_...)"),
    (r"(FLT|DBL|LDBL)_[A-Z0-9]", "is reserved for <float.h> macros (FLT_... / DBL_... / LDBL_...)"),
    (r"M_[A-Z0-9]", "is a <math.h> constant in GNU modes (M_PI, M_E...)"),
    (r"c(erf|erfc|exp2|expm1|log10|log1p|log2|lgamma|tgamma)[fl]?\Z", "is reserved for <complex.h> (C99 7.26.1)"),
))


def table_reason(name: str) -> str | None:
    """Why the table above or its patterns refuse ``name``, or None."""
    if name in RESERVED:
        return RESERVED[name]
    return next((why for pattern, why in RESERVED_PATTERNS if pattern.match(name)), None)


#: The modes of c_reserved.txt: what each is, for the reason a name is refused.
HEADER_MODES = {
    "gnu": "the C library headers in gcc's default GNU mode (glibc)",
    "c++": "the C library headers in g++ (glibc with _GNU_SOURCE)",
    "c++11": "the C library headers in g++ -std=c++11 (glibc with _GNU_SOURCE)",
    "newlib": "newlib's C library headers (arm-none-eabi-gcc)",
}


@functools.cache
def header_names() -> dict[str, str]:
    """name -> why, for the names the compilers' headers define beyond the table: c_reserved.txt
    (``NAME KIND MODE[,MODE...]`` lines; the first mode names it), read on the first name check,
    not at import."""
    reasons: dict[str, str] = {}
    text = Path(__file__).with_name("c_reserved.txt").read_text(encoding="utf-8")
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, kind, modes = line.split()
            what = "a macro of" if kind == "macro" else "declared by"
            reasons[name] = f"is {what} {HEADER_MODES[modes.split(',')[0]]}"
    return reasons



def reserved_by(name: str) -> str | None:
    """Why ``name`` may not be a C (or C++) external name, or None if it may."""
    return table_reason(name) or header_names().get(name)
