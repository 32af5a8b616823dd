"""Neighbour maps of sparse maps: for every output site, the input row of each kernel tap.

A neighbour map is a LongTensor ``[k*k, N_out]`` (tap-major); entry ``[t, i]`` is the row of the
input feature matrix that tap ``t = (dy + r) * k + (dx + r)`` (``r = k // 2``) of output ``i``
reads, or ``N_in`` when that input site is inactive or outside the map. Gathering from the input
features with one zero row appended (row ``N_in``) then gives exactly the zero-filled map's window,
so a sparse conv is ``gather -> matrix multiply`` and equals the dense conv of the zero-filled map
at the output sites.

Maps are built without Python loops over sites, from raster linear indices ``(b * H + y) * W + x``:
either every candidate neighbour is looked up in the sorted keys of the input with
``torch.searchsorted`` (O(n log n), any map size), or, while the map is not much larger than the
active set, through an index table of the zero-padded map (O(cells), several times faster). Both
give identical maps; the tests check both.

Geometry ("same" padding ``k // 2``, as docs/CONTRACT.md):

- stride 1 (submanifold): the outputs are the input's active sites; output ``(y, x)`` reads inputs
  ``(y + dy, x + dx)``.
- stride 2 (sparse): the output map is ``ceil(H/2) x ceil(W/2)``; output ``(oy, ox)`` is active iff
  any input site ``(y, x)`` with ``2*oy - 1 <= y <= 2*oy + 1`` and ``2*ox - 1 <= x <= 2*ox + 1`` is
  active (its 3x3 receptive field with padding 1), and reads inputs ``(2*oy + dy, 2*ox + dx)``. This
  is the dense stride-2, padding-1 conv of the zero-filled map, sampled at the active outputs.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from .tensor import SparseTensor

__all__ = [
    "submanifold_map",
    "downsample",
    "Rulebook",
    "rulebook",
    "neighbour_counts",
    "neighbour_hist",
    "TABLE_FACTOR",
    "TABLE_MIN",
]

#: Index tables are used while the padded map has at most ``TABLE_FACTOR * n + TABLE_MIN`` cells.
TABLE_FACTOR = 64
TABLE_MIN = 1 << 16


def _use_table(cells: int, n: int, method: str | None) -> bool:
    if method is None:
        # An index table costs O(cells) and is far faster than binary search while the map is not
        # much larger than the active set; very sparse, large maps keep the O(n log n) search.
        return cells <= TABLE_FACTOR * n + TABLE_MIN
    if method not in ("table", "search"):
        raise ValueError(f"method must be 'table' or 'search', not {method!r}")
    return method == "table"


def _lookup(keys, shape, b, cy, cx, k, method=None):
    """Rows of ``keys`` at ``(b, cy + dy, cx + dx)`` for every tap; ``len(keys)`` where absent.

    ``method="search"``: binary search of each tap's query keys in the sorted ``keys`` (the centres
    are in raster order, so each tap's queries are sorted too). ``method="table"``: an index table
    over the zero-padded map (``n`` in the padding and at inactive sites), one scatter and one
    gather per tap. Both give the same map; ``None`` picks by size.
    """
    H, W = shape
    n = keys.shape[0]
    r = k // 2
    d = torch.arange(-r, r + 1, dtype=torch.int64)
    dy, dx = d.repeat_interleave(k)[:, None], d.repeat(k)[:, None]  # tap t = (dy+r)*k + (dx+r)
    if n == 0:
        return torch.full((k * k, b.shape[0]), n, dtype=torch.int64)
    Hp, Wp = H + 2 * r, W + 2 * r
    batches = int(keys[-1]) // (H * W) + 1  # centres never lie in a later frame than an input
    if _use_table(batches * Hp * Wp, n, method):
        kb, ky, kx = keys // (H * W), (keys // W) % H, keys % W
        table = torch.full((batches * Hp * Wp,), n, dtype=torch.int64)
        table[(kb * Hp + ky + r) * Wp + kx + r] = torch.arange(n)
        base = (b * Hp + cy + r) * Wp + cx + r
        return table[base[None, :] + (dy * Wp + dx)]
    ny, nx = cy[None, :] + dy, cx[None, :] + dx
    q = (b[None, :] * H + ny) * W + nx  # [k*k, M]
    inside = (ny >= 0) & (ny < H) & (nx >= 0) & (nx < W)
    pos = torch.searchsorted(keys, q)
    hit = inside & (keys[pos.clamp(max=n - 1)] == q)
    return torch.where(hit, pos, torch.full_like(pos, n))


def submanifold_map(x: SparseTensor, kernel_size: int = 3, *, method=None) -> torch.Tensor:
    """``[k*k, N]`` neighbour map of a stride-1 submanifold conv (outputs at the input's sites).

    Cached on ``x.cache`` (shared by every tensor with the same sites).
    """
    key = ("submanifold", kernel_size)
    nbr = x.cache.get(key)
    if nbr is None:
        c = x.coords
        H, W = x.spatial_shape
        r = kernel_size // 2
        n = c.shape[0]
        cells = (int(c[-1, 0]) + 1) * (H + 2 * r) * (W + 2 * r) if n else 0
        if n and _use_table(cells, n, method):
            nbr = _submanifold_table(c, x.spatial_shape, kernel_size)
        else:
            nbr = _lookup(x.keys(), x.spatial_shape, c[:, 0], c[:, 1], c[:, 2], kernel_size,
                          method)
        x.cache[key] = nbr
    return nbr


def _submanifold_table(coords, shape, k):
    # The table path of _lookup when the centres are the input sites themselves: each site's
    # padded-map index is both where it is written and where its window starts (half the ops).
    H, W = shape
    r = k // 2
    Wp = W + 2 * r
    b, y, x = coords.unbind(1)
    base = (b * (H + 2 * r) + y + r) * Wp + x + r
    n = coords.shape[0]
    table = torch.full(((int(b[-1]) + 1) * (H + 2 * r) * Wp,), n, dtype=torch.int64)
    table[base] = torch.arange(n)
    d = torch.arange(-r, r + 1, dtype=torch.int64)
    offsets = (d[:, None] * Wp + d[None, :]).reshape(-1, 1)  # tap t = (dy+r)*k + (dx+r)
    return table[base[None, :] + offsets]


def _down_sites(coords, out_shape, batch_size, method=None):
    """Sorted active output sites of the stride-2 rule, as ``[M, 3]`` coordinates."""
    Ho, Wo = out_shape
    b, y, x = coords[:, 0], coords[:, 1], coords[:, 2]
    # Input row y lies in the window of output rows floor(y/2) and ceil(y/2) (the same when y is
    # even); the second one can fall off the bottom/right edge when H/W is even.
    oys = torch.stack([y // 2, (y + 1) // 2], 1)[:, :, None].expand(-1, 2, 2)
    oxs = torch.stack([x // 2, (x + 1) // 2], 1)[:, None, :].expand(-1, 2, 2)
    valid = (oys < Ho) & (oxs < Wo)
    k = (b[:, None, None] * Ho + oys) * Wo + oxs
    k = k[valid]
    if _use_table(batch_size * Ho * Wo, coords.shape[0], method):
        hit = torch.zeros(batch_size * Ho * Wo, dtype=torch.bool)
        hit[k] = True
        k = hit.nonzero()[:, 0]
    else:
        k = torch.unique(k)  # sorted
    ox = k % Wo
    oy = (k // Wo) % Ho
    ob = k // (Wo * Ho)
    return torch.stack([ob, oy, ox], 1)


def downsample(x: SparseTensor, kernel_size: int = 3, *, method=None):
    """Output sites and neighbour map of a stride-2 sparse conv (see the module doc for the rule).

    Returns
    -------
    out_coords : torch.LongTensor
        ``[M, 3]`` active output sites in raster order.
    out_shape : tuple of int
        ``(ceil(H/2), ceil(W/2))``.
    nbr : torch.LongTensor
        ``[k*k, M]`` rows of ``x`` each output reads (``N_in`` where inactive).
    """
    if kernel_size != 3:
        raise ValueError(f"stride-2 sparse conv is defined for kernel_size 3, not {kernel_size}")
    key = ("downsample", kernel_size)
    hit = x.cache.get(key)
    if hit is None:
        H, W = x.spatial_shape
        out_shape = ((H + 1) // 2, (W + 1) // 2)
        oc = _down_sites(x.coords, out_shape, x.batch_size, method)
        nbr = _lookup(x.keys(), x.spatial_shape, oc[:, 0], 2 * oc[:, 1], 2 * oc[:, 2], kernel_size,
                      method)
        hit = (oc, out_shape, nbr)
        x.cache[key] = hit
    return hit


class Rulebook(NamedTuple):
    """The active (input row, output row) pairs of a 3x3 conv, per tap (spconv's "rulebook").

    A neighbour map lists every tap of every output, inactive ones included; at low density most
    taps read the zero row. The rulebook keeps only the pairs whose input is active, so a conv
    costs work proportional to the active pairs. Built once per site set (cached on
    ``SparseTensor.cache``, which every layer keeping those sites shares, as spconv's
    ``indice_key``).

    Attributes
    ----------
    n_in, n_out : int
        Input and output site counts.
    identity_centre : bool
        Whether the centre tap reads each output's own input row (stride 1): that tap is then a
        dense elementwise/matrix product and is left out of ``taps``.
    taps : tuple of ``(tap, in_rows, out_rows)``
        The non-empty taps other than an identity centre; ``tap = (dy + 1) * 3 + (dx + 1)``.
    tap, in_rows, out_rows : torch.LongTensor
        All active pairs (the centre included), tap-major: the same pairs as one flat list.
    """

    n_in: int
    n_out: int
    identity_centre: bool
    taps: tuple
    tap: torch.Tensor
    in_rows: torch.Tensor
    out_rows: torch.Tensor

    @property
    def pairs(self) -> int:
        return int(self.in_rows.shape[0])


def rulebook(x: SparseTensor, *, stride: int = 1) -> Rulebook:
    """The :class:`Rulebook` of a 3x3 conv of stride 1 or 2 on ``x``'s sites (cached on ``x``)."""
    if stride not in (1, 2):
        raise ValueError(f"stride must be 1 or 2, not {stride!r}")
    key = ("rulebook", stride)
    rb = x.cache.get(key)
    if rb is None:
        nbr = submanifold_map(x, 3) if stride == 1 else downsample(x, 3)[2]
        n = x.num_sites
        active = nbr < n
        tap, out_rows = active.nonzero(as_tuple=True)  # tap-major, outputs ascending per tap
        in_rows = nbr[tap, out_rows]
        counts = active.sum(1).tolist()
        identity = stride == 1
        per_tap = zip(in_rows.split(counts), out_rows.split(counts), strict=True)
        taps = tuple((t, i, o) for t, (i, o) in enumerate(per_tap)
                     if counts[t] and not (identity and t == 4))
        rb = Rulebook(n, nbr.shape[1], identity, taps, tap, in_rows, out_rows)
        x.cache[key] = rb
    return rb


def neighbour_counts(x: SparseTensor, *, stride: int = 1) -> torch.Tensor:
    """``[N_out]`` active input sites in each output's 3x3 window (including the centre)."""
    if stride == 1:
        nbr = submanifold_map(x, 3)
    elif stride == 2:
        nbr = downsample(x, 3)[2]
    else:
        raise ValueError(f"stride must be 1 or 2, not {stride!r}")
    return (nbr < x.num_sites).sum(0)


def neighbour_hist(x: SparseTensor, *, stride: int = 1) -> list[int]:
    """Histogram (10 bins, counts 0..9) of :func:`neighbour_counts`: the 3x3 workload (DSE)."""
    return torch.bincount(neighbour_counts(x, stride=stride), minlength=10).tolist()

