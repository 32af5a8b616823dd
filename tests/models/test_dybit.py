import numpy as np
import pytest
import torch

from models.quant import dybit


def test_magnitudes_dybit4():
    assert dybit.magnitudes(4) == [0, 1, 2, 3, 4, 6, 8, 16]


def test_magnitudes_dybit8_span_and_steps():
    m = dybit.magnitudes(8)
    assert m[0] == 0 and m[-1] == 4096
    assert m[:64] == list(range(64))  # k = 0: linear region
    assert m[64:70] == [64, 66, 68, 70, 72, 74]  # k = 1: step 2
    assert 2048 in m and 1536 in m and 1024 in m
    assert len(m) == 128  # 2^7 codes per sign, zero counted once


@pytest.mark.parametrize("bits", [4, 8])
def test_decode_encode_roundtrip_every_representable(bits):
    for v in sorted({-m for m in dybit.magnitudes(bits)} | set(dybit.magnitudes(bits))):
        code = dybit.encode(v, bits)
        assert 0 <= code < (1 << bits)
        assert dybit.decode(code, bits) == v


@pytest.mark.parametrize("bits", [4, 8])
def test_encode_is_nearest_for_every_integer_in_range(bits):
    mags = dybit.magnitudes(bits)
    levels = sorted({-m for m in mags} | set(mags))
    top = mags[-1]
    for v in range(-top - 3, top + 4):
        got = dybit.decode(dybit.encode(v, bits), bits)
        best = min(abs(v - lv) for lv in levels)
        assert abs(v - got) == best, (v, got)
        # ties go toward zero
        ties = [lv for lv in levels if abs(v - lv) == best]
        assert got == min(ties, key=abs)


@pytest.mark.parametrize("bits", [4, 8])
def test_elementwise_tensor_and_array(bits):
    v = torch.arange(-5000, 5001) if bits == 8 else torch.arange(-20, 21)
    codes = dybit.encode(v, bits)
    vals = dybit.decode(codes, bits)
    scalar = torch.tensor([dybit.decode(dybit.encode(int(a), bits), bits) for a in v])
    assert torch.equal(vals, scalar)
    assert np.array_equal(dybit.decode(dybit.encode(v.numpy(), bits), bits), scalar.numpy())


def test_negative_zero_decodes_to_zero_and_is_never_produced():
    assert dybit.decode(0b1000, 4) == 0
    assert dybit.encode(0, 4) == 0


def test_code_table_layout_dybit4():
    # sign | run of ones | mantissa, as docs/CONTRACT.md defines
    assert dybit.code_table(4)[:8] == (0, 1, 2, 3, 4, 6, 8, 16)
    assert dybit.code_table(4)[8:] == (0, -1, -2, -3, -4, -6, -8, -16)


@pytest.mark.parametrize("bad", [3, 5, 16, "4"])
def test_unsupported_bits(bad):
    with pytest.raises(ValueError, match="DyBit width must be one of 4, 8"):
        dybit.magnitudes(bad)


def test_bad_codes():
    with pytest.raises(ValueError):
        dybit.decode(16, 4)
    with pytest.raises(TypeError):
        dybit.encode(torch.tensor([0.5]), 4)
