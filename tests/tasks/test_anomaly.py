"""Anomaly detection (issue 3), both methods: finds an injected anomaly, few false alarms, threshold and scaling from
normal data only, streaming equals batch, save and load, the metrics on a hand-made case, bad input."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

import lstmkit
from lstmkit import runs
from lstmkit.tasks.timeseries.anomaly.baselines import RollingZScore, rolling_zscore
from lstmkit.tasks.timeseries.anomaly.config import AnomalyConfig, AnomalyNet, AnomalyTrain, NotFittedError
from lstmkit.tasks.timeseries.anomaly.data import in_time_order, series_values
from lstmkit.tasks.timeseries.anomaly.detector import AnomalyDetector
from lstmkit.tasks.timeseries.anomaly.metrics import detection_metrics, event_scores
from lstmkit.tasks.timeseries.anomaly.run import train_run
from lstmkit.tasks.timeseries.anomaly.statistics import fit_gaussian, mahalanobis, tail_quantile

SEASON = 24


def normal_series(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    return np.sin(2 * np.pi * t / SEASON) + 0.05 * rng.normal(size=n)


@pytest.fixture(scope="module")
def detector() -> AnomalyDetector:
    return AnomalyDetector(steps_ahead=4, season=SEASON, epochs=60, hidden_size=16).fit(normal_series(600, 0))


@pytest.mark.slow
def test_finds_an_injected_anomaly_with_few_false_alarms(detector: AnomalyDetector) -> None:
    test = normal_series(300, 1)
    labels = np.zeros(300, dtype=bool)
    test[200:206] += 1.5  # a level shift for six steps
    labels[200:206] = True
    flags = detector.detect(test)
    scores = detector.score(test)
    assert np.isnan(scores[:10]).all() and np.isfinite(scores[60:]).all()
    assert flags[200:210].any()  # found (within the anomaly or the steps its errors reach)
    # After the anomaly the forecaster's input window still holds it, so errors stay high for up to a window:
    # prediction-error detectors echo. Outside that stretch, false alarms stay near the 1 % design rate.
    echo_end = 206 + detector.forecaster.window + 4
    outside = flags.copy()
    outside[200:echo_end] = False
    assert outside.sum() <= 0.05 * (300 - (echo_end - 200))
    assert event_scores(labels, flags)["recall"] == 1.0
    assert np.nanmean(detector.score(normal_series(600, 5)) > detector.threshold) <= 0.05  # fresh normal data


@pytest.mark.slow
def test_threshold_comes_from_normal_data_only(detector: AnomalyDetector) -> None:
    before = detector.threshold
    detector.score(normal_series(300, 2) + 5.0)  # scoring anything leaves the fitted threshold alone
    assert detector.threshold == before and before > 0
    # By hand, from the normal data only: the Gaussian on the first half of the held-out tail's error vectors, the
    # threshold the 99 % quantile of the Mahalanobis distances on the second half.
    normal = normal_series(600, 0)
    n_train = 600 - int(600 * 0.3)
    errors = detector._errors(normal)[n_train:]
    errors = errors[~np.isnan(errors).any(axis=1)]
    mean, precision = fit_gaussian(errors[: len(errors) // 2])
    np.testing.assert_array_equal(detector.mean, mean)
    np.testing.assert_array_equal(detector.precision, precision)
    held = mahalanobis(errors[len(errors) // 2 :], mean, precision)
    assert detector.threshold == tail_quantile(held, 0.01)


def test_train_run_learns_nothing_from_the_test_rows(tmp_path) -> None:
    """Appending anomalous test rows to the normal training rows changes nothing the detector fits."""
    normal = normal_series(300, 0)
    test = normal_series(100, 1) * 4 + 3.0  # far off the normal data
    table = pd.DataFrame({
        "time": np.arange(400), "value": np.r_[normal, test], "split": ["train"] * 300 + ["test"] * 100,
    })  # fmt: skip
    cfg = AnomalyConfig(
        method="reconstruction", input_window=12, net=AnomalyNet(hidden_size=4), train=AnomalyTrain(epochs=2)
    )
    train_run(table, cfg, tmp_path / "run")
    from_run = AnomalyDetector.load(tmp_path / "run")
    alone = AnomalyDetector(cfg).fit(normal)
    assert from_run.scale == alone.scale == pytest.approx((normal[:210].mean(), normal[:210].std()))
    np.testing.assert_array_equal(from_run.mean, alone.mean)
    np.testing.assert_array_equal(from_run.precision, alone.precision)
    assert from_run.threshold == alone.threshold


def test_config_sections_read_the_flat_layout_of_earlier_runs() -> None:
    """Issue 19: the network's sizes sit in ``net``, the training fields in ``train`` (each default declared once);
    the flat fields earlier runs saved in config.json, and flat keyword arguments, still read into them."""
    flat = {"method": "reconstruction", "input_window": 12, "hidden_size": 8, "epochs": 3, "batch_size": 16,
            "lr": 0.01, "seed": 4, "progress": False}  # fmt: skip
    cfg = AnomalyConfig.from_dict(flat)
    assert cfg.net == AnomalyNet(hidden_size=8)
    assert (cfg.train.epochs, cfg.train.batch_size, cfg.train.lr, cfg.train.seed) == (3, 16, 0.01, 4)
    assert AnomalyDetector(**flat).config == cfg == AnomalyConfig.from_dict(cfg.to_dict())
    defaults = AnomalyConfig()  # the task's own training defaults, not TrainConfig's
    assert (defaults.net.hidden_size, defaults.train.epochs, defaults.train.lr) == (32, 100, 3e-3)
    assert defaults.train.max_minutes == 30.0 and defaults.train.device == "cpu"
    assert cfg.with_overrides({"train.lr": "3e-4", "net.num_layers": "2"}).train.lr == 3e-4
    with pytest.raises(ValueError, match="hidden_size must be at least 1"):
        AnomalyConfig.from_dict({"hidden_size": 0})


def test_reconstruction_with_two_layers_streams_as_it_scores() -> None:
    """``net.num_layers`` stacks the encoder and the decoder; the stream carries every layer's state."""
    det = AnomalyDetector(method="reconstruction", input_window=8, net={"hidden_size": 4, "num_layers": 2},
                          train={"epochs": 1}).fit(normal_series(120, 0))  # fmt: skip
    assert det.model.encoder.num_layers == det.model.decoder.num_layers == 2
    series = normal_series(40, 1)
    stream = det.stream()
    streamed = np.r_[[stream.update(v) for v in series], stream.finish()][det.delay :]
    np.testing.assert_allclose(streamed, det.score(series), rtol=1e-9, equal_nan=True)
    again = det.stream()
    again.set_state(stream.get_state())
    assert again.get_state()["h"].shape[0] == 2


@pytest.mark.slow
def test_save_load_and_bad_input(detector: AnomalyDetector, tmp_path) -> None:
    detector.save(tmp_path / "det")
    again = lstmkit.load(tmp_path / "det")
    series = normal_series(200, 3)
    np.testing.assert_allclose(again.score(series), detector.score(series), equal_nan=True)
    with pytest.raises(ValueError, match="at least 16 are needed"):
        AnomalyDetector(steps_ahead=4, validation_fraction=0.1).fit(normal_series(100, 0))
    with pytest.raises(ValueError, match="1-D array"):
        detector.score(np.zeros((5, 2)))
    with pytest.raises(NotFittedError, match="not fitted"):
        AnomalyDetector().score(series)


def test_load_refuses_another_tasks_run(tmp_path) -> None:
    import torch

    runs.save_run(tmp_path / "lm", "language_model", {"hidden_size": 4}, torch.nn.Linear(1, 1))
    with pytest.raises(ValueError, match="holds a 'language_model' run, not a 'anomaly_detector' one"):
        AnomalyDetector.load(tmp_path / "lm")


@pytest.mark.slow
@pytest.mark.parametrize("gap", [False, True])
def test_prediction_streaming_equals_batch(detector: AnomalyDetector, gap: bool) -> None:
    series = normal_series(160 if gap else 90, 4)
    series[70] += 2.0
    if gap:  # missing for longer than the forecaster's window: no forecast from an empty window, in either
        series[75:135] = np.nan
        series[150] += 2.0
        assert 60 > detector.forecaster.window
    stream = detector.stream()
    assert stream.delay == 0
    online = np.array([stream.update(v) for v in series])
    assert stream.finish().size == 0
    batch = detector.score(series)
    # Scored in float64 (SCORE_DTYPE): one window per step and hundreds per batch agree whatever kernels the CPU picks.
    np.testing.assert_allclose(online, batch, rtol=1e-9, atol=1e-12, equal_nan=True)
    if gap:
        assert np.isnan(batch[75:139]).all() and np.isfinite(batch[139:]).all()  # 4 origins after the gap


@pytest.mark.slow
def test_context_scores_as_one_longer_series(detector: AnomalyDetector) -> None:
    before, test = normal_series(100, 8), normal_series(60, 9)
    joined = detector.score(np.r_[before, test])
    np.testing.assert_array_equal(detector.score(test, context=before), joined[100:])
    assert np.isfinite(joined[100:]).all() and np.isnan(detector.score(test)[:10]).all()
    table = pd.DataFrame({"time": np.arange(100, 160), "value": test})
    flags = detector.predict(table, context=before)
    np.testing.assert_array_equal(flags, joined[100:] > detector.threshold)


def test_text_times_are_put_in_time_order_not_text_order() -> None:
    import io

    dates = pd.read_csv(io.StringIO("t,v\n10/1/2020,2\n9/1/2020,1\n11/1/2020,3\n"))
    assert dates["t"].dtype.kind not in "iufM"  # read as text
    np.testing.assert_array_equal(series_values(dates, "v", "t"), [1.0, 2.0, 3.0])
    numbers = pd.DataFrame({"t": ["10", "8", "9"], "v": [3.0, 1.0, 2.0]})  # integer times held as text
    np.testing.assert_array_equal(series_values(numbers, "v", "t"), [1.0, 2.0, 3.0])
    ordered = in_time_order(numbers, "t")
    assert ordered["t"].tolist() == [8, 9, 10]
    ties = pd.DataFrame({"t": [2, 1, 2, 1], "v": [3.0, 1.0, 4.0, 2.0]})  # refused, as forecasting refuses them
    with pytest.raises(ValueError, match="The table has duplicate timestamps: 2 at rows 0 and 2; each time needs one"):
        series_values(ties, "v", "t")
    with pytest.raises(ValueError, match="The normal data has duplicate timestamps: 2 at rows 0 and 2"):
        RollingZScore(window=2, target="v", time="t").fit(ties)
    with pytest.raises(ValueError, match="neither numbers nor dates \\(e.g. 'soon'\\)"):
        series_values(pd.DataFrame({"t": ["1", "soon"], "v": [1.0, 2.0]}), "v", "t")
    with pytest.raises(
        ValueError, match="The time column 't' of the data is missing at 1 rows \\(the first is row 1\\)"
    ):
        series_values(pd.DataFrame({"t": [1.0, np.nan], "v": [1.0, 2.0]}), "v", "t")
    # labels given as a column name are read in the same order as the values
    z = RollingZScore(window=2, target="v", time="t").fit(np.r_[np.zeros(5), 1.0, np.zeros(5), 1.0])
    table = pd.DataFrame({"t": ["3", "1", "2", "10", "4"], "v": [1.0, 0.0, 0.0, 9.0, 0.0], "y": [0, 0, 0, 1, 0]})
    assert z.evaluate(table, "y")["found"] == 1
    assert z.evaluate(table, [0, 0, 0, 0, 1]) == z.evaluate(table, "y")


def test_fit_resumes_exactly(tmp_path, monkeypatch) -> None:
    from lstmkit.tasks.timeseries.anomaly import encdec

    cfg = dict(method="reconstruction", input_window=12, epochs=4, hidden_size=4, batch_size=64)
    normal = normal_series(300, 0)
    clean = AnomalyDetector(**cfg).fit(normal, run_dir=tmp_path / "clean")
    real, seen = encdec.WindowBatches.__iter__, {"n": 0}

    def crashing(self):
        seen["n"] += 1
        for i, b in enumerate(real(self)):
            if seen["n"] == 3 and i == 1:  # in the third epoch
                raise KeyboardInterrupt
            yield b

    with monkeypatch.context() as m:
        m.setattr(encdec.WindowBatches, "__iter__", crashing)
        with pytest.raises(KeyboardInterrupt):
            AnomalyDetector(**cfg).fit(normal, run_dir=tmp_path / "cut")
    resumed = AnomalyDetector(**cfg).fit(normal, run_dir=tmp_path / "cut", resume=True)
    a, b = clean.model.state_dict(), resumed.model.state_dict()
    assert all(np.array_equal(a[k].numpy(), b[k].numpy()) for k in a)
    assert resumed.threshold == clean.threshold and len(resumed.history_) == 4


# ---- reconstruction (EncDec-AD) ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def recon() -> AnomalyDetector:
    return AnomalyDetector(method="reconstruction", input_window=16, epochs=30, hidden_size=16).fit(
        normal_series(600, 0)
    )


def test_reconstruction_finds_an_injected_anomaly(recon: AnomalyDetector) -> None:
    test = normal_series(300, 1)
    labels = np.zeros(300, dtype=bool)
    test[200:206] += 1.5
    labels[200:206] = True
    scores = recon.score(test)
    flags = recon.predict(test)
    assert np.isfinite(scores).all()  # every step lies in at least one full window
    assert flags[200:206].all()  # the minimum over windows keeps the flags on the anomaly itself...
    assert flags[190:200].sum() + flags[206:216].sum() <= 1  # ...and (nearly) off its neighbours
    outside = np.delete(flags, np.arange(200, 206))
    assert outside.mean() <= 0.1
    assert scores[200:206].min() > 10 * np.nanmax(np.delete(scores, np.arange(190, 216)))
    result = recon.evaluate(test, labels)
    assert result["event"]["recall"] == 1.0 and result["found"] == 1 and result["threshold"] == recon.threshold


def test_reconstruction_streaming_equals_batch(recon: AnomalyDetector) -> None:
    series = normal_series(80, 6)
    series[40] += 1.0
    series[60] = np.nan  # a missing value: the windows holding it are left out, the step itself gets NaN
    stream = recon.stream()
    assert stream.delay == 15
    online = [stream.update(v) for v in series]
    assert np.isnan(online[: stream.delay]).all()  # scores of steps before the series began
    online = np.concatenate([online[stream.delay :], stream.finish()])
    batch = recon.score(series)
    assert online.shape == batch.shape and np.isnan(batch[60]) and np.isfinite(batch[:60]).all()
    np.testing.assert_allclose(online, batch, rtol=1e-9, atol=1e-12, equal_nan=True)


def test_scaling_and_threshold_come_from_normal_training_data_only(recon: AnomalyDetector) -> None:
    normal = normal_series(600, 0)
    n_train = 600 - int(600 * 0.3)
    assert recon.scale == pytest.approx((normal[:n_train].mean(), normal[:n_train].std()))
    before = (recon.threshold, recon.scale, recon.mean.copy())
    recon.score(normal_series(300, 2) * 3 + 5.0)  # scoring anything leaves the detector alone
    assert (recon.threshold, recon.scale) == before[:2] and np.array_equal(recon.mean, before[2])
    # The held-out tail and what follows it never reach the scaler: changing them leaves it alone.
    changed = normal.copy()
    changed[n_train:] += 3.0
    other = AnomalyDetector(method="reconstruction", input_window=16, epochs=1, hidden_size=4).fit(changed)
    assert other.scale == pytest.approx(recon.scale)


def test_threshold_chosen_on_labelled_validation_data() -> None:
    cfg = dict(method="reconstruction", input_window=12, epochs=8, hidden_size=8, threshold_from="validation")
    val = normal_series(200, 7)
    labels = np.zeros(200, dtype=int)
    val[120:124] += 2.0
    labels[120:124] = 1
    det = AnomalyDetector(**cfg).fit(normal_series(300, 0), validation=val, validation_labels=labels)
    scores = det.score(val)
    assert scores[120:124].min() > det.threshold  # best F-beta on val: the anomaly flagged, precision first
    assert det.predict(val)[labels == 0].mean() < 0.02
    with pytest.raises(ValueError, match="threshold_from='validation' chooses the threshold on labelled data"):
        AnomalyDetector(**cfg).fit(normal_series(300, 0))
    with pytest.raises(ValueError, match="validation data are read only with threshold_from='validation'"):
        AnomalyDetector(method="reconstruction").fit(normal_series(300, 0), validation=val, validation_labels=labels)
    with pytest.raises(ValueError, match="must be 0 \\(normal\\) or 1 \\(anomaly\\)"):
        AnomalyDetector(**cfg).fit(normal_series(300, 0), validation=val, validation_labels=labels * 3)


def test_reconstruction_save_load_gives_identical_scores(recon: AnomalyDetector, tmp_path) -> None:
    recon.save(tmp_path / "det")
    again = lstmkit.load(tmp_path / "det")
    assert again.config == recon.config and again.threshold == recon.threshold
    series = normal_series(120, 3)
    np.testing.assert_array_equal(again.score(series), recon.score(series))
    config = json.loads((tmp_path / "det" / "config.json").read_text())
    assert config["kind"] == "anomaly_detector" and config["config"]["anomaly"]["method"] == "reconstruction"


def test_bad_input_gets_one_sentence(recon: AnomalyDetector) -> None:
    table = pd.DataFrame({"time": range(50), "value": np.linspace(0, 1, 50), "name": ["a"] * 50})
    with pytest.raises(
        ValueError, match="Unknown column 'hr' in the normal data; the table has \\['time', 'value', 'name'\\]"
    ):
        AnomalyDetector(method="reconstruction", target="hr").fit(table)
    with pytest.raises(ValueError, match="Column 'name' must be numeric"):
        AnomalyDetector(method="reconstruction", target="name").fit(table)
    with pytest.raises(ValueError, match="has no values: 'value' is empty or missing \\(NaN\\) everywhere"):
        recon.score(np.full(40, np.nan))
    with pytest.raises(ValueError, match="The series has 10 points; this detector needs at least 16"):
        recon.score(np.zeros(10))
    with pytest.raises(ValueError, match="hold too few windows of 64 steps"):
        AnomalyDetector(method="reconstruction", input_window=64).fit(normal_series(100, 0))
    with pytest.raises(ValueError, match="infinite values"):
        recon.score(np.r_[np.zeros(20), np.inf])
    with pytest.raises(ValueError, match="must be numbers"):
        recon.score(["a", "b"])
    with pytest.raises(ValueError, match="one 0/1 value per step"):
        recon.evaluate(np.zeros(30), np.zeros(5))
    with pytest.raises(ValueError, match="method: expected one of 'prediction', 'reconstruction'"):
        AnomalyDetector(method="autoencoder")
    with pytest.raises(NotFittedError, match="not fitted"):
        AnomalyDetector(method="reconstruction").stream()
    with pytest.raises(ValueError, match="name a column \\('y'\\) but the data are not a table"):
        recon.evaluate(np.zeros(30), "y")


# ---- metrics, baseline, picture ----------------------------------------------------------------------------------


def test_detection_metrics_on_a_hand_made_case() -> None:
    labels = np.zeros(200, dtype=bool)
    labels[100:105] = True  # one event, steps 100-104
    flags = np.zeros(200, dtype=bool)
    flags[[102, 150, 151, 180]] = True  # one hit; two false alarms: a 2-step run and a single step
    m = detection_metrics(labels, flags)
    assert m["point"] == pytest.approx({"precision": 1 / 4, "recall": 1 / 5, "f1": 2 * (1 / 4) * (1 / 5) / (9 / 20)})
    assert m["event"]["precision"] == pytest.approx(1 / 3) and m["event"]["recall"] == 1.0
    assert (m["found"], m["false_alarm_events"], m["false_alarm_points"], m["flagged_points"]) == (1, 2, 3, 4)
    # NAB: window of int(0.1 * 200) = 20 steps centred on step 102 -> [92, 112], 21 steps wide; probation 30 steps.
    sigma = lambda y: 2 / (1 + math.exp(5 * y)) - 1  # noqa: E731
    tp = sigma(-(112 - 102 + 1) / 21) / sigma(-1)
    fp = 0.11 * (sigma(38 / 20) + sigma(39 / 20) - 1)  # 150 and 151 past the window's end; 180 is past 3 widths
    assert m["nab"]["raw"] == pytest.approx(tp + fp)
    assert m["nab"]["normalized"] == pytest.approx(100 * (tp + fp + 1) / 2)
    assert (m["nab"]["tp"], m["nab"]["fp"], m["nab"]["fn"]) == (1, 3, 0)


def test_rolling_zscore_by_hand_and_its_threshold_from_normal_data() -> None:
    scores = rolling_zscore(np.array([1.0, 2.0, 3.0, 4.0, 10.0]), 3)
    assert np.isnan(scores[:3]).all()
    assert scores[3:] == pytest.approx([2 / math.sqrt(2 / 3), 7 / math.sqrt(2 / 3)])
    normal = normal_series(500, 0)
    z = RollingZScore(window=24, false_alarm_rate=0.05).fit(normal)
    assert z.threshold == pytest.approx(np.quantile(rolling_zscore(normal, 24)[24:], 0.95))
    spiked = normal_series(200, 1)
    spiked[150] += 3.0
    assert z.detect(spiked)[150]
    # The detector's verbs and column names
    table = pd.DataFrame({"t": np.arange(200), "hr": spiked, "y": (np.arange(200) == 150).astype(int)})
    named = RollingZScore(window=24, false_alarm_rate=0.05, target="hr", time="t").fit(
        pd.DataFrame({"t": np.arange(500), "hr": normal})
    )
    assert named.threshold == z.threshold
    np.testing.assert_array_equal(named.predict(table), z.detect(spiked))
    assert named.evaluate(table, "y")["found"] == 1
    np.testing.assert_array_equal(named.score(table.iloc[100:], context=table.iloc[:100]), z.score(spiked)[100:])
    with pytest.raises(NotFittedError, match="not fitted"):
        RollingZScore().predict(spiked)


def test_tail_quantile_is_empirical_when_it_can_be_and_extrapolates_when_not() -> None:
    rng = np.random.default_rng(0)
    sample = rng.exponential(size=2000)
    assert tail_quantile(sample, 0.01) == np.quantile(sample, 0.99)  # 20 scores above it: read off the sample
    # 2 scores above the 0.1 % quantile: the generalised Pareto tail over the 90 % quantile extrapolates it.
    assert tail_quantile(sample, 0.001) == pytest.approx(-math.log(0.001), rel=0.15)  # Exp(1): 6.91
    assert tail_quantile(sample[:180], 0.001) > sample[:180].max()  # beyond what 180 scores can show
    with pytest.raises(ValueError, match="No finite scores"):
        tail_quantile(np.full(3, np.nan), 0.01)
    # A large rate: fewer than 10 scores above the quantile, but it lies below the 90 % one the tail is fitted over.
    assert tail_quantile(sample[:40], 0.2) == np.quantile(sample[:40], 0.8)


def test_plot_anomaly_writes_a_png(tmp_path) -> None:
    from lstmkit.viz.plots import plot_anomaly

    x = normal_series(100, 0)
    labels = np.zeros(100, dtype=int)
    labels[40:45] = 1
    path = plot_anomaly(np.arange(100), x, np.abs(x) + 0.1, 0.9, tmp_path / "a.png", labels=labels)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="one length"):
        plot_anomaly(np.arange(5), x, x, 1.0, tmp_path / "b.png")
    with pytest.raises(ValueError, match="flags must hold one value per step, like values: got shape \\(99,\\)"):
        plot_anomaly(np.arange(100), x, x, 1.0, tmp_path / "c.png", flags=np.zeros(99, dtype=bool))
    with pytest.raises(ValueError, match="labels must hold one value per step"):
        plot_anomaly(np.arange(100), x, x, 1.0, tmp_path / "d.png", labels=labels[:50])


@pytest.mark.slow
def test_a_prediction_run_keeps_the_real_weights_at_its_top(detector: AnomalyDetector, tmp_path) -> None:
    """Issue 18: model.safetensors at the top of a prediction run held an empty module (80 bytes); it now holds the
    forecaster's network, and loading reads it."""
    import safetensors.torch

    detector.save(tmp_path / "det")
    top = safetensors.torch.load_file(tmp_path / "det" / "model.safetensors")
    own = detector.forecaster.model.state_dict()
    assert top.keys() == own.keys() and all(np.array_equal(top[k], own[k]) for k in own)
    nudged = {k: v + 0.01 for k, v in top.items()}
    safetensors.torch.save_file(nudged, tmp_path / "det" / "model.safetensors")
    again = AnomalyDetector.load(tmp_path / "det")
    assert all(np.array_equal(again.forecaster.model.state_dict()[k], nudged[k]) for k in nudged)
