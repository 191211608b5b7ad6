"""The CLI in-process: JSON last on stdout, clear errors with exit code 2, run directories."""

import json

from lstmkit.cli import main


def test_experiment_json_summary_is_last_on_stdout(tmp_path, capsys):
    code = main(["experiment", "adding", "--length", "10", "--max-sequences", "640", "--json", "--out",
                 str(tmp_path / "r")])  # fmt: skip
    assert code == 0
    out = capsys.readouterr().out
    summary = json.loads(out)
    assert summary["task"] == "adding" and summary["model"] == "lstm" and summary["length"] == 10
    assert set(summary) >= {"metric", "value", "baseline", "solved", "sequences_seen", "seconds"}
    saved = json.loads((tmp_path / "r" / "config.json").read_text())
    assert saved["kind"] == "long_lag" and saved["config"]["experiment"]["length"] == 10


def test_experiment_errors_are_one_sentence(tmp_path, capsys):
    assert main(["experiment", "nope"]) == 2
    assert "unknown task 'nope'" in capsys.readouterr().err
    assert main(["experiment", "adding", "--model", "lstmx"]) == 2
    assert "--model must be lstm, gru or rnn" in capsys.readouterr().err
    assert main(["experiment", "adding", "--length", "1"]) == 2
    assert "length" in capsys.readouterr().err
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "config.json").write_text("{}")
    assert main(["experiment", "adding", "--out", str(tmp_path / "r")]) == 2
    assert "already holds a run" in capsys.readouterr().err


def test_demo_runs_small(tmp_path, capsys):
    code = main(["demo", "--out", str(tmp_path / "demo"), "--length", "10", "--max-seconds", "3", "--json"])
    assert code == 0
    doc = json.loads(capsys.readouterr().out)
    assert set(doc["results"]) == {"lstm", "rnn"}
    assert (tmp_path / "demo" / "gradient_flow.png").stat().st_size > 0
    assert (tmp_path / "demo" / "lstm" / "gates.png").exists()
