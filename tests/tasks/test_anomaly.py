"""Prediction-error anomaly detection (issue 3): finds an injected anomaly, few false alarms, threshold from normal
data only, save and load."""

from __future__ import annotations

import numpy as np
import pytest

import lstmkit
from lstmkit.tasks.anomaly import AnomalyDetector
from lstmkit.tasks.anomaly_metrics import event_scores

SEASON = 24


def normal_series(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    return np.sin(2 * np.pi * t / SEASON) + 0.05 * rng.normal(size=n)


@pytest.fixture(scope="module")
def detector() -> AnomalyDetector:
    return AnomalyDetector(steps_ahead=4, season=SEASON, epochs=60, hidden_size=16).fit(normal_series(600, 0))


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


def test_threshold_comes_from_normal_data_only(detector: AnomalyDetector) -> None:
    before = detector.threshold
    detector.score(normal_series(300, 2) + 5.0)  # scoring anything leaves the fitted threshold alone
    assert detector.threshold == before and before > 0


def test_save_load_and_bad_input(detector: AnomalyDetector, tmp_path) -> None:
    detector.save(tmp_path / "det")
    again = lstmkit.load(tmp_path / "det")
    series = normal_series(200, 3)
    np.testing.assert_allclose(again.score(series), detector.score(series), equal_nan=True)
    with pytest.raises(ValueError, match="at least 16 are needed"):
        AnomalyDetector(steps_ahead=4, validation_fraction=0.1).fit(normal_series(100, 0))
    with pytest.raises(ValueError, match="1-D array"):
        detector.score(np.zeros((5, 2)))
    with pytest.raises(RuntimeError, match="not fitted"):
        AnomalyDetector().score(series)
