import pytest
import torch

from models import reference as ref
from models.quant import formats
from models.quant.requant import M_BITS, add_requant, requant, requant_params


@pytest.mark.parametrize("name", ["int8", "int4", "dybit4", "dybit8"])
def test_round_lands_on_levels_and_encode_decode(name):
    fmt = formats.weight_format(name)
    x = torch.linspace(-2 * fmt.qmax, 2 * fmt.qmax, 2001, dtype=torch.float64)
    r = fmt.round(x)
    levels = fmt.levels.double()
    assert torch.isin(r, levels).all()
    # nearest level (ties either neighbour)
    best = (x[:, None] - levels[None]).abs().min(1).values
    assert torch.allclose((x - r).abs(), best)
    vals = r.long()
    assert torch.equal(fmt.decode(fmt.encode(vals)), vals)


def test_int_ranges():
    assert formats.weight_format("int8").qmax == 127
    assert formats.weight_format("int4").qmax == 7
    assert formats.act_format(8).bounds(True) == (0, 127)
    assert formats.act_format(4).bounds(False) == (-7, 7)


def test_unknown_formats_name_valid_options():
    with pytest.raises(formats.FormatError, match="valid formats: int8, int4, dybit4, dybit8"):
        formats.weight_format("int3")
    with pytest.raises(formats.FormatError, match="valid: 8, 4"):
        formats.act_format(6)


def test_requant_params_keep_m_in_range_and_close():
    torch.manual_seed(0)
    for _ in range(200):
        m = torch.rand(8, dtype=torch.float64) * 10 ** torch.empty(1).uniform_(-6, 1).item()
        rq = requant_params(m.tolist())
        M = torch.tensor(rq.M, dtype=torch.float64)
        assert M.max() < 2**M_BITS and M.max() >= 2 ** (M_BITS - 1) - 1
        assert torch.allclose(M / 2**rq.S, m, rtol=2 ** -(M_BITS - 2), atol=2.0**-rq.S)


def test_requant_rounds_half_up_and_clamps():
    acc = torch.tensor([[-3, -2, -1, 0, 1, 2, 3, 1000]]).t()  # channel dim 1 of size 1
    y = requant(acc, [1], 1, -127, 127)  # (acc + 1) >> 1
    assert y.reshape(-1).tolist() == [-1, -1, 0, 0, 1, 1, 2, 127]  # x/2 half up
    assert requant(torch.tensor([[-1000]]), [1], 1, 0, 127).item() == 0


def test_add_requant_single_rounding():
    a, b = torch.tensor([3]), torch.tensor([1])
    assert add_requant(a, b, 1, 1, 1, -127, 127).item() == 2  # (3+1+1)>>1


def test_avg_round():
    total = torch.tensor([5, -5, 4, 0, 7, 9])
    count = torch.tensor([2, 2, 2, 0, 3, 6])
    assert ref.avg_round(total, count).tolist() == [3, -2, 2, 0, 2, 2]


def test_conv2d_reference_matches_float64_and_rejects_floats():
    torch.manual_seed(1)
    x = torch.randint(-127, 128, (2, 8, 7, 9))
    for groups, k, stride in [(1, 3, 1), (8, 3, 2), (1, 1, 1), (2, 3, 2)]:
        w = torch.randint(-127, 128, (8, 8 // groups, k, k))
        b = torch.randint(-1000, 1000, (8,))
        got = ref.conv2d(x, w, b, stride=stride, padding=k // 2, groups=groups)
        want = torch.nn.functional.conv2d(x.double(), w.double(), b.double(), stride=stride,
                                          padding=k // 2, groups=groups)
        assert got.dtype == torch.int64 and torch.equal(got, want.long())
    with pytest.raises(TypeError):
        ref.conv2d(x.float(), w)


def test_acc_bits_bound():
    w = torch.full((1, 4), 127)
    assert ref.acc_bits(w, None, 0, 127) == (4 * 127 * 127).bit_length() + 1
    with pytest.raises(OverflowError):
        ref.check_acc_bits(torch.full((1, 1 << 20), 127), None, -127, 127)


def test_atomic_write_mode_and_no_partial_file(tmp_path):
    import os

    from common.fsutil import atomic_path, write_json

    write_json(tmp_path / "a.json", {"x": 1})
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "a.json").stat().st_mode & 0o777 == 0o666 & ~umask
    try:
        with atomic_path(tmp_path / "b.txt") as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed")
    except RuntimeError:
        pass
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json"]
