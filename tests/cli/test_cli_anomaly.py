"""``lstmkit anomaly train | score | evaluate`` in-process: run directories, JSON on stdout, one-sentence errors."""

import json

import numpy as np
import pandas as pd
import pytest

from lstmkit.cli import main


def labelled_csv(path, n_train: int = 300, n_test: int = 200):
    rng = np.random.default_rng(0)
    t = np.arange(n_train + n_test)
    values = np.sin(2 * np.pi * t / 24) + 0.05 * rng.normal(size=len(t))
    label = np.zeros(len(t), dtype=int)
    values[n_train + 120 : n_train + 125] += 2.0
    label[n_train + 120 : n_train + 125] = 1
    split = ["train"] * n_train + ["test"] * n_test
    pd.DataFrame({"t": t, "hr": values, "anomaly": label, "split": split, "word": "x"}).to_csv(path, index=False)
    return path


def test_train_score_evaluate_on_a_csv(tmp_path, capsys):
    csv = labelled_csv(tmp_path / "hr.csv")
    out = tmp_path / "run"
    base = ["--csv", str(csv), "--time", "t", "--label", "anomaly"]
    args = ["anomaly", "train", *base, "--target", "hr", "--method", "reconstruction", "--window", "12"]
    assert main([*args, "--epochs", "10", "--out", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["method"] == "reconstruction" and summary["steps"] == 200  # the test split was scored
    assert summary["metrics"]["found"] == 1 and summary["epochs"] == 10
    for name in ("config.json", "model.safetensors", "metrics.csv", "scores.csv", "anomaly.png", "result.json",
                 "report.html"):  # fmt: skip
        assert (out / name).exists(), name
    config = json.loads((out / "config.json").read_text())["config"]
    assert config["anomaly"]["input_window"] == 12 and config["anomaly"]["target"] == "hr"
    assert config["threshold"] == summary["metrics"]["threshold"]
    scores = pd.read_csv(out / "scores.csv")
    assert list(scores.columns) == ["t", "hr", "score", "flag", "label"] and scores["flag"].sum() >= 1

    elsewhere = tmp_path / "scored"
    assert main(["anomaly", "score", str(out), *base, "--out", str(elsewhere), "--json"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["metrics"] == summary["metrics"] and (elsewhere / "anomaly.png").exists()

    assert main(["anomaly", "evaluate", str(out), *base, "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["event"] == summary["metrics"]["event"] and result["threshold"] == summary["metrics"]["threshold"]
    assert set(result) >= {"point", "event", "nab", "found", "false_alarm_events", "false_alarm_points"}


def test_train_json_has_the_shared_shape_and_the_shared_options_reach_the_config(tmp_path, capsys):
    """Issue 19: `anomaly train` takes the shared options (it could set neither hidden size nor learning rate),
    --set and --config reach any field, and --json prints {"task", "run_dir", "metrics", "baselines", ...}."""
    csv = labelled_csv(tmp_path / "hr.csv")
    saved = tmp_path / "fields.json"
    saved.write_text(json.dumps({"net": {"hidden_size": 6}, "train": {"lr": 0.01}, "false_alarm_rate": 0.02}))
    out = tmp_path / "run"
    args = ["anomaly", "train", "--csv", str(csv), "--time", "t", "--target", "hr", "--label", "anomaly",
            "--method", "reconstruction", "--window", "12", "--epochs", "2", "--config", str(saved),
            "--lr", "0.005", "--set", "train.batch_size=16", "--set", "validation_fraction=0.25",
            "--out", str(out), "--json"]  # fmt: skip
    assert main(args) == 0
    summary = json.loads(capsys.readouterr().out)
    assert list(summary)[:4] == ["task", "run_dir", "metrics", "baselines"] and summary["task"] == "anomaly_detector"
    assert summary["run_dir"] == str(out) and summary["metrics"]["found"] == 1
    z = summary["baselines"]["rolling_zscore"]  # the z-score on the same rows, thresholded the same way
    assert z["event"]["events"] == 1 and z["threshold"] > 0
    assert json.loads((out / "result.json").read_text())["baselines"] == summary["baselines"]
    config = json.loads((out / "config.json").read_text())["config"]["anomaly"]
    assert config["net"]["hidden_size"] == 6  # --config
    assert config["train"]["lr"] == 0.005 and config["train"]["epochs"] == 2  # the options win over the file
    assert config["train"]["batch_size"] == 16 and config["validation_fraction"] == 0.25  # --set
    assert config["false_alarm_rate"] == 0.02 and config["input_window"] == 12
    assert main([*args[:-3], "--set", "net.size=3", "--out", str(tmp_path / "bad")]) == 2
    assert "net.size" in capsys.readouterr().err


def test_train_on_the_bundled_heartrate_series(tmp_path, capsys):
    out = tmp_path / "hr"
    args = ["anomaly", "train", "--data", "heartrate", "--method", "reconstruction", "--window", "8"]
    assert main([*args, "--epochs", "1", "--out", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    # trained on the 1,200 train rows, scored the 6,301 test rows with the train rows before them as context
    assert summary["steps"] == 6301 and summary["context_steps"] == 1200
    assert summary["metrics"]["event"]["events"] == 1
    scores = pd.read_csv(out / "scores.csv")
    assert scores["time"].iloc[0] == 1200 and scores["time"].is_monotonic_increasing and scores["score"].notna().all()
    assert scores.loc[scores["label"] == 1, "time"].tolist() == list(range(4187, 4199))
    assert (out / "report.html").exists()


def test_prediction_method_writes_its_training_curve(tmp_path, capsys):
    csv = labelled_csv(tmp_path / "hr.csv")
    out = tmp_path / "pred"
    args = ["anomaly", "train", "--csv", str(csv), "--time", "t", "--target", "hr", "--season", "24"]
    assert main([*args, "--steps-ahead", "3", "--epochs", "3", "--out", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["method"] == "prediction"
    assert set(summary["metrics"]) == {"threshold", "flagged_points"}  # no --label: no detection metrics
    assert set(summary["baselines"]["rolling_zscore"]) == {"threshold", "flagged_points"}
    assert (out / "metrics.csv").exists() and (out / "forecaster" / "config.json").exists()
    assert main(["anomaly", "score", str(out), "--csv", str(csv), "--time", "t", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["steps"] == 200


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--target", "pulse"], "Unknown column(s) ['pulse']"),
        (["--target", "word"], "Column 'word' must be numeric"),
        (["--target", "empty"], "'empty' is empty or missing (NaN) everywhere"),
        (["--target", "hr", "--window", "400"], "hold too few windows of 400 steps"),
        (["--target", "hr", "--label", "nope"], "Unknown column(s) ['nope']"),
        (["--target", "hr", "--method", "svm"], "expected one of 'prediction', 'reconstruction'"),
        (["--target", "hr", "--false-alarm-rate", "2"], "false_alarm_rate must be in (0, 1)"),
        ([], "Say which column to watch with --target"),
    ],
)
def test_bad_input_is_one_sentence(tmp_path, capsys, extra, message):
    csv = labelled_csv(tmp_path / "hr.csv")
    pd.read_csv(csv).assign(empty=np.nan).to_csv(csv, index=False)
    args = ["anomaly", "train", "--csv", str(csv), "--time", "t", "--method", "reconstruction", "--epochs", "1"]
    assert main([*args, *extra, "--out", str(tmp_path / "r")]) == 2
    captured = capsys.readouterr()
    assert message in captured.err and "Traceback" not in captured.err
    assert not (tmp_path / "r" / "config.json").exists()


def test_more_mistakes_are_one_sentence(tmp_path, capsys):
    csv = labelled_csv(tmp_path / "hr.csv")
    table = pd.read_csv(csv).drop(columns="split")  # labelled anomalies among the (all) training rows
    table.to_csv(tmp_path / "nosplit.csv", index=False)
    args = ["--time", "t", "--target", "hr", "--method", "reconstruction", "--epochs", "1"]
    assert main(["anomaly", "train", "--csv", str(tmp_path / "nosplit.csv"), *args, "--label", "anomaly",
                 "--out", str(tmp_path / "r")]) == 2  # fmt: skip
    assert "The training rows hold 5 labelled anomalies" in capsys.readouterr().err
    assert main(["anomaly", "train", "--data", "heartrate", "--csv", str(csv), "--out", str(tmp_path / "x")]) == 2
    assert "not both" in capsys.readouterr().err
    assert main(["anomaly", "train", "--data", "airline", "--out", str(tmp_path / "x")]) == 2
    assert "'airline' is a forecasting dataset, not an anomaly one" in capsys.readouterr().err
    assert main(["anomaly", "score", str(tmp_path / "missing"), "--csv", str(csv)]) == 2
    assert "No run directory" in capsys.readouterr().err
    run = tmp_path / "ok"
    assert main(["anomaly", "train", "--csv", str(csv), *args, "--window", "8", "--out", str(run), "--json"]) == 0
    capsys.readouterr()
    assert main(["anomaly", "train", "--csv", str(csv), *args, "--out", str(run)]) == 2
    assert "already holds a finished detector" in capsys.readouterr().err
    assert main(["anomaly", "evaluate", str(run), "--csv", str(csv), "--time", "t"]) == 2
    assert "name the 0/1 column with --label" in capsys.readouterr().err
    short = tmp_path / "short.csv"
    pd.DataFrame({"t": range(5), "hr": np.zeros(5)}).to_csv(short, index=False)
    assert main(["anomaly", "score", str(run), "--csv", str(short), "--time", "t"]) == 2
    assert "The series has 5 points; this detector needs at least 8" in capsys.readouterr().err


def test_text_dates_are_read_in_time_order(tmp_path, capsys):
    """Dates read from a CSV are text; the rows are put in date order, not text order (10/1 after 9/1)."""
    csv = labelled_csv(tmp_path / "hr.csv")
    table = pd.read_csv(csv)
    table["t"] = pd.date_range("2020-01-01", periods=len(table), freq="D").strftime("%-m/%-d/%Y")
    table.sample(frac=1.0, random_state=0).to_csv(csv, index=False)  # rows shuffled too
    out = tmp_path / "run"
    args = ["anomaly", "train", "--csv", str(csv), "--time", "t", "--target", "hr", "--label", "anomaly"]
    assert (
        main([*args, "--method", "reconstruction", "--window", "12", "--epochs", "3", "--out", str(out), "--json"]) == 0
    )
    summary = json.loads(capsys.readouterr().out)
    assert summary["steps"] == 200 and summary["context_steps"] == 300
    scores = pd.read_csv(out / "scores.csv", parse_dates=["t"])
    assert scores["t"].is_monotonic_increasing and scores["t"].iloc[0] == pd.Timestamp("2020-10-27")  # day 300
    assert scores.loc[scores["label"] == 1, "t"].is_monotonic_increasing and len(scores) == 200
    np.testing.assert_allclose(scores["hr"], pd.read_csv(labelled_csv(tmp_path / "plain.csv"))["hr"][300:])


def test_a_scoring_error_keeps_the_saved_detector(tmp_path, capsys, monkeypatch):
    """Issue 18's rule: the model and its config are saved before any step after training; a failure there loses
    nothing, and the message says how to score again."""
    from lstmkit import runs
    from lstmkit.tasks.timeseries.anomaly import run as anomaly_run

    csv = labelled_csv(tmp_path / "hr.csv")
    out = tmp_path / "run"
    args = ["anomaly", "train", "--csv", str(csv), "--time", "t", "--target", "hr", "--label", "anomaly",
            "--method", "reconstruction", "--window", "12", "--epochs", "2", "--out", str(out)]  # fmt: skip
    with monkeypatch.context() as m:
        m.setattr(anomaly_run, "_score_table", lambda *a: (_ for _ in ()).throw(ValueError("Scoring broke.")))
        assert main(args) == 2
    err = capsys.readouterr().err
    assert "Scoring broke." in err and "lstmkit anomaly score" in err
    assert runs.is_finished(out) and (out / "model.safetensors").is_file()  # trained and saved
    assert main(["anomaly", "score", str(out), "--csv", str(csv), "--time", "t", "--label", "anomaly", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["metrics"]["found"] == 1


def test_a_test_split_shorter_than_the_window_is_scored_with_context(tmp_path, capsys):
    csv = labelled_csv(tmp_path / "hr.csv", n_train=300, n_test=130)
    table = pd.read_csv(csv).iloc[:305]  # five test rows, fewer than the window
    table.to_csv(csv, index=False)
    out = tmp_path / "run"
    args = ["anomaly", "train", "--csv", str(csv), "--time", "t", "--target", "hr", "--method", "reconstruction"]
    assert main([*args, "--window", "12", "--epochs", "1", "--out", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["steps"] == 5 and pd.read_csv(out / "scores.csv")["score"].notna().all()


def test_score_and_evaluate_read_renamed_columns_and_refuse_other_runs(tmp_path, capsys):
    import torch

    from lstmkit import runs

    csv = labelled_csv(tmp_path / "hr.csv")
    out = tmp_path / "run"
    args = ["anomaly", "train", "--csv", str(csv), "--time", "t", "--target", "hr", "--label", "anomaly"]
    assert (
        main([*args, "--method", "reconstruction", "--window", "12", "--epochs", "2", "--out", str(out), "--json"]) == 0
    )
    trained = json.loads(capsys.readouterr().out)
    renamed = tmp_path / "renamed.csv"
    pd.read_csv(csv).rename(columns={"t": "when", "hr": "pulse"}).to_csv(renamed, index=False)
    base = ["--csv", str(renamed), "--time", "when", "--target", "pulse", "--label", "anomaly", "--json"]
    assert main(["anomaly", "score", str(out), *base, "--out", str(tmp_path / "s")]) == 0
    assert json.loads(capsys.readouterr().out)["metrics"] == trained["metrics"]
    assert list(pd.read_csv(tmp_path / "s" / "scores.csv").columns)[:2] == ["when", "pulse"]
    assert main(["anomaly", "evaluate", str(out), *base]) == 0
    assert json.loads(capsys.readouterr().out)["event"] == trained["metrics"]["event"]
    assert (
        main(["anomaly", "score", str(out), "--csv", str(renamed), "--time", "when", "--out", str(tmp_path / "t")]) == 2
    )
    assert "Unknown column(s) ['hr']" in capsys.readouterr().err  # the run's name, when --target is not given
    runs.save_run(tmp_path / "lm", "language_model", {"hidden_size": 4}, torch.nn.Linear(1, 1))
    assert main(["anomaly", "score", str(tmp_path / "lm"), "--csv", str(csv), "--out", str(tmp_path / "u")]) == 2
    err = capsys.readouterr().err
    assert "holds a 'language_model' run, not a 'anomaly_detector' one" in err and "Traceback" not in err


def test_score_keeps_the_training_runs_own_files(tmp_path, capsys):
    """Issue 18: `anomaly score RUN` wrote over the run's scores.csv and anomaly.png; now it writes beside them."""
    csv = labelled_csv(tmp_path / "hr.csv")
    out = tmp_path / "run"
    base = ["--csv", str(csv), "--time", "t", "--label", "anomaly"]
    args = ["anomaly", "train", *base, "--target", "hr", "--method", "reconstruction", "--window", "12"]
    assert main([*args, "--epochs", "2", "--out", str(out), "--json"]) == 0
    capsys.readouterr()
    kept = {name: (out / name).read_bytes() for name in ("scores.csv", "anomaly.png", "result.json", "report.html")}
    rows = pd.read_csv(csv)
    rows.loc[rows["split"] == "test", "hr"] += 0.5  # other readings: other scores
    rows.to_csv(tmp_path / "later.csv", index=False)
    later = ["--csv", str(tmp_path / "later.csv"), "--time", "t", "--label", "anomaly"]
    for expected in ("later", "later-2"):  # a second scoring keeps the first
        assert main(["anomaly", "score", str(out), *later, "--json"]) == 0
        summary = json.loads(capsys.readouterr().out)
        assert summary["run_dir"] == str(out / "scored" / expected)
        assert {p.name for p in (out / "scored" / expected).iterdir()} >= {"scores.csv", "anomaly.png", "result.json"}
    assert {name: (out / name).read_bytes() for name in kept} == kept
    assert main(["anomaly", "score", str(out), *later, "--out", str(out)]) == 2
    message = capsys.readouterr().err
    assert "is a run directory" in message and "--out" in message and "Traceback" not in message
    assert {name: (out / name).read_bytes() for name in kept} == kept


# ---- issue 18: nothing lost, nothing raw: each refusal is exit code 2 and one short sentence, nothing written


def _refused(capsys, argv) -> str:
    """The one sentence of a refused command: exit code 2, no traceback, no result on stdout, under 300 characters."""
    assert main(argv) == 2
    captured = capsys.readouterr()
    message = " ".join(captured.err.split())  # rich wraps long lines on a narrow console
    assert "Traceback" not in message and captured.out == "" and len(message) < 300, message
    return message


def test_bad_tables_are_refused_by_train_and_score_alike(tmp_path, capsys):
    """Duplicate timestamps (as forecast refuses them), a header alone, inf: one sentence each, in train and score."""
    csv = labelled_csv(tmp_path / "hr.csv")
    run = tmp_path / "run"
    args = ["--time", "t", "--target", "hr", "--method", "reconstruction", "--window", "8", "--epochs", "1"]
    assert main(["anomaly", "train", "--csv", str(csv), *args, "--out", str(run), "--json"]) == 0
    capsys.readouterr()
    table = pd.read_csv(csv)
    dup, empty, inf = tmp_path / "dup.csv", tmp_path / "empty.csv", tmp_path / "inf.csv"
    table.assign(t=table["t"].where(table.index != 5, 4)).to_csv(dup, index=False)  # row 7 repeats row 6's time
    table.iloc[:0].to_csv(empty, index=False)
    table.assign(hr=table["hr"].where(table.index != 350, np.inf)).to_csv(inf, index=False)
    expected = {dup: "The table has duplicate timestamps: 4 at rows 6 and 7 of dup.csv",
                empty: "empty.csv has no data rows, only the header",
                inf: "Column 'hr' holds an infinite value (inf) at row 352 of inf.csv (time 350)"}  # fmt: skip
    for path, message in expected.items():
        before = path.read_bytes()
        train = ["anomaly", "train", "--csv", str(path), *args, "--out", str(tmp_path / "r")]
        assert message in _refused(capsys, train)
        assert message in _refused(capsys, ["anomaly", "score", str(run), "--csv", str(path), "--time", "t",
                                            "--out", str(tmp_path / "s")])  # fmt: skip
        assert path.read_bytes() == before
    assert not (tmp_path / "r").exists() and not (tmp_path / "s").exists()


def test_a_season_longer_than_the_normal_rows_support_is_refused(tmp_path, capsys):
    csv = labelled_csv(tmp_path / "hr.csv", n_train=100, n_test=20)
    out = tmp_path / "run"
    argv = ["anomaly", "train", "--csv", str(csv), "--time", "t", "--target", "hr", "--season", "100000", "--epochs",
            "1", "--out", str(out)]  # fmt: skip
    message = _refused(capsys, argv)
    assert "The season (100000 steps, --season) is longer than the series can support: 100 normal rows" in message
    assert "of which 70 train the model, hold two seasons of at most 32 steps" in message  # (70 - 5 - 1) // 2
    assert not out.exists()


def test_no_data_given_names_both_options(tmp_path, capsys):
    message = _refused(capsys, ["anomaly", "train", "--target", "hr", "--out", str(tmp_path / "r")])
    assert "give one of --data NAME or --csv FILE" in message and "not both" not in message


def test_mixed_time_zones_and_a_text_label_are_one_sentence(tmp_path, capsys):
    """Found by tests/test_csv_properties.py: times with a mix of UTC offsets were "neither numbers nor dates", and a
    label column holding one word ended in a TypeError (numpy cannot sort text with numbers) instead of a sentence."""
    csv = labelled_csv(tmp_path / "hr.csv")
    args = ["--time", "t", "--target", "hr", "--label", "anomaly", "--epochs", "1", "--out", str(tmp_path / "r")]
    zones = tmp_path / "zones.csv"
    table = pd.read_csv(csv)
    times = pd.date_range("2020-01-01", periods=len(table), freq="h")
    table.assign(t=[f"{t.isoformat()}{'Z' if i == 3 else '+01:00'}" for i, t in enumerate(times)]).to_csv(
        zones, index=False
    )
    message = _refused(capsys, ["anomaly", "train", "--csv", str(zones), *args])
    assert message == (
        "error: The time column 't' of the data mixes time zones: row 2 of zones.csv is at UTC+01:00, row 5 of "
        "zones.csv at UTC+00:00; convert the times to one offset (UTC, say) or write them without one."
    )
    word = tmp_path / "word.csv"
    table = pd.read_csv(csv)
    table["anomaly"] = table["anomaly"].astype(object)
    table.loc[7, "anomaly"] = "yes"
    table.to_csv(word, index=False)
    message = _refused(capsys, ["anomaly", "train", "--csv", str(word), *args])
    assert message == "error: The label column 'anomaly' must be 0 (normal) or 1 (anomaly), got values like ['yes']."
    assert not (tmp_path / "r").exists()
