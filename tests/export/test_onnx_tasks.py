"""ONNX export of the forecasting, anomaly and seq2seq networks (issue 6, second part): each graph reproduces the
source network in onnxruntime, and the Python around it (scaling, level, greedy loop) rebuilds the task's own output
from the graph's: Forecaster.predict, rolling medians and reconstruction errors, Seq2Seq.translate."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("onnxruntime")
import onnxruntime as ort  # noqa: E402

from lstmkit.cli import main  # noqa: E402
from lstmkit.export.onnx import ExportMismatchError, export_onnx  # noqa: E402
from lstmkit.tasks.text.seq2seq import BOS, EOS, Seq2Seq, _pad, number_phrases  # noqa: E402
from lstmkit.tasks.timeseries.anomaly.data import as_table  # noqa: E402
from lstmkit.tasks.timeseries.anomaly.detector import AnomalyDetector  # noqa: E402
from lstmkit.tasks.timeseries.anomaly.encdec import combine_windows, full_windows  # noqa: E402
from lstmkit.tasks.timeseries.forecasting import Forecaster, prepare_series  # noqa: E402


def frame(n: int = 60, season: int = 6, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    return pd.DataFrame({"time": pd.date_range("2000-01-01", periods=n, freq="MS"),
                         "y": 10 + 0.05 * t + 3 * np.sin(2 * np.pi * t / season) + 0.2 * rng.normal(size=n),
                         "promo": (t % 5 == 0).astype(float)})  # fmt: skip


def forecaster(**kw) -> Forecaster:
    base = dict(target="y", horizon=4, season=6, epochs=3, hidden_size=8, calibrate_intervals=False)
    return Forecaster(**{**base, **kw}).fit(frame().iloc[:56])


def run(path, feeds: dict) -> list[np.ndarray]:
    return ort.InferenceSession(str(path)).run(None, feeds)


FORECASTERS = [
    {}, {"future_covariates": ("promo",)}, {"residual_to": "none", "num_layers": 2},
    {"model": "recurrent"}, {"model": "recurrent", "future_covariates": ("promo",), "num_layers": 2},
    {"residual_to": "seasonal_mean"}, {"members": 3, "future_covariates": ("promo",)},
]  # fmt: skip


@pytest.mark.parametrize("kw", FORECASTERS, ids=["direct-residual", "direct-future", "direct-none-2layer",
                                                 "recurrent", "recurrent-future-2layer", "direct-seasonal-mean",
                                                 "ensemble-future"])  # fmt: skip
def test_forecaster_graph_rebuilds_predict_with_the_scaling_in_python(kw, tmp_path) -> None:
    f = forecaster(**kw)
    report = export_onnx(f, tmp_path / "f.onnx")
    has_future = bool(kw.get("future_covariates"))
    assert report.inputs == (["x", "future"] if has_future else ["x"]) and report.outputs == ["quantiles"]
    assert report.max_abs_diff < 1e-5 and len(report.checks) == 3
    # Forecaster.predict, with the network run by onnxruntime: window relative to its level, future scaled
    history, ahead = frame().iloc[:56], frame().iloc[56:60][["time", "promo"]]
    (s,) = prepare_series(history, f.config)
    x, level = f._relative(f._inputs(f._scaled(s))[-f.window :])
    feeds = {"x": x[None].astype(np.float32)}
    if has_future:
        mean, std = f.scales[s.key]
        feeds["future"] = ((ahead[["promo"]].to_numpy() - mean[-1:]) / std[-1:])[None].astype(np.float32)
    (q,) = run(tmp_path / "f.onnx", feeds)
    assert q.shape == (1, 4, 3)
    values = f._unscale(s.key, f._widen(np.sort(q[0], axis=1)) + level)  # (H, Q)
    want = f.predict(history, future=ahead if has_future else None)[["q0.1", "q0.5", "q0.9"]].to_numpy()
    np.testing.assert_allclose(values, want, rtol=1e-5, atol=1e-5)


def test_recurrent_step_graph_streams_the_horizon_and_direct_has_none(tmp_path) -> None:
    f = forecaster(model="recurrent", future_covariates=("promo",))
    export_onnx(f, tmp_path / "whole.onnx")
    report = export_onnx(f, tmp_path / "step.onnx", streaming=True)
    assert report.inputs == ["x_t", "h", "c"] and report.outputs == ["quantiles", "h_next", "c_next"]
    assert report.max_abs_diff < 1e-5
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, f.window, 3)).astype(np.float32)
    future = rng.standard_normal((2, 4, 1)).astype(np.float32)
    (whole,) = run(tmp_path / "whole.onnx", {"x": x, "future": future})
    # the window's rows (y_{t-1}, observed_{t-1}, covariates_t) from a zero state, then each median fed back
    session = ort.InferenceSession(str(tmp_path / "step.onnx"))
    h = c = np.zeros((1, 2, 8), np.float32)
    for t in range(1, f.window):
        _, h, c = session.run(None, {"x_t": np.concatenate([x[:, t - 1, :2], x[:, t, 2:]], 1), "h": h, "c": c})
    prev, steps = x[:, -1, :2], []
    for k in range(4):
        q, h, c = session.run(None, {"x_t": np.concatenate([prev, future[:, k]], 1), "h": h, "c": c})
        steps.append(q)
        prev = np.stack([q[:, 1], np.ones(2, np.float32)], 1)
    np.testing.assert_allclose(np.stack(steps, 1), whole, atol=1e-5)
    with pytest.raises(ValueError, match="has no step to stream"):
        export_onnx(forecaster(), tmp_path / "direct-step.onnx", streaming=True)
    assert not (tmp_path / "direct-step.onnx").exists()


def normal_series(n: int = 300, seed: int = 0) -> np.ndarray:
    t = np.arange(n)
    return np.sin(2 * np.pi * t / 12) + 0.05 * np.random.default_rng(seed).normal(size=n)


def test_anomaly_prediction_graph_gives_the_rolling_medians(tmp_path) -> None:
    det = AnomalyDetector(steps_ahead=3, season=12, epochs=3, hidden_size=8).fit(normal_series())
    report = export_onnx(det, tmp_path / "a.onnx")
    assert report.inputs == ["x"] and report.outputs == ["predictions"] and report.max_abs_diff < 1e-5
    values = normal_series(60, seed=1)
    f, W = det.forecaster, det.forecaster.window
    table = as_table(values, "value", "time")
    medians = next(iter(f.rolling_medians(table).values()))  # (T, 3): the forecasts the detector compares
    (s,) = prepare_series(table, f.config)
    inputs = f._inputs(f._scaled(s))
    rel = [f._relative(inputs[o - W : o]) for o in (W, 40, 59)]
    (pred,) = run(tmp_path / "a.onnx", {"x": np.stack([r[0] for r in rel]).astype(np.float32)})
    got = f._unscale(s.key, pred + np.array([r[1] for r in rel])[:, None])
    np.testing.assert_allclose(got, medians[[W, 40, 59]], rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="cannot be carried"):
        export_onnx(det, tmp_path / "s.onnx", streaming=True)


def test_anomaly_reconstruction_graph_gives_the_detectors_errors(tmp_path) -> None:
    det = AnomalyDetector(method="reconstruction", input_window=8, epochs=3, hidden_size=8).fit(normal_series())
    report = export_onnx(det, tmp_path / "r.onnx")
    assert report.inputs == ["window"] and report.outputs == ["reconstruction"] and report.max_abs_diff < 1e-5
    values = normal_series(40, seed=2)
    values[17] += 3.0
    z = (values - det.scale[0]) / det.scale[1]
    x, _ = full_windows(z, 8)
    (recon,) = run(tmp_path / "r.onnx", {"window": x[..., None].astype(np.float32)})  # (N, 8)
    np.testing.assert_allclose(combine_windows(np.abs(recon - x), 40), det._reconstruction_errors(values), atol=1e-5)
    with pytest.raises(ValueError, match="no one-step graph"):
        export_onnx(det, tmp_path / "s.onnx", streaming=True)


SOURCES, TARGETS = number_phrases(np.arange(1, 81))


def seq2seq(attention: str) -> Seq2Seq:
    """Character targets: a few epochs give several-token outputs, so greedy decoding runs many steps."""
    return Seq2Seq(embedding_size=8, hidden_size=16, attention_size=12, epochs=8, batch_size=16, lr=1e-2,
                   dropout=0.0, progress=False, attention=attention, encoder_layers=2, decoder_layers=2,
                   target_level="char").fit(SOURCES, TARGETS)  # fmt: skip


def greedy_through_onnx(model: Seq2Seq, encoder_path, step_path, sources: list[str]) -> list[str]:
    """Seq2Seq._greedy with both graphs run by onnxruntime: encode once, then step from BOS until EOS."""
    encoder, step = ort.InferenceSession(str(encoder_path)), ort.InferenceSession(str(step_path))
    source, lengths = _pad([model._ids(model.source_tokenizer, s) for s in sources])
    encoded = encoder.run(None, {"source": source.numpy(), "lengths": lengths.numpy()})
    memory = dict(zip([o.name for o in encoder.get_outputs()], encoded, strict=True))
    state = {k: memory.pop(k) for k in ("h", "c", "feed") if k in memory}  # memory: outputs, keys, mask
    token = np.full(len(sources), BOS, np.int64)
    result, done = [[] for _ in sources], np.zeros(len(sources), bool)
    for _ in range(int(model.config.max_output_ratio * int(lengths.max())) + 10):
        feeds = {i.name: memory.get(i.name, state.get(i.name)) for i in step.get_inputs() if i.name != "token"}
        out = dict(zip([o.name for o in step.get_outputs()], step.run(None, {"token": token, **feeds}), strict=True))
        state = {"h": out["h_next"], "c": out["c_next"], "feed": out.get("feed_next")}
        token = out["logits"].argmax(-1)
        for i in np.flatnonzero(~done):
            done[i] |= token[i] == EOS
            if not done[i]:
                result[i].append(int(token[i]))
        if done.all():
            break
    return [model._decode_ids(ids) for ids in result]


@pytest.mark.parametrize("attention", ["bahdanau", "luong", "none"])
def test_seq2seq_encoder_and_decoder_step_reproduce_greedy_translation(attention, tmp_path) -> None:
    model = seq2seq(attention)
    report = export_onnx(model, tmp_path / "model.onnx")
    step_path = tmp_path / "model-decoder-step.onnx"
    assert [f["path"] for f in report.files] == [str(tmp_path / "model.onnx"), str(step_path)]
    assert report.max_abs_diff < 1e-5 and len(report.checks) == 2 + 8  # 2 sources; 4 greedy steps of 2 batches
    step_io = report.files[1]["inputs"] + report.files[1]["outputs"]
    if attention == "none":
        assert report.outputs == ["h", "c"] and step_io == ["token", "h", "c", "logits", "h_next", "c_next"]
    else:
        assert report.outputs == ["outputs", "keys", "mask", "h", "c", "feed"] and "weights" in step_io
    sources = ["seventy-three", "twelve", "forty-one", "eight"]  # a padded batch: lengths 1 to 3 words
    assert greedy_through_onnx(model, tmp_path / "model.onnx", step_path, sources) == model.translate(sources)
    assert all(len(t) >= 3 for t in model.translate(sources))  # several decoding steps through the step graph


def test_cli_exports_a_seq2seq_run_as_two_files_and_refuses_a_mismatch(tmp_path, capsys) -> None:
    seq2seq("luong").save(tmp_path / "run")
    assert main(["export", "onnx", str(tmp_path / "run"), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["kind"] == "seq2seq" and [f["path"] for f in report["files"]] == [
        str(tmp_path / "run" / "model.onnx"), str(tmp_path / "run" / "model-decoder-step.onnx")]  # fmt: skip
    assert main(["export", "onnx", str(tmp_path / "run"), "--streaming"]) == 2
    assert "without --streaming" in capsys.readouterr().err
    # --out naming a directory: both files inside it (issue 18); a foreign file at either name: nothing written
    (tmp_path / "exports").mkdir()
    assert main(["export", "onnx", str(tmp_path / "run"), "--out", str(tmp_path / "exports"), "--json"]) == 0
    assert [f["path"] for f in json.loads(capsys.readouterr().out)["files"]] == [
        str(tmp_path / "exports" / "model.onnx"), str(tmp_path / "exports" / "model-decoder-step.onnx")]  # fmt: skip
    (tmp_path / "mine-decoder-step.onnx").write_bytes(b"notes")
    assert main(["export", "onnx", str(tmp_path / "run"), "--out", str(tmp_path / "mine.onnx")]) == 2
    assert "mine-decoder-step.onnx already exists" in " ".join(capsys.readouterr().err.split())
    assert not (tmp_path / "mine.onnx").exists() and (tmp_path / "mine-decoder-step.onnx").read_bytes() == b"notes"
    with pytest.raises(ExportMismatchError, match="were not written"):
        export_onnx(tmp_path / "run", tmp_path / "x.onnx", tolerance=1e-12)
    assert not list(tmp_path.glob("x*.onnx"))
