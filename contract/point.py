"""Design point: the per-layer hardware choices (weight format, lanes, pe) dse/ hands to hw/.

JSON form (docs/CONTRACT.md)::

    {"model": "digits", "clock_mhz": 200, "fifo_depth": 4,
     "layers": [{"name": "stem", "format": "int8", "lanes": 1, "pe": 4, "pred_cycles": 1234}, ...]}

One entry per compute node (an op whose registry entry is ``compute``: the nodes with weights).
``pred_*`` keys (dse predictions) are kept on the round trip; other unknown keys are ignored.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path

from common.errors import CodesignError

from .constants import DATAPATHS, FIFO_DEPTH, WEIGHT_FORMAT_NAMES, datapaths, default_datapath

__all__ = ["LayerChoice", "DesignPoint", "PointError", "load_point"]


class PointError(CodesignError, ValueError):
    """A malformed design point or layer choice (a user error, and a ``ValueError``)."""


def _posint(value, what):
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise PointError(f"{what} must be a positive integer, not {value!r}")
    return value


@dataclass(frozen=True)
class LayerChoice:
    """Hardware choice for one compute layer: weight format, parallelism and multiplier datapath.

    The DSE enumerates and prices unnamed choices (``LayerChoice("int8", 4, 2)``); a design point
    holds them named after their QGraph node.

    Parameters
    ----------
    format : str
        Weight format (:data:`contract.constants.WEIGHT_FORMAT_NAMES`).
    lanes : int
        Input channels consumed per cycle (divides the layer's input channels).
    pe : int
        Output channels produced in parallel (divides the layer's output channels).
    datapath : str
        How the products are built (:data:`contract.constants.DATAPATHS`): ``"dsp"``, ``"dsp2"``
        (two per DSP slice; ``pe`` even), ``"lut"`` (weights of at most 4 bits) or
        ``"shift-add"`` (DyBit); empty: the format's default (:func:`default_datapath`).
    kfold : int
        Cycles a full window conv spreads its kernel's rows over (1: all at once; ``kh``: one row
        per cycle, a third of the multipliers of a 3x3 for three times the cycles per beat).
    name : str
        QGraph node name ("" while unnamed).
    pred : tuple of (str, number)
        dse predictions (``pred_cycles``, ``pred_dsp``, ...), kept for reports.
    """

    format: str
    lanes: int = 1
    pe: int = 1
    datapath: str = ""
    kfold: int = 1
    name: str = ""
    pred: tuple = field(default=(), compare=False)

    def __post_init__(self):
        if not isinstance(self.name, str):
            raise PointError(f"layer name must be a string, not {self.name!r}")
        where = f"layer {self.name}: " if self.name else ""
        if not isinstance(self.format, str) or self.format not in WEIGHT_FORMAT_NAMES:
            raise PointError(f"{where}unknown weight format {self.format!r}; valid formats: "
                             + ", ".join(WEIGHT_FORMAT_NAMES))
        _posint(self.lanes, f"{where}lanes")
        _posint(self.pe, f"{where}pe")
        _posint(self.kfold, f"{where}kfold")
        if self.datapath == "":
            object.__setattr__(self, "datapath", default_datapath(self.format))
        if not isinstance(self.datapath, str) or self.datapath not in DATAPATHS:
            raise PointError(f"{where}unknown datapath {self.datapath!r}; valid datapaths: "
                             + ", ".join(DATAPATHS))
        if self.datapath not in datapaths(self.format, dsp_cell="DSP48E2"):
            raise PointError(f"{where}a {self.format} layer cannot use the {self.datapath!r} "
                             "datapath; it can use "
                             + ", ".join(datapaths(self.format, dsp_cell="DSP48E2")))
        if self.datapath == "dsp2" and self.pe % 2:
            raise PointError(f"{where}the dsp2 datapath packs two output channels per DSP: pe "
                             f"must be even, not {self.pe}")
        pred = tuple(sorted(dict(self.pred).items()))
        for k, _ in pred:
            if not k.startswith("pred_"):
                raise PointError(f"{where}prediction key {k!r} must start with pred_")
        object.__setattr__(self, "pred", pred)

    @property
    def predictions(self) -> dict:
        return dict(self.pred)

    def named(self, name: str, **pred) -> LayerChoice:
        """This choice for node ``name``, with ``pred_*`` predictions."""
        return replace(self, name=name, pred=tuple(pred.items()))

    def to_dict(self) -> dict:
        d = {"name": self.name} if self.name else {}
        return {**d, "format": self.format, "lanes": self.lanes, "pe": self.pe,
                "datapath": self.datapath, **({"kfold": self.kfold} if self.kfold > 1 else {}),
                **dict(self.pred)}

    @classmethod
    def from_dict(cls, d) -> LayerChoice:
        if not isinstance(d, dict):
            raise PointError(f"design point layer entry must be an object, not {d!r}")
        if "format" not in d:
            raise PointError(f"design point layer entry {d!r} has no 'format'")
        pred = {k: v for k, v in d.items() if k.startswith("pred_")}
        return cls(format=d["format"], lanes=d.get("lanes", 1), pe=d.get("pe", 1),
                   datapath=d.get("datapath", ""), kfold=d.get("kfold", 1),
                   name=d.get("name", ""),
                   pred=tuple(pred.items()))


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
    fifo_depth: int = FIFO_DEPTH

    def __post_init__(self):
        layers = tuple(self.layers)
        for c in layers:
            if not isinstance(c, LayerChoice) or not c.name:
                raise PointError(f"design point layers must be named LayerChoice, not {c!r}")
        names = [c.name for c in layers]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise PointError(f"design point names layer {dup[0]} more than once")
        object.__setattr__(self, "layers", layers)
        if isinstance(self.clock_mhz, bool) or not isinstance(self.clock_mhz, (int, float)) \
                or not self.clock_mhz > 0:
            raise PointError(f"clock_mhz must be a positive number, not {self.clock_mhz!r}")
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
            raise PointError(f"design point has no entry for layer {name}") from None

    # -- JSON ---------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {"model": self.model, "clock_mhz": self.clock_mhz, "fifo_depth": self.fifo_depth,
                "layers": [c.to_dict() for c in self.layers]}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2) + "\n"

    @classmethod
    def from_dict(cls, d) -> DesignPoint:
        if not isinstance(d, dict):
            raise PointError(f"design point must be a JSON object, not {type(d).__name__}")
        if "layers" not in d or not isinstance(d["layers"], list):
            raise PointError("design point has no 'layers' list")
        for x in d["layers"]:
            if isinstance(x, dict) and "name" not in x:
                raise PointError(f"design point layer entry {x!r} has no 'name'")
        return cls(model=str(d.get("model", "")),
                   layers=tuple(LayerChoice.from_dict(x) for x in d["layers"]),
                   clock_mhz=d.get("clock_mhz", 200), fifo_depth=d.get("fifo_depth", FIFO_DEPTH))

    @classmethod
    def from_json(cls, text: str) -> DesignPoint:
        try:
            d = json.loads(text)
        except json.JSONDecodeError as exc:
            raise PointError(f"design point is not valid JSON: {exc}") from None
        return cls.from_dict(d)

    # -- against a network --------------------------------------------------------------------
    @classmethod
    def default(cls, qgraph, *, model: str = "", lanes: int = 4, pe: int = 4,
                clock_mhz: float = 200, fifo_depth: int = FIFO_DEPTH) -> DesignPoint:
        """A modest point: every layer in its QGraph format, lanes/pe the largest divisors of
        the channel counts not above ``lanes`` / ``pe`` (as the node's op allows)."""
        layers = tuple(qgraph.op_of(n).default_choice(n, lanes=lanes, pe=pe).named(n.name)
                       for n in qgraph.compute_nodes())
        name = model or getattr(qgraph, "name", "") or ""
        return cls(model=name, layers=layers, clock_mhz=clock_mhz, fifo_depth=fifo_depth)

    def validate(self, qgraph) -> DesignPoint:
        """Check the point against ``qgraph``; raise one CodesignError line naming the problem."""
        nodes = {n.name: n for n in qgraph.compute_nodes()}
        for c in self.layers:
            if c.name not in nodes:
                raise PointError(
                    f"design point layer {c.name}: no such compute layer in the network "
                    f"(layers: {', '.join(nodes)})"
                )
        for name, node in nodes.items():
            if name not in {c.name for c in self.layers}:
                raise PointError(f"design point has no entry for layer {name}")
            try:
                qgraph.op_of(node).check_choice(node, self[name])
            except PointError:
                raise
            except ValueError as exc:
                raise PointError(f"layer {name}: {exc}") from None
        return self


def load_point(spec, qgraph=None, *, model: str = "") -> DesignPoint:
    """A design point from a JSON file path, or ``"default"`` (needs ``qgraph``); validated."""
    if str(spec) == "default":
        if qgraph is None:
            raise PointError("the default design point needs the network")
        return DesignPoint.default(qgraph, model=model)
    path = Path(spec)
    if not path.is_file():
        raise PointError(f"design point file {path} does not exist")
    point = DesignPoint.from_json(path.read_text())
    if qgraph is not None:
        point.validate(qgraph)
    return point
