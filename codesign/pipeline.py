"""The end-to-end flow as resumable stages.

train -> dse -> pick -> build -> sim -> implement (Lattice parts) -> accuracy -> report. Each
stage records the hash of its inputs (configuration, the content of the files it reads, and the
project's own code: :func:`code_digest`) in ``DIR/.flow/<stage>.json`` once its outputs are
written; a re-run skips a stage whose inputs and outputs are unchanged, so a killed flow resumes
where it stopped, and a flow re-run after an upgrade of codesign redoes its stages (a changed
generator or cost model gives other Verilog and figures). ``force`` redoes everything.
"""

from __future__ import annotations

import functools
import hashlib
import json
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from common.digest import file_digest
from common.errors import CodesignError
from common.fsutil import write_json

__all__ = ["FlowConfig", "Stage", "run_flow", "code_digest"]

#: The packages whose code and data files decide what a flow stage produces.
CODE_PACKAGES = ("common", "contract", "models", "dse", "hw", "cosim", "reports", "codesign")


@dataclass(frozen=True)
class FlowConfig:
    """Everything ``codesign flow`` does; round-trips through JSON."""

    model: str = "digits"
    device: str = "XCZU3EG"
    util: float = 0.8
    formats: str = "int8,int4,dybit4"
    clock_mhz: float = 200.0
    points: int = 8
    max_drop: float = 0.01
    frames: int = 20
    sim: str = "verilator"
    stall: float = 0.0
    synth: bool = True
    implement: bool | None = None  # place and route; None: on for the Lattice parts
    finetune: int = 0  # QAT epochs of every front point; the chosen one's weights go to hardware
    time_limit: float = 20.0  # the DSE's CBC seconds per program (`codesign dse --time-limit`)
    # what the DSE's objective counts: time at each design's estimated clock, or cycles at
    # clock_mhz (`codesign dse --clock`)
    clock: str = "estimate"
    # among the designs of a point's II, the smallest share of the budget or the fewest
    # multipliers (`codesign dse --least`)
    least: str = "resources"
    out: str = "runs/flow"

    def __post_init__(self):
        # the command line's checks (codesign.options), so a config from JSON meets the same ones
        from .options import (
            check_count,
            check_drop,
            check_fraction,
            check_mhz,
            check_probability,
            check_seconds,
        )

        check_fraction("--util", self.util)
        check_drop("--max-drop", self.max_drop)
        check_count("--frames", self.frames, high=100_000)
        check_count("--points", self.points, high=1000)
        check_count("--finetune", self.finetune, low=0, high=10_000)
        check_mhz("--clock-mhz", self.clock_mhz)
        check_probability("--stall", self.stall)
        check_seconds("--time-limit", self.time_limit)
        if self.clock not in ("estimate", "assumed"):
            raise CodesignError(f"--clock must be estimate or assumed, not {self.clock!r}")
        if self.least not in ("resources", "multipliers"):
            raise CodesignError(f"--least must be resources or multipliers, not {self.least!r}")
        if self.sim not in ("verilator", "icarus"):
            raise CodesignError(f"--sim must be verilator or icarus, not {self.sim!r}")

    def to_json(self) -> dict:
        return asdict(self)

    @property
    def lattice(self) -> bool:
        """Whether the device is a part open tools place and route."""
        from dse.devices import device

        return device(self.device).lattice

    @property
    def implements(self) -> bool:
        """Whether the flow places and routes (``implement``, default: on Lattice parts)."""
        return self.lattice if self.implement is None else bool(self.implement)

    def implement_clock_mhz(self, point: dict) -> float:
        """The clock the implement stage constrains place and route to. Under ``clock =
        "estimate"`` the DSE chose the point by its own estimated Fmax (``point["dse"]
        ["fmax_est_mhz"]``), so timing is met or missed against that estimate; under
        ``"assumed"`` (or a point without an estimate) it is ``clock_mhz``."""
        est = (point.get("dse") or {}).get("fmax_est_mhz")
        return float(est) if self.clock == "estimate" and est else self.clock_mhz



@dataclass
class Stage:
    """One step: ``run()`` writes ``outputs``; ``inputs()`` names what the result depends on."""

    name: str
    run: Callable[[], None]
    outputs: Callable[[], list[Path]]
    inputs: Callable[[], dict] = field(default=lambda: {})


@functools.cache
def code_digest() -> str:
    """SHA-256 of the project's code (``.py``) and data (``.json``) files in
    :data:`CODE_PACKAGES`, by path and content."""
    root = Path(__file__).resolve().parents[1]
    h = hashlib.sha256()
    for pkg in CODE_PACKAGES:
        for f in sorted(p for p in (root / pkg).rglob("*") if p.suffix in (".py", ".json")
                        and "__pycache__" not in p.parts):
            h.update(str(f.relative_to(root)).encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()


def _key(inputs: dict) -> str:
    return hashlib.sha256(json.dumps({"inputs": inputs, "code": code_digest()}, sort_keys=True,
                                     default=str).encode()).hexdigest()


def _say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def run_flow(stages: list[Stage], state_dir: Path, *, force: bool = False) -> dict[str, str]:
    """Run or skip each stage in order; returns ``{stage: "ran"|"skipped"}``."""
    state_dir.mkdir(parents=True, exist_ok=True)
    status = {}
    for i, st in enumerate(stages, 1):
        stamp = state_dir / f"{st.name}.json"
        key = _key(st.inputs())
        done = False
        if not force and stamp.is_file():
            try:
                rec = json.loads(stamp.read_text())
                done = rec.get("key") == key and all(
                    Path(p).exists() and file_digest(p) == d
                    for p, d in rec.get("outputs", {}).items()
                )
            except (OSError, ValueError):
                done = False
        if done:
            _say(f"[{i}/{len(stages)}] {st.name}: up to date, skipped")
            status[st.name] = "skipped"
            continue
        _say(f"[{i}/{len(stages)}] {st.name} ...")
        t0 = time.time()
        if stamp.exists():
            stamp.unlink()
        st.run()
        outs = {str(p): file_digest(p) for p in st.outputs()}
        write_json(stamp, {"key": key, "outputs": outs, "seconds": round(time.time() - t0, 1)})
        _say(f"[{i}/{len(stages)}] {st.name}: done in {time.time() - t0:.1f} s")
        status[st.name] = "ran"
    return status
