"""FPGA parts as data: the resource table ``devices.csv`` and a budget under a utilisation ceiling.

The table gives DSP slices (ECP5: 18 x 18 multipliers), LUTs, flip-flops, 18 Kb block RAMs (RAMB18
halves on Xilinx, EBRs on ECP5) and 288 Kb UltraRAMs per part, from the vendor product tables, and
for Lattice parts the package and speed grade nextpnr places for. :func:`budget` turns a part and a
ceiling (e.g. 0.8: leave 20 % for routing and the shell) into the integer limits the integer program
uses; BRAM is counted in 18 Kb blocks because that is the granularity the cost model prices.
"""

from __future__ import annotations

import csv
import math
from dataclasses import asdict, dataclass
from functools import cache
from pathlib import Path

from common.errors import CodesignError

__all__ = ["Device", "Budget", "devices", "device", "budget", "lattice_parts", "synth_family",
           "RESOURCES", "LATTICE_FAMILIES"]

_TABLE = Path(__file__).with_name("devices.csv")

#: The resources the cost model prices and the budget limits, in this order.
RESOURCES = ("dsp", "lut", "ff", "bram18")

#: Device families that open tools place and route (nextpnr): `codesign implement` takes them.
LATTICE_FAMILIES = ("ecp5",)


#: Yosys synthesis family (``hw.synth.FAMILIES``) of each device family that is not one already.
_SYNTH_FAMILY = {"zynq7": "xc7", "artix7": "xc7", "zynqmp": "xcup"}


def synth_family(family: str) -> str:
    """The Yosys family a device family's cells are counted in: ``xc7`` for the 7-series parts
    (DSP48E1), ``xcup`` for UltraScale+ (DSP48E2), ``ecp5``; a Yosys family is returned as is."""
    return _SYNTH_FAMILY.get(family, family)


@dataclass(frozen=True)
class Device:
    """One FPGA part.

    Attributes
    ----------
    name : str
        Part name without speed grade or package, e.g. ``"XCZU3EG"``.
    family : str
        ``"zynq7"``, ``"artix7"``, ``"zynqmp"`` or ``"ecp5"``.
    aliases : tuple of str
        Other names the part is known by (short names, boards).
    dsp, lut, ff, bram18, uram : int
        Resource counts of the part (``bram18``: 18 Kb block RAMs).
    dsp_cell : str
        DSP primitive name (``DSP48E1`` / ``DSP48E2`` / ``MULT18X18D``).
    package, speed : str
        Package and speed grade nextpnr places for (Lattice parts; empty otherwise).
    """

    name: str
    family: str
    aliases: tuple[str, ...]
    board: str
    dsp: int
    dsp_cell: str
    lut: int
    ff: int
    bram18: int
    uram: int = 0
    package: str = ""
    speed: str = ""

    def __post_init__(self):
        for key in ("dsp", "lut", "ff", "bram18", "uram"):
            v = getattr(self, key)
            if not isinstance(v, int) or v < 0:
                raise ValueError(f"device {self.name}: {key} must be a non-negative int, not {v!r}")

    @property
    def bram36(self) -> int:
        """36 Kb block RAMs (Xilinx: two 18 Kb halves each)."""
        return self.bram18 // 2

    @property
    def lattice(self) -> bool:
        """Whether open tools place and route the part (``codesign implement``)."""
        return self.family in LATTICE_FAMILIES

    @property
    def synth_family(self) -> str:
        """The Yosys family its cells are counted in (``hw.synth.FAMILIES``): ``xc7`` for the
        7-series parts (DSP48E1), ``xcup`` for UltraScale+ (DSP48E2), ``ecp5``."""
        return synth_family(self.family)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["aliases"] = list(self.aliases)
        return d


@dataclass(frozen=True)
class Budget:
    """Resource limits for the integer program: ``floor(util * available)`` of each resource."""

    device: str
    util: float
    dsp: int
    lut: int
    ff: int
    bram18: int
    dsp_cell: str = "DSP48E2"
    family: str = "zynqmp"

    def __post_init__(self):
        if not 0 < self.util <= 1:
            raise ValueError(f"util must be in (0, 1], not {self.util!r}")

    def limit(self, resource: str) -> int:
        return getattr(self, resource)

    def describe(self) -> str:
        bram = "EBR" if self.family == "ecp5" else "BRAM18"
        lut = "LUT4" if self.family == "ecp5" else "LUT"
        return (
            f"{self.device} at util {self.util:g}: {self.dsp} {self.dsp_cell}, {self.lut} {lut}, "
            f"{self.ff} FF, {self.bram18} {bram}"
        )

    def to_dict(self) -> dict:
        return asdict(self)


@cache
def devices() -> dict[str, Device]:
    """Every part in the table, by canonical name."""
    out = {}
    with open(_TABLE, newline="") as f:
        rows = csv.DictReader(line for line in f if not line.startswith("#"))
        for row in rows:
            dev = Device(
                name=row["name"].strip().upper(),
                family=row["family"].strip(),
                aliases=tuple(a.strip().upper() for a in row["aliases"].split(";") if a.strip()),
                board=row["board"].strip(),
                dsp=int(row["dsp"]),
                dsp_cell=row["dsp_cell"].strip(),
                lut=int(row["lut"]),
                ff=int(row["ff"]),
                bram18=int(row["bram18"]),
                uram=int(row["uram"] or 0),
                package=(row.get("package") or "").strip(),
                speed=(row.get("speed") or "").strip(),
            )
            out[dev.name] = dev
    return out


def lattice_parts() -> str:
    """The parts open tools place and route, for messages: ``"LFE5U-25F, ..."``."""
    return ", ".join(d.name for d in devices().values() if d.lattice)


def device(name) -> Device:
    """Look up a part by name or alias (case-insensitive); unknown names list the valid ones."""
    if isinstance(name, Device):
        return name
    key = str(name).strip().upper()
    table = devices()
    if key in table:
        return table[key]
    for dev in table.values():
        if key in dev.aliases:
            return dev
    valid = ", ".join(f"{d.name} ({'/'.join(d.aliases)})" for d in table.values())
    raise CodesignError(f"unknown device {name!r}; valid devices: {valid}")


def _ceiling(util: float, n: int) -> int:
    # 0.7 * 220 is 153.99999999999997 in binary floating point; the budget is 154.
    return math.floor(util * n + 1e-9)


def budget(name, util: float = 0.8) -> Budget:
    """Resource limits of a part under a utilisation ceiling ``util`` in (0, 1]."""
    dev = device(name)
    if not isinstance(util, (int, float)) or not 0 < util <= 1:
        raise CodesignError(f"--util must be in (0, 1], not {util!r}")
    return Budget(
        device=dev.name,
        util=float(util),
        dsp=_ceiling(util, dev.dsp),
        lut=_ceiling(util, dev.lut),
        ff=_ceiling(util, dev.ff),
        bram18=_ceiling(util, dev.bram18),
        dsp_cell=dev.dsp_cell,
        family=dev.family,
    )
