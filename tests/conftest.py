"""Suite-wide settings."""

import os

import torch

# Same as the command line (codesign.cli): one intra-op thread, robust when the other core is busy.
torch.set_num_threads(max(1, int(os.environ.get("CODESIGN_THREADS", "1"))))
