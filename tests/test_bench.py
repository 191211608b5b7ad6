"""The benchmark's machinery: timing, rows, the quick run, the CLI. No speed assertions (speed is a benchmark)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from lstmkit import bench
from lstmkit.bench import jax as jax_suite
from lstmkit.bench import keras as keras_suite

ROW_KEYS = {
    "suite", "config", "case", "shape", "unit", "lstmkit_s", "lstmkit_min_s", "lstmkit_max_s", "peer", "peer_s",
    "peer_min_s", "peer_max_s", "ratio", "target", "passed", "samples", "repeats", "noisy", "note",
}  # fmt: skip


def test_timing_from_samples_gives_median_min_max():
    t = bench.Timing.from_samples([3.0, 1.0, 2.0, 5.0, 4.0], repeats=7)
    assert (t.median, t.min, t.max, t.repeats) == (3.0, 1.0, 5.0, 7)
    with pytest.raises(ValueError):
        bench.Timing.from_samples([])


def test_time_call_returns_median_and_min_max_of_the_samples():
    t = bench.time_call(lambda: time.sleep(0.001), samples=5, min_sample_s=0.005, warmup=1)
    assert len(t.samples) == 5
    assert t.min <= t.median <= t.max
    assert t.median >= 0.0009  # seconds per call, not per sample
    assert t.repeats >= 2  # a 1 ms call is repeated to fill a 5 ms sample


def test_measure_alternates_the_callables_in_rotating_order():
    calls: list[str] = []
    fns = {"A": lambda: calls.append("A"), "B": lambda: calls.append("B")}
    out = bench.measure(fns, samples=3, min_sample_s=1.0, warmup=1, max_repeats=1)
    # warm-up A B, calibration A B (one call each: max_repeats=1), then rounds A B / B A / A B
    assert calls[4:] == ["A", "B", "B", "A", "A", "B"]
    assert set(out) == {"A", "B"} and all(len(t.samples) == 3 and t.repeats == 1 for t in out.values())


def test_row_ratio_is_peer_over_lstmkit():
    fast, slow = bench.Timing.from_samples([1.0]), bench.Timing.from_samples([2.0])
    row = bench.Row("plain", "b", "train", "B=1", "s/call", fast, "torch.nn.LSTM", slow, target=0.95)
    assert row.ratio == 2.0 and row.passed is True
    d = row.to_dict()
    assert set(d) == ROW_KEYS and d["ratio"] == 2.0
    assert bench.Row("s", "c", "x", "", "s", slow, "p", fast, target=None).passed is None


def test_sine_task_shapes():
    X, y = bench.sine_task(50)
    assert X.shape == (50, 10, 1) and y.shape == (50,) and X.dtype == np.float32
    np.testing.assert_array_equal(X[1:, -1, 0], y[:-1])  # y is the value after each window


def _check_rows(result: dict, suites: set[str]) -> None:
    json.dumps(result)  # JSON-ready
    assert {"schema", "settings", "machine", "rows", "skipped", "notes", "summary"} <= set(result)
    m = result["machine"]
    assert m["cores"] >= 1 and m["torch"] == torch.__version__ and m["torch_threads"] == result["settings"]["threads"]
    assert isinstance(m["cpu"], str) and m["cpu"]
    for row in result["rows"]:
        assert set(row) == ROW_KEYS
        assert row["suite"] in suites
        for key in ("lstmkit_s", "lstmkit_min_s", "lstmkit_max_s", "peer_s", "peer_min_s", "peer_max_s"):
            assert row[key] > 0 and math.isfinite(row[key]), (row["suite"], row["case"], key)
        assert row["lstmkit_min_s"] <= row["lstmkit_s"] <= row["lstmkit_max_s"]
        assert row["ratio"] == pytest.approx(row["peer_s"] / row["lstmkit_s"])
        assert (row["passed"] is None) == (row["target"] is None)
    ran = {row["suite"] for row in result["rows"]}
    assert ran | set(result["skipped"]) == suites  # every suite either ran or says why not


def test_quick_run_gives_well_formed_rows():
    threads = torch.get_num_threads()
    # One thread keeps the smoke test quick on a busy machine; the real benchmark uses 2.
    result = bench.run(quick=True, threads=1)
    assert torch.get_num_threads() == threads  # restored
    _check_rows(result, set(bench.SUITES))
    by_suite = {s: [r for r in result["rows"] if r["suite"] == s] for s in bench.SUITES}
    assert {r["config"] for r in by_suite["plain"]} == {"b", "c", "d"}
    assert {r["case"] for r in by_suite["plain"]} == {"train", "infer"}
    assert len(by_suite["variants"]) == 2 * 2 * 6  # b, c x six variants x (torch.nn.LSTM, LSTMCell loop)
    assert {r["config"] for r in by_suite["streaming"]} == {"H=256", "H=1024"}
    assert any(r["peer"].startswith("torch.addmv") for r in by_suite["streaming"])
    deploy = {r["case"] for r in by_suite["deploy"] if r["peer"].startswith("onnxruntime LSTM")}
    assert deploy == {
        f"Predictor.stream ({k})" for k in ("lstmkit", "torch", "onnxruntime", "onnxruntime int8", "torch bf16")
    }
    assert result["settings"]["quick"] is True


def test_unknown_suite_is_an_error():
    with pytest.raises(ValueError, match="Unknown suite"):
        bench.run(["nope"], quick=True)


def test_markdown_has_the_machine_and_the_table():
    row = bench.Row("plain", "b", "train", "B=1", "s/call", bench.Timing.from_samples([1e-3, 2e-3]), "torch.nn.LSTM",
                    bench.Timing.from_samples([1e-3]), 0.95)  # fmt: skip
    result = {
        "machine": bench.machine_info(), "command": "lstmkit bench", "started": "now", "duration_s": 1.0,
        "settings": {"samples": 5, "min_sample_s": 0.2}, "rows": [row.to_dict()], "skipped": {"jax": "not here"},
        "notes": [], "summary": {"passed": 0, "with_target": 1},
    }  # fmt: skip
    text = bench.markdown(result)
    assert "| suite |" in text and "| plain | b | train |" in text and "skipped jax: not here" in text
    assert "lstmkit bench" in text and result["machine"]["cpu"] in text


def test_cli_json_quick_streaming_prints_json_last(tmp_path):
    out = tmp_path / "bench.json"
    proc = subprocess.run(
        [sys.executable, "-m", "lstmkit", "bench", "--json", "--quick", "--suite", "streaming", "--out", str(out)],
        capture_output=True, text=True, timeout=300, env=dict(os.environ, COLUMNS="120"),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    document = json.loads(proc.stdout)  # stdout is the JSON document and nothing else
    _check_rows(document, {"streaming"})
    assert document["rows"] and document["settings"]["suites"] == ["streaming"]
    assert json.loads(out.read_text()) == document


def test_missing_optional_peers_skip_with_a_note(monkeypatch):
    def no_jax():
        raise bench.Skip("JAX is not installed (test)")

    def no_regressor():
        raise bench.Skip("lstmkit.SequenceRegressor is not available (test)")

    monkeypatch.setattr(jax_suite, "import_jax", no_jax)  # where the suite looks it up
    monkeypatch.setattr(keras_suite, "find_regressor", no_regressor)
    result = bench.run(["jax", "keras"], quick=True, threads=1)
    assert result["rows"] == []
    assert "JAX is not installed" in result["skipped"]["jax"]
    assert "SequenceRegressor" in result["skipped"]["keras"]


def test_import_lstmkit_does_not_import_the_benchmark():
    code = "import sys, lstmkit; print(sorted(m for m in sys.modules if m.startswith('lstmkit.bench')))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "[]"
