"""The cocotb test of the board co-simulation (:mod:`cosim.board`): a UART model on the core's
``rx`` and ``tx`` pins.

The host side of the model sends each frame's bytes bit by bit (8N1, ``divisor`` cycles a bit)
and, like the host command, waits for that frame's end-of-frame record before sending the next;
the receiving side samples ``tx`` in the middle of each bit, checks the start and stop bits and
keeps every byte. Job and result are JSON files (``COSIM_JOB``).
"""

from __future__ import annotations

import json
import os
import time

import cocotb
from cocotb.triggers import ClockCycles, Event, FallingEdge, Timer, with_timeout
from cocotb.utils import get_sim_time

__all__ = ["uart_board"]


@cocotb.test()
async def uart_board(dut):
    """Frames in as UART bytes, results out as UART bytes."""
    with open(os.environ["COSIM_JOB"]) as f:
        job = json.load(f)
    div = int(job["divisor"])
    frames = [bytes.fromhex(h) for h in job["frames_hex"]]
    site_bytes = int(job["site_bytes"])
    period_ns = 10  # the simulator top's clock (cosim.board)
    dut.rx.value = 1
    dut.rst.value = 1
    await ClockCycles(dut.clk, 8)
    dut.rst.value = 0
    await ClockCycles(dut.clk, 8)
    # every wait below is a timer from a falling clock edge (one callback per UART bit, not per
    # clock cycle), so the pins are driven and sampled half a cycle away from the rising edges
    await FallingEdge(dut.clk)
    bit_ns = div * period_ns

    received = bytearray()
    errors = []
    frame_done = Event()
    done_frames = [0]

    async def receive():
        skip = 0
        while True:
            await FallingEdge(dut.tx)
            await Timer((div // 2) * period_ns + period_ns // 2, "ns")
            if int(dut.tx.value) != 0:
                errors.append(f"glitch on tx at byte {len(received)}")
                continue
            byte = 0
            for i in range(8):
                await Timer(bit_ns, "ns")
                byte |= int(dut.tx.value) << i
            await Timer(bit_ns, "ns")
            if int(dut.tx.value) != 1:
                errors.append(f"stop bit low at byte {len(received)}")
            received.append(byte)
            # record boundaries: a flags byte starts a site record or is an end of frame
            if skip:
                skip -= 1
            elif byte & 1:
                done_frames[0] += 1
                frame_done.set()
            else:
                skip = site_bytes - 1

    cocotb.start_soon(receive())
    t0 = time.perf_counter()
    stopped = None
    cycles_per_byte = 10 * div
    for k, data in enumerate(frames):
        frame_done.clear()
        for byte in data:
            for bit in [0] + [(byte >> i) & 1 for i in range(8)] + [1]:
                dut.rx.value = bit
                await Timer(bit_ns, "ns")
        budget = int(job["timeout_cycles"]) + cycles_per_byte * int(job["out_bytes"][k])
        while done_frames[0] <= k:
            try:
                await with_timeout(frame_done.wait(), budget * period_ns, "ns")
            except Exception:  # cocotb's SimTimeoutError
                stopped = f"no end of frame {k} within {budget} cycles"
                break
            frame_done.clear()
        if stopped:
            break
    # bytes after the last frame's end would be extra records: listen for a few byte times
    await Timer(4 * cycles_per_byte * period_ns, "ns")
    wall = time.perf_counter() - t0
    out = {"received_hex": bytes(received).hex(), "errors": errors, "stopped": stopped,
           "wall_s": wall, "sim_time_ns": get_sim_time(unit="ns")}
    tmp = job["result"] + ".tmp"
    with open(tmp, "w") as f:
        json.dump(out, f)
    os.replace(tmp, job["result"])
