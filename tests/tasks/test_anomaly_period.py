"""Issue 20 (anomaly): the period is detected from the autocorrelation of the normal data (not a calendar), the window
and the forecast steps follow from it, a given season or window wins, and runs saved before this still load."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from lstmkit.tasks.timeseries.anomaly.config import AnomalyConfig
from lstmkit.tasks.timeseries.anomaly.detector import AnomalyDetector, resolve_period
from lstmkit.tasks.timeseries.anomaly.period import (
    FALLBACK_WINDOW,
    MAX_WINDOW,
    derived_steps_ahead,
    derived_window,
    detect_period,
)
from lstmkit.tasks.timeseries.anomaly.run import train_run


def noisy_sine(n: int, period: float, noise: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.sin(2 * np.pi * np.arange(n) / period) + noise * rng.normal(size=n)


@pytest.mark.parametrize("period", [7, 24, 50])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_period_of_a_noisy_sine_is_found(period: int, seed: int) -> None:
    """Noise as large as half the amplitude; a linear trend on top changes nothing. Not a multiple of the period
    (they peak as high), and within 4 % of it (noise moves the crest by a step or two)."""
    y = noisy_sine(1000, period, 0.5, seed) + 0.002 * np.arange(1000)
    found = detect_period(y)
    assert found.period is not None and abs(found.period - period) <= max(1, 0.04 * period), found
    assert found.acf > 0.4 and str(found.period) in found.reason


def test_the_period_of_a_short_series_with_a_gap_is_found() -> None:
    y = noisy_sine(120, 12, 0.2, 0)
    y[30:35] = np.nan
    assert detect_period(y).period == 12


@pytest.mark.parametrize("every", [6, 7])
def test_values_missing_at_regular_intervals_do_not_favour_multiples_of_the_gap(every: int) -> None:
    y = noisy_sine(1000, 20, 0.1, 0)
    y[::every] = np.nan  # each lag that is a multiple of the gap loses fewer pairs than the others
    assert detect_period(y).period == 20


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("n", [100, 1000])
def test_white_noise_and_trends_have_no_period(seed: int, n: int) -> None:
    rng = np.random.default_rng(seed)
    for y in (rng.normal(size=n), 0.05 * np.arange(n) + rng.normal(size=n)):
        found = detect_period(y)
        assert found.period is None and "no period" in found.reason, found
    assert detect_period(np.ones(50)).period is None
    assert detect_period(np.arange(8.0)).period is None  # too short to tell


def test_the_window_and_steps_follow_the_period() -> None:
    assert derived_window(None) == derived_window(None, seasonal_residual=True) == FALLBACK_WINDOW
    assert derived_window(24) == 32 and derived_window(24, seasonal_residual=True) == 48
    assert derived_window(100) == 100 and derived_window(183, seasonal_residual=True) == MAX_WINDOW
    assert derived_window(400, seasonal_residual=True) == 400  # at least one period, however long
    assert derived_steps_ahead(None) == 5 and derived_steps_ahead(12) == 2 and derived_steps_ahead(183) == 10


def test_fit_detects_the_period_and_derives_window_and_steps() -> None:
    y = noisy_sine(600, 30, 0.1, 0)
    cfg, record = resolve_period(AnomalyConfig(), y)
    assert (cfg.season, cfg.input_window, cfg.steps_ahead) == (30, 32, 3)
    assert record["season_source"] == "detected" and record["input_window_source"] == "derived"
    assert not record["seasonal_residual"]  # a detected period drifts: the forecaster does not repeat it
    cfg, record = resolve_period(AnomalyConfig(), noisy_sine(1000, 90, 0.1, 0))
    assert (cfg.season, cfg.input_window, cfg.steps_ahead) == (90, 90, 10)
    # no period: season 1 and the fallback window
    cfg, record = resolve_period(AnomalyConfig(), np.random.default_rng(0).normal(size=600))
    assert (cfg.season, cfg.input_window, cfg.steps_ahead) == (1, FALLBACK_WINDOW, 5)
    assert "no period" in record["reason"]
    # a given season: two periods (the seasonal residual), cut to half the training points (70 % of 200) less the
    # forecast steps
    cfg, record = resolve_period(AnomalyConfig(season=50), noisy_sine(200, 50, 0.05, 0))
    assert record["seasonal_residual"]
    assert (cfg.season, cfg.input_window, cfg.steps_ahead) == (50, (140 - 6) // 2, 6)


def test_a_given_season_window_or_steps_wins() -> None:
    y = noisy_sine(600, 30, 0.1, 0)
    cfg, record = resolve_period(AnomalyConfig(season=12), y)
    assert (cfg.season, cfg.input_window, cfg.steps_ahead) == (12, 32, 2)
    assert record["season_source"] == "given" and "reason" not in record
    cfg, record = resolve_period(AnomalyConfig(input_window=20, steps_ahead=4), y)
    assert (cfg.season, cfg.input_window, cfg.steps_ahead) == (30, 20, 4)
    assert record["input_window_source"] == record["steps_ahead_source"] == "given"
    cfg, _ = resolve_period(AnomalyConfig(season=1), y)  # 1: no period, even where the data have one
    assert (cfg.season, cfg.input_window) == (1, FALLBACK_WINDOW)


def test_a_refit_detects_again_and_result_json_records_the_period(tmp_path) -> None:
    det = AnomalyDetector(method="reconstruction", epochs=1, hidden_size=4)
    det.fit(noisy_sine(300, 20, 0.05, 0))
    assert det.config.season == 20 and det.requested.season is None
    det.fit(noisy_sine(300, 40, 0.05, 0))
    assert det.config.season == 40 and det.config.input_window == 40
    table = pd.DataFrame({"time": np.arange(400), "value": noisy_sine(400, 20, 0.05, 1)})
    table["split"] = ["train"] * 300 + ["test"] * 100
    cfg = AnomalyConfig(method="reconstruction", net={"hidden_size": 4}, train={"epochs": 1})
    summary = train_run(table, cfg, tmp_path / "run")
    result = json.loads((tmp_path / "run" / "result.json").read_text())
    assert result["period"] == summary["period"]
    assert result["period"]["season"] == 20 and result["period"]["season_source"] == "detected"
    assert AnomalyDetector.load(tmp_path / "run").period_ == result["period"]


def test_a_run_saved_with_the_flat_season_1_layout_still_loads(tmp_path) -> None:
    """Runs saved before the period was detected: flat fields, season 1, no window (the forecaster's own config
    names it), steps_ahead 5, no period record. They load as saved and score as before."""
    y = noisy_sine(300, 20, 0.05, 0)
    det = AnomalyDetector(season=1, steps_ahead=5, epochs=1, hidden_size=4).fit(y)
    det.save(tmp_path / "run")
    path = tmp_path / "run" / "config.json"
    document = json.loads(path.read_text())
    saved = document["config"]
    fields = saved.pop("anomaly")
    saved.pop("period")
    flat = {k: v for k, v in fields.items() if k not in ("net", "train")} | fields["net"] | {"epochs": 1}
    document["config"] = {**flat, "input_window": None, "season": 1, "steps_ahead": 5, **saved}
    path.write_text(json.dumps(document))
    old = AnomalyDetector.load(tmp_path / "run")
    assert (old.config.season, old.config.steps_ahead, old.config.input_window, old.period_) == (1, 5, None, {})
    assert old.forecaster.window == det.forecaster.window == FALLBACK_WINDOW
    np.testing.assert_array_equal(old.score(y), det.score(y))
