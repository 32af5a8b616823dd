"""The contract between the DSE and the hardware: design point and layer choice, block constants,
cycle formulas.

Both ``dse/`` (which prices a design) and ``hw/`` (which builds it) read these definitions; neither
keeps its own copy. The package imports nothing of this project but :mod:`common`.
"""
