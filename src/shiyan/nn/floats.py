r"""Floating-point formats explained bit by bit: fp64, fp32, fp16 and bf16.

An IEEE-754-style binary format has a sign bit $s$, an exponent field $E$ of $w$ bits and a
mantissa (fraction) field $M$ of $p$ bits. With bias $b = 2^{w-1}-1$:

* normal numbers ($0 < E < 2^w-1$): $x = (-1)^s \cdot 2^{E-b} \cdot (1 + M/2^{p})$ -- the leading 1
  is implicit ("hidden bit"), so a normal number has $p+1$ significant bits;
* subnormal numbers and zero ($E = 0$): $x = (-1)^s \cdot 2^{1-b} \cdot (M/2^{p})$ -- gradual
  underflow down to $2^{1-b-p}$;
* $E = 2^w-1$: $\pm\infty$ when $M = 0$, NaN otherwise.

Hence the limits (:class:`FloatFormat`): machine epsilon $\varepsilon = 2^{-p}$ (the gap after
1), largest finite $(2-2^{-p})\,2^{b}$, smallest normal $2^{1-b}$, smallest subnormal
$2^{1-b-p}$, and the unit in the last place of $x$, $\mathrm{ulp}(x) = 2^{\max(e, 1-b)-p}$
where $e = \lfloor\log_2|x|\rfloor$.

=======  ==========  ========  ==============  =====================
format   exponent w  mantissa  max             smallest normal
=======  ==========  ========  ==============  =====================
fp64     11          52        1.8e308         2.2e-308
fp32     8           23        3.4e38          1.2e-38
fp16     5           10        65504           6.1e-5
bf16     8           7         3.4e38          1.2e-38
=======  ==========  ========  ==============  =====================

fp16 trades range for precision; bf16 keeps fp32's 8-bit exponent (its range) and keeps only 7
mantissa bits: bf16 is exactly the upper half of an fp32 word.

**Rounding.** :func:`encode` rounds to nearest, ties to even (RNE), the IEEE default: among the
two neighbours of $x$ pick the closer one; on an exact tie pick the one whose last mantissa bit
is 0. Values at or beyond $(2-2^{-p-1})\,2^{b}$ become $\pm\infty$. It works on the exact
rational value of the Python float with integer arithmetic, so it is independent of numpy.
For bf16 the usual definition (and torch's) is two-step: round to fp32, then round the fp32
word to its upper 16 bits with RNE, which on the bits is
$\mathrm{bits}_{16} = \lfloor(\mathrm{bits}_{32} + \mathtt{0x7FFF} + \mathrm{bit}_{16})/2^{16}\rfloor$
(:func:`bf16_bits_from_fp32`). Going through fp32 can differ from rounding the double directly
(double rounding) in rare ties; ``encode(x, BF16)`` follows the two-step definition and
``encode(x, BF16, via_fp32=False)`` rounds directly. For fp16 the default is direct rounding,
as numpy does (torch's float64 -> float16 cast also goes through fp32).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Literal

import numpy as np

__all__ = [
    "BF16",
    "FORMATS",
    "FP16",
    "FP32",
    "FP64",
    "FloatBits",
    "FloatFormat",
    "bf16_bits_from_fp32",
    "bits_to_string",
    "decode",
    "describe",
    "encode",
    "fields",
    "format_named",
    "round_to",
    "ulp",
]


@dataclasses.dataclass(frozen=True)
class FloatFormat:
    """A binary floating-point format with 1 sign bit, ``exponent_bits`` and ``mantissa_bits``."""

    name: str
    exponent_bits: int
    """$w$: width of the biased exponent field."""
    mantissa_bits: int
    """$p$: stored fraction bits (the hidden leading 1 is not counted)."""

    def __post_init__(self) -> None:
        if not (2 <= self.exponent_bits <= 11):
            raise ValueError(f"exponent_bits must be in [2, 11]; got {self.exponent_bits}")
        if not (1 <= self.mantissa_bits <= 52):
            raise ValueError(f"mantissa_bits must be in [1, 52]; got {self.mantissa_bits}")

    @property
    def bits(self) -> int:
        """Total width $1 + w + p$."""
        return 1 + self.exponent_bits + self.mantissa_bits

    @property
    def bias(self) -> int:
        """$b = 2^{w-1} - 1$."""
        return (1 << (self.exponent_bits - 1)) - 1

    @property
    def emax(self) -> int:
        """Largest unbiased exponent of a finite number, $b$."""
        return self.bias

    @property
    def emin(self) -> int:
        """Smallest unbiased exponent of a normal number, $1-b$."""
        return 1 - self.bias

    @property
    def eps(self) -> float:
        """Machine epsilon $2^{-p}$: the gap between 1 and the next number."""
        return math.ldexp(1.0, -self.mantissa_bits)

    @property
    def max(self) -> float:
        """Largest finite value $(2 - 2^{-p})\\,2^{b}$."""
        return math.ldexp(2.0 - math.ldexp(1.0, -self.mantissa_bits), self.emax)

    @property
    def min_normal(self) -> float:
        """Smallest positive normal value $2^{1-b}$ (numpy/torch call it ``tiny``/``smallest_normal``)."""
        return math.ldexp(1.0, self.emin)

    @property
    def min_subnormal(self) -> float:
        """Smallest positive subnormal value $2^{1-b-p}$."""
        return math.ldexp(1.0, self.emin - self.mantissa_bits)

    @property
    def decimal_digits(self) -> float:
        """About how many decimal digits the $p+1$ significant bits carry, $(p+1)\\log_{10}2$."""
        return (self.mantissa_bits + 1) * math.log10(2.0)

    @property
    def _exp_all_ones(self) -> int:
        return (1 << self.exponent_bits) - 1


FP64 = FloatFormat("fp64", 11, 52)
FP32 = FloatFormat("fp32", 8, 23)
FP16 = FloatFormat("fp16", 5, 10)
BF16 = FloatFormat("bf16", 8, 7)
FORMATS: tuple[FloatFormat, ...] = (FP64, FP32, FP16, BF16)


def format_named(name: Literal["fp64", "fp32", "fp16", "bf16"]) -> FloatFormat:
    """The format called ``name``."""
    for fmt in FORMATS:
        if fmt.name == name:
            return fmt
    raise ValueError(f"name must be one of {', '.join(f.name for f in FORMATS)}; got {name!r}")


def _check_format(fmt: object) -> FloatFormat:
    if not isinstance(fmt, FloatFormat):
        raise TypeError(f"fmt must be a FloatFormat (e.g. FP16); got {type(fmt).__name__}")
    return fmt


def _check_bits(bits: object, fmt: FloatFormat) -> int:
    if isinstance(bits, (np.integer,)):
        bits = int(bits)
    if isinstance(bits, bool) or not isinstance(bits, int):
        raise TypeError(f"bits must be an int; got {type(bits).__name__}")
    if not 0 <= bits < (1 << fmt.bits):
        raise ValueError(f"bits must be in [0, 2**{fmt.bits}) for {fmt.name}; got {bits}")
    return bits


def _check_float(x: object) -> float:
    if isinstance(x, bool) or not isinstance(x, (int, float, np.floating, np.integer)):
        raise TypeError(f"x must be a real number; got {type(x).__name__}")
    return float(x)


# --------------------------------------------------------------------------------------------
# Fields <-> value
# --------------------------------------------------------------------------------------------


def fields(bits: int, fmt: FloatFormat) -> tuple[int, int, int]:
    """Split a bit pattern into ``(sign, exponent field E, mantissa field M)``."""
    fmt = _check_format(fmt)
    bits = _check_bits(bits, fmt)
    p, w = fmt.mantissa_bits, fmt.exponent_bits
    mantissa = bits & ((1 << p) - 1)
    exponent = (bits >> p) & ((1 << w) - 1)
    sign = bits >> (p + w)
    return sign, exponent, mantissa


def _assemble(sign: int, exponent: int, mantissa: int, fmt: FloatFormat) -> int:
    return (sign << (fmt.exponent_bits + fmt.mantissa_bits)) | (exponent << fmt.mantissa_bits) | mantissa


def decode(bits: int, fmt: FloatFormat) -> float:
    r"""The value of a bit pattern, exactly (every format here is a subset of fp64).

    Normal: $(-1)^s 2^{E-b}(1+M/2^p)$; subnormal/zero: $(-1)^s 2^{1-b} M/2^p$.
    """
    s, E, M = fields(bits, fmt)
    p = fmt.mantissa_bits
    sign = -1.0 if s else 1.0
    if E == fmt._exp_all_ones:
        return sign * math.inf if M == 0 else math.nan
    if E == 0:
        return sign * math.ldexp(float(M), fmt.emin - p)  # subnormal (or signed zero)
    significand = (1 << p) | M  # hidden bit + fraction: p+1 bits
    return sign * math.ldexp(float(significand), E - fmt.bias - p)


def _round_shift_right_even(n: int, r: int) -> int:
    """$\\mathrm{round}(n / 2^r)$ with ties to even, for $n \\ge 0$, $r \\ge 1$."""
    q = n >> r
    rem = n & ((1 << r) - 1)
    half = 1 << (r - 1)
    if rem > half or (rem == half and q & 1):
        q += 1
    return q


def encode(x: float, fmt: FloatFormat, *, via_fp32: bool | None = None) -> int:
    """Bit pattern of ``x`` rounded to ``fmt`` (round to nearest, ties to even).

    ``via_fp32`` (default: only for bf16) first rounds ``x`` to fp32, the two-step definition
    that torch uses for bf16. NaN encodes as the quiet NaN with the sign of ``x``.
    """
    fmt = _check_format(fmt)
    x = _check_float(x)
    if via_fp32 is None:
        via_fp32 = fmt == BF16
    if via_fp32 and fmt.mantissa_bits < FP32.mantissa_bits:
        x = decode(encode(x, FP32), FP32)
    p = fmt.mantissa_bits
    sign = 1 if math.copysign(1.0, x) < 0 else 0
    if math.isnan(x):
        return _assemble(sign, fmt._exp_all_ones, 1 << (p - 1), fmt)
    a = abs(x)
    if math.isinf(a):
        return _assemble(sign, fmt._exp_all_ones, 0, fmt)
    if a == 0.0:
        return _assemble(sign, 0, 0, fmt)
    # a = n / 2^k exactly (Python floats are dyadic rationals)
    n, d = a.as_integer_ratio()
    k = d.bit_length() - 1
    e = n.bit_length() - 1 - k  # floor(log2 a)
    e_eff = max(e, fmt.emin)  # below emin the spacing stops shrinking: subnormals
    q = e_eff - p  # representable numbers near a are integer multiples of 2^q
    shift = -k - q  # a / 2^q = n * 2^shift
    significand = n << shift if shift >= 0 else _round_shift_right_even(n, -shift)
    if significand == (1 << (p + 1)):  # rounding carried into the next binade
        significand >>= 1
        e_eff += 1
    if e_eff > fmt.emax:
        return _assemble(sign, fmt._exp_all_ones, 0, fmt)  # overflow to infinity
    if significand < (1 << p):
        return _assemble(sign, 0, significand, fmt)  # subnormal (or rounded to zero)
    return _assemble(sign, e_eff + fmt.bias, significand - (1 << p), fmt)


def round_to(x: float, fmt: FloatFormat, *, via_fp32: bool | None = None) -> float:
    """``x`` rounded to the nearest value of ``fmt``: ``decode(encode(x))``."""
    return decode(encode(x, fmt, via_fp32=via_fp32), fmt)


def ulp(x: float, fmt: FloatFormat) -> float:
    r"""Unit in the last place at ``x`` (after rounding ``x`` to ``fmt``): $2^{\max(e, 1-b) - p}$,
    the gap from $|x|$ to the next larger number of the format. NaN for NaN and infinities."""
    r = round_to(x, fmt)
    if not math.isfinite(r):
        return math.nan
    a = abs(r)
    if a == 0.0:
        return fmt.min_subnormal
    e = math.frexp(a)[1] - 1  # floor(log2 a), exact for floats
    return math.ldexp(1.0, max(e, fmt.emin) - fmt.mantissa_bits)


def bf16_bits_from_fp32(words: np.ndarray) -> np.ndarray:
    r"""Round fp32 words (a ``uint32`` array, e.g. ``a.view(np.uint32)``) to bf16 words (``uint16``).

    RNE on the low 16 bits: add $\mathtt{0x7FFF}$ plus the lowest kept bit, then drop the low
    half; a carry moves into the exponent exactly as rounding up should. NaNs are kept quiet
    (the add could otherwise carry a NaN into infinity).
    """
    w = np.asarray(words)
    if w.dtype != np.uint32:
        raise TypeError(f"words must be a uint32 array (fp32 bit patterns); got dtype {w.dtype}")
    w64 = w.astype(np.uint64)
    lowest_kept = (w64 >> 16) & 1
    rounded = ((w64 + 0x7FFF + lowest_kept) >> 16).astype(np.uint16)
    is_nan = ((w & 0x7F800000) == 0x7F800000) & ((w & 0x007FFFFF) != 0)
    quiet_nan = ((w >> 16) | 0x0040).astype(np.uint16)
    return np.where(is_nan, quiet_nan, rounded)


# --------------------------------------------------------------------------------------------
# A readable description of one number
# --------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class FloatBits:
    """One number in one format, field by field (what :func:`describe` returns)."""

    format: str
    """Format name (fp64, fp32, fp16, bf16)."""
    bits: int
    """The whole bit pattern as an unsigned integer."""
    sign: int
    """Sign bit $s$."""
    exponent_field: int
    """Biased exponent field $E$."""
    mantissa_field: int
    """Fraction field $M$."""
    exponent: int | None
    """Unbiased exponent ($E-b$, or $1-b$ for subnormals); None for zero, inf and NaN."""
    kind: str
    """'normal', 'subnormal', 'zero', 'inf' or 'nan'."""
    value: float
    """The exact value of the pattern."""
    binary: str
    """Bits grouped as 'sign exponent mantissa'."""


def bits_to_string(bits: int, fmt: FloatFormat) -> str:
    """Bits as ``'s eeeee mmmmmmmmmm'``."""
    s, E, M = fields(bits, fmt)
    return f"{s} {E:0{fmt.exponent_bits}b} {M:0{fmt.mantissa_bits}b}"


def describe(x: float, fmt: FloatFormat) -> FloatBits:
    """Round ``x`` to ``fmt`` and report its fields, kind and exact value."""
    bits = encode(x, fmt)
    s, E, M = fields(bits, fmt)
    if E == fmt._exp_all_ones:
        kind, exponent = ("inf" if M == 0 else "nan"), None
    elif E == 0:
        kind, exponent = ("zero", None) if M == 0 else ("subnormal", fmt.emin)
    else:
        kind, exponent = "normal", E - fmt.bias
    return FloatBits(fmt.name, bits, s, E, M, exponent, kind, decode(bits, fmt), bits_to_string(bits, fmt))
