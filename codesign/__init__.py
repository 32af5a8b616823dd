"""The ``codesign`` command line and the end-to-end pipeline."""
