import pytest
import torch

from models.sparse import SparseTensor


def _map(B=2, C=3, H=5, W=6, density=0.4, seed=0):
    g = torch.Generator().manual_seed(seed)
    m = torch.rand(B, 1, H, W, generator=g) < density
    return torch.randn(B, C, H, W, generator=g) * m


@pytest.mark.parametrize("density", [0.0, 0.05, 0.4, 1.0])
def test_dense_round_trip(density):
    x = _map(density=density)
    st = SparseTensor.from_dense(x)
    st.validate()
    assert torch.equal(st.to_dense(), x)
    active = (x != 0).any(1)
    assert st.num_sites == int(active.sum())
    assert st.spatial_shape == (5, 6) and st.batch_size == 2
    assert st.density == pytest.approx(int(active.sum()) / (2 * 5 * 6))
    assert st.sites_per_frame().tolist() == active.sum((1, 2)).tolist()


def test_raster_order_and_any_channel_rule():
    x = torch.zeros(2, 2, 3, 3)
    x[1, 0, 0, 2] = 1.0  # only channel 0
    x[0, 1, 2, 0] = -2.0  # only channel 1
    x[0, 0, 0, 1] = 3.0
    st = SparseTensor.from_dense(x)
    assert st.coords.tolist() == [[0, 0, 1], [0, 2, 0], [1, 0, 2]]
    assert st.feats.tolist() == [[3.0, 0.0], [0.0, -2.0], [1.0, 0.0]]
    assert st.coords.dtype == torch.int64


def test_frames_token_view():
    x = _map(B=3, density=0.5, seed=3)
    st = SparseTensor.from_dense(x)
    frames = [st.frame(b) for b in range(3)]
    back = SparseTensor.from_frames(frames, st.spatial_shape)
    assert torch.equal(back.coords, st.coords) and torch.equal(back.feats, st.feats)


def test_with_feats_shares_sites_and_cache():
    st = SparseTensor.from_dense(_map())
    st.cache["probe"] = 1
    other = st.with_feats(st.feats * 2)
    assert other.same_sites(st) and other.cache is st.cache
    with pytest.raises(ValueError, match="new feats"):
        st.with_feats(torch.zeros(st.num_sites + 1, 3))


@pytest.mark.parametrize(
    "coords, match",
    [
        ([[0, 1, 1], [0, 0, 2]], "raster order"),
        ([[0, 1, 1], [0, 1, 1]], "raster order"),
        ([[0, 4, 1]], "y must lie"),
        ([[0, 1, -1]], "x must lie"),
        ([[2, 1, 1]], "batch must lie"),
    ],
)
def test_validation_rejects(coords, match):
    c = torch.tensor(coords, dtype=torch.int64)
    with pytest.raises(ValueError, match=match):
        SparseTensor(c, torch.zeros(len(coords), 1), (4, 4), 2)


def test_validation_rejects_bad_types():
    with pytest.raises(ValueError, match="int64"):
        SparseTensor(torch.zeros(1, 3, dtype=torch.int32), torch.zeros(1, 1), (4, 4), 1)
    with pytest.raises(ValueError, match="feats"):
        SparseTensor(torch.zeros(2, 3, dtype=torch.int64) + torch.tensor([[0, 0, 0], [0, 0, 1]]),
                     torch.zeros(3, 1), (4, 4), 1)
    with pytest.raises(ValueError, match="spatial_shape"):
        SparseTensor(torch.zeros(0, 3, dtype=torch.int64), torch.zeros(0, 1), (0, 4), 1)
    with pytest.raises(ValueError, match="batch_size"):
        SparseTensor(torch.zeros(0, 3, dtype=torch.int64), torch.zeros(0, 1), (4, 4), 0)
    with pytest.raises(ValueError, match="B, C, H, W"):
        SparseTensor.from_dense(torch.zeros(3, 3))
