"""``python -m codesign``: the same as the ``codesign`` command."""

import sys

from .cli import main

sys.exit(main())
