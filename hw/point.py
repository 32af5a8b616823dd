"""Design point: the per-layer hardware choices (weight format, lanes, pe) dse/ hands to hw/.

JSON form (docs/CONTRACT.md)::

    {"model": "digits", "clock_mhz": 200, "fifo_depth": 4,
     "layers": [{"name": "stem", "format": "int8", "lanes": 1, "pe": 4, "pred_cycles": 1234}, ...]}

One entry per compute node (``conv`` / ``linear``). ``pred_*`` keys (dse predictions) are kept on
the round trip; other unknown keys are ignored.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from common.errors import CodesignError
from models.quant.formats import WEIGHT_FORMATS

__all__ = ["LayerChoice", "DesignPoint", "COMPUTE_OPS", "load_point"]

#: QGraph ops a design point configures.
COMPUTE_OPS = ("conv", "linear")


def _posint(value, what):
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise CodesignError(f"{what} must be a positive integer, not {value!r}")
    return value


@dataclass(frozen=True)
class LayerChoice:
    """Hardware choice for one compute layer.

    Parameters
    ----------
    name : str
        QGraph node name.
    format : str
        Weight format (``models.quant.formats.WEIGHT_FORMATS``).
    lanes : int
        Input channels consumed per cycle (divides the layer's input channels).
    pe : int
        Output channels produced in parallel (divides the layer's output channels).
    pred : tuple of (str, number)
        dse predictions (``pred_cycles``, ``pred_dsp``, ...), kept for reports.
    """

    name: str
    format: str
    lanes: int = 1
    pe: int = 1
    pred: tuple = field(default=(), compare=False)

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name:
            raise CodesignError(f"layer name must be a non-empty string, not {self.name!r}")
        if self.format not in WEIGHT_FORMATS:
            raise CodesignError(
                f"layer {self.name}: unknown format {self.format!r}; valid formats: "
                + ", ".join(WEIGHT_FORMATS)
            )
        _posint(self.lanes, f"layer {self.name}: lanes")
        _posint(self.pe, f"layer {self.name}: pe")
        pred = tuple(sorted(dict(self.pred).items()))
        for k, _ in pred:
            if not k.startswith("pred_"):
                raise CodesignError(
                    f"layer {self.name}: prediction key {k!r} must start with pred_"
                )
        object.__setattr__(self, "pred", pred)

    @property
    def predictions(self) -> dict:
        return dict(self.pred)

    def to_dict(self) -> dict:
        return {"name": self.name, "format": self.format, "lanes": self.lanes, "pe": self.pe,
                **dict(self.pred)}

    @classmethod
    def from_dict(cls, d) -> LayerChoice:
        if not isinstance(d, dict):
            raise CodesignError(f"design point layer entry must be an object, not {d!r}")
        for key in ("name", "format"):
            if key not in d:
                raise CodesignError(f"design point layer entry {d!r} has no {key!r}")
        pred = {k: v for k, v in d.items() if k.startswith("pred_")}
        return cls(name=d["name"], format=d["format"], lanes=d.get("lanes", 1),
                   pe=d.get("pe", 1), pred=tuple(pred.items()))


def _largest_divisor(n: int, limit: int) -> int:
    return max(d for d in range(1, min(n, limit) + 1) if n % d == 0)


@dataclass(frozen=True)
class DesignPoint:
    """A whole-network design point: one :class:`LayerChoice` per compute node.

    Parameters
    ----------
    model : str
        Model name (``models.zoo``) or checkpoint path the point was made for.
    layers : tuple of LayerChoice
        In the QGraph's compute-node order.
    clock_mhz : float
        Target clock.
    fifo_depth : int
        Depth of the FIFO between consecutive layers.
    """

    model: str
    layers: tuple
    clock_mhz: float = 200
    fifo_depth: int = 4

    def __post_init__(self):
        layers = tuple(self.layers)
        for c in layers:
            if not isinstance(c, LayerChoice):
                raise CodesignError(f"design point layers must be LayerChoice, not {c!r}")
        names = [c.name for c in layers]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise CodesignError(f"design point names layer {dup[0]} more than once")
        object.__setattr__(self, "layers", layers)
        if isinstance(self.clock_mhz, bool) or not isinstance(self.clock_mhz, (int, float)) \
                or not self.clock_mhz > 0:
            raise CodesignError(f"clock_mhz must be a positive number, not {self.clock_mhz!r}")
        _posint(self.fifo_depth, "fifo_depth")

    def __getitem__(self, name: str) -> LayerChoice:
        for c in self.layers:
            if c.name == name:
                return c
        raise KeyError(name)

    def choice(self, name: str) -> LayerChoice:
        """The choice for node ``name`` (CodesignError if the point has none)."""
        try:
            return self[name]
        except KeyError:
            raise CodesignError(f"design point has no entry for layer {name}") from None

    # -- JSON ---------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {"model": self.model, "clock_mhz": self.clock_mhz, "fifo_depth": self.fifo_depth,
                "layers": [c.to_dict() for c in self.layers]}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2) + "\n"

    @classmethod
    def from_dict(cls, d) -> DesignPoint:
        if not isinstance(d, dict):
            raise CodesignError(f"design point must be a JSON object, not {type(d).__name__}")
        if "layers" not in d or not isinstance(d["layers"], list):
            raise CodesignError("design point has no 'layers' list")
        return cls(model=str(d.get("model", "")),
                   layers=tuple(LayerChoice.from_dict(x) for x in d["layers"]),
                   clock_mhz=d.get("clock_mhz", 200), fifo_depth=d.get("fifo_depth", 4))

    @classmethod
    def from_json(cls, text: str) -> DesignPoint:
        try:
            d = json.loads(text)
        except json.JSONDecodeError as exc:
            raise CodesignError(f"design point is not valid JSON: {exc}") from None
        return cls.from_dict(d)

    # -- against a network --------------------------------------------------------------------
    @classmethod
    def default(cls, qgraph, *, model: str = "", lanes: int = 4, pe: int = 4,
                clock_mhz: float = 200, fifo_depth: int = 4) -> DesignPoint:
        """A modest point: every layer in its QGraph format, lanes/pe the largest divisors of
        the channel counts not above ``lanes`` / ``pe``."""
        layers = []
        for node in _compute_nodes(qgraph):
            c_in, c_out = node.in_shape[0], node.out_shape[0]
            ln = _largest_divisor(c_in, lanes)
            p = _largest_divisor(c_out, pe)
            if node.op == "conv" and node.groups != 1:
                # depthwise: one output channel per input lane
                p = ln = _largest_divisor(c_in, min(lanes, pe))
            layers.append(LayerChoice(node.name, node.wformat, ln, p))
        name = model or getattr(qgraph, "name", "") or ""
        return cls(model=name, layers=tuple(layers), clock_mhz=clock_mhz, fifo_depth=fifo_depth)

    def validate(self, qgraph) -> DesignPoint:
        """Check the point against ``qgraph``; raise one CodesignError line naming the problem."""
        nodes = {n.name: n for n in _compute_nodes(qgraph)}
        for c in self.layers:
            if c.name not in nodes:
                raise CodesignError(
                    f"design point layer {c.name}: no such compute layer in the network "
                    f"(layers: {', '.join(nodes)})"
                )
        for name, node in nodes.items():
            if name not in {c.name for c in self.layers}:
                raise CodesignError(f"design point has no entry for layer {name}")
            c = self[name]
            c_in, c_out = node.in_shape[0], node.out_shape[0]
            if c_in % c.lanes:
                raise CodesignError(
                    f"layer {name}: lanes {c.lanes} does not divide its {c_in} input channels"
                )
            if c_out % c.pe:
                raise CodesignError(
                    f"layer {name}: pe {c.pe} does not divide its {c_out} output channels"
                )
            if node.op == "conv" and node.groups not in (1, c_in):
                raise CodesignError(f"layer {name}: groups={node.groups} is not supported")
            if node.op == "conv" and node.groups != 1 and node.groups == c_in and c.pe != c.lanes:
                raise CodesignError(
                    f"layer {name}: depthwise conv needs pe == lanes, not pe {c.pe}, "
                    f"lanes {c.lanes}"
                )
        return self


def _compute_nodes(qgraph):
    if hasattr(qgraph, "compute_nodes"):
        return list(qgraph.compute_nodes())
    return [n for n in qgraph.nodes if n.op in COMPUTE_OPS]


def load_point(spec, qgraph=None, *, model: str = "") -> DesignPoint:
    """A design point from a JSON file path, or ``"default"`` (needs ``qgraph``); validated."""
    if str(spec) == "default":
        if qgraph is None:
            raise CodesignError("the default design point needs the network")
        return DesignPoint.default(qgraph, model=model)
    path = Path(spec)
    if not path.is_file():
        raise CodesignError(f"design point file {path} does not exist")
    point = DesignPoint.from_json(path.read_text())
    if qgraph is not None:
        point.validate(qgraph)
    return point
