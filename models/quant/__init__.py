"""Number formats (one registry), quantizers, fake-quant layers and the integer requantizer."""

from .formats import (
    ACT_FORMATS,
    TRAIN_FORMATS,
    WEIGHT_FORMATS,
    ActFormat,
    FormatError,
    WeightFormat,
    act_format,
    weight_format,
)
from .requant import Requant, add_requant, requant, requant_params

#: Bumped whenever quantized values for the same float weights change (caches key on it).
QUANT_VERSION = 2

__all__ = [
    "QUANT_VERSION",
    "ACT_FORMATS",
    "TRAIN_FORMATS",
    "WEIGHT_FORMATS",
    "ActFormat",
    "FormatError",
    "WeightFormat",
    "act_format",
    "weight_format",
    "Requant",
    "add_requant",
    "requant",
    "requant_params",
]
