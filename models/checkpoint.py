"""Checkpoints of zoo models and the cache of trained ones.

The cache lives in ``$CODESIGN_CACHE`` (default ``~/.cache/codesign``), one folder per
``<model>-<format>[-qat]``. A checkpoint names its model by registry name, so loading one builds
the network from :mod:`models.registry`.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from .registry import ModelError, spec

__all__ = ["CHECKPOINT_VERSION", "cache_dir", "checkpoint_path", "save_checkpoint",
           "load_checkpoint"]

CHECKPOINT_VERSION = 1


def cache_dir() -> Path:
    """``$CODESIGN_CACHE`` (default ``~/.cache/codesign``), created if missing; one line if it
    cannot be a directory (checked before any training writes into it)."""
    from common.errors import CodesignError

    path = Path(os.environ.get("CODESIGN_CACHE", Path.home() / ".cache" / "codesign"))
    try:
        path.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise CodesignError(f"the model cache {path} (CODESIGN_CACHE) is not a directory; point "
                            "CODESIGN_CACHE at a directory or unset it") from None
    except OSError as exc:
        raise CodesignError(f"the model cache {path} (CODESIGN_CACHE) cannot be created: "
                            f"{exc.strerror}; point CODESIGN_CACHE at a writable directory") \
            from None
    return path


def checkpoint_path(name: str, fmt: str = "fp32", qat: bool = False) -> Path:
    tag = f"{name}-{fmt}" + ("-qat" if qat else "")
    return cache_dir() / "checkpoints" / tag / "model.pt"


def save_checkpoint(path, *, spec_name, model, fmt, qat, metrics, config) -> None:
    from common.fsutil import atomic_path

    qnet = spec(spec_name).qnet(model)
    blob = {
        "version": CHECKPOINT_VERSION,
        "model": spec_name,
        "format": fmt,
        "qat": qat,
        "folded": qnet.folded,
        "state_dict": model.state_dict(),
        "quant_state": qnet.quant_state(),
        "metrics": metrics,
        "config": config,
    }
    with atomic_path(path) as tmp:
        torch.save(blob, tmp)


def load_checkpoint(path):
    """``(spec, model, blob)`` from a checkpoint file; :class:`ModelError` if missing or corrupt."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"checkpoint {path} does not exist; train one with `codesign train`")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=False)
        if not isinstance(blob, dict) or blob.get("version") != CHECKPOINT_VERSION:
            raise ModelError(
                f"{path} is not a codesign checkpoint ({type(blob).__name__}); give your own "
                "PyTorch model as --model file.py:factory with --calib, or train a built-in "
                "one with `codesign train`")
        if blob["model"] == "user":  # an imported network carries its graph and its inputs
            from .user import spec_from_blob

            s, model = spec_from_blob(blob)
            return s, model.eval(), blob
        s = spec(blob["model"]).for_cv_fold(int((blob.get("config") or {}).get("cv_fold", 0)))
        model = s.build()
        if blob["folded"]:
            s.qnet(model).fold_bn()
        model.load_state_dict(blob["state_dict"])
        s.qnet(model).load_quant_state(blob["quant_state"])
    except ModelError:
        raise
    except Exception as exc:  # torch raises many kinds for a damaged file
        raise ModelError(
            f"checkpoint {path} is unreadable or damaged ({type(exc).__name__}); rebuild it "
            "(`codesign train`, or --model file.py:factory --calib for your own model)"
        ) from None
    model.eval()
    return s, model, blob
