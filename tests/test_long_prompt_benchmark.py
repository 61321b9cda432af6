"""benchmarks/long_prompt.py on the tiny test model: a fresh process per prompt, its figures read."""

import numpy as np

from benchmarks import long_prompt


def test_long_prompt_benchmark_measures_a_cut_prompt(tiny_lm_folder, capsys):
    result = long_prompt.measure(5_000, str(tiny_lm_folder), threads=1)  # past the context
    assert result["context"] == 256 and result["characters"] == 5_000 * 5 + 25
    assert result["seconds"] > 0 and result["peak_scored"] >= result["peak_loaded"] > 0
    assert np.isclose(sum(result["p"]), 1.0)
    long_prompt.main(["--words", "10", "--model", str(tiny_lm_folder), "--threads", "1"])
    assert "| 10 | 75 | 256 |" in capsys.readouterr().out
