"""Golden models for co-simulation: the network a manifest was built from, and single layers.

A golden model is a callable ``(coords, feats) -> (coords, feats)`` on one frame in the token view.
For a built network it is ``QGraph.run_frame`` of the QGraph rebuilt from the manifest's ``model``
and ``point`` (the per-layer weight formats), with frames from the model's own data set.
"""

from __future__ import annotations

from common.errors import CodesignError

from .manifest import Manifest

__all__ = ["formats_from_point", "network_golden", "qgraph_golden", "layer_frames"]


def formats_from_point(point) -> dict:
    """``{layer name: weight format}`` from a design point (dict as in docs/CONTRACT.md)."""
    try:
        return {layer["name"]: layer["format"] for layer in point["layers"]}
    except (KeyError, TypeError) as exc:
        raise CodesignError(f"manifest point has no per-layer formats ({exc})") from None


def network_golden(manifest: Manifest, *, progress: bool = False):
    """``(bundle, qgraph, golden)`` for the network of a built design.

    The model is ``manifest["checkpoint"]`` when present (the exact weights the build used), else
    the zoo's cached ``manifest["model"]``; a ``manifest["qgraph"]`` file (relative to the build
    directory), when present, is the golden QGraph itself. Raises :class:`CodesignError` if the
    manifest names no model or the model cannot be loaded.
    """
    raw = manifest.raw or {}
    source = raw.get("checkpoint") or manifest.model
    if not source:
        raise CodesignError(
            f"{manifest.root / 'manifest.json'} names no model; cannot rebuild the golden model")
    if not manifest.point:
        raise CodesignError(f"{manifest.root / 'manifest.json'} has no design point")
    from models import zoo
    try:
        bundle = zoo.load(source, progress=progress)
        if raw.get("qgraph"):
            from models.qgraph import QGraph
            qgraph = QGraph.load(manifest.root / raw["qgraph"])
        else:
            qgraph = bundle.qgraph(formats_from_point(manifest.point))
    except CodesignError:
        raise
    except (ValueError, OSError) as exc:
        raise CodesignError(f"cannot rebuild model {manifest.model!r}: {exc}") from None
    _check_ports(manifest, qgraph)
    want = raw.get("qgraph_sha256")
    if want:
        if qgraph.fingerprint() != want:
            raise CodesignError(
                f"the build in {manifest.root} is stale: model {source!r} no longer gives the "
                "QGraph it was built from (retrained or requantized); rerun `codesign build`")
    return bundle, qgraph, qgraph_golden(qgraph)


def qgraph_golden(qgraph):
    """``QGraph.run_frame`` as a golden callable (defined for an empty frame too: a global pool
    of nothing is 0, so a classifier still answers with one token, its bias)."""
    return qgraph.run_frame


def _check_ports(manifest: Manifest, qgraph) -> None:
    c, h, w = qgraph.input.in_shape
    p = manifest.input
    if (p.channels, p.height, p.width) != (c, h, w):
        raise CodesignError(
            f"manifest input port is {p.channels}x{p.height}x{p.width} but model "
            f"{manifest.model!r} takes {c}x{h}x{w}: the build is stale, rebuild it")
    oc = qgraph.output.out_shape[0]
    if manifest.output.channels != oc:
        raise CodesignError(
            f"manifest output port carries {manifest.output.channels} channels but model "
            f"{manifest.model!r} produces {oc}: the build is stale, rebuild it")


def layer_frames(qgraph, frames, node: str) -> tuple:
    """Per-layer bench data: ``(inputs, expected)`` of one node for each network input frame.

    The node's input stream is its producer's golden output, so a single-layer design can be
    checked on realistic (e.g. sparse) activations.
    """
    n = qgraph.node(node)
    if len(n.inputs) != 1:
        raise CodesignError(f"node {node!r} has {len(n.inputs)} inputs; a layer bench needs one")
    inputs, expected = [], []
    for coords, feats in frames:
        env = qgraph.run_frame_all(coords, feats)
        inputs.append(env[n.inputs[0]])
        expected.append(env[node])
    return inputs, expected
