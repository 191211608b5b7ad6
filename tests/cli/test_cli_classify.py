"""``lstmkit classify train | predict | evaluate`` in-process: a small CSV end to end, and one sentence per mistake."""

import json

import numpy as np
import pandas as pd
import pytest

from lstmkit.cli import main


def _csv(tmp_path, name="series.csv", n=16, seed=0, **change):
    """Long form: series, tick, a, b, cls, part; series 0..11 train, the rest test; lengths 6-11."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        cls = "rise" if i % 2 == 0 else "fall"
        length = 6 + i % 6
        ramp = np.linspace(-1, 1, length) * (1 if cls == "rise" else -1)
        for t in range(length):
            rows.append({"series": i, "tick": t, "a": ramp[t] + 0.1 * rng.normal(), "b": rng.normal(), "cls": cls,
                         "part": "train" if i < 12 else "test"})  # fmt: skip
    table = pd.DataFrame(rows)
    for column, value in change.items():
        table[column] = value
    path = tmp_path / name
    table.to_csv(path, index=False)
    return path, table


def test_train_predict_evaluate_on_a_small_csv(tmp_path, capsys):
    csv, table = _csv(tmp_path)
    out = tmp_path / "run"
    args = ["--csv", str(csv), "--id", "series", "--label", "cls", "--step", "tick", "--split", "part"]
    train = ["classify", "train", *args, "--out", str(out), "--epochs", "3", "--hidden-size", "8", "--pooling",
             "attention", "--bidirectional", "--class-weight", "balanced", "--seed", "1", "--head-dropout", "0.2",
             "--optimizer", "adamw", "--weight-decay", "0.05", "--json"]  # fmt: skip
    assert main(train) == 0
    summary = json.loads(capsys.readouterr().out)
    assert list(summary)[:4] == ["task", "run_dir", "metrics", "baselines"] and summary["task"] == "sequence_classifier"
    assert summary["n_train"] == 12 and summary["n_test"] == 4
    assert summary["predictions"] == str(out / "predictions.csv")
    assert set(summary["baselines"]["one_nn_euclidean"]) == {"accuracy", "balanced_accuracy", "macro_f1"}
    recorded = json.loads((out / "result.json").read_text())["warnings"]  # 3 epochs: an underfit may be said
    assert summary["warnings"] == recorded and all("stayed near chance" in w for w in recorded)
    for name in ("config.json", "model.safetensors", "metrics.csv", "confusion.png", "attention.png",
                 "predictions.csv", "result.json", "report.html"):  # fmt: skip
        assert (out / name).exists(), name
    saved = json.loads((out / "config.json").read_text())["config"]
    assert saved["estimator"]["pooling"] == "attention" and saved["estimator"]["bidirectional"] is True
    assert saved["estimator"]["head_dropout"] == 0.2 and saved["model"]["head_dropout"] == 0.2
    assert saved["estimator"]["optimizer"] == "adamw" and saved["estimator"]["weight_decay"] == 0.05
    assert saved["data"]["id"] == "series" and saved["data"]["resolved_features"] == ["a", "b"]

    # predict reads the saved layout; labels are not needed
    new = tmp_path / "new.csv"
    table.drop(columns=["cls", "part"]).to_csv(new, index=False)
    assert main(["classify", "predict", str(out), "--csv", str(new), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 16 and {r["predicted"] for r in rows} <= {"rise", "fall"}
    assert all(abs(r["p_rise"] + r["p_fall"] - 1) < 1e-5 for r in rows)
    test_ids = set(range(12, 16))
    written = pd.read_csv(out / "predictions.csv")
    by_id = {r["series"] if "series" in r else r["id"]: r for r in rows}
    for _, r in written.iterrows():
        assert r["id"] in test_ids and by_id[r["id"]]["predicted"] == r["predicted"]
    truth = table.groupby("series")["cls"].first()  # the reported accuracy is that of the written predictions
    accuracy = (written["predicted"] == truth[written["id"]].to_numpy()).mean()
    assert summary["metrics"]["accuracy"] == pytest.approx(accuracy)
    assert main(["classify", "predict", str(out), "--csv", str(new)]) == 0
    assert capsys.readouterr().out.startswith("id,predicted,p_fall,p_rise")

    assert main(["classify", "evaluate", str(out), "--csv", str(csv), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["scored_on"] == "test" and result["lstm"]["n"] == 4
    assert result["lstm"]["accuracy"] == pytest.approx(summary["metrics"]["accuracy"])
    assert result["one_nn_euclidean"]["accuracy"] == pytest.approx(summary["baselines"]["one_nn_euclidean"]["accuracy"])
    assert "resampled" in result["one_nn_euclidean"]["lengths"]  # the series' lengths vary


def test_a_bundled_dataset_by_name(tmp_path, capsys):
    pytest.importorskip("aeon")
    out = tmp_path / "ipd"
    assert main(["classify", "train", "--data", "italy_power_demand", "--out", str(out), "--epochs", "1",
                 "--hidden-size", "4", "--json"]) == 0  # fmt: skip
    summary = json.loads(capsys.readouterr().out)
    assert summary["n_train"] == 67 and summary["n_test"] == 1029
    # UCR's published 1-NN ED
    assert summary["baselines"]["one_nn_euclidean"]["accuracy"] == pytest.approx(0.955, abs=5e-4)
    assert main(["classify", "evaluate", str(out), "--data", "basic_motions"]) == 2
    assert "channels differ" in capsys.readouterr().err


def _error(capsys, argv):
    assert main(argv) == 2
    message = capsys.readouterr().err
    assert "Traceback" not in message
    return " ".join(message.split())  # rich wraps long lines on a narrow console


@pytest.mark.parametrize(
    ("change", "options", "expected"),
    [
        ({}, ["--id", "serie"], "no column 'serie' (the series id, --id)"),
        ({}, ["--features", "a", "--features", "speed"], "no column 'speed'"),
        (
            {"b": "high"},
            ["--features", "a", "--features", "b"],
            "Feature column 'b' must be numeric, but row 2 of series.csv holds 'high'",
        ),
        ({"cls": "rise"}, [], "single class ('rise')"),
        ({"a": np.nan}, [], "Series 0 has a missing or non-finite value in 'a' at step 0"),
        ({"cls": None}, [], "Series 0 has no label"),
        ({"part": "dev"}, [], "Series 0 has the split value(s) dev"),
    ],
)
def test_bad_input_is_one_sentence(tmp_path, capsys, change, options, expected):
    csv, _ = _csv(tmp_path, **change)
    base = ["classify", "train", "--csv", str(csv), "--id", "series", "--label", "cls", "--step", "tick", "--split",
            "part", "--epochs", "1", "--out", str(tmp_path / "r")]  # fmt: skip
    assert expected in _error(capsys, [*base, *options])


def test_mistakes_around_the_data_and_the_run(tmp_path, capsys):
    csv, table = _csv(tmp_path)
    args = ["--csv", str(csv), "--id", "series", "--label", "cls", "--step", "tick", "--split", "part"]
    out = tmp_path / "run"
    assert main(["classify", "train", *args, "--out", str(out), "--epochs", "1", "--hidden-size", "4"]) == 0
    capsys.readouterr()
    assert "already holds a finished classifier" in _error(capsys, ["classify", "train", *args, "--out", str(out)])
    fewer = tmp_path / "fewer.csv"
    table.drop(columns="b").to_csv(fewer, index=False)
    assert "channels differ (it lacks b)" in _error(capsys, ["classify", "predict", str(out), "--csv", str(fewer)])
    more = tmp_path / "more.csv"
    table.assign(c=1.0).to_csv(more, index=False)
    assert "channels differ (it has a, b, c)" in _error(capsys, ["classify", "evaluate", str(out), "--csv", str(more)])
    other = tmp_path / "other.csv"
    table.assign(cls="sideways").to_csv(other, index=False)
    assert "never saw in training" in _error(capsys, ["classify", "evaluate", str(out), "--csv", str(other)])
    assert "not both" in _error(capsys, ["classify", "train", "--data", "gunpoint", "--csv", str(csv), "--out", "x"])
    assert "Unknown dataset 'nope'" in _error(capsys, ["classify", "train", "--data", "nope", "--out", "x"])
    assert "No CSV file at" in _error(capsys, ["classify", "predict", str(out), "--csv", str(tmp_path / "none.csv")])
    assert "No run directory" in _error(capsys, ["classify", "predict", str(tmp_path / "nothing"), "--csv", str(csv)])
    assert "pooling" in _error(capsys, ["classify", "train", *args, "--out", str(tmp_path / "p"), "--pooling", "sum"])


def test_conv_branch_flag_is_saved_and_the_run_loads(tmp_path, capsys):
    csv, table = _csv(tmp_path)
    args = ["--csv", str(csv), "--id", "series", "--label", "cls", "--step", "tick", "--split", "part"]
    for flag, out in ((["--selection", "off"], tmp_path / "plain"), (["--conv-branch"], tmp_path / "fcn")):
        assert main(["classify", "train", *args, "--out", str(out), "--epochs", "2", "--hidden-size", "4", *flag,
                     "--json"]) == 0  # fmt: skip
        summary = json.loads(capsys.readouterr().out)
        saved = json.loads((out / "config.json").read_text())["config"]
        on = flag == ["--conv-branch"]
        assert summary["selection"] is None  # turned off by hand, or by the flag naming the network
        assert saved["estimator"]["conv_branch"] is on and saved["model"]["conv_branch"] is on
        assert saved["data"]["net"]["conv_branch"] is on
    assert main(["classify", "evaluate", str(out), "--csv", str(csv), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["lstm"]["accuracy"] == pytest.approx(summary["metrics"]["accuracy"])  # the loaded LSTM-FCN: the same


def test_dimension_shuffle_flag_is_saved_and_ragged_series_get_one_sentence(tmp_path, capsys):
    csv, table = _csv(tmp_path)  # lengths 6-11
    args = ["--id", "series", "--label", "cls", "--step", "tick", "--split", "part"]
    message = _error(capsys, ["classify", "train", "--csv", str(csv), *args, "--out", str(tmp_path / "r"),
                              "--dimension-shuffle"])  # fmt: skip
    assert "every series needs the same length, but X holds lengths from 6 to 11" in message
    equal = tmp_path / "equal.csv"
    table[table.tick < 6].to_csv(equal, index=False)  # every series cropped to 6 steps
    out = tmp_path / "shuffle"
    assert main(["classify", "train", "--csv", str(equal), *args, "--out", str(out), "--epochs", "2",
                 "--hidden-size", "4", "--conv-branch", "--dimension-shuffle", "--pooled-dropout", "0.8",
                 "--json"]) == 0  # fmt: skip
    summary = json.loads(capsys.readouterr().out)
    saved = json.loads((out / "config.json").read_text())["config"]
    assert saved["estimator"]["dimension_shuffle"] is True and saved["model"]["shuffle_length"] == 6
    assert saved["data"]["net"]["dimension_shuffle"] is True and saved["data"]["net"]["pooled_dropout"] == 0.8
    assert main(["classify", "evaluate", str(out), "--csv", str(equal), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["lstm"]["accuracy"] == pytest.approx(summary["metrics"]["accuracy"])


def test_a_diverging_training_is_one_sentence_naming_the_learning_rate(tmp_path, capsys):
    """Issue 18: --lr 1e9 trained to a loss of 1e10 and exited 0 without a word."""
    csv, _ = _csv(tmp_path)
    args = ["--csv", str(csv), "--id", "series", "--label", "cls", "--step", "tick", "--split", "part"]
    assert main(["classify", "train", *args, "--out", str(tmp_path / "run"), "--epochs", "3", "--hidden-size", "8",
                 "--lr", "1e9"]) == 2  # fmt: skip
    err = capsys.readouterr().err
    assert "Training diverged at step" in err and "learning rate 1e9" in err and "Traceback" not in err


# ---- issue 18: nothing lost, nothing raw: each refusal is exit code 2 and one short sentence, nothing written


def _refused(capsys, argv) -> str:
    """The one sentence of a refused command: exit code 2, no traceback, no result on stdout, under 300 characters."""
    assert main(argv) == 2
    captured = capsys.readouterr()
    message = " ".join(captured.err.split())  # rich wraps long lines on a narrow console
    assert "Traceback" not in message and captured.out == "" and len(message) < 300, message
    return message


def test_one_text_cell_in_a_feature_column_is_refused_naming_the_cell(tmp_path, capsys):
    """Before: the column was left out in silence and the classifier trained on the rest."""
    _, table = _csv(tmp_path)
    table["b"] = table["b"].astype(object)
    table.loc[7, "b"] = "oops"  # the file's row 9: the header is row 1
    csv = tmp_path / "series.csv"
    table.to_csv(csv, index=False)
    before = csv.read_bytes()
    out = tmp_path / "run"
    argv = ["classify", "train", "--csv", str(csv), "--id", "series", "--label", "cls", "--step", "tick", "--split",
            "part", "--epochs", "1", "--out", str(out)]  # fmt: skip
    message = _refused(capsys, argv)
    assert "Feature column 'b' must be numeric, but row 9 of series.csv holds 'oops'" in message
    assert "--features" in message and csv.read_bytes() == before and not out.exists()
    table.loc[7, "b"] = "y" * 100_000  # a huge cell is quoted capped
    table.to_csv(csv, index=False)
    assert "holds 'yyyy" in (message := _refused(capsys, argv)) and "y..." in message
    table.assign(name="s" + table["series"].astype(str)).drop(columns="b").to_csv(csv, index=False)
    assert main([*argv, "--json"]) == 0  # a column of text is still no feature, as before
    assert json.loads(capsys.readouterr().out)["n_train"] == 12


def test_shared_options_set_and_config_reach_the_sections(tmp_path, capsys):
    csv, _ = _csv(tmp_path)
    settings = tmp_path / "settings.json"
    settings.write_text(json.dumps({"net": {"num_layers": 2, "pooling": "mean"}, "train": {"lr": 0.01}}))
    argv = ["classify", "train", "--csv", str(csv), "--id", "series", "--label", "cls", "--step", "tick", "--split",
            "part", "--epochs", "1", "--layers", "1", "--config", str(settings), "--set", "net.cell=gru", "--set",
            "train.batch_size=4", "--out", str(tmp_path / "r"), "--json"]  # fmt: skip
    assert main(argv) == 0
    assert set(json.loads(capsys.readouterr().out)) >= {"task", "run_dir", "metrics", "baselines", "predictions"}
    saved = json.loads((tmp_path / "r" / "config.json").read_text())["config"]
    data, estimator = saved["data"], saved["estimator"]
    assert (data["net"]["cell"], data["net"]["num_layers"], data["net"]["pooling"]) == ("gru", 1, "mean")
    assert (estimator["cell"], estimator["lr"], estimator["batch_size"], estimator["epochs"]) == ("gru", 0.01, 4, 1)
    message = _refused(capsys, [*argv[:-3], "--set", "train.schedule=cosine", "--out", str(tmp_path / "r2")])
    assert "does not take train.schedule" in message and not (tmp_path / "r2").exists()


def test_a_csv_with_only_a_header_says_it_has_no_data_rows(tmp_path, capsys):
    empty = tmp_path / "empty.csv"
    empty.write_text("series,tick,a,cls\n")
    message = _refused(capsys, ["classify", "train", "--csv", str(empty), "--out", str(tmp_path / "r")])
    assert "empty.csv has no data rows, only the header" in message and not (tmp_path / "r").exists()


def test_no_data_given_names_both_options(tmp_path, capsys):
    message = _refused(capsys, ["classify", "train", "--out", str(tmp_path / "r")])
    assert "give one of --data NAME or --csv FILE" in message and "not both" not in message


def test_a_feature_value_beyond_float32_is_refused_naming_its_row(tmp_path, capsys):
    """Found by tests/test_csv_properties.py: 1e308 became inf in float32 and was called "missing or non-finite"."""
    csv, table = _csv(tmp_path)
    table.loc[3, "a"] = 1e308
    table.to_csv(csv, index=False)
    argv = ["classify", "train", "--csv", str(csv), "--id", "series", "--label", "cls", "--step", "tick", "--split",
            "part", "--epochs", "1", "--out", str(tmp_path / "r")]  # fmt: skip
    message = _refused(capsys, argv)
    assert "Column 'a' holds 1e+308 at row 5 of series.csv, beyond the 3.4e+38 a model computes with" in message
    assert not (tmp_path / "r").exists()
