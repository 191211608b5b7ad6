"""The load test ``benchmarks/serve_load.py``, small: a real server, 4 concurrent clients x 20 observations, each on
its own stream. Every response and every stored final state equal the offline Predictor; no answer was a 5xx (nor
anything but 200 / 201); the server log holds no traceback; the report renders."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
pytest.importorskip("httpx")

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "serve_load.py"


def load_script():
    """benchmarks/ is not a package: the script is loaded by path (registered first: its dataclasses need that)."""
    if "serve_load" not in sys.modules:
        spec = importlib.util.spec_from_file_location("serve_load", SCRIPT)
        module = importlib.util.module_from_spec(spec)
        sys.modules["serve_load"] = module
        spec.loader.exec_module(module)
    return sys.modules["serve_load"]


def test_concurrent_streams_equal_the_offline_predictor(tmp_path: Path) -> None:
    serve_load = load_script()
    result = serve_load.run(clients=4, observations_per_client=20, repeats=1, warmup=2,
                            configs=[serve_load.Config("torch", "disk")], hidden_size=16, epochs=1,
                            max_seconds=30.0, request_timeout=10.0, workdir=tmp_path)  # fmt: skip
    check = result["checks"]["torch, sqlite on disk"]
    assert check["ok"], check["problems"]
    assert check["responses_checked"] == 4 * 20 + 4 * 2 and check["max_output_diff"] <= 1e-5
    assert check["max_state_diff"] <= 1e-5
    assert result["server_errors"] == 0 and result["non_200"] == 0 and not result["tracebacks_in_logs"]
    assert result["ok"]
    (row,) = result["rows"]
    assert row["requests"] == 80 and row["unfinished_streams"] == 0
    assert 0 < row["p50_ms"] <= row["p90_ms"] <= row["p99_ms"] <= row["max_ms"] and row["req_per_s"] > 0
    json.dumps(result)  # the rows go to a jsonl file as they are

    text = "\n".join(serve_load.markdown(result, "python benchmarks/serve_load.py --test", "now"))
    assert "| torch | sqlite (disk) | 80 |" in text and "equal: 88 responses on 8 streams" in text


def test_the_replay_check_sees_a_difference(tmp_path: Path) -> None:
    """The check is not vacuous: outputs as the offline Predictor gives them pass, one changed by 1e-4 fails."""
    from lstmkit import Predictor

    serve_load = load_script()
    run_dir = serve_load.train_run(tmp_path / "run", hidden_size=8, epochs=1)
    stream = serve_load.StreamResult("s", serve_load.observations(1, 5, seed=3)[0])
    reference = Predictor.load(run_dir)
    stream.outputs = [reference.stream("s", x).tolist() for x in stream.sent]
    assert serve_load.output_difference(Predictor.load(run_dir), [stream]) == 0.0
    stream.outputs[3][1] += 1e-4
    assert serve_load.output_difference(Predictor.load(run_dir), [stream]) == pytest.approx(1e-4, rel=1e-3)
