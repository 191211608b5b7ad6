"""``lstmkit handwriting make-data | train | recognize | evaluate`` in-process: files, outputs, one-sentence errors."""

import json

import numpy as np

import lstmkit.cli.handwriting  # noqa: F401  (registers the command group whatever cli/__init__ lists)
from lstmkit.cli import main
from lstmkit.tasks.handwriting_data import load_dataset

SMALL = ["--hidden-size", "8", "--layers", "1", "--epochs", "1", "--step", "0.5", "--beam", "2"]


def test_make_data_train_recognize_evaluate(tmp_path, capsys):
    data, words = tmp_path / "hw.npz", tmp_path / "words.txt"
    words.write_text("on\nno\nin\nan\nit\nat\nto\n\nme\n")
    assert main(["handwriting", "make-data", "--out", str(data), "--train-samples", "24", "--validation-samples",
                 "4", "--test-samples", "4", "--test-words", "2", "--validation-words", "2", "--words", str(words),
                 "--json"]) == 0  # fmt: skip
    summary = json.loads(capsys.readouterr().out)
    assert summary["test"]["fonts"] == ["scriptc"] and summary["train"]["samples"] == 24
    out = tmp_path / "run"
    lexicon = tmp_path / "lexicon.txt"
    lexicon.write_text("one\nnot\nOnto\n")
    assert main(["handwriting", "train", "--data", str(data), "--out", str(out), *SMALL, "--lm-words",
                 str(lexicon)]) == 2  # fmt: skip
    err = capsys.readouterr().err
    assert "characters outside 'abcdefghijklmnopqrstuvwxyz' (first: 'Onto')" in err and "Traceback" not in err
    assert not out.exists()  # refused before training: nothing written
    lexicon.write_text("one\nnot\nonto\n")
    assert main(["handwriting", "train", "--data", str(data), "--out", str(out), *SMALL, "--lm-words", str(lexicon),
                 "--lm-order", "0"]) == 2  # fmt: skip
    assert "--lm-order 0 turns the n-gram off" in capsys.readouterr().err and not out.exists()
    assert main(["handwriting", "train", "--data", str(data), "--out", str(out), *SMALL, "--lm-words", str(lexicon),
                 "--lm-order", "3", "--overlap", "0.1", "--json"]) == 0  # fmt: skip
    result = json.loads(capsys.readouterr().out)
    assert {"greedy", "beam_2", "beam_2_lm"} <= set(result["test"]) and "test_seen_font" in result
    saved = json.loads((out / "config.json").read_text())["config"]["handwriting"]
    assert result["lm_extra_words"] == 3 and saved["lm_order"] == 3 and saved["overlap"] == 0.1
    assert (out / "samples.png").exists() and (out / "report.html").exists()

    sample = load_dataset(data)["test"][0]
    strokes, start = [], 0
    for end in np.flatnonzero(sample.points[:, 2] > 0.5):
        strokes.append(sample.points[start : end + 1, :2].tolist())
        start = end + 1
    (tmp_path / "word.json").write_text(json.dumps({"strokes": strokes}))
    rows = "\n".join(f"{x},{y},{int(p)},{t}" for (x, y, p), t in zip(sample.points, sample.times, strict=True))
    (tmp_path / "word.csv").write_text("x,y,pen_up,t\n" + rows)
    files = [str(tmp_path / "word.json"), str(tmp_path / "word.csv")]
    assert main(["handwriting", "recognize", str(out), *files, "--json"]) == 0
    outputs = json.loads(capsys.readouterr().out)
    assert [o["file"] for o in outputs] == files and outputs[0]["text"] == outputs[1]["text"]
    assert main(["handwriting", "recognize", str(out), *files, "--beam", "4", "--lm"]) == 0
    assert len(capsys.readouterr().out.strip().splitlines()) == 2
    # the n-gram's weight and bonus given: the same as recognize(alpha=, beta=) in Python
    assert main(["handwriting", "recognize", str(out), *files, "--beam", "4", "--lm", "--lm-weight", "3",
                 "--lm-bonus", "0.5", "--json"]) == 0  # fmt: skip
    from lstmkit.tasks.handwriting import HandwritingRecognizer
    from lstmkit.tasks.handwriting_data import read_strokes

    expected = HandwritingRecognizer.load(out).recognize([read_strokes(f) for f in files], beam_width=4, use_lm=True,
                                                         alpha=3.0, beta=0.5)  # fmt: skip
    assert [o["text"] for o in json.loads(capsys.readouterr().out)] == expected
    assert main(["handwriting", "evaluate", str(out), "--data", str(data), "--lm-weight", "1"]) == 2
    assert "add --lm to use it" in capsys.readouterr().err
    # a character LSTM run read in place of the n-gram: the same as set_char_lm in Python
    from lstmkit.tasks.language import LanguageModel

    lstm = LanguageModel(level="char", embedding_size=8, hidden_size=16, num_layers=1, bptt=8, batch_size=4, epochs=1,
                         val_fraction=0.0, test_fraction=0.0, progress=False)  # fmt: skip
    lstm.fit("\n".join(["on", "no", "in", "an"] * 8 + ["the quick brown fox jumps over a lazy dog"]) + "\n")
    lstm.save(tmp_path / "lstm")
    assert main(["handwriting", "recognize", str(out), *files, "--beam", "4", "--lm", "--lm-run",
                 str(tmp_path / "lstm"), "--lm-weight", "2", "--lm-bonus", "0", "--json"]) == 0  # fmt: skip
    expected = HandwritingRecognizer.load(out).set_char_lm(LanguageModel.load(tmp_path / "lstm")).recognize(
        [read_strokes(f) for f in files], beam_width=4, use_lm=True, alpha=2.0, beta=0.0)  # fmt: skip
    assert [o["text"] for o in json.loads(capsys.readouterr().out)] == expected
    assert main(["handwriting", "recognize", str(out), *files, "--beam", "4", "--lm", "--lm-run",
                 str(tmp_path / "lstm"), "--lm-share", "0.4", "--lm-weight", "2", "--json"]) == 0  # fmt: skip
    expected = HandwritingRecognizer.load(out).set_char_lm(LanguageModel.load(tmp_path / "lstm"), 0.4).recognize(
        [read_strokes(f) for f in files], beam_width=4, use_lm=True, alpha=2.0)  # fmt: skip
    assert [o["text"] for o in json.loads(capsys.readouterr().out)] == expected
    assert main(["handwriting", "evaluate", str(out), "--data", str(data), "--lm", "--lm-share", "0.5"]) == 2
    assert "give the LSTM with --lm-run" in capsys.readouterr().err
    assert main(["handwriting", "evaluate", str(out), "--data", str(data), "--beam", "2", "--lm", "--lm-run",
                 str(tmp_path / "lstm"), "--lm-share", "2"]) == 2  # fmt: skip
    assert "--lm-share is the LSTM's part of the next-character probability" in capsys.readouterr().err
    assert main(["handwriting", "evaluate", str(out), "--data", str(data), "--beam", "2", "--lm", "--lm-run",
                 str(tmp_path / "lstm"), "--lm-share", "0.5", "--json"]) == 0  # fmt: skip
    assert json.loads(capsys.readouterr().out)["n"] == 4
    assert main(["handwriting", "evaluate", str(out), "--data", str(data), "--lm-run", str(tmp_path / "lstm")]) == 2
    assert "--lm-run gives beam search a character language model; add --lm" in capsys.readouterr().err
    assert main(["handwriting", "evaluate", str(out), "--data", str(data), "--beam", "4", "--lm", "--lm-run",
                 str(tmp_path / "nope")]) == 2  # fmt: skip
    err = capsys.readouterr().err
    assert "nope" in err and "Traceback" not in err
    assert main(["handwriting", "evaluate", str(out), "--data", str(data), "--json"]) == 0
    alone = json.loads(capsys.readouterr().out)
    assert alone["n"] == 4
    # the same run twice is an ensemble that reads exactly as the run
    assert main(["handwriting", "evaluate", str(out), "--with", str(out), "--data", str(data), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == alone
    assert main(["handwriting", "recognize", str(out), *files, "--with", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == outputs
    assert main(["handwriting", "recognize", str(out), files[0], "--with", str(tmp_path / "nope")]) == 2
    assert "No run directory" in capsys.readouterr().err
    # each run proposes its readings and both score every proposal: one run twice reads as that run (greedy)
    assert main(["handwriting", "recognize", str(out), *files, "--with", str(out), "--combine", "sequences",
                 "--json"]) == 0  # fmt: skip
    assert json.loads(capsys.readouterr().out) == outputs
    assert main(["handwriting", "recognize", str(out), files[0], "--with", str(out), "--combine", "votes"]) == 2
    assert "combine must be 'probs'" in capsys.readouterr().err
    assert main(["handwriting", "recognize", str(out), files[0], "--combine", "sequences"]) == 2
    assert "give the others with --with" in capsys.readouterr().err

    # one sentence each, no traceback
    (tmp_path / "dot.json").write_text(json.dumps({"points": [[1, 1, 0], [1, 1, 1]]}))
    (tmp_path / "cols.csv").write_text("x,y\n1,2\n3,4\n")
    (tmp_path / "empty.json").write_text("[]")
    for name, message in [("dot.json", "the pen never moved"), ("cols.csv", "expected a header with x, y, pen_up"),
                          ("empty.json", "are empty")]:  # fmt: skip
        assert main(["handwriting", "recognize", str(out), str(tmp_path / name)]) == 2
        err = capsys.readouterr().err
        assert message in err and name in err and "Traceback" not in err
    assert main(["handwriting", "evaluate", str(out), "--data", str(data), "--split", "dev"]) == 2
    assert "no split 'dev'" in capsys.readouterr().err
    assert main(["handwriting", "recognize", str(tmp_path / "nope"), files[0]]) == 2
    assert "No run directory" in capsys.readouterr().err
    assert main(["handwriting", "train", "--data", str(data), "--out", str(tmp_path / "x"), "--step", "0"]) == 2
    assert "step must be positive" in capsys.readouterr().err
    assert main(["handwriting", "train", "--data", str(data), "--out", str(tmp_path / "x"), "--overlap", "-1"]) == 2
    err = capsys.readouterr().err
    assert "overlap is a distance in ink heights" in err and "Traceback" not in err and not (tmp_path / "x").exists()
    for option, message in [(["--fonts", "scripts,comic"], "Unknown Hershey font 'comic'"),
                            (["--fonts", "scripts,scriptc"], "include the held-out font"),
                            (["--fonts", " , "], "--fonts names no font"), (["--mix", "2"], "between 0 and 1"),
                            (["--loops", "2"], "loops is the share"),
                            (["--distort", "-1"], "0 or more")]:  # fmt: skip
        assert main(["handwriting", "make-data", "--out", str(tmp_path / "bad.npz"), "--words", str(words),
                     "--train-samples", "2", "--test-words", "2", "--validation-words", "2", *option]) == 2  # fmt: skip
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err
    assert not (tmp_path / "bad.npz").exists()
    assert main(["handwriting", "make-data", "--out", str(tmp_path / "mixed.npz"), "--words", str(words),
                 "--train-samples", "12", "--validation-samples", "2", "--test-samples", "2", "--test-words", "2",
                 "--validation-words", "2", "--fonts", "scripts,futural", "--distort", "0.05", "--mix", "1",
                 "--loops", "0.5", "--json"]) == 0  # fmt: skip
    assert set(json.loads(capsys.readouterr().out)["train"]["fonts"]) == {"scripts+mixed", "futural+mixed"}
    words.write_text("on\nOff\n")
    assert main(["handwriting", "make-data", "--out", str(data), "--words", str(words)]) == 2
    assert "outside 'abcdefghijklmnopqrstuvwxyz' (first: 'Off')" in capsys.readouterr().err
