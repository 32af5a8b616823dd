"""One module per subcommand; shared option handling below."""

from __future__ import annotations

from common.errors import CodesignError

__all__ = ["MODEL_HELP", "add_model_arguments", "resolve_model"]

#: What ``--model`` takes in every command.
MODEL_HELP = ("a built-in name (digits, eventdigits, eye), a checkpoint path, or your PyTorch "
              "model as path/to/file.py:factory (with --calib)")


def add_model_arguments(p, *, required: bool = True, default=None) -> None:
    """``--model`` and ``--calib`` (the calibration inputs of a file.py:factory model)."""
    p.add_argument("--model", required=required, default=default, help=MODEL_HELP)
    p.add_argument("--calib", default=None,
                   help="calibration inputs of a file.py:factory model: .npz with x [N, C, H, W] "
                        "(and labels y), .npy, or file.py:function returning x or (x, y)")
    p.add_argument("--val", default=None,
                   help="held-out inputs of a file.py:factory or .onnx model, as --calib takes "
                        "them: the DSE measures per-layer sensitivity on the first half and the "
                        "front's accuracy on the second (default: the two halves of --calib)")


def resolve_model(model: str, calib, val=None) -> str:
    """``model`` as every command takes it: a ``file.py:factory`` model is imported (traced,
    calibrated, cached), a QONNX ``.onnx`` imported with its own quantizers, and either is
    named by its checkpoint path; other names pass unchanged."""
    from models import user, zoo

    if not (user.is_user_ref(model) or user.is_qonnx_ref(model)):
        for name, given in (("--calib", calib), ("--val", val)):
            if given is not None:
                raise CodesignError(f"{name} is for a file.py:factory or .onnx model, not "
                                    f"{model!r}")
        return model
    try:
        return str(zoo.load(model, calib=calib, val=val).checkpoint)
    except (zoo.ModelError, ValueError) as exc:
        raise CodesignError(str(exc).splitlines()[0]) from None
