"""Forecasting's selection on the user's own data (issue 20): the residual to the window's seasonal mean, seed
ensembles, and select_forecaster's rolling-origin choice, its table, its budget and what it leaves as given."""

from __future__ import annotations

import json
import math
import time

import numpy as np
import pandas as pd
import pytest
import torch

from lstmkit.tasks.timeseries.forecast_config import ForecastConfig
from lstmkit.tasks.timeseries.forecast_nets import DirectForecastNet, ForecastEnsemble
from lstmkit.tasks.timeseries.forecast_select import portfolio, select_forecaster, validation_folds
from lstmkit.tasks.timeseries.forecasting import Forecaster, prepare_series


def monthly(n: int = 84, seed: int = 0, level: float = 10.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    y = level + 0.05 * t + 3 * np.sin(2 * np.pi * t / 12) + 0.2 * rng.normal(size=n)
    return pd.DataFrame({"time": pd.date_range("2000-01-01", periods=n, freq="MS"), "y": y})


def config(**kw) -> ForecastConfig:
    base = {"target": "y", "horizon": 6, "epochs": 8, "hidden_size": 8, "calibrate_intervals": False}
    return ForecastConfig.from_dict({**base, **kw})


# ---------------------------------------------------------------- the seasonal-mean residual


def test_seasonal_mean_pattern_is_each_season_minus_its_mean_averaged() -> None:
    net = DirectForecastNet(2, 0, horizon=5, n_quantiles=1, hidden_size=4, season=3, seasonal_mean=True)
    y = torch.tensor([[9.0, 1.0, 2.0, 3.0, 4.0, 5.0, 9.0]])  # W = 7: the last two seasons (1,2,3) and (4,5,9)
    expected = ((torch.tensor([1.0, 2.0, 3.0]) - 2.0) + (torch.tensor([4.0, 5.0, 9.0]) - 6.0)) / 2
    assert torch.allclose(net.seasonal_pattern(y)[0], expected)
    last = DirectForecastNet(2, 0, horizon=5, n_quantiles=1, hidden_size=4, season=3)
    assert last.seasonal_pattern(y)[0].tolist() == [4.0, 5.0, 9.0]  # seasonal-naive: the last season as it is
    # the pattern rides on the head's output, repeated over the horizon: the two nets differ by exactly that
    last.load_state_dict(net.state_dict())
    x = torch.stack([y, torch.ones_like(y)], dim=-1)  # (1, 7, 2): values and the observed flag
    diff = (last(x, torch.zeros(1, 5, 0)) - net(x, torch.zeros(1, 5, 0)))[0, :, 0]
    assert torch.allclose(diff, torch.tensor([4.0, 5.0, 9.0, 4.0, 5.0]) - expected.repeat(2)[:5], atol=1e-6)


def test_seasonal_mean_forecaster_learns_a_seasonal_series() -> None:
    df = monthly(96)
    f = Forecaster(config(season=12, residual_to="seasonal_mean", epochs=60)).fit(df.iloc[:-6])
    assert f.model.seasonal_mean and f.config.residual_to == "seasonal_mean"
    assert f.evaluate(df)["mean"]["mase"] < 1.0  # better than seasonal-naive was in-sample


# ---------------------------------------------------------------- seed ensembles


def test_an_ensemble_averages_members_trained_from_their_own_starts(tmp_path) -> None:
    df = monthly()
    f = Forecaster(config(season=12, members=3)).fit(df)
    assert isinstance(f.model, ForecastEnsemble) and len(f.model.members) == 3
    first = [m.head[0].weight for m in f.model.members]
    assert not torch.allclose(first[0], first[1]) and not torch.allclose(first[1], first[2])
    x, fut, _ = f._window_tensors(prepare_series(df, f.config), [len(df)], last_only=True)
    with torch.no_grad():
        each = f.model.member_outputs(x, fut)  # (3, 1, H, Q)
        assert torch.allclose(f.model(x, fut), each.mean(dim=0))
        assert (each[0] - each[1]).abs().max() > 1e-4  # members disagree: they are not one network three times
    with pytest.raises(ValueError, match="direct Forecaster .* has no step to stream"):
        f.onnx_graphs(streaming=True)  # as for one direct network: the ensemble is not what stops it
    f.save(tmp_path / "run")
    g = Forecaster.load(tmp_path / "run")
    assert isinstance(g.model, ForecastEnsemble)
    pd.testing.assert_frame_equal(f.predict(df), g.predict(df))


def test_members_must_be_positive() -> None:
    with pytest.raises(ValueError, match="members must be at least 1"):
        config(members=0)


# ---------------------------------------------------------------- select_forecaster


def test_portfolio_searches_only_the_auto_fields() -> None:
    series = prepare_series(monthly(), config())
    cands, other = portfolio(config(season=12), series)
    assert [c.overrides["residual_to"] for c in cands] == ["seasonal_naive", "seasonal_mean", "none"]
    assert {c.overrides["transform"] for c in cands} == {"log"} and other == "none"  # positive: log first
    cands, other = portfolio(config(season=12, transform="none"), series)
    assert {c.overrides["transform"] for c in cands} == {"none"} and other is None
    cands, _ = portfolio(config(season=12, residual_to="none"), series)
    assert [c.overrides["residual_to"] for c in cands] == ["none"]
    negative = prepare_series(monthly(level=-20.0), config())
    cands, other = portfolio(config(season=12), negative)
    assert {c.overrides["transform"] for c in cands} == {"none"} and other is None  # no log of values <= 0
    cands, _ = portfolio(config(season=1), series)
    assert [c.overrides["residual_to"] for c in cands] == ["seasonal_naive", "none"]  # no season, no seasonal mean


def test_validation_folds_fit_the_history() -> None:
    cfg = config(season=12)
    assert validation_folds(cfg, 84) == 3
    assert validation_folds(cfg, 40) == 2  # 40 - 2 * 6 = 28 > 24 points before the first origin
    assert validation_folds(cfg, 30) == 0  # not even one origin leaves two seasons


def test_selection_chooses_the_best_validated_candidate_and_fits_it() -> None:
    df = monthly()
    f, sel = select_forecaster(df, config())
    record = sel.record()
    assert record["skipped"] is None and len(record["origins"]) == 3
    lstm = [r for r in record["table"] if r["kind"] == "lstm"]
    (combination,) = [r for r in record["table"] if r["kind"] == "combination"]
    base = [r for r in record["table"] if r["kind"] == "baseline"]
    assert len(lstm) == 4 and {r["name"] for r in base} == {"seasonal_naive", "auto_ets", "auto_theta"}
    best_lstm = min(lstm, key=lambda r: math.inf if r["mase"] is None else r["mase"])
    assert combination["name"].startswith(best_lstm["name"]) and combination["config"]["combine"] == "statistical"
    best = min([*lstm, combination], key=lambda r: math.inf if r["mase"] is None else r["mase"])
    assert record["chosen"] == best["name"]
    assert f.config.residual_to == best["config"]["residual_to"] and f.config.transform == best["config"]["transform"]
    assert f.config.combine == best["config"].get("combine", "none")
    assert f.config.season == 12 and f.config.train.max_minutes == 10.0  # the user's budget is what is saved
    # a quick fit in a 10-minute budget leaves room for the whole seed ensemble
    assert record["members"] == 3 and f.config.net.members == 3 and len(f.model.members) == 3
    assert record["verdict"]
    json.dumps(record, allow_nan=False)  # the table is plain JSON (no NaN or Infinity)


def test_selection_reruns_alike_with_the_same_seed() -> None:
    df = monthly(60)
    runs = [select_forecaster(df, config(epochs=4))[1].record() for _ in range(2)]
    strip = lambda r: [{k: v for k, v in row.items() if k != "seconds"} for row in r["table"]]  # noqa: E731
    assert strip(runs[0]) == strip(runs[1])


def test_a_baseline_that_beats_every_lstm_is_said_plainly(caplog) -> None:
    df = monthly()
    f, sel = select_forecaster(df, config(epochs=1, lr=1e-5))  # an untrained LSTM cannot beat ETS on a clean sine
    assert sel.verdict.startswith("On validation, the baseline")
    assert "beat every LSTM candidate" in caplog.text


def test_selection_is_skipped_with_too_little_history_and_when_nothing_is_auto() -> None:
    f, sel = select_forecaster(monthly(18), config())  # season 1 (too short for 12), yet no room for 2 horizons
    assert sel.record()["table"] == [] and "too little history" in sel.skipped
    assert (f.config.transform, f.config.residual_to) == ("none", "seasonal_naive")  # Forecaster.fit's reading
    f, sel = select_forecaster(monthly(), config(transform="log", residual_to="none", combine="none"))
    assert sel.skipped.startswith("nothing to choose") and f.config.transform == "log"


def test_the_whole_selection_keeps_to_the_budget() -> None:
    df = monthly(120)
    start = time.monotonic()
    f, sel = select_forecaster(df, config(epochs=100_000, max_minutes=0.25))
    assert time.monotonic() - start < 0.25 * 60 * 2.5  # each fit gets its share; the rest is baselines and overhead
    assert sel.members == 1 and not isinstance(f.model, ForecastEnsemble)  # no time left for more than one network


def test_a_combined_forecaster_averages_its_median_with_the_statistical_forecasts(tmp_path) -> None:
    from lstmkit.tasks.timeseries.baselines import statistical_forecast

    df = monthly()
    alone = Forecaster(config(season=12)).fit(df)
    both = Forecaster(config(season=12, combine="statistical")).fit(df)
    p_alone, p_both = alone.predict(df), both.predict(df)
    y = df["y"].to_numpy()
    stats = [statistical_forecast(n, y, 6, [12]) for n in ("auto_ets", "auto_theta")]
    expected = np.mean([p_alone["q0.5"].to_numpy(), *stats], axis=0)
    assert np.allclose(p_both["q0.5"].to_numpy(), expected)
    shift = p_both["q0.5"] - p_alone["q0.5"]
    assert np.allclose(p_both["q0.1"] - p_alone["q0.1"], shift) and np.allclose(p_both["q0.9"] - p_alone["q0.9"], shift)
    both.save(tmp_path / "run")
    pd.testing.assert_frame_equal(Forecaster.load(tmp_path / "run").predict(df), p_both)
    with pytest.raises(ValueError, match="whole history: use predict"):
        both.forecast_window(y[-24:])
    with pytest.raises(ValueError, match="whole history"):
        both.onnx_graphs()
    assert config().resolved().combine == "none"  # Forecaster.fit alone: the network alone


def test_a_longer_period_gets_its_own_seasonal_naive_residual_and_the_window_holds_it() -> None:
    t = np.arange(24 * 7 * 5)
    y = 10 + np.sin(2 * np.pi * t / 24) + 2 * (t % 168 >= 120)  # a daily swing, and weekends two higher
    df = pd.DataFrame({"time": pd.date_range("2020-01-06", periods=t.size, freq="h"), "y": y})
    series = prepare_series(df, config())
    cands, _ = portfolio(config(season=24), series, longer=(168,))
    weekly = [c for c in cands if c.overrides.get("residual_period") == 168]
    assert len(weekly) == 1 and weekly[0].overrides["residual_to"] == "seasonal_naive"
    assert not [c for c in portfolio(config(season=24, residual_to="none"), series, (168,))[0]
                if "residual_period" in c.overrides]  # fmt: skip
    f = Forecaster(config(season=24, horizon=24, residual_to="seasonal_naive", residual_period=168, epochs=2)).fit(df)
    assert f.window >= 168 and f.model.season == 168
    with pytest.raises(ValueError, match="residual_period must be at least 1"):
        config(residual_period=0)


def test_the_combination_takes_mstl_where_two_seasonalities_fit() -> None:
    from lstmkit.tasks.timeseries.baselines import combination_members

    assert combination_members(1000, [24, 168]) == ("mstl", "auto_theta")
    assert combination_members(300, [24, 168]) == ("auto_ets", "auto_theta")  # under two weeks: one season
    assert combination_members(100, [12]) == ("auto_ets", "auto_theta")


def test_a_resumed_run_reuses_the_choice_its_run_directory_recorded(tmp_path) -> None:
    df = monthly(60)
    f, sel = select_forecaster(df, config(epochs=2), run_dir=tmp_path / "run")
    saved = json.loads((tmp_path / "run" / "selection.json").read_text())
    assert saved["selection"]["chosen"] == sel.chosen and saved["final"]["residual_to"] == f.config.residual_to
    # a choice no validation would make here, written where an interrupted run left its own: resume takes it as is
    other = tmp_path / "other"
    other.mkdir()
    saved["final"].update(residual_to="none", transform="none", combine="none")
    saved["final"]["net"]["members"] = 1
    saved["selection"]["chosen"] = "what the interrupted run chose"
    (other / "selection.json").write_text(json.dumps(saved))
    g, again = select_forecaster(df, config(epochs=2), run_dir=other, resume=True)
    assert again.chosen == "what the interrupted run chose"
    assert (g.config.residual_to, g.config.transform, g.config.combine) == ("none", "none", "none")


def test_series_of_different_lengths_share_one_table_and_the_predicted_combination() -> None:
    t = np.arange(800)
    y = 10 + np.sin(2 * np.pi * t / 24) + (t % 168 >= 120)
    times = pd.date_range("2020-01-06", periods=800, freq="h")
    df = pd.concat([
        pd.DataFrame({"id": "long", "time": times, "y": y}),
        pd.DataFrame({"id": "short", "time": times[-400:], "y": y[-400:] + 1}),
    ])  # fmt: skip
    f, sel = select_forecaster(df, config(id="id", horizon=24, epochs=1, max_minutes=0.3))
    names = {r["name"] for r in sel.rows if r["kind"] == "baseline"}
    assert {"mstl", "seasonal_naive_168"} <= names  # the short series scores None for them, not a KeyError
    (combination,) = [r for r in sel.rows if r["kind"] == "combination"]
    assert "MSTL" in combination["name"] and "AutoETS" in combination["name"]  # each series its own members
    assert set(f.predict(df)["id"]) == {"long", "short"}


def test_a_given_combination_is_kept_and_a_resume_with_other_settings_is_refused(tmp_path) -> None:
    df = monthly(60)
    f, _ = select_forecaster(df, config(epochs=2, combine="statistical"), run_dir=tmp_path / "run")
    assert f.config.combine == "statistical"  # given, not searched: the selection leaves it
    with pytest.raises(ValueError, match=r"other settings: horizon \(now 4, then 6\)"):
        select_forecaster(df, config(epochs=2, horizon=4), run_dir=tmp_path / "run", resume=True)


def test_the_recurrent_strategy_searches_no_residual() -> None:
    series = prepare_series(monthly(), config())
    cands, _ = portfolio(config(season=12, strategy="recurrent"), series, longer=(24,))
    assert [c.overrides["residual_to"] for c in cands] == ["none"]
