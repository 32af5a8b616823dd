"""Python API: the command line's steps as functions, in the idiom of hls4ml and FINN.

::

    import codesign.api as cs

    model = cs.convert("examples/digits_lenet.py:build", calib="examples/digits_lenet.py:calib")
    logits = model.predict(x)                      # the integer golden model, numpy or torch in
    front = model.explore("XC7Z020", out="runs/api/dse")          # Pareto front (DataFrame)
    design = model.build(front.point(0), out="runs/api/build", synth=False)
    summary = design.simulate(x[:5], stall=0.3)    # Verilator, bit for bit against the golden
    assert summary["mismatches"] == 0

Every function writes what the matching command writes (``explore`` -> ``codesign dse``,
``Model.build`` -> ``codesign build``, ``Design.simulate`` -> ``codesign sim``) and returns an
object holding the same figures. Errors are :class:`common.errors.CodesignError` with the one
line the command would print.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from common.errors import CodesignError

__all__ = ["convert", "Model", "Front", "Design"]


def _command(argv: list[str]) -> int:
    """Run one command as the CLI would, but raise its CodesignError instead of printing it."""
    from codesign.cli import build_parser

    args = build_parser().parse_args(argv)
    return int(args._run(args) or 0)


def convert(model, *, calib=None, formats="int8", val=None) -> Model:
    """A network ready for the flow.

    ``model``: a built-in name (``"digits"``), a checkpoint path, ``"file.py:factory"`` or a
    QONNX ``"model.onnx"`` (with ``calib``: an .npz / .npy path, ``"file.py:function"``, or an
    array ``[N, C, H, W]`` / a pair ``(x, y)``), or a ``torch.nn.Module`` (with ``calib`` as
    above). ``val``: held-out inputs of such a model, in any form ``calib`` takes (the DSE
    measures sensitivity on the first half and the front's accuracy on the second; default: the
    halves of ``calib``). ``formats``: the weight formats :meth:`Model.predict` and
    :attr:`Model.qgraph` use (one name or ``{layer: format}``); a QONNX model keeps its own
    quantizers (the default).
    """
    from models import user, zoo

    if isinstance(model, torch.nn.Module):
        model = _module_ref(model)
    calib, val = _calib_ref(calib), _calib_ref(val)
    try:
        if user.is_user_ref(str(model)) or user.is_qonnx_ref(str(model)):
            bundle = zoo.load(str(model), calib=calib, val=val)
        else:
            for name, given in (("calib", calib), ("val", val)):
                if given is not None:
                    raise CodesignError(f"{name} is for a PyTorch or QONNX model, not {model!r}")
            bundle = zoo.load(str(model))
    except (zoo.ModelError, ValueError, OSError) as exc:
        raise CodesignError(str(exc).splitlines()[0]) from None
    if getattr(bundle.qnet_base, "fixed_formats", False) and formats == "int8":
        formats = dict(bundle.qnet_base.formats)  # an imported model's own
    return Model(bundle, formats)


_SESSION: dict = {}


def _module_ref(module: torch.nn.Module) -> str:
    """A ``file.py:factory`` reference for an in-memory module (written to the cache)."""
    import hashlib
    import io

    from models.checkpoint import cache_dir

    buf = io.BytesIO()
    torch.save(module, buf)
    key = hashlib.sha256(buf.getvalue()).hexdigest()[:16]
    d = cache_dir() / "api_modules"
    d.mkdir(parents=True, exist_ok=True)
    (d / f"m{key}.pt").write_bytes(buf.getvalue())
    src = d / f"m{key}.py"
    if not src.is_file():
        src.write_text("import torch\n\n\ndef build():\n    return torch.load(__file__[:-3] + "
                       "'.pt', weights_only=False)\n")
    return f"{src}:build"


def _calib_ref(calib):
    if calib is None or isinstance(calib, (str, Path)):
        return None if calib is None else str(calib)
    from models.checkpoint import cache_dir

    x, y = calib if isinstance(calib, tuple) else (calib, None)
    x = np.asarray(x.detach().cpu() if isinstance(x, torch.Tensor) else x, dtype=np.float32)
    arrays = {"x": x}
    if y is not None:
        arrays["y"] = np.asarray(y.detach().cpu() if isinstance(y, torch.Tensor) else y)
    import hashlib

    h = hashlib.sha256()
    for k in sorted(arrays):
        h.update(k.encode() + arrays[k].tobytes() + str(arrays[k].shape).encode())
    path = cache_dir() / "api_calib" / f"c{h.hexdigest()[:16]}.npz"
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.is_file():
        np.savez(path, **arrays)
    return str(path)


class Model:
    """A network and its quantization, as every step takes it."""

    def __init__(self, bundle, formats="int8"):
        self.bundle = bundle
        self.formats = formats
        self.qgraph = bundle.qgraph(formats)

    @property
    def name(self) -> str:
        return self.bundle.name

    @property
    def checkpoint(self) -> Path:
        return self.bundle.checkpoint

    def quantize_input(self, x) -> torch.Tensor:
        """The integer input map (int64 ``[N, C, H, W]``) of float inputs."""
        x = torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x)
        return self.bundle.qnet_base.input_node.quantize(x.double())

    def predict(self, x) -> np.ndarray:
        """The integer golden model on a batch of dense float inputs ``[N, C, H, W]`` (numpy or
        torch): the output integers of every frame, ``[N, ...]`` (a classifier: its int32 logits,
        ``[N, classes]``)."""
        xi = self.quantize_input(x)
        c, h, w = self.qgraph.input.in_shape
        if tuple(xi.shape[1:]) != (c, h, w):
            raise CodesignError(f"inputs have shape {list(xi.shape[1:])}, the network takes "
                                f"[{c}, {h}, {w}]")
        coords = torch.nonzero(torch.ones(h, w, dtype=torch.bool))
        outs = [self.qgraph.run_frame(coords, xb.reshape(c, -1).t())[1] for xb in xi]
        return torch.stack(outs).squeeze(1).numpy()

    def explore(self, device: str, *, out, **options) -> Front:
        """The design-space exploration (``codesign dse``): options as :func:`dse.api.explore`."""
        from dse.api import explore

        df = explore(str(self.checkpoint), device, out=out, **options)
        return Front(Path(out), df)

    def build(self, point="default", *, out, synth: bool = False) -> Design:
        """Verilog and manifest of ``point`` (a :class:`contract.point.DesignPoint`, a point JSON
        path, or ``"default"``), as ``codesign build``."""
        if not isinstance(point, (str, Path)):
            path = Path(out).with_name(Path(out).name + "_point.json")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(point.to_json())
            point = path
        argv = ["build", "--model", str(self.checkpoint), "--point", str(point), "--out",
                str(out), "--synth" if synth else "--no-synth"]
        _command(argv)
        return Design(Path(out), self)


@dataclass
class Front:
    """The Pareto front ``codesign dse`` wrote: its table and its design points."""

    out: Path
    table: object

    def point(self, k: int):
        from contract.point import DesignPoint

        path = self.out / f"point_{k}.json"
        if not path.is_file():
            raise CodesignError(f"the front has no point {k} (points: {len(self.table)})")
        return DesignPoint.from_json(path.read_text())


@dataclass
class Design:
    """A built design: its directory, manifest and (after :meth:`simulate`) simulation."""

    out: Path
    model: Model

    @property
    def manifest(self) -> dict:
        return json.loads((self.out / "manifest.json").read_text())

    @property
    def resources(self) -> dict | None:
        path = self.out / "resources.json"
        return json.loads(path.read_text()) if path.is_file() else None

    def simulate(self, x=None, *, frames: int = 5, stall: float = 0.0, sim: str = "verilator",
                 seed: int = 0):
        """Co-simulate (``codesign sim``) on float inputs ``x`` ``[N, C, H, W]`` (the model's
        own test frames when None); returns the summary it writes to ``sim_summary.json``
        (``mismatches``, ``frames``, ``cycles_per_frame``, ...), mismatches or not."""
        argv = ["sim", "--build", str(self.out), "--frames", str(frames), "--stall", str(stall),
                "--sim", sim, "--seed", str(seed)]
        if x is not None:
            x = np.asarray(x.detach().cpu() if isinstance(x, torch.Tensor) else x,
                           dtype=np.float32)
            path = self.out / "api_inputs.npz"
            np.savez(path, x=x)
            argv += ["--inputs", str(path), "--frames", str(len(x))]
        (self.out / "sim_summary.json").unlink(missing_ok=True)
        try:
            _command(argv)
        except CodesignError:
            path = self.out / "sim_summary.json"
            if not path.is_file():
                raise
        return json.loads((self.out / "sim_summary.json").read_text())
