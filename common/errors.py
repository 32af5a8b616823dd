"""User-facing errors: one clear line naming the cause and what to do, and an exit code."""

from __future__ import annotations

__all__ = ["CodesignError", "EXIT_ERROR", "EXIT_MISMATCH", "EXIT_DEADLOCK"]

EXIT_ERROR = 2
EXIT_MISMATCH = 1
EXIT_DEADLOCK = 2


class CodesignError(Exception):
    """An error the user can fix; the CLI prints ``error: <message>`` and exits with ``code``."""

    def __init__(self, message: str, code: int = EXIT_ERROR):
        super().__init__(message)
        self.code = code
