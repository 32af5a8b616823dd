"""Content digests: what a verdict or a cached result is tied to."""

from __future__ import annotations

import hashlib
import json

__all__ = ["file_digest", "json_digest"]


def file_digest(path) -> str:
    """SHA-256 of a file's bytes, hex."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def json_digest(obj) -> str:
    """SHA-256 of ``obj`` as canonical JSON (sorted keys, no spaces), hex."""
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()
