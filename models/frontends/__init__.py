"""Front ends: a user's network as the project's quantizable graph (:class:`models.qnet.QNet`).

- :func:`from_torch`: a plain ``torch.nn.Module``, traced with ``torch.fx``.

:func:`quantize` then calibrates and quantizes it as the built-in networks are (PTQ) and gives the
integer golden model (:class:`models.qgraph.QGraph`).
"""

from __future__ import annotations

from .torch_fx import SUPPORTED, FrontendError, from_torch

__all__ = ["FrontendError", "SUPPORTED", "from_torch", "quantize"]


def quantize(net, calib, *, formats="int8", abits: int = 8):
    """Calibrate ``net`` on ``calib`` (a float batch, or a list of batches), choose its weight
    formats (one name or ``{layer: format}``) and return its integer graph."""
    import torch

    batches = [calib] if not isinstance(calib, (list, tuple)) else list(calib)
    if not batches:
        raise FrontendError("calibration data is empty")
    net.fold_bn().calibrate(batches, abits=abits)
    net.set_formats(formats)
    first = batches[0]
    return net.to_qgraph(first[:1] if isinstance(first, torch.Tensor) else first)
