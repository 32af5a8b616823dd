"""The board top: a built accelerator behind a UART frame loader and result sender.

:class:`BoardCore` is what runs on the board and what the board co-simulation checks: a UART
receiver (:mod:`hw.uart_rx`), a byte FIFO, the frame loader (:mod:`hw.frame_loader`), the
accelerator of a build directory (its own Verilog, instantiated by module name, so the board runs
the exact file that ``codesign sim`` checked), the result sender (:mod:`hw.result_sender`) and a
UART transmitter (:mod:`hw.uart_tx`). Ports: ``clk``, ``rst`` (active high), ``rx``, ``tx`` and
``lost`` (sticky: the receiver lost a byte). The byte protocol is :mod:`hw.protocol`.

:func:`board_plan` wraps the core for a board of :data:`BOARDS` with ``amaranth-boards``' platform
(pins, IO standards and the clock constraint of the board's oscillator, as its LPF says) and
returns the files the open ECP5 flow (:func:`hw.pnr.implement`) places, routes and packs.
"""

from __future__ import annotations

from dataclasses import dataclass

from amaranth.hdl import ClockSignal, Instance, Module, ResetSignal, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from common.errors import CodesignError

from .fifo import StreamFIFO
from .frame_loader import FrameLoader
from .result_sender import ResultSender
from .stream import TokenShape, payload_fields
from .uart_rx import UARTRx
from .uart_tx import UARTTx

__all__ = ["Board", "BOARDS", "board", "BoardCore", "shape_from_port", "divisor_for",
           "core_verilog", "board_plan", "CORE_TOP", "BOARD_TOP", "DEFAULT_BAUD", "DEFAULT_RX_FIFO"]

CORE_TOP = "board_core"
BOARD_TOP = "board_top"
#: The serial rate of the board top unless asked otherwise (every USB-UART bridge takes it).
DEFAULT_BAUD = 115200
#: Bytes of the receiver's FIFO (one DP16KD): the bytes a frame may run ahead of the network.
DEFAULT_RX_FIFO = 2048


@dataclass(frozen=True)
class Board:
    """A board the board top is built for."""

    name: str
    platform: str     # amaranth_boards class
    module: str       # amaranth_boards module
    device: str       # part of dse/devices.csv
    clock_hz: float   # the oscillator the core runs from
    uart: str = "uart"
    leds: str = "led"


BOARDS = {
    "ulx3s-85f": Board("ulx3s-85f", "ULX3S_85F_Platform", "ulx3s", "LFE5U-85F", 25e6),
    "ulx3s-45f": Board("ulx3s-45f", "ULX3S_45F_Platform", "ulx3s", "LFE5U-45F", 25e6),
    "ulx3s-25f": Board("ulx3s-25f", "ULX3S_25F_Platform", "ulx3s", "LFE5U-25F", 25e6),
}


def board(name: str) -> Board:
    """The board called ``name`` (case-insensitive); one line listing the boards otherwise."""
    b = BOARDS.get(str(name).lower())
    if b is None:
        raise CodesignError(f"unknown board {name!r}; the board top is built for "
                            f"{', '.join(BOARDS)}")
    return b


def divisor_for(clock_hz: float, baud: int) -> int:
    """Clock cycles per UART bit; one line if the rate is off by more than 2 % or too fast."""
    if not isinstance(baud, int) or baud <= 0:
        raise CodesignError(f"--baud must be a positive integer, not {baud!r}")
    div = round(clock_hz / baud)
    if div < 4:
        raise CodesignError(f"{baud} baud is too fast for a {clock_hz / 1e6:g} MHz clock (at "
                            "least 4 cycles per bit); choose a lower --baud")
    err = abs(clock_hz / div - baud) / baud
    if err > 0.02:
        raise CodesignError(f"{baud} baud is {err:.1%} off at {clock_hz / 1e6:g} MHz "
                            f"({clock_hz / div:.0f} baud with {div} cycles per bit); choose a "
                            "--baud that divides the clock within 2 %")
    return div


def shape_from_port(port: dict) -> TokenShape:
    """The :class:`TokenShape` of a manifest's stream port, checked field by field against the
    layout it describes (a manifest from another version of the generator fails here)."""
    try:
        data = next(f for f in port["fields"] if f["name"] == "data")
        shape = TokenShape(height=int(port["height"]), width=int(port["width"]),
                           channels=int(port["channels"]), lanes=int(port["lanes"]),
                           data_width=int(data["width"]), signed=bool(data["signed"]))
    except (KeyError, StopIteration, TypeError, ValueError) as exc:
        raise CodesignError(f"the build's manifest has a malformed stream port ({exc}); rerun "
                            "`codesign build`") from None
    if payload_fields(shape.layout()) != port["fields"]:
        raise CodesignError("the build's manifest describes a payload this generator does not "
                            "make; rerun `codesign build`")
    return shape


class BoardCore(wiring.Component):
    """UART in, accelerator, UART out.

    Parameters
    ----------
    manifest : dict
        The build's ``manifest.json`` (its top and stream ports).
    divisor : int
        Clock cycles per UART bit.
    rx_fifo : int
        Bytes of the receiver's FIFO.
    """

    def __init__(self, manifest: dict, *, divisor: int, rx_fifo: int = DEFAULT_RX_FIFO):
        self.manifest = manifest
        self.i_shape = shape_from_port(manifest["ports"]["input"])
        self.o_shape = shape_from_port(manifest["ports"]["output"])
        self.divisor, self.rx_fifo = divisor, rx_fifo
        super().__init__({"rx": In(1, init=1), "tx": Out(1, init=1), "lost": Out(1)})

    def elaborate(self, platform):
        m = Module()
        man = self.manifest
        m.submodules.rx = rx = UARTRx(divisor=self.divisor)
        m.submodules.fifo = fifo = StreamFIFO(layout=8, depth=self.rx_fifo)
        m.submodules.loader = loader = FrameLoader(shape=self.i_shape)
        m.submodules.sender = sender = ResultSender(shape=self.o_shape)
        m.submodules.tx = tx = UARTTx(divisor=self.divisor)
        m.d.comb += [rx.rx.eq(self.rx), self.tx.eq(tx.tx), sender.lost.eq(self.lost)]
        wiring.connect(m, rx.o, fifo.i)
        wiring.connect(m, fifo.o, loader.i)
        wiring.connect(m, sender.o, tx.i)
        with m.If(rx.overrun | rx.framing):
            m.d.sync += self.lost.eq(1)
        ports = man["ports"]
        pi, po = ports["input"], ports["output"]
        m.submodules.accel = Instance(
            man["top"],
            **{f"i_{man['clock']}": ClockSignal(), f"i_{man['reset']}": ResetSignal(),
               f"i_{pi['valid']}": loader.o.valid, f"o_{pi['ready']}": loader.o.ready,
               f"i_{pi['payload']}": loader.o.payload.as_value(),
               f"o_{po['valid']}": sender.i.valid, f"i_{po['ready']}": sender.i.ready,
               f"o_{po['payload']}": sender.i.payload.as_value()})
        return m


def core_verilog(manifest: dict, *, divisor: int, rx_fifo: int = DEFAULT_RX_FIFO) -> str:
    """Verilog of :class:`BoardCore` (module :data:`CORE_TOP`; the accelerator is instantiated
    by name, its Verilog is the build's)."""
    from amaranth.back import verilog

    from .build import kick_comb_blocks

    core = BoardCore(manifest, divisor=divisor, rx_fifo=rx_fifo)
    return kick_comb_blocks(verilog.convert(core, name=CORE_TOP, emit_src=False))


def board_plan(b: Board) -> dict:
    """``{file name: text}`` of the board top of ``b`` around the core (module
    :data:`CORE_TOP`): ``board_top.il`` (RTLIL: pins, IO buffers, the clock and its power-on
    reset, the core instance) and ``board_top.lpf`` (pin locations, IO standards, the clock
    constraint), from ``amaranth-boards``."""
    import importlib

    from amaranth.hdl import Elaboratable

    try:
        mod = importlib.import_module(f"amaranth_boards.{b.module}")
    except ImportError:
        raise CodesignError("amaranth-boards is not installed; run `make setup`") from None
    platform = getattr(mod, b.platform)()

    class Top(Elaboratable):
        def elaborate(self, platform):
            m = Module()
            uart = platform.request(b.uart, 0)
            led = platform.request(b.leds, 0)
            lost = Signal()
            # the platform's clock domain has no reset (the part starts from its configured
            # state): hold the core in reset for its first 255 cycles
            por = Signal(8, init=255)
            with m.If(por != 0):
                m.d.sync += por.eq(por - 1)
            m.submodules.core = Instance(CORE_TOP, i_clk=ClockSignal(), i_rst=por != 0,
                                         i_rx=uart.rx.i, o_tx=uart.tx.o, o_lost=lost)
            m.d.comb += led.o.eq(lost)
            return m

    plan = platform.prepare(Top(), name=BOARD_TOP)
    files = {}
    for name in (f"{BOARD_TOP}.il", f"{BOARD_TOP}.lpf"):
        text = plan.files[name]
        files[name] = text if isinstance(text, str) else text.decode()
    return files
