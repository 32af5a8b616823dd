"""Co-simulation of the generated Verilog against the integer golden models (cocotb 2.1).

Parts, from the bottom up:

- :mod:`cosim.manifest`: ``manifest.json`` (docs/CONTRACT.md) and packing of frames into beats.
- :mod:`cosim.pause`: idle / backpressure pause generators.
- :mod:`cosim.scoreboard`: in-order checker naming the first wrong frame, site and channel.
- :mod:`cosim.parts`: cocotb stream source, sink, monitor and ``TB`` (clock, reset).
- :mod:`cosim.wrapper`: the fast path, a generated HDL harness that drives the DUT from a file.
- :mod:`cosim.runner`: Verilator (default) / Icarus through ``cocotb_tools.runner``, cached builds.
- :mod:`cosim.benches`: the cocotb tests the runner starts (Python path and fast path).
- :mod:`cosim.session`: :func:`~cosim.session.simulate`, the Python API of ``codesign sim``.
- :mod:`cosim.golden`, :mod:`cosim.layer`, :mod:`cosim.cycles`: golden models for networks and
  single blocks, and measured cycles against the :mod:`contract.cycles` formulas.
- :mod:`cosim.toy`: a small DUT with the contract's ports, for testing all of the above.
"""
