"""``lstmkit forecast train | predict | backtest`` in-process: JSON last on stdout, clear errors, run directories."""

import json

import pandas as pd
import pytest

from lstmkit.cli import main


def test_train_predict_and_backtest_on_a_bundled_dataset(tmp_path, capsys):
    out = tmp_path / "air"
    args = ["--data", "airline", "--horizon", "12", "--transform", "log", "--epochs", "20", "--json"]
    assert main(["forecast", "train", *args, "--out", str(out)]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["horizon"] == 12 and summary["target"] == "passengers"
    for name in ("config.json", "model.safetensors", "metrics.csv", "forecast.csv", "forecast.png", "report.html"):
        assert (out / name).exists(), name
    forecast = pd.read_csv(out / "forecast.csv")
    assert len(forecast) == 12 and forecast["time"].iloc[0].startswith("1961-01-01")

    assert main(["forecast", "predict", str(out), "--data", "airline", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["q0.5"] for r in rows] == pytest.approx(forecast["q0.5"].tolist(), rel=1e-12)  # CSV parse rounding

    assert main(["forecast", "evaluate", str(out), "--data", "airline"]) == 2  # trained on all of it
    assert "would not be out of sample" in capsys.readouterr().err
    early = tmp_path / "air-to-1959.csv"
    from lstmkit.datasets import load_dataset

    load_dataset("airline").iloc[:-12].to_csv(early, index=False)
    args_csv = ["--csv", str(early), "--target", "passengers", "--horizon", "12", "--epochs", "5", "--json"]
    assert main(["forecast", "train", *args_csv, "--out", str(tmp_path / "early")]) == 0
    capsys.readouterr()
    assert main(["forecast", "evaluate", str(tmp_path / "early"), "--data", "airline", "--json"]) == 0
    scored = json.loads(capsys.readouterr().out)  # 1960, forecast from the data up to 1959 the model was trained on
    assert set(scored["mean"]) == {"mae", "rmse", "mase", "smape", "coverage"} and scored["mean"]["mase"] > 0

    assert main(["forecast", "backtest", "--data", "airline", "--horizon", "12", "--epochs", "20", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert set(result["mean"]) == {"model", "seasonal_naive", "ets"} and len(result["folds"]) == 1


def test_forecast_on_a_csv_and_errors_are_one_sentence(tmp_path, capsys):
    csv = tmp_path / "sales.csv"
    t = pd.date_range("2020-01-01", periods=60, freq="D")
    pd.DataFrame({"day": t, "sales": range(60), "label": ["x"] * 60}).to_csv(csv, index=False)
    base = ["forecast", "train", "--csv", str(csv), "--time", "day", "--horizon", "7", "--epochs", "2"]
    assert main([*base, "--target", "sales", "--out", str(tmp_path / "r")]) == 0
    capsys.readouterr()
    assert main([*base, "--target", "revenue", "--out", str(tmp_path / "r2")]) == 2
    assert "Unknown column(s) ['revenue']" in capsys.readouterr().err
    assert main([*base, "--target", "label", "--out", str(tmp_path / "r3")]) == 2
    assert "must be numeric" in capsys.readouterr().err
    assert main([*base, "--out", str(tmp_path / "r4")]) == 2
    assert "--target" in capsys.readouterr().err
    assert main(["forecast", "train", "--data", "airline", "--csv", str(csv), "--horizon", "3", "--out", "x"]) == 2
    assert "not both" in capsys.readouterr().err
    assert main([*base, "--target", "sales", "--out", str(tmp_path / "r")]) == 2
    assert "already holds a finished forecaster" in capsys.readouterr().err
    assert main(["forecast", "train", "--data", "nope", "--horizon", "3", "--out", "x"]) == 2
    assert "Unknown dataset 'nope'" in capsys.readouterr().err


def test_many_series_with_static_covariates_from_a_csv_and_a_dataset(tmp_path, capsys):
    csv = tmp_path / "stores.csv"
    t = pd.date_range("2020-01-01", periods=30, freq="D")
    frames = [pd.DataFrame({"store": s, "day": t, "sales": [float(i + k) for i in range(30)], "region": r})
              for k, (s, r) in enumerate([("a", "north"), ("b", "south"), ("c", "north")])]  # fmt: skip
    pd.concat(frames).to_csv(csv, index=False)
    base = ["forecast", "train", "--csv", str(csv), "--time", "day", "--target", "sales", "--id", "store",
            "--horizon", "3", "--epochs", "2", "--json"]  # fmt: skip
    assert main([*base, "--static", "region", "--out", str(tmp_path / "r")]) == 0
    saved = json.loads((tmp_path / "r" / "config.json").read_text())["config"]
    assert saved["static_encoding"] == {"region": ["categorical", "north", "south"]}
    assert len(pd.read_csv(tmp_path / "r" / "forecast.csv")) == 9
    capsys.readouterr()
    assert main([*base, "--static", "day", "--out", str(tmp_path / "r2")]) == 2  # not one value per series
    assert "A column can play one role only" in capsys.readouterr().err
    assert main([*base, "--static", "sales", "--out", str(tmp_path / "r3")]) == 2
    assert "A column can play one role only" in capsys.readouterr().err
    assert main(["forecast", "train", "--data", "gunpoint", "--horizon", "3", "--out", str(tmp_path / "g")]) == 2
    assert "'gunpoint' is a classification dataset, not a forecasting one" in capsys.readouterr().err
