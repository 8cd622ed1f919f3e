"""Float-format explorer against numpy.finfo / torch.finfo and numpy / torch casts."""

from __future__ import annotations

import math
import struct

import numpy as np
import pytest
import torch

from shiyan.nn import floats as fl

NUMPY = {"fp64": np.float64, "fp32": np.float32, "fp16": np.float16}
UINT = {"fp64": np.uint64, "fp32": np.uint32, "fp16": np.uint16}
# overflowing casts to fp16/fp32 are part of what is compared; numpy warns about them
pytestmark = pytest.mark.filterwarnings("ignore:(overflow|invalid value) encountered in cast:RuntimeWarning")

TORCH = {"fp64": torch.float64, "fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


@pytest.mark.parametrize("fmt", [fl.FP64, fl.FP32, fl.FP16])
def test_limits_equal_numpy_finfo(fmt):
    fi = np.finfo(NUMPY[fmt.name])
    assert fmt.bits == fi.bits
    assert fmt.mantissa_bits == fi.nmant
    assert fmt.exponent_bits == fi.nexp
    assert fmt.eps == float(fi.eps)
    assert fmt.max == float(fi.max)
    assert fmt.min_normal == float(fi.smallest_normal)
    assert fmt.min_subnormal == float(fi.smallest_subnormal)
    assert fmt.emin == fi.minexp and fmt.emax == fi.maxexp - 1


@pytest.mark.parametrize("fmt", fl.FORMATS)
def test_limits_equal_torch_finfo(fmt):
    fi = torch.finfo(TORCH[fmt.name])
    assert fmt.bits == fi.bits
    assert fmt.eps == fi.eps
    assert fmt.max == fi.max and -fmt.max == fi.min
    assert fmt.min_normal == fi.smallest_normal == fi.tiny
    # the smallest subnormal is one step above zero
    zero = torch.zeros(1, dtype=TORCH[fmt.name])
    step = torch.nextafter(zero, torch.ones_like(zero)).item()
    assert fmt.min_subnormal == step


def test_decode_every_fp16_pattern_equals_numpy_view():
    patterns = np.arange(2**16, dtype=np.uint32).astype(np.uint16)
    ref = patterns.view(np.float16).astype(np.float64)
    ours = np.array([fl.decode(int(b), fl.FP16) for b in patterns])
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(ref))
    finite = ~np.isnan(ref)
    np.testing.assert_array_equal(ours[finite], ref[finite])
    np.testing.assert_array_equal(np.signbit(ours[finite]), np.signbit(ref[finite]))  # -0.0 too


def test_decode_every_bf16_pattern_equals_torch_view():
    patterns = torch.arange(2**16, dtype=torch.int32).to(torch.int16)  # wraps to the same 16 bits
    ref = patterns.view(torch.bfloat16).double().numpy()
    ours = np.array([fl.decode(b & 0xFFFF, fl.BF16) for b in patterns.tolist()])
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(ref))
    finite = ~np.isnan(ref)
    np.testing.assert_array_equal(ours[finite], ref[finite])


def test_decode_random_fp32_and_fp64_patterns():
    rng = np.random.default_rng(0)
    for fmt in (fl.FP32, fl.FP64):
        words = rng.integers(0, 2**fmt.bits, size=3000, dtype=np.uint64).astype(UINT[fmt.name])
        ref = words.view(NUMPY[fmt.name]).astype(np.float64)
        ours = np.array([fl.decode(int(w), fmt) for w in words])
        np.testing.assert_array_equal(np.isnan(ours), np.isnan(ref))
        ok = ~np.isnan(ref)
        np.testing.assert_array_equal(ours[ok], ref[ok])


def _random_doubles(rng, n, lo_exp, hi_exp):
    """Values spread over binades [2^lo_exp, 2^hi_exp], both signs, plus exact ties and specials."""
    mant = rng.uniform(1.0, 2.0, size=n)
    exps = rng.integers(lo_exp, hi_exp + 1, size=n)
    vals = np.ldexp(mant, exps) * rng.choice([-1.0, 1.0], size=n)
    return vals


@pytest.mark.parametrize("fmt", [fl.FP32, fl.FP16])
def test_encode_equals_numpy_cast(fmt):
    rng = np.random.default_rng(1)
    lo, hi = fmt.emin - fmt.mantissa_bits - 3, fmt.emax + 2  # through subnormals, underflow, overflow
    vals = _random_doubles(rng, 6000, lo, hi)
    # exact ties halfway between two representable numbers (round-half-even is exercised)
    base = np.array([fl.decode(int(b), fmt) for b in rng.integers(0, 2 ** (fmt.bits - 1) - 2**fmt.mantissa_bits, 500)])
    ties = base + np.array([fl.ulp(b, fmt) / 2 for b in base])
    specials = np.array([0.0, -0.0, np.inf, -np.inf, fmt.max, 2 * fmt.max, fmt.min_subnormal / 2, 65519.99, 65520.0])
    vals = np.concatenate([vals, ties, -ties, specials])
    np_dtype = NUMPY[fmt.name]
    ref = vals.astype(np_dtype).view(UINT[fmt.name]).astype(np.uint64)
    ours = np.array([fl.encode(float(v), fmt) for v in vals], dtype=np.uint64)
    np.testing.assert_array_equal(ours, ref)


def test_encode_fp64_is_the_ieee_bit_pattern():
    rng = np.random.default_rng(2)
    for v in list(_random_doubles(rng, 2000, -1074, 1023)) + [0.0, -0.0, math.inf, 5e-324, 1.7976931348623157e308]:
        assert fl.encode(float(v), fl.FP64) == struct.unpack("<Q", struct.pack("<d", float(v)))[0]


def test_encode_bf16_equals_torch_cast():
    rng = np.random.default_rng(3)
    vals = _random_doubles(rng, 6000, -140, 129)
    f32 = vals.astype(np.float32)  # also check values that are exact in fp32
    ties = np.float32(1.0) + np.float32(2.0**-8) * np.arange(1, 200, dtype=np.float32)
    for arr in (vals, f32.astype(np.float64), ties.astype(np.float64)):
        ref = torch.from_numpy(arr).to(torch.bfloat16).view(torch.int16).numpy().view(np.uint16)
        ours = np.array([fl.encode(float(v), fl.BF16) for v in arr], dtype=np.uint16)
        np.testing.assert_array_equal(ours, ref)


def test_bf16_double_rounding_is_documented_behaviour():
    x = 1.0 + 2.0**-8 + 2.0**-30  # just above a bf16 tie, but rounds to the tie in fp32
    assert fl.round_to(x, fl.BF16) == 1.0 == torch.tensor([x], dtype=torch.float64).to(torch.bfloat16).item()
    assert fl.round_to(x, fl.BF16, via_fp32=False) == 1.0 + 2.0**-7  # direct rounding goes up
    y = 1.0 + 2.0**-11 + 2.0**-40
    assert fl.round_to(y, fl.FP16) == float(np.float16(y)) == 1.0 + 2.0**-10


def test_bf16_bits_from_fp32_equals_torch():
    rng = np.random.default_rng(4)
    words = rng.integers(0, 2**32, size=50_000, dtype=np.uint64).astype(np.uint32)
    words[:4] = [0x7F800000, 0xFF800000, 0x7FC00000, 0x7F7FFFFF]  # +inf, -inf, NaN, fp32 max
    ref_t = torch.from_numpy(words.view(np.float32).copy()).to(torch.bfloat16)
    ref = ref_t.view(torch.int16).numpy().view(np.uint16)
    ours = fl.bf16_bits_from_fp32(words)
    nan = np.isnan(words.view(np.float32))
    np.testing.assert_array_equal(ours[~nan], ref[~nan])
    assert np.all((ours[nan] & 0x7F80) == 0x7F80) and np.all((ours[nan] & 0x7F) != 0)  # still NaN
    # and equal to the scalar encoder on the non-NaN words
    sample = words[~nan][:2000]
    np.testing.assert_array_equal(
        fl.bf16_bits_from_fp32(sample), [fl.encode(float(v), fl.BF16) for v in sample.view(np.float32)]
    )


@pytest.mark.parametrize("fmt", fl.FORMATS)
def test_round_trip_equals_library_casts(fmt):
    rng = np.random.default_rng(5)
    vals = rng.standard_normal(4000) * np.exp(rng.uniform(-20, 20, 4000))
    ours = np.array([fl.round_to(float(v), fmt) for v in vals])
    if fmt.name in NUMPY:
        ref = vals.astype(NUMPY[fmt.name]).astype(np.float64)
    else:
        ref = torch.from_numpy(vals).to(torch.bfloat16).double().numpy()
    np.testing.assert_array_equal(ours, ref)


@pytest.mark.parametrize("fmt", fl.FORMATS)
def test_ulp_equals_spacing(fmt):
    rng = np.random.default_rng(6)
    vals = _random_doubles(rng, 3000, fmt.emin - fmt.mantissa_bits, fmt.emax - 1)
    vals = np.concatenate([vals, [0.0, 1.0, -1.0, fmt.min_normal, fmt.min_subnormal]])
    ours = np.array([fl.ulp(float(v), fmt) for v in vals])
    if fmt.name in NUMPY:
        ref = np.abs(np.spacing(np.abs(vals.astype(NUMPY[fmt.name])))).astype(np.float64)
    else:
        t = torch.from_numpy(np.abs(vals)).to(torch.bfloat16)
        ref = (torch.nextafter(t, torch.full_like(t, math.inf)).double() - t.double()).numpy()
    np.testing.assert_array_equal(ours, ref)
    assert fl.ulp(1.0, fmt) == fmt.eps
    assert math.isnan(fl.ulp(math.inf, fmt)) and math.isnan(fl.ulp(math.nan, fmt))


def test_describe_fields():
    one = fl.describe(1.0, fl.FP16)
    assert (one.sign, one.exponent_field, one.mantissa_field, one.exponent, one.kind) == (0, 15, 0, 0, "normal")
    assert one.binary == "0 01111 0000000000"
    neg = fl.describe(-2.5, fl.FP32)  # -1.25 * 2^1
    assert neg.sign == 1 and neg.exponent == 1 and neg.mantissa_field == 1 << 21
    assert neg.bits == int(np.array(-2.5, np.float32).view(np.uint32))
    sub = fl.describe(2.0**-24, fl.FP16)
    assert sub.kind == "subnormal" and sub.mantissa_field == 1 and sub.value == 2.0**-24
    assert fl.describe(1e6, fl.FP16).kind == "inf"
    assert fl.describe(float("nan"), fl.BF16).kind == "nan"
    assert fl.describe(-0.0, fl.FP16).kind == "zero" and fl.describe(-0.0, fl.FP16).sign == 1
    assert fl.describe(3.0e38, fl.BF16).kind == "normal"  # bf16 keeps fp32's range
    assert fl.format_named("bf16") is fl.BF16


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(ValueError, match="bits must be in"):
        fl.decode(1 << 16, fl.FP16)
    with pytest.raises(TypeError, match="fmt"):
        fl.encode(1.0, "fp16")
    with pytest.raises(TypeError, match="x must be a real number"):
        fl.encode("1.0", fl.FP16)
    with pytest.raises(ValueError, match="name"):
        fl.format_named("fp8")
    with pytest.raises(TypeError, match="uint32"):
        fl.bf16_bits_from_fp32(np.zeros(3, dtype=np.float32))
    with pytest.raises(ValueError, match="mantissa_bits"):
        fl.FloatFormat("bad", 5, 0)
