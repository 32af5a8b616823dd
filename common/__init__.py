"""What every stage shares: user-facing errors and exit codes, atomic writes, digests.

The leaf of the package graph (docs/ARCHITECTURE.md): it imports nothing of this project.
"""
