"""``lstmkit text train | generate | evaluate`` in-process: run directory, streaming output, one-sentence errors."""

import json

from lstmkit.cli import main

TEXT = "".join(
    f"{w}: the {x} is {y}.\n" for w in ("ANNA", "BEN") for x in ("sea", "sky", "moon") for y in ("grey", "calm")
)


def test_train_generate_evaluate_on_a_text_file(tmp_path, capsys):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(TEXT * 20)
    out = tmp_path / "lm"
    small = ["--hidden-size", "24", "--embedding-size", "8", "--layers", "1", "--batch-size", "4", "--bptt", "16",
             "--epochs", "2", "--json"]  # fmt: skip
    assert main(["text", "train", "--text", str(corpus), "--out", str(out), *small]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["test"]["nats_per_char"] > 0 and result["ngram"]["order"] == 5
    for name in ("config.json", "model.safetensors", "metrics.csv", "result.json", "samples.txt", "report.html"):
        assert (out / name).exists(), name
    vocab = json.loads((out / "config.json").read_text())["config"]["tokenizer"]
    assert vocab["level"] == "char" and "A" in vocab["chars"]  # the vocabulary is JSON beside the weights

    assert main(["text", "generate", str(out), "--prompt", "BEN:", "--max-tokens", "30", "--seed", "1"]) == 0
    streamed = capsys.readouterr().out
    assert streamed.startswith("BEN:") and len(streamed) == len("BEN:") + 30 + 1
    assert main(["text", "generate", str(out), "--prompt", "BEN:", "--max-tokens", "30", "--seed", "1", "--json"]) == 0
    assert "BEN:" + json.loads(capsys.readouterr().out)["text"] + "\n" == streamed  # same seed, same text
    assert main(["text", "generate", str(out), "--prompt", "BEN:", "--max-tokens", "5", "--beam", "3"]) == 0
    capsys.readouterr()

    assert main(["text", "evaluate", str(out), "--text", str(corpus), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["chars"] == len(TEXT * 20)

    assert main(["text", "generate", str(out), "--prompt", "Zebra"]) == 2
    failed = capsys.readouterr()
    assert "The prompt has 2 character(s) the model never saw in training ('Z', 'b')" in failed.err
    assert failed.out == ""  # nothing printed before the error
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"ok\xfe")
    assert main(["text", "evaluate", str(out), "--text", str(bad)]) == 2
    assert "bad.txt: invalid UTF-8 at byte offset 2" in capsys.readouterr().err
    assert main(["text", "train", "--text", str(bad), "--out", str(tmp_path / "x"), *small]) == 2
    assert "invalid UTF-8" in capsys.readouterr().err
    short = tmp_path / "short.txt"
    short.write_text("too short")
    assert main(["text", "train", "--text", str(short), "--out", str(tmp_path / "y"), *small]) == 2
    assert "too few for one batch" in capsys.readouterr().err
    assert not (tmp_path / "y" / "config.json").exists()
    assert main(["text", "train", "--out", str(tmp_path / "z")]) == 2
    assert "Give the text one way" in capsys.readouterr().err


def test_classify_train_predict_evaluate_on_a_csv(tmp_path, capsys):
    import pandas as pd

    rows = [(f"the film was {w} {f}", int(w in ("great", "superb"))) for w in ("great", "superb", "dull", "awful")
            for f in ("today", "again", "indeed", "really", "truly", "sadly", "surely", "maybe")] * 3  # fmt: skip
    csv = tmp_path / "reviews.csv"
    pd.DataFrame(rows, columns=["review", "stars"]).to_csv(csv, index=False)
    out = tmp_path / "clf"
    args = ["--csv", str(csv), "--text-column", "review", "--label-column", "stars", "--epochs", "2",
            "--hidden-size", "8", "--embedding-size", "8", "--json"]  # fmt: skip
    assert main(["text", "classify", "train", *args, "--out", str(out)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["held_out"] == 19 and 0 <= result["test"]["accuracy"] <= 1 and "accuracy" in result["baseline"]
    for name in ("config.json", "model.safetensors", "metrics.csv", "result.json", "report.html"):
        assert (out / name).exists(), name
    assert main(["text", "classify", "predict", str(out), "--csv", str(csv), "--text-column", "review", "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)) == len(rows)
    assert main(["text", "classify", "evaluate", str(out), "--csv", str(csv), "--text-column", "review",
                 "--label-column", "stars", "--json"]) == 0  # fmt: skip
    assert json.loads(capsys.readouterr().out)["n"] == len(rows)
    assert main(["text", "classify", "train", "--csv", str(csv), "--out", str(tmp_path / "x")]) == 2
    assert "Unknown column(s) ['text', 'label']" in capsys.readouterr().err
    assert main(["text", "classify", "train", *args, "--out", str(tmp_path / "y"), "--pooling", "median"]) == 2
    assert "Unknown pooling 'median'" in capsys.readouterr().err


SMALL = ["--hidden-size", "24", "--embedding-size", "8", "--layers", "1", "--batch-size", "4", "--bptt", "16"]


def test_a_diverging_training_is_one_sentence_naming_the_learning_rate(tmp_path, capsys):
    """Issue 18: --lr 1e9 ended in an OverflowError traceback."""
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(TEXT * 20)
    assert main(["text", "train", "--text", str(corpus), "--out", str(tmp_path / "lm"), *SMALL, "--lr", "1e9"]) == 2
    err = capsys.readouterr().err
    assert "Training diverged at step" in err and "learning rate 1e9" in err and "(1e7 to 1e8)" in err
    assert "Traceback" not in err
