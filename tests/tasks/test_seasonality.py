"""Seasonality from the timestamps (issue 20, forecasting, first step): the frequency table, too-short histories,
many series, irregular and integer times, the season a fit uses and records, and the warning on a contradicted one."""

from __future__ import annotations

import json
import logging

import numpy as np
import pandas as pd
import pytest

from lstmkit.cli import main
from lstmkit.tasks.timeseries.forecast_config import ForecastConfig
from lstmkit.tasks.timeseries.seasonality import Seasonality, infer_seasonalities, resolve_season
from lstmkit.tasks.timeseries.series import prepare_series


@pytest.mark.parametrize(
    ("freq", "n", "frequency", "periods"),
    [
        ("YS", 30, "yearly", (1,)),
        ("YE", 30, "yearly", (1,)),
        ("QS", 40, "quarterly", (4,)),
        ("QE", 40, "quarterly", (4,)),
        ("MS", 144, "monthly", (12,)),
        ("ME", 144, "monthly", (12,)),
        ("W", 200, "weekly", (52,)),
        ("D", 800, "daily", (7, 365)),
        ("D", 100, "daily", (7,)),  # 365 only with two years
        ("B", 100, "business-daily", (5,)),
        ("h", 400, "hourly", (24, 168)),
        ("30min", 700, "half-hourly", (48, 336)),
        ("15min", 1400, "15-minute", (96, 672)),
        ("min", 3000, "minutely", (60, 1440)),
        ("2h", 300, "every 2h", (12, 84)),  # another step dividing a day: a day and a week of steps
    ],
)
def test_every_row_of_the_table(freq, n, frequency, periods) -> None:
    found = infer_seasonalities(pd.date_range("2001-01-01", periods=n, freq=freq))
    assert (found.frequency, found.all, found.main) == (frequency, periods, periods[0])
    assert found.confident and frequency in found.reason


def test_date_strings_and_gaps_still_read_the_calendar() -> None:
    months = pd.date_range("2000-01-01", periods=144, freq="MS")
    assert infer_seasonalities(months.strftime("%Y-%m-%d")).main == 12
    assert infer_seasonalities(months.delete(list(range(3, 140, 10)))).main == 12  # pandas' infer_freq fails here
    hours = pd.date_range("2000-01-01", periods=400, freq="h").delete([5, 50, 51, 200])
    assert infer_seasonalities(hours).all == (24, 168)
    shuffled = np.random.default_rng(0).permutation(months)
    assert infer_seasonalities(shuffled).main == 12


def test_a_too_short_history_keeps_the_next_shorter_period_or_none() -> None:
    half_hours = pd.date_range("2000-01-01", periods=500, freq="30min")  # 500 < 2 * 336
    found = infer_seasonalities(half_hours)
    assert found.all == (48,) and found.confident and "336 left out" in found.reason
    short = infer_seasonalities(pd.date_range("2000-01-01", periods=20, freq="MS"))
    assert (short.main, short.all, short.confident) == (1, (1,), False) and "fewer than two periods" in short.reason
    # the steps reserved for the horizon count against the history
    assert infer_seasonalities(pd.date_range("2000-01-01", periods=30, freq="MS"), reserve=13).main == 1
    assert infer_seasonalities(pd.date_range("2000-01-01", periods=37, freq="MS"), reserve=13).main == 12


def test_many_series_read_the_spacing_within_series() -> None:
    a = pd.date_range("2000-01-01", periods=400, freq="h")
    b = pd.date_range("2000-01-03", periods=100, freq="h")  # overlaps a: the pooled column is not regular
    times = np.concatenate([a.to_numpy(), b.to_numpy()])
    ids = np.repeat(["a", "b"], [len(a), len(b)])
    found = infer_seasonalities(times, ids)
    assert found.all == (24,) and "shortest series holds 100" in found.reason  # 168 needs two weeks in each
    mixed = np.concatenate([a.to_numpy(), pd.date_range("2000-01-01", periods=100, freq="D").to_numpy()])
    assert infer_seasonalities(mixed, ids).frequency == "irregular"


def test_irregular_and_integer_times_give_one_with_a_reason() -> None:
    rng = np.random.default_rng(0)
    irregular = pd.to_datetime(np.sort(rng.choice(10**6, 200, replace=False)) * 10**9)
    found = infer_seasonalities(irregular)
    assert (found.frequency, found.main, found.confident) == ("irregular", 1, False) and "irregular" in found.reason
    steps = infer_seasonalities(np.arange(100))
    assert (steps.frequency, steps.main, steps.confident) == ("integer", 1, False) and "numbers" in steps.reason
    assert isinstance(steps, Seasonality) and steps.to_dict()["all"] == [1]


def _monthly(n: int = 72, key: str | None = None) -> pd.DataFrame:
    t = np.arange(n)
    df = pd.DataFrame(
        {"time": pd.date_range("2000-01-01", periods=n, freq="MS"), "y": 10 + 3 * np.sin(2 * np.pi * t / 12)}
    )
    return df.assign(id=key) if key else df


def test_resolve_fills_a_missing_season_and_keeps_a_given_one(caplog) -> None:
    df = _monthly()
    cfg = ForecastConfig(target="y", horizon=6)
    assert cfg.season is None
    filled, record = resolve_season(cfg, df, prepare_series(df, cfg))
    assert filled.season == 12 and record["source"] == "inferred" and record["frequency"] == "monthly"
    given = cfg.replace(season=12)
    with caplog.at_level(logging.WARNING):
        kept, record = resolve_season(given, df, prepare_series(df, given))
    assert kept.season == 12 and record["source"] == "given" and not caplog.records
    forced = cfg.replace(season=5)
    with caplog.at_level(logging.WARNING):
        kept, record = resolve_season(forced, df, prepare_series(df, forced))
    assert kept.season == 5 and record["periods"] == [12]
    assert "season 5 (given) is not what the timestamps suggest" in caplog.text and "12" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING):  # no warning where the inference is not confident (too short)
        resolve_season(forced, _monthly(20), prepare_series(_monthly(20), forced))
    assert not caplog.records


def test_a_saved_config_with_season_one_still_loads_as_one() -> None:
    saved = {"target": "y", "horizon": 6, "season": 1, "hidden_size": 8, "epochs": 2, "model": "direct"}
    assert ForecastConfig.from_dict(saved).season == 1
    assert ForecastConfig.from_dict({"target": "y", "horizon": 6}).season is None
    with pytest.raises(ValueError, match="at least 1 step"):
        ForecastConfig(target="y", horizon=6, season=0)


def test_a_forecaster_without_a_season_uses_the_inferred_one() -> None:
    from lstmkit.tasks.timeseries.forecasting import Forecaster

    df = pd.concat([_monthly(72, "a"), _monthly(60, "b")])
    train = pd.concat([_monthly(66, "a"), _monthly(54, "b")])
    f = Forecaster(target="y", id="id", horizon=6, epochs=2, hidden_size=8, calibrate_intervals=False).fit(train)
    assert f.config.season == 12 and f.season_["source"] == "inferred"
    assert f.window == 24  # max(2 * season, horizon), under half the shortest history (54 - 6) // 2
    assert f.evaluate(df)["mean"]["mase"] > 0  # scaled by the season in use


def _csv(tmp_path, n: int = 72) -> str:
    path = tmp_path / "sales.csv"
    _monthly(n).rename(columns={"time": "month", "y": "sales"}).to_csv(path, index=False)
    return str(path)


def test_a_csv_trained_without_season_gets_the_inferred_one(tmp_path, capsys) -> None:
    argv = ["forecast", "train", "--csv", _csv(tmp_path), "--time", "month", "--target", "sales", "--horizon", "6",
            "--epochs", "2", "--hidden-size", "8", "--set", "calibrate_intervals=false", "--json"]  # fmt: skip
    assert main([*argv, "--out", str(tmp_path / "r")]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["season"]["season"] == 12 and printed["season"]["source"] == "inferred"
    result = json.loads((tmp_path / "r" / "result.json").read_text())
    assert result["season"]["season"] == 12 and result["season"]["reason"] == "monthly data: period 12"
    saved = json.loads((tmp_path / "r" / "config.json").read_text())["config"]["forecast"]
    assert saved["season"] == 12 and printed["window"] == 24


def test_a_contradicting_season_is_kept_with_a_warning(tmp_path, capsys) -> None:
    argv = ["forecast", "train", "--csv", _csv(tmp_path), "--time", "month", "--target", "sales", "--horizon", "6",
            "--epochs", "2", "--hidden-size", "8", "--set", "calibrate_intervals=false", "--json"]  # fmt: skip
    assert main([*argv, "--season", "7", "--out", str(tmp_path / "r")]) == 0
    captured = capsys.readouterr()
    printed = json.loads(captured.out)  # the warning on stderr, the JSON alone on stdout
    assert printed["season"]["season"] == 7 and printed["season"]["source"] == "given"
    warning = " ".join(captured.err.split())  # rich wraps long lines
    assert "season 7 (given) is not what the timestamps suggest (monthly data: period 12)" in warning
    assert "leave the season out to use 12" in warning
    assert main([*argv, "--season", "12", "--out", str(tmp_path / "r2")]) == 0
    assert "not what the timestamps suggest" not in capsys.readouterr().err


def test_backtest_scores_with_the_inferred_season() -> None:
    from lstmkit.tasks.timeseries.backtest import backtest

    cfg = ForecastConfig.from_dict({"target": "y", "horizon": 6, "epochs": 2, "hidden_size": 8})
    result = backtest(_monthly(72), cfg.replace(calibrate_intervals=False), folds=2)
    assert result["season"]["season"] == 12 and result["season"]["source"] == "inferred"
