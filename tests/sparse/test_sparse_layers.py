import pytest
import torch
import torch.nn.functional as F

from models import reference
from models.quant.requant import add_requant, requant
from models.sparse import (
    SparseAdd,
    SparseConv2d,
    SparseGlobalAvgPool,
    SparseReLU,
    SparseTensor,
    SubmanifoldConv2d,
    sparse_add,
    sparse_conv,
    sparse_global_avg_pool,
)

DENSITIES = [0.0, 0.01, 0.05, 0.1, 0.3, 0.6, 1.0]


def _mask(B, H, W, density, g):
    m = torch.rand(B, H, W, generator=g) < density
    if density > 0:  # at least one site on every border of every frame
        for b in range(B):
            r = torch.randint(0, H, (2,), generator=g)
            c = torch.randint(0, W, (2,), generator=g)
            m[b, 0, c[0]] = m[b, H - 1, c[1]] = m[b, r[0], 0] = m[b, r[1], W - 1] = True
    return m[:, None]


def _float_map(B, C, H, W, density, seed, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    m = _mask(B, H, W, density, g)
    x = (torch.rand(B, C, H, W, generator=g, dtype=torch.float64) * 2 - 1 + 1e-3).to(dtype)
    return x * m, m


def _int_map(B, C, H, W, density, seed, lo=-127, hi=127):
    g = torch.Generator().manual_seed(seed)
    m = _mask(B, H, W, density, g)
    x = torch.randint(lo, hi + 1, (B, C, H, W), generator=g)
    x[:, 0] = torch.where(x[:, 0] == 0, 1, x[:, 0])  # active sites stay active (non-zero)
    return x * m, m


def _at_sites(dense, st):
    c = st.coords
    return dense.permute(0, 2, 3, 1)[c[:, 0], c[:, 1], c[:, 2]]


def _expected_sites(m, stride):
    if stride == 1:
        return m[:, 0].nonzero()
    return (F.max_pool2d(m.float(), 3, 2, 1)[:, 0] > 0).nonzero()


CONFIGS = [  # (C_in, C_out, k, groups, stride)
    (5, 7, 3, 1, 1),
    (6, 6, 3, 6, 1),  # depthwise
    (6, 6, 3, 6, 2),
    (5, 8, 3, 1, 2),
    (8, 12, 3, 4, 1),  # grouped
    (6, 9, 1, 1, 1),  # pointwise
]


@pytest.mark.parametrize("density", DENSITIES)
@pytest.mark.parametrize("cin, cout, k, groups, stride", CONFIGS)
def test_float_conv_equals_dense(density, cin, cout, k, groups, stride):
    H, W = (9, 12) if stride == 1 else (11, 8)
    x, m = _float_map(3, cin, H, W, density, seed=int(density * 100) + cin)
    st = SparseTensor.from_dense(x)
    conv = torch.nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2, groups=groups)
    with torch.no_grad():
        want = conv(x)
        y = sparse_conv(st, conv.weight, conv.bias, stride=stride, groups=groups)
    assert torch.equal(y.coords, _expected_sites(m, stride))
    assert y.spatial_shape == tuple(want.shape[2:]) and y.batch_size == 3
    assert y.feats.shape == (y.num_sites, cout)
    if density > 0:
        assert (y.feats - _at_sites(want, y)).abs().max().item() <= 1e-5
    else:
        assert y.num_sites == 0


@pytest.mark.parametrize("density", DENSITIES)
@pytest.mark.parametrize("cin, cout, k, groups, stride", CONFIGS)
def test_int_conv_equals_reference(density, cin, cout, k, groups, stride):
    x, m = _int_map(2, cin, 10, 7, density, seed=7 + cin)
    st = SparseTensor.from_dense(x)
    g = torch.Generator().manual_seed(1)
    w = torch.randint(-127, 128, (cout, cin // groups, k, k), generator=g)
    b = torch.randint(-5000, 5000, (cout,), generator=g)
    y = sparse_conv(st, w, b, stride=stride, groups=groups)
    want = reference.conv2d(x, w, b, stride=stride, padding=k // 2, groups=groups)
    assert y.feats.dtype == torch.int64
    assert torch.equal(y.coords, _expected_sites(m, stride))
    assert torch.equal(y.feats, _at_sites(want, y))


def _quantized(layer, fmt="int8", in_scale=0.02, out_scale=0.05):
    layer.set_format(fmt)
    layer.in_scale.fill_(in_scale)
    layer.out_scale.fill_(out_scale)
    layer.set_requant()
    return layer


@pytest.mark.parametrize("fmt", ["int8", "dybit4"])
@pytest.mark.parametrize("cin, cout, k, groups, stride", CONFIGS)
def test_module_int_and_fake_modes(fmt, cin, cout, k, groups, stride):
    torch.manual_seed(0)
    layer = SparseConv2d(cin, cout, k, groups, stride=stride, relu=stride == 1)
    with torch.no_grad():
        layer.bias.uniform_(-0.5, 0.5)
    _quantized(layer, fmt)
    x, m = _int_map(2, cin, 9, 10, 0.3, seed=cin)
    st = SparseTensor.from_dense(x)
    layer.set_mode("int")
    y = layer(st)
    acc = reference.conv2d(x, layer.int_weight(), layer.int_bias(), stride=stride,
                           padding=k // 2, groups=groups)
    lo, hi = layer.bounds()
    want = requant(_at_sites(acc, y), layer.M, layer.S, lo, hi)
    assert torch.equal(y.coords, _expected_sites(m, stride))
    assert torch.equal(y.feats, want)
    assert want.abs().max() > 0  # the comparison is not vacuous
    layer.set_mode("fake")
    yf = layer(st.with_feats(st.feats.double() * layer.in_scale))
    assert torch.equal(yf.feats, y.feats.double() * layer.out_scale)


@pytest.mark.parametrize("groups, stride", [(1, 1), (4, 1), (4, 2), (2, 1)])
def test_gradients_match_dense(groups, stride):
    x, _ = _float_map(2, 4, 6, 7, 0.4, seed=11, dtype=torch.float64)
    st = SparseTensor.from_dense(x)
    w = torch.randn(4, 4 // groups, 3, 3, dtype=torch.float64, requires_grad=True)
    f = st.feats.clone().requires_grad_(True)
    y = sparse_conv(st.with_feats(f), w, None, stride=stride, groups=groups)
    y.feats.square().sum().backward()
    xd = x.clone().requires_grad_(True)
    wd = w.detach().clone().requires_grad_(True)
    yd = F.conv2d(xd, wd, padding=1, stride=stride, groups=groups)
    _at_sites(yd, y).square().sum().backward()
    assert torch.allclose(w.grad, wd.grad)
    assert torch.allclose(f.grad, _at_sites(xd.grad, st))


def test_float_mode_module_and_bn():
    torch.manual_seed(0)
    layer = SubmanifoldConv2d(4, 6, 3, bn=True, relu=True)
    x, _ = _float_map(2, 4, 8, 8, 0.3, seed=3)
    st = SparseTensor.from_dense(x)
    layer.train()
    layer(st)  # BN statistics over the active sites
    layer.eval()
    y = layer(st)
    layer.fold_bn()
    y2 = layer(st)
    assert torch.allclose(y.feats, y2.feats, atol=1e-5)
    assert (y2.feats >= 0).all() and y2.same_sites(st)
    assert tuple(layer.weight.shape) == (6, 4, 3, 3)


def test_add_gap_relu():
    x, _ = _float_map(3, 4, 6, 5, 0.3, seed=5)
    x[1] = 0  # an empty frame in the middle of the batch
    st = SparseTensor.from_dense(x)
    y = sparse_add(st, st.with_feats(st.feats * 2))
    assert torch.allclose(y.to_dense(), 3 * x)
    gap = sparse_global_avg_pool(st)
    n = (x != 0).any(1).sum((1, 2)).clamp(min=1)
    assert torch.allclose(gap, x.sum((2, 3)) / n[:, None])
    assert gap[1].abs().sum() == 0
    assert torch.equal(SparseReLU()(st).to_dense(), F.relu(x))
    other = SparseTensor.from_dense(torch.ones(3, 4, 6, 5))
    with pytest.raises(ValueError, match="identical active sites"):
        sparse_add(st, other)
    with pytest.raises(TypeError, match="SparseTensor"):
        sparse_conv(x, torch.zeros(4, 4, 3, 3))


def test_int_add_and_gap():
    xa, m = _int_map(3, 4, 6, 5, 0.4, seed=1, lo=0)
    xa[2] = 0
    st = SparseTensor.from_dense(xa)
    b = st.with_feats(torch.randint(-127, 128, st.feats.shape))
    add = SparseAdd(relu=True)
    add.in_scales.copy_(torch.tensor([0.03, 0.07], dtype=torch.float64))
    add.out_scale.fill_(0.05)
    add.set_requant()
    add.set_mode("int")
    y = add(st, b)
    assert torch.equal(y.feats, add_requant(st.feats, b.feats, add.Ma, add.Mb, add.S, 0, 127))
    pool = SparseGlobalAvgPool()
    pool.set_mode("int")
    p = pool(st)
    n = m[:, 0].sum((1, 2))
    assert torch.equal(p, reference.avg_round(xa.sum((2, 3)), n[:, None]))
    assert p[2].abs().sum() == 0
    pool.set_mode("fake")
    pool.out_scale.fill_(0.1)
    pf = pool(st.with_feats(st.feats.double() * 0.1))
    assert torch.equal(pf, p.double() * 0.1)


@pytest.mark.parametrize(
    "kw, match",
    [
        (dict(kernel_size=5), "kernel_size"),
        (dict(stride=3), "stride"),
        (dict(kernel_size=1, stride=2), "kernel_size 3"),
        (dict(groups=4), "groups"),
    ],
)
def test_bad_layer_arguments(kw, match):
    with pytest.raises(ValueError, match=match):
        SparseConv2d(6, 6, **kw)


def test_submanifold_rejects_stride():
    with pytest.raises(ValueError, match="stride 1"):
        SubmanifoldConv2d(4, 4, stride=2)


# Each 3x3 kernel path (rulebook or zero-padded gather for full convs, flat or tap-by-tap for
# depthwise ones) is forced in turn, so every path meets the exactness checks whatever the
# size thresholds pick for these small maps.
PATHS = {
    "full-rulebook": ("RULEBOOK_MAX_SHARE", 10.0),
    "full-gather": ("RULEBOOK_MAX_SHARE", -1.0),
    "dw-flat": ("FLAT_DEPTHWISE_MAX", 1 << 40),
    "dw-taps": ("FLAT_DEPTHWISE_MAX", -1),
}


@pytest.mark.parametrize("path", sorted(PATHS))
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("density", [0.0, 0.05, 0.3, 1.0])
def test_every_kernel_path_is_exact(monkeypatch, path, stride, density):
    import models.sparse.layers as layers

    name, value = PATHS[path]
    monkeypatch.setattr(layers, name, value)
    C = 6
    groups = C if path.startswith("dw") else 1
    g = torch.Generator().manual_seed(3)
    w = torch.randint(-127, 128, (C, C // groups, 3, 3), generator=g)
    b = torch.randint(-5000, 5000, (C,), generator=g)
    xi, m = _int_map(2, C, 9, 10, density, seed=5)
    y = sparse_conv(SparseTensor.from_dense(xi), w, b, stride=stride, groups=groups)
    want = reference.conv2d(xi, w, b, stride=stride, padding=1, groups=groups)
    assert torch.equal(y.coords, _expected_sites(m, stride))
    assert torch.equal(y.feats, _at_sites(want, y))
    xf, _ = _float_map(2, C, 9, 10, density, seed=5)
    wf = torch.randn(C, C // groups, 3, 3, generator=g)
    yf = sparse_conv(SparseTensor.from_dense(xf), wf, None, stride=stride, groups=groups)
    wantf = F.conv2d(xf, wf, padding=1, stride=stride, groups=groups)
    assert yf.num_sites == 0 or (yf.feats - _at_sites(wantf, yf)).abs().max().item() <= 1e-5
