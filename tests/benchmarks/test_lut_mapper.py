"""benchmarks/lut_mapper.py: bad arguments fail before any work; the report holds one row per
block and mapper, and a table, a CSV and a plot."""

import pandas as pd
import pytest
from helpers import load_benchmark


@pytest.fixture(scope="module")
def bench():
    return load_benchmark("lut_mapper")


def test_bad_arguments_fail_before_any_work(bench, tmp_path, capsys):
    assert bench.main(["--blocks", "blocknone", "--workdir", str(tmp_path / "w"),
                       "--out", str(tmp_path / "r")]) == 2
    assert "--blocks blocknone: not a block of fit_fmax's sweep" in capsys.readouterr().err
    assert bench.main(["--seeds", "0", "--workdir", str(tmp_path / "w"),
                       "--out", str(tmp_path / "r")]) == 2
    assert "--seeds 0" in capsys.readouterr().err
    assert not (tmp_path / "w").exists() and not (tmp_path / "r").exists()


def test_report_one_row_per_block_and_mapper(bench, tmp_path):
    rows = [{"block": b, "mapper": m, "fmax_mhz": f, "seeds_fmax": [f, f - 1], "lut4": lut,
             "ff": 10, "worst_from": "a", "worst_to": "b", "logic_ns": 1.0, "routing_ns": 2.0}
            for b, m, f, lut in (("blockx", "abc9", 200.0, 100),
                                 ("blockx", "abc -lut 4", 130.5, 90),
                                 ("blocky", "abc9", 150.0, 300),
                                 ("blocky", "abc -lut 4", 140.0, 120))]
    bench.write_report(rows, tmp_path, seeds=2)
    df = pd.read_csv(tmp_path / "lut_mapper.csv")
    assert len(df) == 4 and set(df["mapper"]) == {"abc9", "abc -lut 4"}
    assert df.loc[(df.block == "blockx") & (df.mapper == "abc -lut 4"), "lut4"].item() == 90
    md = (tmp_path / "lut_mapper.md").read_text()
    assert "| blockx | abc -lut 4 | 130.5 | 130.5 / 129.5 | 90 |" in md
    assert (tmp_path / "lut_mapper.png").stat().st_size > 1000
