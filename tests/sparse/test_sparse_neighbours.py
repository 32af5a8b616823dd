import pytest
import torch
import torch.nn.functional as F

from models.sparse import (
    SparseTensor,
    downsample,
    neighbour_counts,
    neighbour_hist,
    submanifold_map,
)


def _sparse(B, H, W, density, seed):
    g = torch.Generator().manual_seed(seed)
    m = torch.rand(B, 1, H, W, generator=g) < density
    return SparseTensor.from_dense(torch.ones(B, 1, H, W) * m), m.float()


@pytest.mark.parametrize("method", ["table", "search"])
@pytest.mark.parametrize("H, W", [(7, 9), (8, 6), (1, 5), (2, 2)])
@pytest.mark.parametrize("density", [0.0, 0.1, 0.5, 1.0])
def test_submanifold_map_matches_windows(H, W, density, method):
    st, m = _sparse(3, H, W, density, seed=H * W)
    nbr = submanifold_map(st, method=method).t()
    assert nbr.shape == (st.num_sites, 9)
    # Each tap of each site: the window's value in the zero-filled map tells whether it is active.
    win = F.unfold(m, 3, padding=1).view(3, 9, H, W).permute(0, 2, 3, 1)
    c = st.coords
    assert torch.equal((nbr < st.num_sites).float(), win[c[:, 0], c[:, 1], c[:, 2]])
    hit = nbr < st.num_sites
    d = torch.tensor([-1, 0, 1])
    dy, dx = d.repeat_interleave(3), d.repeat(3)
    want = c[:, None, :] + torch.stack([torch.zeros(9, dtype=torch.long), dy, dx], 1)[None]
    assert torch.equal(c[nbr[hit]], want[hit])
    # the centre tap is the site itself
    assert torch.equal(nbr[:, 4], torch.arange(st.num_sites))
    assert submanifold_map(st) is submanifold_map(st)  # cached


@pytest.mark.parametrize("method", ["table", "search"])
@pytest.mark.parametrize("H, W", [(7, 9), (8, 6), (1, 1), (3, 2)])
@pytest.mark.parametrize("density", [0.0, 0.05, 0.3, 1.0])
def test_downsample_rule(H, W, density, method):
    st, m = _sparse(3, H, W, density, seed=H + W)
    oc, oshape, nbr = downsample(st, method=method)
    nbr = nbr.t()
    assert oshape == ((H + 1) // 2, (W + 1) // 2)
    # Contract: (oy, ox) active iff any input in rows 2oy-1..2oy+1, cols 2ox-1..2ox+1.
    want = torch.zeros(3, *oshape, dtype=torch.bool)
    for b, y, x in m[:, 0].nonzero().tolist():
        for oy in range(oshape[0]):
            for ox in range(oshape[1]):
                if 2 * oy - 1 <= y <= 2 * oy + 1 and 2 * ox - 1 <= x <= 2 * ox + 1:
                    want[b, oy, ox] = True
    assert torch.equal(oc, want.nonzero())
    win = F.unfold(m, 3, padding=1, stride=2).view(3, 9, *oshape).permute(0, 2, 3, 1)
    assert torch.equal((nbr < st.num_sites).float(), win[oc[:, 0], oc[:, 1], oc[:, 2]])
    assert (nbr < st.num_sites).any(1).all()  # every output reads at least one active input


def test_neighbour_hist():
    m = torch.zeros(1, 1, 4, 4)
    m[0, 0, 0, 0] = m[0, 0, 0, 1] = m[0, 0, 3, 3] = 1
    st = SparseTensor.from_dense(m)
    assert neighbour_counts(st).tolist() == [2, 2, 1]
    assert neighbour_hist(st) == [0, 1, 2, 0, 0, 0, 0, 0, 0, 0]
    full = SparseTensor.from_dense(torch.ones(1, 1, 5, 5))
    h = neighbour_hist(full)
    assert sum(h) == 25 and h[9] == 9 and h[4] == 4 and h[6] == 12
    assert sum(neighbour_hist(full, stride=2)) == 9
    with pytest.raises(ValueError, match="stride"):
        neighbour_hist(full, stride=3)


def test_methods_agree_on_a_large_sparse_batch():
    a, _ = _sparse(5, 40, 33, 0.02, seed=9)
    b = SparseTensor(a.coords, a.feats, a.spatial_shape, a.batch_size)
    assert torch.equal(submanifold_map(a, method="table"), submanifold_map(b, method="search"))
    a.cache.clear()
    b.cache.clear()
    da, db = downsample(a, method="table"), downsample(b, method="search")
    assert torch.equal(da[0], db[0]) and torch.equal(da[2], db[2])
    with pytest.raises(ValueError, match="method"):
        submanifold_map(SparseTensor(a.coords, a.feats, a.spatial_shape, 5), method="hash")


@pytest.mark.parametrize("stride", [1, 2])
def test_rulebook_holds_exactly_the_active_pairs(stride):
    from models.sparse import rulebook

    g = torch.Generator().manual_seed(4)
    x = torch.rand(2, 1, 7, 9, generator=g) * (torch.rand(2, 1, 7, 9, generator=g) < 0.3)
    st = SparseTensor.from_dense(x)
    nbr = submanifold_map(st) if stride == 1 else downsample(st)[2]
    rb = rulebook(st, stride=stride)
    assert rulebook(st.with_feats(st.feats * 2), stride=stride) is rb  # shared by the sites
    want = {(t, int(nbr[t, o]), o) for t in range(9) for o in range(nbr.shape[1])
            if nbr[t, o] < st.num_sites}
    flat = set(zip(rb.tap.tolist(), rb.in_rows.tolist(), rb.out_rows.tolist(), strict=True))
    assert flat == want and rb.pairs == len(want)
    per_tap = {(t, i, o) for t, ins, outs in rb.taps
               for i, o in zip(ins.tolist(), outs.tolist(), strict=True)}
    centre = {(4, o, o) for o in range(st.num_sites)} if stride == 1 else set()
    assert rb.identity_centre == (stride == 1)
    assert per_tap | centre == want and not per_tap & centre
    assert (rb.n_in, rb.n_out) == (st.num_sites, nbr.shape[1])
