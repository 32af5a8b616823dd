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

    The build carries its own QGraph (``manifest["qgraph"]``, checked against
    ``manifest["qgraph_sha256"]``). When the model it was built from still loads
    (``manifest["checkpoint"]`` or ``manifest["model"]``), the QGraph is rebuilt from it as well
    and must be the same (else the model was retrained or requantized since: the build is stale);
    ``bundle`` is then the model, whose data set gives frames. A build from a QGraph JSON file has
    no model: ``bundle`` is None and frames must come from the user (``codesign sim --inputs``).
    """
    from models.qgraph import GraphError, QGraph

    raw = manifest.raw or {}
    source = raw.get("checkpoint") or manifest.model
    if not manifest.point:
        raise CodesignError(f"{manifest.root / 'manifest.json'} has no design point")
    want = raw.get("qgraph_sha256")
    own = None
    if raw.get("qgraph"):
        path = manifest.root / raw["qgraph"]
        try:
            own = QGraph.load(path)
        except (OSError, ValueError, KeyError, TypeError, GraphError) as exc:
            raise CodesignError(f"{path} is unreadable ({exc}); rerun `codesign build`") from None
        if want and own.fingerprint() != want:
            raise CodesignError(f"{path} does not match the QGraph the build was made from "
                                "(modified after `codesign build`); rerun `codesign build`")
    bundle = None
    if source and not str(source).endswith(".json"):
        from models import zoo
        try:
            bundle = zoo.load(source, progress=progress)
            qgraph = bundle.qgraph(formats_from_point(manifest.point))
        except CodesignError:
            raise
        except (ValueError, OSError) as exc:
            if own is None:
                raise CodesignError(f"cannot rebuild model {manifest.model!r}: {exc}") from None
            bundle = None
    if bundle is None:
        if own is None:
            raise CodesignError(f"{manifest.root / 'manifest.json'} names no loadable model and "
                                "the build holds no QGraph; rerun `codesign build`")
        qgraph = own
    _check_ports(manifest, qgraph)
    if want and qgraph.fingerprint() != want:
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
