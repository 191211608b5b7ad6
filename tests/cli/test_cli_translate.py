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
    assert result["held_out"] == 20 and {"greedy", "beam_2", "copy_source"} <= set(result)
    assert (out / "config.json").exists()
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
    assert "max_minutes must be positive" in capsys.readouterr().err


def test_verses_without_their_debian_package_is_one_sentence(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("LSTMKIT_DIATHEKE", str(tmp_path / "missing-diatheke"))
    assert main(["translate", "train", "--data", "verses", "--out", str(tmp_path / "v")]) == 2
    err = capsys.readouterr().err
    assert "is not an executable file; point it at diatheke" in err and "Traceback" not in err
    assert not (tmp_path / "v").exists()  # nothing half-written
