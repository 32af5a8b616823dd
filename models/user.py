"""A user's own PyTorch network: ``path/to/file.py:factory`` plus calibration inputs.

``import_model`` calls the factory (a callable returning a trained ``torch.nn.Module``), traces it
with the PyTorch front end (:func:`models.frontends.from_torch`), folds its BatchNorms, calibrates
its activation scales on the inputs, and writes a codesign checkpoint: the quantizable graph itself
(no user code is needed to load it again) and where its data came from. Every command then takes
that checkpoint like a zoo model's.

Calibration inputs (``--calib``): a ``.npz`` with ``x`` (float ``[N, C, H, W]``, or ``[N, F]``
vectors for a network of linear layers) and optionally
``y`` (int labels ``[N]``), a ``.npy`` holding ``x``, or ``file.py:function`` returning ``x`` or
``(x, y)``. The first half of the rows calibrates (and measures per-layer sensitivity), the second
half is the test split (all rows when there are fewer than 4). Without labels, "accuracy" is the
agreement of the quantized model's argmax with the float module's on the same inputs.

Held-out data (``--val``, same file kinds as ``--calib``): the DSE's two held-out sets
(:data:`models.spec.HELD_OUT`) are then the user's own samples, never used to calibrate: ``sens``
the first half of the rows, ``eval`` the second. Without ``--val`` they are the two halves of
``--calib`` (``sens`` the calibration half, ``eval`` the test half).
"""

from __future__ import annotations

import hashlib
import importlib.util
import re
import sys
from pathlib import Path

import numpy as np
import torch

from .registry import ModelError
from .spec import ClassifierSpec

__all__ = ["is_user_ref", "parse_ref", "load_factory", "load_inputs", "UserSpec",
           "import_model", "user_checkpoint_path", "is_qonnx_ref", "import_qonnx"]

_REF = re.compile(r"^(?P<path>.+\.py):(?P<name>[A-Za-z_][A-Za-z0-9_]*)$")


def is_user_ref(text) -> bool:
    """Whether ``text`` names a callable in a Python file (``file.py:name``)."""
    return bool(_REF.match(str(text)))


def parse_ref(text) -> tuple[Path, str]:
    m = _REF.match(str(text))
    if not m:
        raise ModelError(f"{text!r} is not of the form path/to/file.py:callable")
    path = Path(m["path"])
    if not path.is_file():
        raise ModelError(f"{path} does not exist (model or data reference {text!r})")
    return path, m["name"]


def _call(text, what: str):
    path, name = parse_ref(text)
    mod_name = "codesign_user_" + hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:12]
    try:
        spec = importlib.util.spec_from_file_location(mod_name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[mod_name] = module
        spec.loader.exec_module(module)
    except Exception as exc:  # noqa: BLE001  (the user's file: any error is theirs)
        raise ModelError(f"cannot import {path}: {type(exc).__name__}: {exc}") from None
    fn = getattr(module, name, None)
    if not callable(fn):
        raise ModelError(f"{path} has no callable {name!r} (the {what})")
    try:
        return fn()
    except Exception as exc:  # noqa: BLE001
        raise ModelError(f"{path}:{name}() failed: {type(exc).__name__}: {exc}") from None


def load_factory(ref) -> torch.nn.Module:
    """The module ``file.py:factory()`` returns."""
    module = _call(ref, "model factory")
    if not isinstance(module, torch.nn.Module):
        raise ModelError(f"{ref} returned {type(module).__name__}, not a torch.nn.Module")
    return module.eval()


def load_inputs(ref) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``(x float32 [N, C, H, W] or [N, F], y int64 [N] or None)`` from a .npz, a .npy or
    ``file.py:fn`` (``[N, F]``: one vector per input, for networks of linear layers)."""
    text = str(ref)
    if is_user_ref(text):
        got = _call(text, "data function")
        x, y = got if isinstance(got, tuple) else (got, None)
    else:
        path = Path(text)
        if not path.is_file():
            raise ModelError(f"calibration data {path} does not exist")
        try:
            if path.suffix == ".npz":
                with np.load(path) as z:
                    if "x" not in z:
                        raise ValueError(f"no array 'x' (arrays: {', '.join(z.files)})")
                    x, y = z["x"], (z["y"] if "y" in z else None)
            elif path.suffix == ".npy":
                x, y = np.load(path), None
            else:
                raise ValueError("expected a .npz or .npy file")
        except Exception as exc:  # noqa: BLE001  (numpy raises many kinds for a damaged file)
            raise ModelError(f"calibration data {path} is unreadable: {exc}") from None
    x = torch.as_tensor(np.asarray(x), dtype=torch.float32)
    if x.dim() not in (2, 4) or len(x) == 0 or not torch.isfinite(x).all():
        raise ModelError("calibration inputs must be a finite float array [N, C, H, W] (maps) "
                         f"or [N, F] (vectors) with N >= 1, not shape {list(x.shape)}")
    if y is not None:
        ya = np.asarray(y)
        if ya.dtype.kind not in "iub" and not (ya.dtype.kind == "f" and np.isfinite(ya).all()
                                               and (ya == np.round(ya)).all()) \
                or (ya.size and ya.min() < 0):
            raise ModelError(f"calibration labels y must be class indices (integers from 0), "
                             f"not {ya.dtype.name} values such as {ya.reshape(-1)[:3].tolist()}")
        y = torch.as_tensor(ya.astype(np.int64)).reshape(-1)
        if len(y) != len(x):
            raise ModelError(f"calibration labels y have {len(y)} rows, inputs x {len(x)}")
    return x, y


#: Largest difference between the traced graph and the module, as a share of the module's output
#: range, that float rounding explains (BatchNorm folded, sums reordered).
TRACE_TOLERANCE = 1e-3


def _check_traced(ref, qnet, x, want) -> None:
    """The traced graph, in float mode, must compute what the module computes on ``x``: torch.fx
    records what it sees, and a module can do more (an in-place op on a value used afterwards,
    Python control flow fixed at trace time); such a graph would be quantized and built without a
    word. ``want``: the module's outputs (after a softmax the graph dropped)."""
    with torch.no_grad(), qnet.in_mode("float"):
        got = qnet(x).double()
    drop = getattr(qnet, "dropped_output", None)
    if drop is not None:
        from .frontends.torch_fx import DROPPED_OUTPUTS

        got = DROPPED_OUTPUTS[drop](got)
    want = want.double()
    span = float(want.abs().max()) or 1.0
    err = float((got - want).abs().max()) / span if got.shape == want.shape else float("inf")
    if not err <= TRACE_TOLERANCE:
        raise ModelError(f"{ref}: the traced graph does not compute the module (they differ by "
                         f"{err:.1%} of its output's range on the calibration inputs): torch.fx "
                         "missed part of forward(), such as Python control flow on values or an "
                         "in-place op whose result is not used; write it as plain operations")


def _check_classes(ref, y, classes: int) -> None:
    """Labels must name one of the model's ``classes`` outputs."""
    if y is not None and len(y) and int(y.max()) >= classes:
        raise ModelError(f"calibration label {int(y.max())} is not a class of {ref}, which has "
                         f"{classes} outputs (labels are class indices 0..{classes - 1})")


def _digest(*parts: bytes) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(hashlib.sha256(p).digest())
    return h.hexdigest()


class UserSpec(ClassifierSpec):
    """A user's network: its data are the calibration inputs (see the module docstring)."""

    def __init__(self, name: str, x: torch.Tensor, y: torch.Tensor | None, *, source: dict,
                 sparse: bool = False, val=None):
        self.source = source
        self.x = x
        self.labelled = y is not None
        self._y = y
        self._val, self._test = _halves(len(x))
        #: ``(x, y)`` of ``--val``: the held-out sets' own samples (None: the halves of ``x``)
        self.val = val
        to_input = None
        if sparse:
            from .sparse import SparseTensor

            to_input = SparseTensor.from_dense
        super().__init__(name, build=self._no_build, data=self._split, default_epochs=0,
                         sparse=sparse, to_input=to_input)

    @property
    def held_out(self) -> dict:
        """The data splits of :data:`models.spec.HELD_OUT`: the halves of ``--val`` when given,
        else the calibration half (``sens``) and the test half (``eval``) of ``--calib``."""
        if self.val is not None:
            return {"sens": "sens", "eval": "eval"}
        return {"sens": "val", "eval": "test"}

    def _no_build(self):
        raise ModelError(f"{self.name} is an imported model: rebuild it from "
                         f"{self.source['model']} with `codesign import`")

    def set_reference(self, float_logits: torch.Tensor) -> None:
        """Labels for unlabelled inputs: the float module's own argmax."""
        if self._y is None:
            self._y = float_logits.argmax(1)

    def _split(self, split):
        if split in ("sens", "eval") and self.val is not None:
            vx, vy = self.val
            first, second = _halves(len(vx))
            sel = first if split == "sens" else second
            return vx[sel], vy[sel]
        if split not in ("train", "val", "test"):
            raise ValueError(f"unknown split {split!r}")
        sel = self._test if split == "test" else self._val  # QAT trains on the val half
        return self.x[sel], self._y[sel]

    def fit(self, model, *, epochs, lr, seed, progress):
        raise ModelError(f"{self.name} is imported with its own weights: train it in PyTorch; "
                         "codesign quantizes it (PTQ)")

    def fine_tune(self, model, *, epochs, lr, seed, progress):
        """QAT of the imported network on the calibration half of ``--calib`` (as ``codesign
        train --qat`` does): the only labelled rows that are neither held out nor the test half."""
        ClassifierSpec.fit(self, model, epochs=epochs, lr=lr, seed=seed, progress=progress)


def _halves(n: int) -> tuple[slice, slice]:
    """The first and second half of ``n`` rows (both all of them when ``n < 4``)."""
    if n < 4:
        return slice(0, n), slice(0, n)
    return slice(0, (n + 1) // 2), slice((n + 1) // 2, n)


def load_val(val, like: torch.Tensor, labels_of) -> tuple[torch.Tensor, torch.Tensor]:
    """``(x, y)`` of ``--val`` (as :func:`load_inputs` reads it), checked against the calibration
    inputs ``like`` (same sample shape) and labelled by ``labels_of(x)`` when it has no labels."""
    try:
        x, y = load_inputs(val)
    except ModelError as exc:
        raise ModelError(str(exc).replace("calibration", "held-out (--val)")) from None
    if list(x.shape[1:]) != list(like.shape[1:]):
        raise ModelError(f"held-out inputs (--val) have shape {list(x.shape[1:])} per row, the "
                         f"calibration inputs {list(like.shape[1:])}")
    if len(x) < 2:
        raise ModelError(f"held-out inputs (--val) need at least 2 rows (one each for 'sens' "
                         f"and 'eval'), not {len(x)}")
    return x, (labels_of(x) if y is None else y)


def _data_file(ref, what: str) -> Path:
    data = Path(str(ref).split(":")[0]) if is_user_ref(ref) else Path(str(ref))
    if not data.is_file():
        raise ModelError(f"{what} {data} does not exist")
    return data


def _val_key(val) -> bytes:
    """What a ``--val`` adds to an import's cache key (nothing without one, so imports made
    before ``--val`` existed keep their place)."""
    if val is None:
        return b""
    return b"val\0" + _data_file(val, "held-out data (--val)").read_bytes() + str(val).encode()


def user_checkpoint_path(ref, calib, cache: Path, val=None) -> Path:
    """Where the cache (``cache``) keeps the import of ``ref`` calibrated on ``calib``."""
    path, name = parse_ref(ref)
    data = Path(str(calib).split(":")[0]) if is_user_ref(calib) else Path(str(calib))
    if not data.is_file():
        raise ModelError(f"calibration data {data} does not exist")
    parts = [path.read_bytes(), name.encode(), data.read_bytes(), str(calib).encode()]
    if val is not None:
        parts.append(_val_key(val))
    key = _digest(*parts)
    return Path(cache) / "imports" / f"{path.stem}-{name}-{key[:12]}" / "model.pt"


def is_qonnx_ref(text) -> bool:
    """Whether ``text`` names a QONNX (``.onnx``) file."""
    return str(text).endswith(".onnx")


def import_qonnx(path, calib, out_path, *, version: int, val=None) -> dict:
    """Import the QONNX model at ``path`` with its own quantizers, measure its agreement with
    ``qonnx``'s execution on the test split, and save it as a checkpoint of format ``version``;
    return its metrics (also in ``metrics.json`` beside it)."""
    from common.fsutil import atomic_path, write_json

    from .frontends.qonnx_import import agreement, from_qonnx, load_qonnx, qonnx_execute

    path = Path(path)
    x, y = load_inputs(calib)
    model_name = re.sub(r"[^A-Za-z0-9_]", "_", path.stem)
    qnet = from_qonnx(path, name=model_name)
    model = load_qonnx(path)
    want = model.get_tensor_shape(model.graph.input[0].name)
    if want is None or list(x.shape[1:]) != [int(v) for v in want[1:]]:
        raise ModelError(f"calibration inputs have shape {list(x.shape[1:])} per row; "
                         f"{path.name} takes {list(want[1:]) if want else '?'}")
    out_shape = model.get_tensor_shape(model.graph.output[0].name)
    if out_shape and len(out_shape) == 2 and int(out_shape[1]) > 0:
        _check_classes(path.name, y, int(out_shape[1]))
    source = {"model": str(path), "model_file": str(path.resolve()),
              "calib": str(calib if is_user_ref(calib) else Path(calib).resolve()),
              "labelled": y is not None, "format": "qonnx"}
    spec = UserSpec(model_name, x, y, source=source)
    xt, _ = spec.data("test")
    outputs: dict = {}
    agree = agreement(path, qnet, xt.numpy(), outputs=outputs)
    ref = outputs["qonnx"]
    if y is None:
        # without labels, "accuracy" is agreement with the model's own (qonnx) execution
        spec._y = torch.from_numpy(
            qonnx_execute(model, x.numpy())[model.graph.output[0].name].argmax(1))
    if val is not None:
        spec.val = load_val(val, x, lambda v: torch.from_numpy(
            qonnx_execute(model, v.numpy())[model.graph.output[0].name].argmax(1)))
        if out_shape and len(out_shape) == 2 and int(out_shape[1]) > 0:
            _check_classes(val, spec.val[1], int(out_shape[1]))
        source["val"] = str(val if is_user_ref(val) else Path(val).resolve())
    _, yt = spec.data("test")
    ours = spec.evaluate(qnet, split="test", mode="int")
    metrics = {"model": model_name, "source": str(path), "calib": source["calib"],
               "labelled": y is not None, "inputs": len(x),
               "float_accuracy": float((torch.from_numpy(ref.argmax(1)) == yt).double().mean()),
               "float_is": "the QONNX model (qonnx execution)",
               "integer_accuracy": ours["accuracy"], "integer_format": "the model's own",
               "formats": dict(qnet.formats), "test_n": ours["n"], "qonnx_agreement": agree}
    blob = {"version": version, "model": "user", "user": source, "qnet": qnet,
            "name": model_name, "x": x, "y": spec._y, "sparse": False, "format": "qonnx",
            "qat": False, "folded": True, "metrics": metrics, "val": spec.val}
    out_path = Path(out_path)
    with atomic_path(out_path) as tmp:
        torch.save(blob, tmp)
    write_json(out_path.parent / "metrics.json", metrics)
    return metrics


def qonnx_checkpoint_path(path, calib, cache: Path, val=None) -> Path:
    """Where the cache (``cache``) keeps the import of the QONNX file ``path`` with ``calib``."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"{path} does not exist (QONNX model)")
    data = Path(str(calib).split(":")[0]) if is_user_ref(calib) else Path(str(calib))
    if not data.is_file():
        raise ModelError(f"calibration data {data} does not exist")
    from .quant import QUANT_VERSION

    parts = [path.read_bytes(), data.read_bytes(), str(calib).encode(),
             f"q{QUANT_VERSION}".encode()]
    if val is not None:
        parts.append(_val_key(val))
    key = _digest(*parts)
    return Path(cache) / "imports" / f"{path.stem}-qonnx-{key[:12]}" / "model.pt"


def import_model(ref, calib, out_path, *, version: int, abits: int = 8, qat_format=None,
                 qat_epochs: int = 5, progress: bool = False, val=None) -> dict:
    """Trace, calibrate and save ``ref`` as a checkpoint of format ``version``; return its
    metrics (also in ``metrics.json`` beside it).

    ``qat_format``: also fine-tune the quantized network in that weight format (fake-quant, the
    activation scales frozen) for ``qat_epochs`` epochs on the calibration half of the inputs
    (their labels, or the float module's argmax), at a tenth of the built-in networks' rate; the
    checkpoint then holds the fine-tuned weights, and every later command quantizes those.
    """
    from common.fsutil import atomic_path, write_json

    from .frontends import from_torch

    path, name = parse_ref(ref)
    module = load_factory(ref)
    x, y = load_inputs(calib)
    model_name = re.sub(r"[^A-Za-z0-9_]", "_", f"{path.stem}_{name}")
    qnet = from_torch(module, name=model_name, nonneg_input=bool((x >= 0).all()), example=x[:2])
    sparse = bool(getattr(qnet, "sparse", False))
    inp = qnet.input_node
    if inp.gain is not None:  # the module normalises its input: the sign is the normalised one's
        from .quant.layers import feat

        inp.nonneg = bool((inp.normalise(feat(x.double())) >= 0).all())
    try:
        with torch.no_grad():
            if sparse:
                from .sparse import SparseTensor

                ref_logits = module(SparseTensor.from_dense(x))
            else:
                ref_logits = module(x)
    except Exception as exc:  # noqa: BLE001  (the user's module on the user's data)
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ModelError(f"{ref} fails on the calibration inputs of shape {list(x.shape)}: "
                         f"{first}") from None
    if ref_logits.dim() != 2:
        raise ModelError(f"{ref} outputs shape {list(ref_logits.shape)}; the flow takes "
                         "classifiers (one logit vector per input)")
    if len(ref_logits) != len(x):
        raise ModelError(f"{ref} outputs {len(ref_logits)} rows for {len(x)} inputs: a view or "
                         "reshape mixes the batch into the features (use x.flatten(1) or "
                         "x.view(x.size(0), -1))")
    _check_classes(ref, y, ref_logits.shape[1])
    if not sparse:
        _check_traced(ref, qnet, x[:64], ref_logits[:64])
    source = {"model": str(ref), "model_file": str(path.resolve()),
              "calib": str(calib if is_user_ref(calib) else Path(calib).resolve()),
              "labelled": y is not None}
    spec = UserSpec(model_name, x, y, source=source, sparse=sparse)
    spec.set_reference(ref_logits)
    if val is not None:
        def float_labels(v):
            with torch.no_grad():
                if sparse:
                    from .sparse import SparseTensor

                    return module(SparseTensor.from_dense(v)).argmax(1)
                return module(v).argmax(1)

        spec.val = load_val(val, x, float_labels)
        _check_classes(val, spec.val[1], ref_logits.shape[1])
        source["val"] = str(val if is_user_ref(val) else Path(val).resolve())
    qnet.fold_bn()
    qnet.calibrate(spec.calibration_batches(qnet), abits=abits)
    float_acc = spec.evaluate(qnet, split="test", mode="float")
    qat = None
    if qat_format is not None:
        from .quant.formats import weight_format

        fmt = weight_format(qat_format).name
        before = spec.evaluate(_quantized(qnet, fmt), split="test", mode="int")["accuracy"]
        qnet.set_formats(fmt)
        qnet.set_mode("fake")
        spec.fine_tune(qnet, epochs=qat_epochs, lr=spec.lr / 10, seed=0, progress=progress)
        after = spec.evaluate(qnet, split="test", mode="int")["accuracy"]
        qnet.set_mode("float")  # formats and weight scales stay the fine-tuned ones
        qat = {"format": fmt, "epochs": qat_epochs, "data": "the calibration half of --calib",
               "accuracy_before": before, "accuracy_after": after}
    int8 = spec.evaluate(_quantized(qnet, "int8"), split="test", mode="int")
    metrics = {"model": model_name, "source": str(ref), "calib": source["calib"],
               "labelled": y is not None, "inputs": len(x),
               "float_accuracy": float_acc["accuracy"], "integer_accuracy": int8["accuracy"],
               "integer_format": "int8", "test_n": int8["n"], "qat": qat}
    blob = {"version": version, "model": "user", "user": source, "qnet": qnet,
            "name": model_name, "x": x, "y": spec._y, "sparse": sparse, "format": "fp32",
            "qat": qat is not None,
            "folded": True, "metrics": metrics, "val": spec.val}
    out_path = Path(out_path)
    with atomic_path(out_path) as tmp:
        torch.save(blob, tmp)
    write_json(out_path.parent / "metrics.json", metrics)
    return metrics


def _quantized(qnet, fmt):
    import copy

    q = copy.deepcopy(qnet)
    q.set_formats(fmt)
    return q


def spec_from_blob(blob) -> tuple[UserSpec, torch.nn.Module]:
    """``(spec, qnet)`` of a saved import (the inputs and labels are saved with it)."""
    spec = UserSpec(blob["name"], blob["x"], blob["y"], source=blob["user"],
                    sparse=blob.get("sparse", False), val=blob.get("val"))
    return spec, blob["qnet"]
