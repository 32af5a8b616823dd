"""Submanifold sparse CNN building blocks: the sparse map type, neighbour maps and layers."""

from .layers import (
    SparseAdd,
    SparseConv2d,
    SparseGlobalAvgPool,
    SparseInput,
    SparseReLU,
    SubmanifoldConv2d,
    sparse_add,
    sparse_conv,
    sparse_global_avg_pool,
)
from .neighbours import (
    Rulebook,
    downsample,
    neighbour_counts,
    neighbour_hist,
    rulebook,
    submanifold_map,
)
from .tensor import SparseTensor

__all__ = [
    "SparseTensor",
    "submanifold_map",
    "downsample",
    "Rulebook",
    "rulebook",
    "neighbour_counts",
    "neighbour_hist",
    "sparse_conv",
    "sparse_add",
    "sparse_global_avg_pool",
    "SparseConv2d",
    "SubmanifoldConv2d",
    "SparseAdd",
    "SparseGlobalAvgPool",
    "SparseReLU",
    "SparseInput",
]
