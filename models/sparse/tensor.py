"""The sparse feature map: active sites in raster order and one feature vector per site.

A :class:`SparseTensor` is the software twin of the hardware token stream (docs/CONTRACT.md): one
entry per active site, sorted by ``(batch, y, x)``, no duplicates. Inactive sites hold zero, so a
dense map is the all-active case and :meth:`SparseTensor.to_dense` is the zero-filled map.
"""

from __future__ import annotations

import torch

__all__ = ["SparseTensor"]


class SparseTensor:
    """Sparse 2-D feature map of a batch.

    Parameters
    ----------
    coords : torch.LongTensor
        ``[N, 3]`` rows ``(batch, y, x)`` of the active sites, strictly increasing in raster order
        (batch, then y, then x), so there are no duplicates.
    feats : torch.Tensor
        ``[N, C]`` features, row ``i`` belongs to site ``coords[i]``. Float or integer.
    spatial_shape : tuple of int
        ``(H, W)`` of the map.
    batch_size : int
        Number of frames ``B``; frames may be empty.
    check : bool
        Validate the invariants (the default). Internal producers that build sorted coordinates by
        construction pass ``False``.

    Notes
    -----
    Tensors that share coordinates (the outputs of submanifold layers) also share ``cache``, the
    neighbour maps already built for those sites, so a chain of layers searches for them once.
    """

    __slots__ = ("coords", "feats", "spatial_shape", "batch_size", "cache")

    def __init__(self, coords, feats, spatial_shape, batch_size, *, check=True, cache=None):
        if not isinstance(coords, torch.Tensor) or not isinstance(feats, torch.Tensor):
            raise TypeError("SparseTensor coords and feats must be torch tensors")
        shape = tuple(int(s) for s in spatial_shape)
        if len(shape) != 2 or min(shape) < 1:
            raise ValueError(f"spatial_shape must be (H, W) with H, W >= 1, not {spatial_shape!r}")
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, not {batch_size!r}")
        self.coords = coords
        self.feats = feats
        self.spatial_shape = shape
        self.batch_size = batch_size
        self.cache = {} if cache is None else cache
        if check:
            self.validate()

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first broken invariant."""
        c, f = self.coords, self.feats
        if c.dtype != torch.int64 or c.dim() != 2 or c.shape[1] != 3:
            raise ValueError(f"coords must be int64 [N, 3], not {c.dtype} {list(c.shape)}")
        if f.dim() != 2 or f.shape[0] != c.shape[0]:
            raise ValueError(
                f"feats must be [N, C] with N = {c.shape[0]} rows, not {list(f.shape)}"
            )
        if c.shape[0] == 0:
            return
        H, W = self.spatial_shape
        for col, (name, top) in enumerate((("batch", self.batch_size), ("y", H), ("x", W))):
            lo, hi = int(c[:, col].min()), int(c[:, col].max())
            if lo < 0 or hi >= top:
                raise ValueError(f"coords {name} must lie in [0, {top}), found [{lo}, {hi}]")
        key = self.keys()
        if c.shape[0] > 1 and not bool((key[1:] > key[:-1]).all()):
            raise ValueError("coords must be strictly increasing in raster order (no duplicates)")

    # ----------------------------------------------------------------------------------- views

    @property
    def num_sites(self) -> int:
        return self.coords.shape[0]

    @property
    def num_channels(self) -> int:
        return self.feats.shape[1]

    @property
    def density(self) -> float:
        """Share of active sites over the whole batch."""
        H, W = self.spatial_shape
        return self.num_sites / (self.batch_size * H * W)

    def keys(self) -> torch.Tensor:
        """Raster linear index ``(b * H + y) * W + x`` of every site (sorted, as the coords)."""
        return linear_keys(self.coords, self.spatial_shape)

    def sites_per_frame(self) -> torch.Tensor:
        """``[B]`` number of active sites of each frame."""
        return torch.bincount(self.coords[:, 0], minlength=self.batch_size)

    def with_feats(self, feats: torch.Tensor) -> SparseTensor:
        """The same sites (and neighbour cache) carrying other features."""
        if feats.dim() != 2 or feats.shape[0] != self.num_sites:
            raise ValueError(
                f"new feats must be [N, C] with N = {self.num_sites}, not {list(feats.shape)}"
            )
        return SparseTensor(
            self.coords, feats, self.spatial_shape, self.batch_size, check=False, cache=self.cache
        )

    def same_sites(self, other: SparseTensor) -> bool:
        """Whether ``other`` has exactly these sites (same batch, shape and coordinates)."""
        if other.spatial_shape != self.spatial_shape or other.batch_size != self.batch_size:
            return False
        if other.coords is self.coords:
            return True
        return other.coords.shape == self.coords.shape and bool(
            torch.equal(other.coords, self.coords)
        )

    def frame(self, b: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``(coords [n, 2] (y, x), feats [n, C])`` of frame ``b``: its token view."""
        sel = self.coords[:, 0] == b
        return self.coords[sel, 1:], self.feats[sel]

    # ------------------------------------------------------------------------------ conversion

    def to_dense(self) -> torch.Tensor:
        """Zero-filled ``[B, C, H, W]`` map."""
        H, W = self.spatial_shape
        out = self.feats.new_zeros(self.batch_size, H, W, self.num_channels)
        c = self.coords
        out[c[:, 0], c[:, 1], c[:, 2]] = self.feats
        return out.permute(0, 3, 1, 2).contiguous()

    @classmethod
    def from_dense(cls, x: torch.Tensor) -> SparseTensor:
        """Sparse view of a dense ``[B, C, H, W]`` map: active where any channel is non-zero."""
        if not isinstance(x, torch.Tensor) or x.dim() != 4:
            got = list(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"from_dense takes a [B, C, H, W] tensor, not {got}")
        B, _, H, W = x.shape
        active = (x != 0).any(dim=1)
        coords = active.nonzero()  # row-major, hence raster order
        feats = x.permute(0, 2, 3, 1)[active]
        return cls(coords, feats, (H, W), B, check=False)

    @classmethod
    def from_frames(cls, frames, spatial_shape) -> SparseTensor:
        """Batch of frames in the token view: a list of ``(coords [n, 2] (y, x), feats [n, C])``."""
        if not frames:
            raise ValueError("from_frames needs at least one frame")
        coords, feats = [], []
        for b, (c, f) in enumerate(frames):
            c = torch.as_tensor(c, dtype=torch.int64).reshape(-1, 2)
            coords.append(torch.cat([torch.full((c.shape[0], 1), b, dtype=torch.int64), c], 1))
            feats.append(torch.as_tensor(f))
        return cls(torch.cat(coords), torch.cat(feats), spatial_shape, len(frames))

    def __repr__(self) -> str:
        H, W = self.spatial_shape
        return (
            f"SparseTensor(B={self.batch_size}, C={self.num_channels}, H={H}, W={W}, "
            f"sites={self.num_sites}, dtype={self.feats.dtype})"
        )


def linear_keys(coords: torch.Tensor, spatial_shape) -> torch.Tensor:
    """Raster linear index of ``(batch, y, x)`` rows for a map of ``spatial_shape``."""
    H, W = spatial_shape
    return (coords[:, 0] * H + coords[:, 1]) * W + coords[:, 2]
