"""Forecasting (issue 3, first part): data checks, no leakage, quantiles, covariates, many series, save/load,
metrics and baselines. Small slices, seconds."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

import lstmkit
from lstmkit.tasks.timeseries import baselines as B
from lstmkit.tasks.timeseries import metrics as M
from lstmkit.tasks.timeseries.forecasting import ForecastConfig, Forecaster, pinball_loss, prepare_series


def seasonal_frame(n: int = 120, season: int = 12, key: str | None = None, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    y = 10 + 0.05 * t + 3 * np.sin(2 * np.pi * t / season) + 0.2 * rng.normal(size=n)
    df = pd.DataFrame({"time": pd.date_range("2000-01-01", periods=n, freq="MS"), "y": y})
    if key is not None:
        df.insert(0, "id", key)
    return df


def quick(**kw) -> Forecaster:
    return Forecaster(**{"target": "y", "horizon": 6, "season": 12, "epochs": 30, "hidden_size": 16, **kw})


# ---------------------------------------------------------------- metrics and baselines


def test_metrics_on_hand_computed_values() -> None:
    a, f = np.array([1.0, 2.0, np.nan, 4.0]), np.array([2.0, 2.0, 9.0, 2.0])
    assert M.mae(a, f) == pytest.approx(1.0) and M.rmse(a, f) == pytest.approx(math.sqrt(5 / 3))
    assert M.smape(np.array([1.0, 0.0]), np.array([3.0, 0.0])) == pytest.approx(50.0)  # 200*(2/4)/2, 0/0 counts 0
    insample = np.array([1.0, 2.0, 1.0, 2.0, 1.0, 4.0])  # |y[t]-y[t-2]|: 0, 0, 0, 2 -> scale 0.5
    assert M.mase(np.array([3.0]), np.array([2.0]), insample, 2) == pytest.approx(2.0)
    assert M.coverage(np.array([1.0, 5.0, np.nan]), np.array([0.0, 0.0, 0.0]), np.array([2.0, 2.0, 2.0])) == 0.5
    assert M.pinball(np.array([1.0]), np.array([0.0]), 0.9) == pytest.approx(0.9)
    assert M.pinball(np.array([0.0]), np.array([1.0]), 0.9) == pytest.approx(0.1)


def test_seasonal_naive_repeats_the_last_season_and_fills_its_gaps() -> None:
    hist = np.array([1.0, 2.0, 3.0, 10.0, np.nan, 30.0])
    assert B.seasonal_naive(hist, 5, 3).tolist() == [10.0, 2.0, 30.0, 10.0, 2.0]
    with pytest.raises(ValueError, match="at least one season"):
        B.seasonal_naive(np.ones(2), 3, 12)


def test_statistical_baselines_follow_a_seasonal_trend() -> None:
    df = seasonal_frame(96)
    y = df["y"].to_numpy()
    for name in ("auto_ets", "auto_theta"):
        fc = B.statistical_forecast(name, y[:-12], 12, [12])
        assert M.mae(y[-12:], fc) < 0.6, name  # the noise is 0.2; seasonal-naive misses by the trend, 0.6
    holes = y[:-12].copy()
    holes[[10, 50]] = np.nan  # interpolated for the statistical models
    assert np.isfinite(B.statistical_forecast("auto_ets", holes, 12, [12])).all()


def test_mstl_takes_every_seasonality_and_the_others_one() -> None:
    t = np.arange(24 * 7 * 4)
    y = 10 + np.sin(2 * np.pi * t / 24) + 2 * np.sin(2 * np.pi * t / 168)
    out = B.baseline_forecasts(y[:-24], 24, [24, 168])
    assert set(out) == {"seasonal_naive", "seasonal_naive_168", "auto_ets", "auto_theta", "mstl"}
    assert out["seasonal_naive_168"].tolist() == y[-24 - 168 : -168].tolist()  # the same day a week before
    assert M.mae(y[-24:], out["mstl"]) < M.mae(y[-24:], out["auto_ets"])  # the weekly swing needs the second period
    assert set(B.baseline_forecasts(y[:-24], 24, [24])) == {"seasonal_naive", "auto_ets", "auto_theta"}
    with pytest.raises(ValueError, match="several seasonalities"):
        B.statistical_forecast("mstl", y[:-24], 24, [24])
    with pytest.raises(ValueError, match="Unknown statistical baseline 'ets'"):
        B.statistical_forecast("ets", y, 24, [24])


# ---------------------------------------------------------------- data checks


def test_bad_input_gets_one_clear_sentence(tmp_path) -> None:
    df = seasonal_frame(40)
    cfg = ForecastConfig(target="y", horizon=6)
    with pytest.raises(ValueError, match=r"Unknown column\(s\) \['sales'\]"):
        prepare_series(df, ForecastConfig(target="sales", horizon=6))
    with pytest.raises(ValueError, match="must be numeric"):
        prepare_series(df.assign(y=df["y"].astype(str)), cfg)
    with pytest.raises(ValueError, match="duplicate timestamps"):
        prepare_series(pd.concat([df, df.iloc[:1]]), cfg)
    with pytest.raises(ValueError, match="missing everywhere"):
        prepare_series(df.assign(y=np.nan), cfg)
    with pytest.raises(ValueError, match="does not parse as timestamps"):
        prepare_series(df.assign(time="not a date"), cfg)
    with pytest.raises(ValueError, match="must be shorter than the history"):
        quick(horizon=40).fit(df)
    with pytest.raises(ValueError, match="Too few points for one training window"):
        quick(horizon=6, input_window=36, season=1).fit(df.iloc[:20])
    with pytest.raises(FileNotFoundError, match="No CSV file"):
        prepare_series(tmp_path / "none.csv", cfg)
    with pytest.raises(ValueError, match="include 0.5"):
        ForecastConfig(target="y", horizon=3, quantiles=(0.1, 0.9))


def test_config_has_net_and_train_sections_and_reads_the_old_flat_layout() -> None:
    from lstmkit.tasks.timeseries.forecasting import ForecastNet, ForecastTrain

    cfg = ForecastConfig(target="y", horizon=6)
    assert cfg.net == ForecastNet(
        hidden_size=64, num_layers=1, dropout=0.0, members=None
    )  # None: one, or the selection's
    assert (cfg.transform, cfg.residual_to) == ("auto", "auto")  # chosen on validation by the selection
    assert (cfg.resolved().transform, cfg.resolved().residual_to) == ("none", "seasonal_naive")  # Forecaster.fit alone
    assert (cfg.train.epochs, cfg.train.lr, cfg.train.batch_size, cfg.train.progress) == (300, 3e-3, 32, False)
    assert cfg.train.max_minutes == 10.0 and isinstance(cfg.train, ForecastTrain)
    # a run saved before the sections (flat fields, ``model`` for the strategy) reads into them
    old = ForecastConfig.from_dict({"target": "y", "horizon": 6, "hidden_size": 8, "epochs": 3, "seed": 2,
                                    "early_stopping_patience": 4, "progress": True, "model": "recurrent"})  # fmt: skip
    assert (old.net.hidden_size, old.train.epochs, old.train.seed, old.strategy) == (8, 3, 2, "recurrent")
    assert (old.train.early_stopping_patience, old.train.progress) == (4, True)
    assert ForecastConfig.from_dict(old.to_dict()) == old
    assert old.with_overrides({"train.lr": "1e-2", "net.num_layers": 2}).train.lr == 1e-2
    assert quick().config.net.hidden_size == 16  # Forecaster's keyword arguments may be flat
    with pytest.raises(ValueError, match="hidden_size must be at least 1"):
        ForecastConfig.from_dict({"target": "y", "horizon": 6, "hidden_size": 0})


def test_missing_timestamps_are_inserted_and_masked_not_filled() -> None:
    df = seasonal_frame(40).drop(index=[10, 11])
    (s,) = prepare_series(df, ForecastConfig(target="y", horizon=3))
    assert s.inserted == 2 and len(s.y) == 40 and np.isnan(s.y[10:12]).all()


# ---------------------------------------------------------------- the forecaster


@pytest.mark.slow
def test_forecaster_learns_a_seasonal_series_and_beats_seasonal_naive() -> None:
    df = seasonal_frame(120)
    train, test = df.iloc[:-12], df.iloc[-12:]
    f = Forecaster(target="y", horizon=12, season=12, epochs=150, hidden_size=32, seed=0).fit(train)
    pred = f.predict(train)
    assert pred.columns.tolist() == ["time", "step", "q0.1", "q0.5", "q0.9"]
    assert pred["time"].tolist() == test["time"].tolist()
    assert (pred["q0.1"] <= pred["q0.5"]).all() and (pred["q0.5"] <= pred["q0.9"]).all()
    y, ins = test["y"].to_numpy(), train["y"].to_numpy()
    lstm = M.mase(y, pred["q0.5"].to_numpy(), ins, 12)
    naive = M.mase(y, B.seasonal_naive(ins, 12, 12), ins, 12)
    assert lstm < naive, (lstm, naive)


def test_scaling_is_fitted_on_training_data_only() -> None:
    df = seasonal_frame(60)
    f = quick(early_stopping_patience=3, epochs=3).fit(df)
    mean, std = f.scales["series"]
    train_part = df["y"].to_numpy()[:-6]  # the last horizon validates: it must not leak into the scaling
    assert mean[0] == pytest.approx(train_part.mean()) and std[0] == pytest.approx(train_part.std())


def test_many_series_future_covariates_save_and_load(tmp_path) -> None:
    frames = []
    for k, key in enumerate(["a", "b"]):
        df = seasonal_frame(60, key=key, seed=k)
        df["promo"] = (np.arange(60) % 5 == 0).astype(float)
        df["y"] += 2 * df["promo"] * (k + 1)
        frames.append(df)
    data = pd.concat(frames, ignore_index=True)
    hist = data.groupby("id").head(54)
    ahead = data.groupby("id").tail(6)[["id", "time", "promo"]]
    f = quick(id="id", future_covariates=("promo",)).fit(hist)
    pred = f.predict(hist, future=ahead)
    assert pred["id"].tolist() == ["a"] * 6 + ["b"] * 6
    with pytest.raises(ValueError, match="a table with those columns \\(future=, --future-csv FILE\\)"):
        f.predict(hist)
    f.save(tmp_path / "run")
    again = lstmkit.load(tmp_path / "run")
    pd.testing.assert_frame_equal(again.predict(hist, future=ahead), pred)


def test_pinball_loss_masks_missing_targets() -> None:
    q = torch.tensor([0.1, 0.5, 0.9])
    pred = torch.zeros(1, 2, 3)
    target = torch.tensor([[1.0, float("nan")]])
    assert float(pinball_loss(pred, target, q)) == pytest.approx((0.1 + 0.5 + 0.9) / 3)


@pytest.mark.parametrize("crash_epoch", [3, 7])  # during the calibration fit (4 epochs), during the final fit
def test_fit_resumes_exactly(tmp_path, monkeypatch, crash_epoch) -> None:
    from lstmkit.tasks.timeseries import forecasting

    df = seasonal_frame(60)
    clean = quick(epochs=4).fit(df, run_dir=tmp_path / "clean")
    real, seen = forecasting._Windows.__iter__, {"n": 0}

    def crashing(self):
        seen["n"] += 1
        for i, b in enumerate(real(self)):
            if seen["n"] == crash_epoch and i == 0:  # one batch an epoch here
                raise KeyboardInterrupt
            yield b

    with monkeypatch.context() as m:
        m.setattr(forecasting._Windows, "__iter__", crashing)
        with pytest.raises(KeyboardInterrupt):
            quick(epochs=4).fit(df, run_dir=tmp_path / "cut")
    resumed = quick(epochs=4).fit(df, run_dir=tmp_path / "cut", resume=True)
    a, b = clean.model.state_dict(), resumed.model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a) and resumed.interval_shift == clean.interval_shift


@pytest.mark.slow
def test_conformal_calibration_widens_an_over_confident_interval() -> None:
    df = seasonal_frame(120)
    raw = quick(horizon=12, epochs=60, calibrate_intervals=False).fit(df)
    calibrated = quick(horizon=12, epochs=60).fit(df)
    assert raw.interval_shift == 0.0 and calibrated.interval_shift != 0.0
    p_raw, p_cal = raw.predict(df), calibrated.predict(df)
    width = lambda p: float((p["q0.9"] - p["q0.1"]).mean())  # noqa: E731
    # same final fit (same seed and data), only the shift differs: the band moves by exactly the shift
    assert p_raw["q0.5"].tolist() == pytest.approx(p_cal["q0.5"].tolist())
    assert (width(p_cal) > width(p_raw)) == (calibrated.interval_shift > 0)


def test_backtest_rolls_origins_and_scores_baselines_on_the_same_splits() -> None:
    from lstmkit.tasks.timeseries.backtest import backtest

    df = seasonal_frame(96)
    cfg = ForecastConfig.from_dict({"target": "y", "horizon": 6, "season": 12, "epochs": 20, "hidden_size": 16})
    result = backtest(df, cfg, folds=3)
    assert [f["origin"][:10] for f in result["folds"]] == ["2006-07-01", "2007-01-01", "2007-07-01"]
    assert set(result["mean"]) == {"model", "seasonal_naive", "auto_ets", "auto_theta"}
    assert result["mean"]["auto_ets"]["mase"] < result["mean"]["seasonal_naive"]["mase"] * 1.5
    with pytest.raises(ValueError, match="leave"):
        backtest(df, cfg, folds=20)


def test_recurrent_model_feeds_its_median_back_and_round_trips(tmp_path) -> None:
    df = seasonal_frame(120)
    train, test = df.iloc[:-12], df.iloc[-12:]
    f = Forecaster(target="y", horizon=12, season=12, epochs=120, hidden_size=32, strategy="recurrent").fit(train)
    pred = f.predict(train)
    y, ins = test["y"].to_numpy(), train["y"].to_numpy()
    assert M.mase(y, pred["q0.5"].to_numpy(), ins, 12) < M.mase(y, B.seasonal_naive(ins, 12, 12), ins, 12)
    f.save(tmp_path / "rec")
    pd.testing.assert_frame_equal(lstmkit.load(tmp_path / "rec").predict(train), pred)
    with pytest.raises(ValueError, match="past covariates"):
        ForecastConfig(target="y", horizon=3, strategy="recurrent", past_covariates=("x",))


def test_recurrent_training_uses_teacher_forcing_and_prediction_does_not() -> None:
    from lstmkit.tasks.timeseries.forecasting import RecurrentForecastNet

    torch.manual_seed(0)
    net = RecurrentForecastNet(2, horizon=4, n_quantiles=3, median=1, hidden_size=8)
    x, fut = torch.randn(3, 6, 2), torch.zeros(3, 4, 0)
    target = torch.randn(3, 4)
    forced = net(x, fut, target)
    free = net(x, fut)
    assert forced.shape == free.shape == (3, 4, 3)
    torch.testing.assert_close(forced[:, 0], free[:, 0])  # the first step sees only the history either way
    assert not torch.allclose(forced[:, 1:], free[:, 1:])  # later steps see the truth vs the fed-back median


# ---------------------------------------------------------------- static covariates


def drifting_series(n_per_kind: int = 4, length: int = 40, seed: int = 0) -> pd.DataFrame:
    """Random walks that drift up or down by a step fixed by their category, plus a numeric static (the size)."""
    rng = np.random.default_rng(seed)
    frames = []
    for k in range(2 * n_per_kind):
        kind = "up" if k % 2 == 0 else "down"
        steps = (1.0 if kind == "up" else -1.0) + 0.05 * rng.normal(size=length)
        frames.append(pd.DataFrame({
            "id": f"s{k}", "time": pd.date_range("2000-01-01", periods=length, freq="D"),
            "y": 100 + np.cumsum(steps), "kind": kind, "size": float(k),
        }))  # fmt: skip
    return pd.concat(frames, ignore_index=True)


def test_static_covariates_tell_series_apart_that_the_window_cannot() -> None:
    # With a one-step window taken relative to its level, the input says nothing about the drift; only the static
    # category does. The median forecast error falls from about the drift (1 per step) to near the noise.
    data = drifting_series()
    hist, actual = data.groupby("id").head(37), data.groupby("id").tail(3)
    common = {"id": "id", "horizon": 3, "input_window": 1, "residual_to": "none", "epochs": 60, "lr": 1e-2,
              "calibrate_intervals": False}  # fmt: skip
    errors = {}
    for name, statics in (("without", ()), ("with", ("kind", "size"))):
        f = quick(**common, static_covariates=statics).fit(hist)
        pred = f.predict(hist)
        errors[name] = float(np.abs(pred["q0.5"].to_numpy() - actual["y"].to_numpy()).mean())
    assert errors["without"] > 1.0 and errors["with"] < 0.4, errors
    assert (
        f.static_encoding
        == {"kind": ["categorical", "down", "up"], "size": ["numeric", 3.5, f.static_encoding["size"][2]]}
        and f._n_future == 3
    )


def test_static_covariates_round_trip_and_bad_values_get_one_sentence(tmp_path) -> None:
    data = drifting_series(2, 30)
    f = quick(id="id", horizon=2, input_window=4, static_covariates=("kind",), epochs=2).fit(data)
    f.save(tmp_path / "run")
    pd.testing.assert_frame_equal(lstmkit.load(tmp_path / "run").predict(data), f.predict(data))
    recurrent = quick(id="id", horizon=2, input_window=4, static_covariates=("kind",), epochs=2, strategy="recurrent")
    assert recurrent.fit(data).predict(data)["q0.5"].notna().all()
    changing = data.copy()
    changing.loc[changing.index[3], "kind"] = "down"  # s0 is "up" elsewhere
    with pytest.raises(
        ValueError, match=r"Static covariate 'kind' takes 2 values \(up, down\) in series 's0'; a static"
    ):
        f.predict(changing)
    unseen = data.assign(kind=data["kind"].replace("up", "sideways"))
    with pytest.raises(ValueError, match="'sideways', a category not seen in training"):
        f.predict(unseen)
    with pytest.raises(ValueError, match="name the column that tells the series apart with id="):
        ForecastConfig(target="y", horizon=2, static_covariates=("kind",))
    with pytest.raises(ValueError, match=r"\['kind'\] is given twice"):
        ForecastConfig(target="y", horizon=2, id="id", static_covariates=("kind",), future_covariates=("kind",))


def test_evaluate_scores_the_last_horizon_forecast_from_the_history_before_it() -> None:
    data = seasonal_frame(80)
    f = quick(epochs=5).fit(data.iloc[:70])
    result = f.evaluate(data.iloc[:76])  # the last 6 of 76 held out, forecast from the 70 before them
    pred = f.predict(data.iloc[:70])
    actual = data["y"].to_numpy()[70:76]
    assert result["mean"]["mae"] == pytest.approx(np.abs(pred["q0.5"].to_numpy() - actual).mean())
    assert result["mean"]["mase"] == pytest.approx(
        M.mase(actual, pred["q0.5"].to_numpy(), data["y"].to_numpy()[:70], 12)
    )
    with pytest.raises(ValueError, match="evaluate needs the model's window"):
        f.evaluate(data.iloc[:20])
    assert f.evaluate(data.iloc[46:76])["mean"]["mae"] == result["mean"]["mae"]  # exactly window + horizon points
    with pytest.raises(ValueError, match="inside the data the model was trained on .* would not be out of sample"):
        f.evaluate(data.iloc[:70])  # its last horizon was training data


# ---------------------------------------------------------------- issue 18: the checks name the cell, the row, the time


def test_inf_duplicate_times_and_empty_tables_name_the_row(tmp_path) -> None:
    df = seasonal_frame(40)
    cfg = ForecastConfig(target="y", horizon=6)
    with pytest.raises(ValueError, match=r"holds an infinite value \(inf\) at row 4 \(time 2000-05-01 00:00:00\)"):
        prepare_series(df.assign(y=np.where(df.index == 4, np.inf, df["y"])), cfg)
    path = tmp_path / "dup.csv"
    pd.concat([df.iloc[:3], df.iloc[2:3], df.iloc[3:]]).to_csv(path, index=False)
    with pytest.raises(ValueError, match="The table has duplicate timestamps: 2000-03-01 at rows 4 and 5 of dup.csv"):
        prepare_series(path, cfg)
    with pytest.raises(ValueError, match="The table has no data rows"):
        prepare_series(df.iloc[:0], cfg)
    with pytest.raises(ValueError, match="'y' must be numeric, but row 3 holds 'x'"):
        prepare_series(df.assign(y=df["y"].astype(object).where(df.index != 3, "x")), cfg)


def test_a_season_needs_two_of_itself_before_the_horizon() -> None:
    df = seasonal_frame(40)  # 34 points before a horizon of 6: two seasons of at most 16 (and one more point)
    with pytest.raises(ValueError, match="the shortest series has 40 points, 34 before a horizon of 6, which hold two "
                                         "seasons of at most 16 steps"):  # fmt: skip
        quick(season=17, epochs=1).fit(df)
    assert quick(season=16, epochs=1).fit(df).window == 17  # min(2 * 16, (40 - 6) // 2)


@pytest.mark.parametrize("setting", [{"tbptt_steps": 2}, {"carry_state_across_batches": True}, {"monitor": "loss"}])
def test_training_settings_a_window_model_cannot_use_are_refused(setting):
    from lstmkit.config import ConfigError
    from lstmkit.tasks.timeseries.anomaly.config import AnomalyTrain
    from lstmkit.tasks.timeseries.forecast_config import ForecastTrain

    for section, who in ((ForecastTrain, "A forecaster"), (AnomalyTrain, "An anomaly detector")):
        with pytest.raises(ConfigError, match=f"{who} cannot use train.{next(iter(setting))}="):
            section(**setting)
