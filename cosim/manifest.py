"""``manifest.json`` (hw/ -> cosim/): load, validate, and pack/unpack stream beats.

The stream format and the manifest schema are defined in ``docs/CONTRACT.md``. A frame in the sparse
token view is ``(coords [N, 2] of (y, x) in raster order, feats [N, C])``; on the wire it is
``C / lanes`` beats per token, channel ``b * lanes + i`` in lane ``i`` of beat ``b``, then one
end-of-frame beat that carries no features.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from common.digest import file_digest
from common.errors import CodesignError
from hw.width import frame_beats

__all__ = ["Field", "Beat", "PortSpec", "Manifest", "load_manifest", "port_from_dict"]


@dataclass(frozen=True)
class Field:
    """A payload field: ``count`` elements of ``width`` bits from bit ``offset``, lane 0 lowest."""

    name: str
    offset: int
    width: int
    signed: bool = False
    count: int = 1

    @property
    def mask(self) -> int:
        return (1 << self.width) - 1

    def extract(self, word: int, index: int = 0) -> int:
        raw = (word >> (self.offset + index * self.width)) & self.mask
        if self.signed and raw >> (self.width - 1):
            raw -= 1 << self.width
        return raw

    def insert(self, value: int, index: int = 0) -> int:
        lo = -(1 << (self.width - 1)) if self.signed else 0
        hi = (1 << (self.width - 1)) - 1 if self.signed else (1 << self.width) - 1
        if not lo <= value <= hi:
            raise CodesignError(
                f"value {value} does not fit payload field {self.name!r} "
                f"({'signed' if self.signed else 'unsigned'} {self.width} bits)")
        return (value & self.mask) << (self.offset + index * self.width)


class Beat(NamedTuple):
    """One decoded stream beat."""

    y: int
    x: int
    data: tuple
    eof: int


@dataclass(frozen=True)
class PortSpec:
    """One stream port of the top: signal names, payload layout and the feature-map geometry."""

    valid: str
    ready: str
    payload: str
    payload_width: int
    lanes: int
    channels: int
    height: int
    width: int
    fields: tuple

    def __post_init__(self):
        names = [f.name for f in self.fields]
        for need in ("y", "x", "data", "eof"):
            if need not in names:
                raise CodesignError(f"stream port {self.payload!r} has no payload field {need!r}")
        data = self.field("data")
        if data.count != self.lanes:
            raise CodesignError(
                f"stream port {self.payload!r}: data count {data.count} != lanes {self.lanes}")
        if self.lanes < 1 or self.channels % self.lanes:
            raise CodesignError(
                f"stream port {self.payload!r}: lanes {self.lanes} must divide channels "
                f"{self.channels}")
        top = max(f.offset + f.width * f.count for f in self.fields)
        if top > self.payload_width:
            raise CodesignError(
                f"stream port {self.payload!r}: fields need {top} bits, payload has "
                f"{self.payload_width}")

    def field(self, name: str) -> Field:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(name)

    @property
    def beats_per_token(self) -> int:
        return self.channels // self.lanes

    @property
    def data_range(self) -> tuple:
        d = self.field("data")
        if d.signed:
            return -(1 << (d.width - 1)), (1 << (d.width - 1)) - 1
        return 0, (1 << d.width) - 1

    def pack(self, y: int, x: int, data, eof: int = 0) -> int:
        word = self.field("y").insert(int(y)) | self.field("x").insert(int(x))
        word |= self.field("eof").insert(int(eof))
        d = self.field("data")
        for i, v in enumerate(data):
            word |= d.insert(int(v), i)
        return word

    def unpack(self, word: int) -> Beat:
        d = self.field("data")
        return Beat(self.field("y").extract(word), self.field("x").extract(word),
                    tuple(d.extract(word, i) for i in range(d.count)),
                    self.field("eof").extract(word))

    def frame_beats(self, coords, feats) -> list:
        """Pack one frame (token view) into its beats (:func:`hw.width.frame_beats`, then the
        port's bit layout), ending with the end-of-frame beat."""
        coords = _rows(coords)
        feats = _rows(feats)
        if len(coords) != len(feats):
            raise CodesignError(f"frame has {len(coords)} sites but {len(feats)} feature rows")
        prev = None
        for (y, x), f in zip(coords, feats, strict=True):
            if not (0 <= y < self.height and 0 <= x < self.width):
                raise CodesignError(
                    f"site ({y}, {x}) outside the {self.height}x{self.width} map of port "
                    f"{self.payload!r}")
            if prev is not None and (y, x) <= prev:
                raise CodesignError(f"sites not in raster order: ({y}, {x}) after {prev}")
            prev = (y, x)
            if len(f) != self.channels:
                raise CodesignError(
                    f"site ({y}, {x}) has {len(f)} channels, port {self.payload!r} carries "
                    f"{self.channels}")
        return [self.pack(b["y"], b["x"], b["data"], b["eof"])
                for b in frame_beats(coords, feats, self.lanes)]


def _rows(t) -> list:
    if hasattr(t, "tolist"):
        t = t.tolist()
    return [tuple(int(v) for v in r) for r in t]


@dataclass(frozen=True)
class Manifest:
    """A built design as described by ``DIR/manifest.json``."""

    root: Path
    top: str
    verilog: Path
    clock: str
    reset: str
    reset_active: str
    clock_mhz: float
    input: PortSpec
    output: PortSpec
    model: str | None = None
    point: dict | None = None
    layers: tuple = ()
    raw: dict | None = None


def port_from_dict(d: dict, where: str = "port") -> PortSpec:
    try:
        fields = tuple(Field(name=f["name"], offset=int(f["offset"]), width=int(f["width"]),
                             signed=bool(f.get("signed", False)), count=int(f.get("count", 1)))
                       for f in d["fields"])
        return PortSpec(valid=d["valid"], ready=d["ready"], payload=d["payload"],
                        payload_width=int(d["payload_width"]), lanes=int(d["lanes"]),
                        channels=int(d["channels"]), height=int(d["height"]),
                        width=int(d["width"]), fields=fields)
    except KeyError as exc:
        raise CodesignError(f"manifest {where} lacks key {exc.args[0]!r}") from None
    except (TypeError, ValueError) as exc:
        raise CodesignError(f"manifest {where} is malformed: {exc}") from None


def load_manifest(path) -> Manifest:
    """Read and check ``manifest.json`` (``path`` is the file or the build directory).

    ``root`` and ``verilog`` of the result are absolute: simulators run in their own directories.
    """
    path = Path(path).absolute()
    if path.is_dir():
        path = path / "manifest.json"
    if not path.is_file():
        raise CodesignError(f"no manifest at {path}: run `codesign build` first")
    try:
        raw = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CodesignError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("ports"), dict):
        raise CodesignError(f"{path} is not a build manifest (no object with 'ports'); run "
                            "`codesign build` again")
    kinds = {"top": (str,), "verilog": (str,), "clock": (str,), "reset": (str,),
             "reset_active": (str,), "clock_mhz": (int, float), "model": (str, type(None)),
             "point": (dict, type(None)), "layers": (list,)}
    for key, types in kinds.items():
        if key in raw and (not isinstance(raw[key], types) or isinstance(raw[key], bool)):
            raise CodesignError(f"{path}: {key!r} is malformed ({raw[key]!r}); run "
                                "`codesign build` again")
    if not (isinstance(raw.get("clock_mhz", 100), (int, float))
            and 0 < raw.get("clock_mhz", 100) < float("inf")):
        raise CodesignError(f"{path}: clock_mhz must be a positive number; run `codesign build` "
                            "again")
    try:
        ports = raw["ports"]
        top = raw["top"]
        verilog = path.parent / raw["verilog"]
        m = Manifest(root=path.parent, top=top, verilog=verilog, clock=raw.get("clock", "clk"),
                     reset=raw.get("reset", "rst"),
                     reset_active=raw.get("reset_active", "high"),
                     clock_mhz=float(raw.get("clock_mhz", 100)),
                     input=port_from_dict(ports["input"], "ports.input"),
                     output=port_from_dict(ports["output"], "ports.output"),
                     model=raw.get("model"), point=raw.get("point"),
                     layers=tuple(raw.get("layers", ())), raw=raw)
    except KeyError as exc:
        raise CodesignError(f"{path} lacks key {exc.args[0]!r}") from None
    except (TypeError, ValueError, AttributeError, ZeroDivisionError, OverflowError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CodesignError(f"{path} is malformed ({first}); run `codesign build` again") \
            from None
    if m.reset_active not in ("high", "low"):
        raise CodesignError(f"{path}: reset_active must be 'high' or 'low', not {m.reset_active!r}")
    if not verilog.is_file():
        raise CodesignError(f"{path} names Verilog {raw['verilog']!r}, which does not exist")
    want = raw.get("verilog_sha256")
    if not isinstance(want, str):
        raise CodesignError(f"{path} records no verilog_sha256 (a build by an older codesign): "
                            "run `codesign build` again")
    if file_digest(verilog) != want:
        raise CodesignError(f"{verilog} changed since `codesign build` wrote {path.name} (its "
                            "SHA-256 differs); run `codesign build` again")
    return m
