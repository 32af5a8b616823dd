"""Event-camera data: event arrays, their per-window representations, and the data sets.

- :mod:`models.data.events`: the event array type, windows, polarity histograms, voxel grids and
  the dense-to-sparse conversion.
- :mod:`models.data.eventdigits`: N-MNIST-like synthetic event digits (34x34).
- :mod:`models.data.eye`: synthetic event-based eye tracking (640x480, 80x60 input maps).
- :mod:`models.data.ais2024`: loader for the AIS2024 Event-based Eye Tracking recordings.

The generators cache their arrays under ``$CODESIGN_CACHE`` (default ``~/.cache/codesign``).
"""

from .events import (
    EVENT_DTYPE,
    DataError,
    make_events,
    polarity_histogram,
    scale_counts,
    to_sparse_coords,
    validate_events,
    voxel_grid,
    window_events,
    window_histograms,
)

__all__ = [
    "EVENT_DTYPE",
    "DataError",
    "make_events",
    "validate_events",
    "window_events",
    "polarity_histogram",
    "voxel_grid",
    "window_histograms",
    "scale_counts",
    "to_sparse_coords",
]
