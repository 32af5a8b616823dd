"""Quantizable layers with float, fake-quant and integer-exact modes.

Every layer computes in one of three modes (``layer.mode``):

- ``"float"``: the plain float network (with BatchNorm until :meth:`QLayer.fold_bn`).
- ``"fake"``: fake quantization for QAT and evaluation. Weights and bias are rounded to the integer
  grid with a straight-through estimator, the accumulator is recovered as an integer and requantized
  with the *same* ``(M, S)`` as the integer path, so in float64 the fake model equals the integer
  model exactly (times the scales).
- ``"int"``: integer-exact: int64 maps in, int64 maps out. This is the golden model.

Quantization lives here once. A concrete layer only provides its linear operator ``_op(x, w, b)``;
maps are either dense tensors ``[B, C, H, W]`` / ``[B, C]`` or sparse objects exposing ``.feats``
(``[N, C]``) and ``.with_feats(f)`` (see :mod:`models.sparse`), accessed through :func:`feat` and
:func:`with_feat`.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .formats import act_format, weight_format
from .requant import add_requant, requant, requant_params, rounding_offsets

__all__ = [
    "MODES",
    "feat",
    "with_feat",
    "ste",
    "mse_weight_scale",
    "mse_act_scale",
    "QModule",
    "QLayer",
    "QConv2d",
    "QLinear",
    "QAdd",
    "QGlobalAvgPool",
    "QInput",
]

MODES = ("float", "fake", "int")
_INT32 = (1 << 31) - 1


def feat(x) -> torch.Tensor:
    """Channel-last 2-D view ``[sites, C]`` of a dense or sparse map."""
    if isinstance(x, torch.Tensor):
        return x.movedim(1, -1).reshape(-1, x.shape[1])
    return x.feats


def with_feat(x, f: torch.Tensor):
    """The map ``x`` with its features replaced by ``f`` (``[sites, C']``)."""
    if isinstance(x, torch.Tensor):
        shape = (x.shape[0], *x.shape[2:], f.shape[1])
        return f.reshape(shape).movedim(-1, 1)
    return x.with_feats(f)


def ste(fn, x: torch.Tensor) -> torch.Tensor:
    """``fn(x)`` forward, identity gradient (straight-through estimator)."""
    return x + (fn(x) - x).detach()


def _floor_half_up(x):
    return torch.floor(x + 0.5)


def mse_weight_scale(w: torch.Tensor, fmt, *, grid: int = 96) -> torch.Tensor:
    """Per-output-channel scale minimising the quantization MSE of ``w`` in format ``fmt``.

    Candidates map ``max|w_c|`` to a target magnitude ``t``: ``s = max|w_c| / t``, for ``t`` on a
    linear grid over [0.2, 1.5] x qmax and a log grid over [2, qmax]. The log grid matters for
    DyBit, whose top magnitudes have few mantissa bits: dybit8's best target for a bell-shaped
    channel is near 128, not near 4096. Returns float64 ``[C_out]``; an all-zero channel gets 1.
    """
    fmt = weight_format(fmt)
    w2 = w.detach().double().reshape(w.shape[0], -1)
    wmax = w2.abs().amax(1)
    targets = torch.cat([
        torch.linspace(0.2, 1.5, grid, dtype=torch.float64) * fmt.qmax,
        torch.logspace(1, torch.log2(torch.tensor(float(fmt.qmax))).item(), grid, base=2.0,
                       dtype=torch.float64),
    ])
    s = wmax[None, :] / targets[:, None]  # [A, C]
    s = torch.where(s > 0, s, torch.ones_like(s))
    q = fmt.round(w2[None] / s[:, :, None]) * s[:, :, None]
    err = ((q - w2[None]) ** 2).sum(-1)  # [A, C]
    best = s.gather(0, err.argmin(0, keepdim=True))[0]
    return torch.where(wmax > 0, best, torch.ones_like(best))


def mse_act_scale(samples: torch.Tensor, bits: int, *, nonneg: bool, grid: int = 64) -> float:
    """Per-tensor activation scale minimising the MSE of clamped rounding on calibration samples."""
    x = samples.detach().double().reshape(-1)
    if x.numel() > 400_000:
        idx = torch.randperm(x.numel(), generator=torch.Generator().manual_seed(0))[:400_000]
        x = x[idx]
    top = float(x.abs().max()) if x.numel() else 0.0
    if top == 0.0:
        return 1.0
    qmax = act_format(bits).qmax
    lo = 0 if nonneg else -qmax
    best, best_err = top / qmax, float("inf")
    for alpha in torch.linspace(0.05, 1.0, grid, dtype=torch.float64).tolist():
        s = alpha * top / qmax
        err = float(((torch.clamp(_floor_half_up(x / s), lo, qmax) * s - x) ** 2).mean())
        if err < best_err:
            best, best_err = s, err
    return best


class QModule(nn.Module):
    """Common state of every quantizable node: mode, activation bits, output scale."""

    def __init__(self):
        super().__init__()
        self.mode = "float"
        self.abits = 8
        self.register_buffer("out_scale", torch.tensor(1.0, dtype=torch.float64))

    def set_mode(self, mode: str):
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
        self.mode = mode

    #: ``(lo, hi)`` of an imported quantizer (QONNX ``Quant``: e.g. ``(0, 15)`` for 4-bit
    #: unsigned), which narrows the output clamp; None: the activation format's own range.
    qrange: tuple[int, int] | None = None

    def _bounds(self, relu: bool) -> tuple[int, int]:
        lo, hi = act_format(self.abits).bounds(relu)
        if self.qrange is not None:
            lo, hi = max(lo, self.qrange[0]), min(hi, self.qrange[1])
        return lo, hi


class QLayer(QModule):
    """A layer with weights (conv / linear, dense or sparse), quantized per the integer contract.

    Parameters
    ----------
    weight_shape : tuple
        Shape of the float weight, output channels first.
    bias : bool
        Whether the layer has a bias (a folded BatchNorm adds one).
    relu : bool
        ReLU after the layer (output clamp ``[0, qmax]`` instead of ``[-qmax, qmax]``).
    bn : bool
        BatchNorm after the linear operator (folded before quantization).
    requant_out : bool
        ``False`` for a layer whose raw accumulator is the output (classifier logits).

    Attributes
    ----------
    clip : tuple of float or None
        ``(min, max)`` of a clamp after the layer (ReLU6 is ``(0, 6)``, Hardtanh ``(-1, 1)``):
        the float model clamps there, the integer output clamp narrows to
        ``[ceil(min / s), floor(max / s)]`` on the output scale ``s`` (see :meth:`bounds`).
    """

    clip: tuple[float, float] | None = None
    #: Carry the float bias's fraction of an accumulator step into the requantizer's rounding
    #: offsets ``R`` (:func:`~models.quant.requant.rounding_offsets`) instead of dropping it: set
    #: for imported QONNX layers, whose float biases are not on the accumulator grid.
    fine_bias = False
    R: tuple[int, ...] | None = None

    def __init__(self, weight_shape, *, bias=True, relu=False, bn=False, requant_out=True):
        super().__init__()
        out_channels = weight_shape[0]
        self.weight = nn.Parameter(torch.empty(weight_shape))
        nn.init.kaiming_uniform_(self.weight, a=5**0.5)
        self.bias = nn.Parameter(torch.zeros(out_channels)) if (bias or bn) else None
        self.bn = nn.BatchNorm1d(out_channels) if bn else None
        self.relu = relu
        self.requant_out = requant_out
        self.wformat = None
        self.register_buffer("in_scale", torch.tensor(1.0, dtype=torch.float64))
        self.register_buffer("w_scale", torch.ones(out_channels, dtype=torch.float64))
        self.register_buffer("M", torch.zeros(out_channels, dtype=torch.int64))
        self.S = 1

    # -- what a concrete layer provides ---------------------------------------------------------
    def _op(self, x, weight, bias):
        """The linear operator on a map (float or int64 alike)."""
        raise NotImplementedError

    # -- quantization ---------------------------------------------------------------------------
    @property
    def out_channels(self) -> int:
        return self.weight.shape[0]

    def fold_bn(self):
        """Fold the BatchNorm (running statistics) into weight and bias, then drop it."""
        if self.bn is None:
            return
        bn = self.bn
        with torch.no_grad():
            g = bn.weight / torch.sqrt(bn.running_var + bn.eps)
            self.weight.mul_(g.view(-1, *[1] * (self.weight.dim() - 1)))
            self.bias.copy_((self.bias - bn.running_mean) * g + bn.bias)
        self.bn = None

    def set_format(self, fmt):
        """Choose the weight format and the MSE-optimal weight scales for it.

        Per output channel, except for a raw-accumulator output (logits): one scale per tensor.
        """
        if self.bn is not None:
            raise RuntimeError("fold BatchNorm before choosing a weight format")
        self.wformat = weight_format(fmt).name
        if self.requant_out:
            self.w_scale.copy_(mse_weight_scale(self.weight, self.wformat))
        else:
            # Raw accumulators (logits) are compared across channels, so they share one scale.
            self.w_scale.fill_(float(mse_weight_scale(self.weight.reshape(1, -1), self.wformat)[0]))

    def set_requant(self):
        """Compute (M, S) from the input, weight and output scales."""
        mult = self.in_scale * self.w_scale / self.out_scale
        rq = requant_params(mult.tolist())
        self.M.copy_(rq.tensor())
        self.S = rq.S
        self.R = None
        if self.fine_bias and self.bias is not None:
            exact = self.bias.detach().double() / self._acc_scale()
            frac = (exact - self.int_bias().double()).clamp(-0.5, 0.5)
            self.R = rounding_offsets(rq.M, rq.S, frac.tolist())

    def _acc_scale(self) -> torch.Tensor:
        return self.in_scale * self.w_scale

    def _wview(self, v):
        return v.view(-1, *[1] * (self.weight.dim() - 1))

    def int_weight(self) -> torch.Tensor:
        """Integer weight values (computed in float64, identical for every caller)."""
        fmt = weight_format(self.wformat)
        return fmt.round(self.weight.detach().double() / self._wview(self.w_scale)).long()

    def int_bias(self) -> torch.Tensor:
        if self.bias is None:
            return torch.zeros(self.out_channels, dtype=torch.int64)
        b = torch.round(self.bias.detach().double() / self._acc_scale())
        return b.clamp(-_INT32, _INT32).long()

    def bounds(self) -> tuple[int, int]:
        lo, hi = self._bounds(self.relu or (self.clip is not None and self.clip[0] >= 0))
        if self.clip is not None:
            s = float(self.out_scale)
            lo = max(lo, math.ceil(self.clip[0] / s - 1e-9))
            hi = min(hi, math.floor(self.clip[1] / s + 1e-9))
        return lo, hi

    # -- forward --------------------------------------------------------------------------------
    def forward(self, x):
        if self.mode == "float":
            y = self._op(x, self.weight, self.bias)
            if self.bn is not None:
                y = with_feat(y, self.bn(feat(y)))
            if self.relu:
                y = with_feat(y, F.relu(feat(y)))
            if self.clip is not None:
                y = with_feat(y, torch.clamp(feat(y), *self.clip))
            return y
        if self.wformat is None:
            raise RuntimeError("layer is not quantized: call set_format / calibrate first")
        if self.mode == "int":
            acc = self._op(x, self.int_weight(), self.int_bias())
            if not self.requant_out:
                return acc
            lo, hi = self.bounds()
            return with_feat(acc, requant(feat(acc), self.M, self.S, lo, hi, R=self.R))
        return self._fake(x)

    def _fake(self, x):
        fmt = weight_format(self.wformat)
        dt = feat(x).dtype
        s_w = self._wview(self.w_scale).to(dt)
        w_q = ste(fmt.round, self.weight / s_w) * s_w
        b_q = None
        acc_scale = self._acc_scale().to(dt)
        if self.bias is not None:
            b_q = ste(torch.round, self.bias / acc_scale).clamp(-_INT32, _INT32) * acc_scale
        acc_f = self._op(x, w_q, b_q)
        acc = ste(torch.round, feat(acc_f) / acc_scale)
        if not self.requant_out:
            # exact multiples of the scale, so ties between logits stay ties
            return with_feat(acc_f, acc * acc_scale)
        lo, hi = self.bounds()
        r = 2.0 ** (self.S - 1) if self.R is None else torch.tensor(self.R, dtype=dt)
        y = ste(torch.floor, (acc * self.M.to(dt) + r) / 2.0**self.S)
        y = torch.clamp(y, lo, hi)
        return with_feat(acc_f, y * self.out_scale.to(dt))


class QConv2d(QLayer):
    """Dense k x k convolution (``nn.Conv2d`` weight layout), "same" padding ``k // 2``."""

    def __init__(self, in_channels, out_channels, kernel_size=3, *, stride=1, groups=1, **kw):
        if isinstance(kernel_size, tuple):
            kh, kwd = kernel_size
            if kh == kwd:
                kernel_size = kh
            elif kh % 2 == 0 or kwd % 2 == 0 or not (1 <= kh <= 11 and 1 <= kwd <= 11):
                raise ValueError(f"a rectangular kernel must be odd and at most 11 a side, "
                                 f"not {kernel_size!r}")
        if isinstance(kernel_size, int) and kernel_size not in (1, 3, 5, 7):
            raise ValueError(f"kernel_size must be 1, 3, 5 or 7, not {kernel_size!r}")
        kh, kwd = (kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size
        if stride not in (1, 2):
            raise ValueError(f"stride must be 1 or 2, not {stride!r}")
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"groups={groups} must divide {in_channels} and {out_channels}")
        super().__init__((out_channels, in_channels // groups, kh, kwd), **kw)
        self.in_channels = in_channels
        self.kernel_size = kernel_size
        self.stride = stride
        self.groups = groups

    #: ``(top, bottom, left, right, kh, kw)`` of the PyTorch conv this centred kernel stands for
    #: (an imported asymmetric padding): both must give the same output size.
    torch_padding: tuple | None = None

    def _op(self, x, weight, bias):
        kh, kwd = self.weight.shape[-2:]
        if self.torch_padding is not None and isinstance(x, torch.Tensor):
            top, bottom, left, right, th, tw = self.torch_padding
            h, w = x.shape[-2:]
            theirs = ((h + top + bottom - th) // self.stride + 1,
                      (w + left + right - tw) // self.stride + 1)
            ours = (-(-h // self.stride), -(-w // self.stride))
            if theirs != ours:
                raise ValueError(f"a {th}x{tw} conv with padding {(top, bottom, left, right)} "
                                 f"maps {h}x{w} to {theirs[0]}x{theirs[1]}; its centred "
                                 f"{kh}x{kwd} window gives {ours[0]}x{ours[1]}: not supported")
        return F.conv2d(x, weight, bias, stride=self.stride, padding=(kh // 2, kwd // 2),
                        groups=self.groups)


class QLinear(QLayer):
    """Fully connected layer on ``[B, C]``."""

    def __init__(self, in_features, out_features, **kw):
        super().__init__((out_features, in_features), **kw)
        self.in_channels = in_features

    def _op(self, x, weight, bias):
        y = x @ weight.t()
        return y if bias is None else y + bias


class QAdd(QModule):
    """Residual add of two maps with identical sites, requantized as one rounding step."""

    def __init__(self, *, relu=False):
        super().__init__()
        self.relu = relu
        self.register_buffer("in_scales", torch.ones(2, dtype=torch.float64))
        self.Ma, self.Mb, self.S = 0, 0, 1

    def set_requant(self):
        rq = requant_params((self.in_scales / self.out_scale).tolist())
        (self.Ma, self.Mb), self.S = rq.M, rq.S

    def bounds(self):
        return self._bounds(self.relu)

    def forward(self, a, b):
        if self.mode == "float":
            y = feat(a) + feat(b)
            return with_feat(a, F.relu(y) if self.relu else y)
        lo, hi = self.bounds()
        if self.mode == "int":
            return with_feat(a, add_requant(feat(a), feat(b), self.Ma, self.Mb, self.S, lo, hi))
        fa, fb = feat(a), feat(b)
        dt = fa.dtype
        ia = ste(torch.round, fa / self.in_scales[0].to(dt))
        ib = ste(torch.round, fb / self.in_scales[1].to(dt))
        y = ste(torch.floor, (ia * self.Ma + ib * self.Mb + 2.0 ** (self.S - 1)) / 2.0**self.S)
        return with_feat(a, torch.clamp(y, lo, hi) * self.out_scale.to(dt))


class QGlobalAvgPool(QModule):
    """Global average pooling, ``avg_round`` in the integer modes; output at the input's scale.

    Dense maps ``[B, C, H, W] -> [B, C]``; sparse maps override :meth:`_sum_count`.
    """

    keeps_scale = True

    def _sum_count(self, x):
        return x.sum(dim=(2, 3)), torch.full((x.shape[0], 1), x.shape[2] * x.shape[3])

    def forward(self, x):
        total, count = self._sum_count(x)
        if self.mode == "float":
            return total / count.clamp(min=1).to(total.dtype)
        if self.mode == "int":
            from ..reference import avg_round

            return avg_round(total, count)
        dt = total.dtype
        s = self.out_scale.to(dt)
        tot = ste(torch.round, total / s)
        n = count.to(dt).clamp(min=1)
        y = ste(torch.floor, (2 * tot + n) / (2 * n))
        return torch.where(count > 0, y, torch.zeros_like(y)) * s


class QInput(QModule):
    """Quantization of the network input; ``quantize`` gives the integer map the hardware gets."""

    #: How the host rounds inputs onto the grid: ``"half_up"`` (the built-in networks) or
    #: ``"half_even"`` (an imported QONNX model's ``Quant`` with ``rounding_mode="ROUND"``).
    rounding = "half_up"

    #: The input's normalisation that an imported module did in ``forward()`` (``(x - mean) /
    #: std``), ``x * gain + shift`` per channel (float64 ``[C]`` or ``[1]``), applied before the
    #: quantization, on the host as the quantization is; ``None``: the input as it is.
    gain = None
    shift = None

    def __init__(self, *, nonneg=True):
        super().__init__()
        self.nonneg = nonneg

    def bounds(self):
        return self._bounds(self.nonneg)

    def _round(self, x):
        return torch.round(x) if self.rounding == "half_even" else _floor_half_up(x)

    def normalise(self, f: torch.Tensor) -> torch.Tensor:
        """Channel-last features ``[sites, C]`` through :attr:`gain` and :attr:`shift`."""
        if self.gain is None:
            return f
        return f * self.gain.to(f.dtype) + self.shift.to(f.dtype)

    def quantize_feats(self, f: torch.Tensor) -> torch.Tensor:
        lo, hi = self.bounds()
        f = self.normalise(f.double())
        return torch.clamp(self._round(f / self.out_scale), lo, hi).long()

    def quantize(self, x):
        """Integer input map (int64) from a float map: round half up, clamp."""
        return with_feat(x, self.quantize_feats(feat(x)))

    def forward(self, x):
        if self.mode == "int":
            return x
        if self.gain is not None:
            x = with_feat(x, self.normalise(feat(x)))
        if self.mode == "float":
            return x
        f = feat(x)
        lo, hi = self.bounds()
        s = self.out_scale.to(f.dtype)
        return with_feat(x, torch.clamp(ste(self._round, f / s), lo, hi) * s)
