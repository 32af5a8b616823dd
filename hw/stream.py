"""The token stream every feature map travels on (docs/CONTRACT.md, "The stream").

One token per active site in raster order, its feature vector split into ``channels / lanes`` beats
of ``lanes`` values, then one end-of-frame beat (``eof = 1``) carrying no features. The payload is a
:class:`~amaranth.lib.data.StructLayout` with the fields ``y``, ``x``, ``data``, ``eof`` in that
order (first field at bit 0); ``data`` is an array of ``lanes`` values, lane 0 lowest.
"""

from __future__ import annotations

from dataclasses import dataclass

from amaranth.hdl import Shape, unsigned
from amaranth.hdl import signed as _signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["coord_bits", "token_layout", "TokenShape", "TokenBlock", "payload_fields"]


def _check_pos_int(name, value):
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise TypeError(f"{name} must be a positive integer, not {value!r}")


def coord_bits(n: int) -> int:
    """Bits needed to hold every coordinate ``0 .. n-1`` (at least 1)."""
    _check_pos_int("n", n)
    return max(1, (n - 1).bit_length())


def token_layout(*, y_bits: int, x_bits: int, lanes: int, width: int,
                 signed: bool = True) -> data.StructLayout:
    """Payload layout of a token stream: ``y``, ``x``, ``data`` (``lanes`` x ``width``), ``eof``."""
    _check_pos_int("y_bits", y_bits)
    _check_pos_int("x_bits", x_bits)
    _check_pos_int("lanes", lanes)
    _check_pos_int("width", width)
    elem = _signed(width) if signed else unsigned(width)
    return data.StructLayout({
        "y": unsigned(y_bits),
        "x": unsigned(x_bits),
        "data": data.ArrayLayout(elem, lanes),
        "eof": unsigned(1),
    })



@dataclass(frozen=True)
class TokenShape:
    """Geometry and width of one token stream.

    Parameters
    ----------
    height, width : int
        Spatial size of the feature map (coordinates ``0 .. height-1``, ``0 .. width-1``).
    channels : int
        Channels per site.
    lanes : int
        Channels per beat; must divide ``channels``.
    data_width : int
        Bits per lane value.
    signed : bool
        Whether lane values are signed (they are, for activations and accumulators).
    """

    height: int
    width: int
    channels: int
    lanes: int
    data_width: int = 8
    signed: bool = True

    def __post_init__(self):
        for name in ("height", "width", "channels", "lanes", "data_width"):
            _check_pos_int(name, getattr(self, name))
        if self.channels % self.lanes:
            raise ValueError(f"lanes ({self.lanes}) must divide channels ({self.channels})")

    @property
    def beats_per_site(self) -> int:
        """Beats that carry one site's feature vector."""
        return self.channels // self.lanes

    def layout(self) -> data.StructLayout:
        """The payload :class:`~amaranth.lib.data.StructLayout` of this stream."""
        return token_layout(y_bits=coord_bits(self.height), x_bits=coord_bits(self.width),
                            lanes=self.lanes, width=self.data_width, signed=self.signed)


class TokenBlock(wiring.Component):
    """Base of the blocks with one token stream in and one out.

    Keeps the shapes and layouts every block exposes (``i_shape``, ``o_shape``, ``i_layout``,
    ``o_layout``; a stream signature does not expose its layout) and declares the ports ``i`` and
    ``o``.
    """

    def __init__(self, i_shape: TokenShape, o_shape: TokenShape):
        self.i_shape, self.o_shape = i_shape, o_shape
        self.i_layout, self.o_layout = i_shape.layout(), o_shape.layout()
        super().__init__({
            "i": In(stream.Signature(self.i_layout)),
            "o": Out(stream.Signature(self.o_layout)),
        })


def payload_fields(layout: data.StructLayout) -> list[dict]:
    """The manifest's field list of a payload layout: name, offset, width, signed (and count).

    Array fields give the element width and ``count``; they occupy ``count * width`` bits from
    ``offset``, element 0 lowest.
    """
    if not isinstance(layout, data.StructLayout):
        raise TypeError(f"layout must be a data.StructLayout, not {layout!r}")
    fields = []
    for name, field in layout:
        shape = field.shape
        entry = {"name": name, "offset": field.offset}
        if isinstance(shape, data.ArrayLayout):
            elem = Shape.cast(shape.elem_shape)
            entry.update(width=elem.width, signed=elem.signed, count=shape.length)
        elif isinstance(shape, data.Layout):
            raise TypeError(f"field {name!r}: nested layouts are not part of the token format")
        else:
            s = Shape.cast(shape)
            entry.update(width=s.width, signed=s.signed)
        fields.append(entry)
    return sorted(fields, key=lambda f: f["offset"])
