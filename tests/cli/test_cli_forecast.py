"""``lstmkit forecast train | predict | backtest`` in-process: JSON last on stdout, clear errors, run directories."""

import json
import math

import pandas as pd
import pytest

from lstmkit.cli import main


def test_train_predict_and_backtest_on_a_bundled_dataset(tmp_path, capsys):
    out = tmp_path / "air"
    args = ["--data", "airline", "--horizon", "12", "--transform", "log", "--epochs", "20", "--json"]
    assert main(["forecast", "train", *args, "--out", str(out)]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert list(summary)[:4] == ["task", "run_dir", "metrics", "baselines"] and summary["task"] == "forecaster"
    assert summary["forecast"] == str(out / "forecast.csv") and summary["metrics"]["epochs"] == 20
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
    assert set(scored["mean"]) == {"mae", "rmse", "mase", "smape", "coverage"}
    # 5 epochs: 2.76. Forecasting the series' mean scores about 8, zeros about 20: a broken model is far above 5
    assert math.isfinite(scored["mean"]["mase"]) and scored["mean"]["mase"] < 5
    assert scored["mean"]["rmse"] >= scored["mean"]["mae"] > 0

    assert main(["forecast", "backtest", "--data", "airline", "--horizon", "12", "--epochs", "20", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert set(result["mean"]) == {"model", "seasonal_naive", "auto_ets", "auto_theta"} and len(result["folds"]) == 1


def test_shared_options_set_and_config_reach_the_sections(tmp_path, capsys):
    csv = tmp_path / "sales.csv"
    t = pd.date_range("2020-01-01", periods=40, freq="D")
    pd.DataFrame({"day": t, "sales": [float(i % 7) for i in range(40)]}).to_csv(csv, index=False)
    settings = tmp_path / "settings.json"
    settings.write_text(json.dumps({"net": {"num_layers": 2}, "train": {"lr": 0.01}, "calibrate_intervals": False}))
    argv = ["forecast", "train", "--csv", str(csv), "--time", "day", "--horizon", "3", "--epochs", "1",
            "--hidden-size", "8", "--config", str(settings), "--set", "train.batch_size=16", "--set",
            "strategy=recurrent", "--target", "sales", "--out", str(tmp_path / "r"), "--json"]  # fmt: skip
    assert main(argv) == 0
    assert set(json.loads(capsys.readouterr().out)) >= {"task", "run_dir", "metrics", "baselines", "forecast"}
    cfg = json.loads((tmp_path / "r" / "config.json").read_text())["config"]["forecast"]
    assert (cfg["net"]["hidden_size"], cfg["net"]["num_layers"], cfg["strategy"]) == (8, 2, "recurrent")
    assert (cfg["train"]["lr"], cfg["train"]["batch_size"], cfg["train"]["epochs"]) == (0.01, 16, 1)
    assert cfg["calibrate_intervals"] is False
    assert main([*argv[:-3], "--set", "train.lr=fast", "--out", str(tmp_path / "r2")]) == 2
    assert "lr" in capsys.readouterr().err and not (tmp_path / "r2").exists()
    again = [
        "forecast",
        "train",
        "--csv",
        str(csv),
        "--time",
        "day",
        "--target",
        "sales",
        "--horizon",
        "3",
        "--config",
        str(tmp_path / "r" / "config.json"),
        "--set",
        "transform=none",
        "--out",
        str(tmp_path / "r3"),
    ]
    assert main(again) == 0, capsys.readouterr().err  # a finished run's config.json repeats that run's settings
    repeated = json.loads((tmp_path / "r3" / "config.json").read_text())["config"]["forecast"]
    assert (repeated["net"], repeated["train"]["lr"], repeated["transform"]) == (cfg["net"], 0.01, "none")


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


# ---- issue 18: nothing lost, nothing raw: each refusal is exit code 2 and one short sentence, nothing written


def _refused(capsys, argv) -> str:
    """The one sentence of a refused command: exit code 2, no traceback, no result on stdout, under 300 characters."""
    assert main(argv) == 2
    captured = capsys.readouterr()
    message = " ".join(captured.err.split())  # rich wraps long lines on a narrow console
    assert "Traceback" not in message and captured.out == "" and len(message) < 300, message
    return message


def _series_csv(path, n=60, **cells):
    """A daily series (day, sales) with the given cells changed: {"sales": {row index: value}}."""
    table = pd.DataFrame({"day": pd.date_range("2020-01-01", periods=n, freq="D").strftime("%Y-%m-%d"),
                          "sales": [float(i % 7) for i in range(n)]})  # fmt: skip
    for column, changes in cells.items():
        table[column] = table[column].astype(object)
        for row, value in changes.items():
            table.loc[row, column] = value
    table.to_csv(path, index=False)
    return path


def test_inf_in_the_history_window_is_refused_naming_its_row(tmp_path, capsys):
    run = tmp_path / "run"
    good = _series_csv(tmp_path / "good.csv")
    args = ["--csv", str(good), "--time", "day", "--target", "sales", "--horizon", "3", "--epochs", "1"]
    assert main(["forecast", "train", *args, "--out", str(run), "--json"]) == 0
    capsys.readouterr()
    history = _series_csv(tmp_path / "history.csv", sales={58: "inf"})  # the window's last steps
    before = history.read_bytes()
    message = _refused(capsys, ["forecast", "predict", str(run), "--csv", str(history)])
    assert "Column 'sales' holds an infinite value (inf) at row 60 of history.csv (time 2020-02-28)" in message
    assert history.read_bytes() == before


def test_inf_in_the_target_during_training_is_one_sentence_in_cli_words(tmp_path, capsys):
    csv = _series_csv(tmp_path / "sales.csv", sales={10: "-inf"})
    out = tmp_path / "run"
    argv = ["forecast", "train", "--csv", str(csv), "--time", "day", "--target", "sales", "--horizon", "3",
            "--epochs", "1", "--out", str(out)]  # fmt: skip
    message = _refused(capsys, argv)
    assert "holds an infinite value (-inf) at row 12 of sales.csv (time 2020-01-11)" in message
    assert "remove the row, or leave the cell empty" in message and "on_nonfinite" not in message
    assert not out.exists()


def test_a_season_longer_than_the_series_supports_is_refused(tmp_path, capsys):
    csv = _series_csv(tmp_path / "sales.csv", n=120)
    base = ["--csv", str(csv), "--time", "day", "--target", "sales", "--horizon", "12", "--epochs", "1"]
    out = tmp_path / "run"
    message = _refused(capsys, ["forecast", "train", *base, "--season", "100000", "--out", str(out)])
    assert "The season (100000 steps, --season) is longer than the series can support" in message
    assert "the shortest series has 120 points" in message and "Give a season of at most 53" in message
    assert not out.exists()
    assert "Give a season of at most 53" in _refused(capsys, ["forecast", "backtest", *base, "--season", "54"])


def test_a_csv_with_only_a_header_says_it_has_no_data_rows(tmp_path, capsys):
    good, empty = _series_csv(tmp_path / "good.csv"), tmp_path / "empty.csv"
    empty.write_text("day,sales\n")
    run = tmp_path / "run"
    args = ["--time", "day", "--target", "sales", "--horizon", "3", "--epochs", "1"]
    assert main(["forecast", "train", "--csv", str(good), *args, "--out", str(run), "--json"]) == 0
    capsys.readouterr()
    for argv in (["forecast", "train", "--csv", str(empty), *args, "--out", str(tmp_path / "r")],
                 ["forecast", "backtest", "--csv", str(empty), *args],
                 ["forecast", "predict", str(run), "--csv", str(empty)],
                 ["forecast", "evaluate", str(run), "--csv", str(empty)]):  # fmt: skip
        assert "empty.csv has no data rows, only the header" in _refused(capsys, argv)
    assert not (tmp_path / "r").exists()


def test_a_huge_cell_is_quoted_capped(tmp_path, capsys):
    csv = _series_csv(tmp_path / "sales.csv", sales={0: "x" * 100_000})
    argv = ["forecast", "train", "--csv", str(csv), "--time", "day", "--target", "sales", "--horizon", "3",
            "--out", str(tmp_path / "r")]  # fmt: skip
    message = _refused(capsys, argv)
    assert "Column 'sales' must be numeric, but row 2 of sales.csv holds 'xxxx" in message and "x..." in message


def test_no_data_given_names_both_options_and_not_both_only_when_both(tmp_path, capsys):
    neither = _refused(capsys, ["forecast", "train", "--horizon", "3", "--out", str(tmp_path / "r")])
    assert "give one of --data NAME or --csv FILE" in neither and "not both" not in neither
    csv = _series_csv(tmp_path / "sales.csv")
    both = _refused(capsys, ["forecast", "backtest", "--data", "airline", "--csv", str(csv), "--horizon", "3"])
    assert "not both" in both


def test_a_model_with_future_covariates_asks_for_them_in_cli_words(tmp_path, capsys):
    csv = _series_csv(tmp_path / "sales.csv")
    pd.read_csv(csv).assign(promo=[i % 2 for i in range(60)]).to_csv(csv, index=False)
    run = tmp_path / "run"
    args = ["--csv", str(csv), "--time", "day", "--target", "sales", "--future", "promo", "--horizon", "3"]
    assert main(["forecast", "train", *args, "--epochs", "1", "--out", str(run), "--json"]) == 0
    capsys.readouterr()
    assert "--future-csv FILE" in _refused(capsys, ["forecast", "predict", str(run), "--csv", str(csv)])


# ---- issue 18, found by tests/test_csv_properties.py


def _one_line(capsys, argv) -> str:
    """Exit code 2 and stderr exactly one line (not re-joined: the sentence itself must not span lines)."""
    assert main(argv) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and len(lines[0]) < 300, captured.err
    return lines[0]


def test_times_that_do_not_parse_are_one_line_naming_the_cell(tmp_path, capsys):
    """pandas' reason came with two more lines of advice ("You might want to try: ..."): a three-line message."""
    base = ["forecast", "train", "--time", "day", "--target", "sales", "--horizon", "3", "--epochs", "1"]
    word = _series_csv(tmp_path / "word.csv", day={4: "yesterday"})
    line = _one_line(capsys, [*base, "--csv", str(word), "--out", str(tmp_path / "r")])
    assert line == (
        "error: The time column 'day' does not parse as timestamps: row 6 of word.csv holds 'yesterday'; fix or drop "
        "that row."
    )
    formats = _series_csv(tmp_path / "formats.csv", day={4: "01/05/2020"})  # a date, but in another format
    line = _one_line(capsys, [*base, "--csv", str(formats), "--out", str(tmp_path / "r")])
    # pandas' own reason, as it words it (pandas 2 adds ", at position 4")
    assert 'does not parse as timestamps (time data "01/05/2020" doesn\'t match format "%Y-%m-%d"' in line
    assert "You might want to try" not in line and line.endswith("write every time in one format.")
    assert not (tmp_path / "r").exists()


def test_times_in_different_time_zones_are_one_sentence(tmp_path, capsys):
    csv = _series_csv(tmp_path / "zones.csv")
    table = pd.read_csv(csv)
    table["day"] = [f"{day}T00:00:00{'Z' if i == 3 else '+01:00'}" for i, day in enumerate(table["day"])]
    table.to_csv(csv, index=False)
    argv = ["forecast", "train", "--csv", str(csv), "--time", "day", "--target", "sales", "--horizon", "3",
            "--epochs", "1", "--out", str(tmp_path / "r")]  # fmt: skip
    assert _one_line(capsys, argv) == (
        "error: The time column 'day' mixes time zones: row 2 of zones.csv is at UTC+01:00, row 5 of zones.csv at "
        "UTC+00:00; convert the times to one offset (UTC, say) or write them without one."
    )


def test_a_value_beyond_float32_is_refused_before_training(tmp_path, capsys):
    """1e308 is finite, so it passed the check for infinite values, and training stopped on a non-finite loss with
    advice about on_nonfinite='skip'."""
    csv = _series_csv(tmp_path / "sales.csv", sales={10: "1e308"})
    out = tmp_path / "run"
    argv = ["forecast", "train", "--csv", str(csv), "--time", "day", "--target", "sales", "--horizon", "3",
            "--epochs", "1", "--out", str(out)]  # fmt: skip
    line = _one_line(capsys, argv)
    assert "Column 'sales' holds 1e+308 at row 12 of sales.csv (time 2020-01-11), beyond the 3.4e+38" in line
    assert "on_nonfinite" not in line and not out.exists()


def test_text_late_in_a_large_file_is_one_line_without_a_pandas_warning(tmp_path, capsys, recwarn):
    """pandas typed a large file in chunks and warned (DtypeWarning, two more lines on stderr) when a column's type
    changed between them; the file is now typed whole."""
    csv = tmp_path / "big.csv"
    csv.write_text("day,sales\n" + "".join(f"{i},{i % 7}\n" for i in range(300_000)) + "300000,oops\n")
    argv = ["forecast", "train", "--csv", str(csv), "--time", "day", "--target", "sales", "--horizon", "3",
            "--epochs", "1", "--out", str(tmp_path / "r")]  # fmt: skip
    assert "Column 'sales' must be numeric, but row 300002 of big.csv holds 'oops'" in _one_line(capsys, argv)
    assert not [w for w in recwarn if w.category.__name__ == "DtypeWarning"]
