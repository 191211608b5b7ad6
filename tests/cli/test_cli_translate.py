"""``lstmkit translate train | text | evaluate`` in-process: run directory, outputs, one-sentence errors."""

import json

import numpy as np
import pandas as pd

from lstmkit.cli import main
from lstmkit.tasks.text.seq2seq import number_phrases


def test_train_text_evaluate_on_a_csv(tmp_path, capsys, assert_png):
    src, tgt = number_phrases(np.arange(200))
    csv = tmp_path / "pairs.csv"
    pd.DataFrame({"en": src, "fr": tgt}).to_csv(csv, index=False)
    out = tmp_path / "s2s"
    args = ["--csv", str(csv), "--source-column", "en", "--target-column", "fr", "--epochs", "2", "--hidden-size",
            "16", "--beam", "2", "--json"]  # fmt: skip
    assert main(["translate", "train", *args, "--out", str(out)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert list(result)[:4] == ["task", "run_dir", "metrics", "baselines"] and result["task"] == "seq2seq"
    assert result["held_out"] == 20 and set(result["metrics"]) == {"greedy", "beam_2"}
    assert {"copy_source", "word_by_word"} == set(result["baselines"])
    saved = json.loads((out / "config.json").read_text())["config"]["seq2seq"]
    assert saved["net"]["hidden_size"] == 16 and saved["train"]["epochs"] == 2 and saved["train"]["max_minutes"] == 60
    assert_png(out / "alignment.png")
    assert main(["translate", "text", str(out), "twelve", "one hundred and one", "--json"]) == 0
    assert [r["source"] for r in json.loads(capsys.readouterr().out)] == ["twelve", "one hundred and one"]
    assert main(["translate", "evaluate", str(out), "--csv", str(csv), "--source-column", "en", "--target-column",
                 "fr", "--json"]) == 0  # fmt: skip
    assert json.loads(capsys.readouterr().out)["n"] == 200
    assert main(["translate", "train", "--csv", str(csv), "--out", str(tmp_path / "x")]) == 2
    assert "Unknown column(s) ['source', 'target']" in capsys.readouterr().err
    assert main(["translate", "train", *args, "--out", str(tmp_path / "y"), "--attention", "cosine"]) == 2
    assert "attention" in capsys.readouterr().err
    assert main(["translate", "text", str(tmp_path / "nope"), "twelve"]) == 2
    assert "No run directory" in capsys.readouterr().err
    assert main(["translate", "train", *args, "--out", str(tmp_path / "z"), "--max-minutes", "0"]) == 2
    assert "max_minutes must be a positive number" in capsys.readouterr().err


def test_verses_without_their_debian_package_is_one_sentence(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("LSTMKIT_DIATHEKE", str(tmp_path / "missing-diatheke"))
    assert main(["translate", "train", "--data", "verses", "--out", str(tmp_path / "v")]) == 2
    err = capsys.readouterr().err
    assert "is not an executable file; point it at diatheke" in err and "Traceback" not in err
    assert not (tmp_path / "v").exists()  # nothing half-written


def test_train_reads_set_and_config_into_the_sections(tmp_path, capsys):
    """Issue 19: --config FILE < the command's options < --set, every field reachable by its dotted path."""
    src, tgt = number_phrases(np.arange(60))
    csv = tmp_path / "pairs.csv"
    pd.DataFrame({"source": src, "target": tgt}).to_csv(csv, index=False)
    config = tmp_path / "s2s.json"
    config.write_text(json.dumps({"net": {"hidden_size": 12, "attention": "luong"}, "sampling_max": 0.0}))
    out = tmp_path / "s2s"
    args = ["translate", "train", "--csv", str(csv), "--out", str(out), "--config", str(config), "--epochs", "1",
            "--embedding-size", "8", "--set", "net.hidden_size=10", "--set", "train.lr=5e-3", "--layers", "2",
            "--beam", "1", "--json"]  # fmt: skip
    assert main(args) == 0
    result = json.loads(capsys.readouterr().out)
    assert list(result)[:4] == ["task", "run_dir", "metrics", "baselines"] and "greedy" in result["metrics"]
    saved = json.loads((out / "config.json").read_text())["config"]["seq2seq"]
    assert saved["net"] == {**saved["net"], "hidden_size": 10, "attention": "luong", "embedding_size": 8,
                            "num_layers": 2}  # fmt: skip
    assert saved["sampling_max"] == 0.0 and saved["train"]["lr"] == 5e-3 and saved["train"]["epochs"] == 1
    assert main([*args[:2], "--csv", str(csv), "--out", str(tmp_path / "g"), "--device", "cuda"]) == 2
    assert "trains on the CPU" in capsys.readouterr().err
