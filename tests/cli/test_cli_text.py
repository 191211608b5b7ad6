"""``lstmkit text train | generate | evaluate`` in-process: run directory, streaming output, one-sentence errors."""

import json
import math
from collections import Counter

import numpy as np
import pytest

from lstmkit.cli import main

TEXT = "".join(
    f"{w}: the {x} is {y}.\n" for w in ("ANNA", "BEN") for x in ("sea", "sky", "moon") for y in ("grey", "calm")
)


def unigram_nats(text: str) -> float:
    """Entropy of the text's characters (2.93 nats for TEXT): a model that learned only their frequencies scores it."""
    return -sum(n / len(text) * math.log(n / len(text)) for n in Counter(text).values())


def uniform_nats(text: str) -> float:
    """log(vocabulary) (3.14 nats for TEXT): an untrained model scores about this."""
    return math.log(len(set(text)))


@pytest.mark.slow
def test_train_generate_evaluate_on_a_text_file(tmp_path, capsys):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(TEXT * 20)
    out = tmp_path / "lm"
    small = ["--hidden-size", "24", "--embedding-size", "8", "--layers", "1", "--batch-size", "4", "--bptt", "16",
             "--epochs", "2", "--json"]  # fmt: skip
    assert main(["text", "train", "--text", str(corpus), "--out", str(out), *small]) == 0
    result = json.loads(capsys.readouterr().out)
    assert set(result) >= {"task", "run_dir", "metrics", "baselines"} and result["task"] == "language_model"
    assert result["metrics"]["nats_per_char"] < unigram_nats(TEXT)  # 2.29 measured
    assert set(result["baselines"]) == {"5-gram kneser-ney", "5-gram witten-bell"}
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
    assert list(result)[:4] == ["task", "run_dir", "metrics", "baselines"] and result["task"] == "text_classifier"
    confusion = np.array(result["metrics"]["confusion"])  # two epochs of 8 units: often one class (0.42-0.53)
    assert result["held_out"] == 19 == confusion.sum()
    assert result["metrics"]["accuracy"] == pytest.approx(np.trace(confusion) / 19)
    assert result["baselines"]["bag_of_words"]["accuracy"] > 0.9  # a word decides the label: bag of words gets 1.0
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


def test_text_train_reads_set_and_config_into_the_sections_and_prints_the_one_shape(tmp_path, capsys):
    """Issue 19: --config FILE < the command's options < --set; the JSON is {task, run_dir, metrics, baselines}."""
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(TEXT * 20)
    config = tmp_path / "lm.json"
    config.write_text(json.dumps({"net": {"hidden_size": 12, "dropout": 0.0}, "train": {"lr": 5e-3}, "bptt": 12}))
    out = tmp_path / "lm"
    args = ["text", "train", "--text", str(corpus), "--out", str(out), "--config", str(config), "--embedding-size",
            "8", "--layers", "1", "--batch-size", "4", "--epochs", "1", "--set", "train.lr=3e-3", "--set",
            "net.hidden_size=10", "--json"]  # fmt: skip
    assert main(args) == 0
    result = json.loads(capsys.readouterr().out)
    assert list(result)[:4] == ["task", "run_dir", "metrics", "baselines"] and result["task"] == "language_model"
    assert result["run_dir"] == str(out) and result["metrics"]["tokens"] > 0
    assert result["baselines"]["5-gram kneser-ney"]["nats_per_char"] > 0  # the n-grams of the same training part
    saved = json.loads((out / "config.json").read_text())["config"]["lm"]
    assert saved["net"] == {**saved["net"], "hidden_size": 10, "embedding_size": 8, "num_layers": 1, "dropout": 0.0}
    assert saved["train"]["lr"] == 3e-3 and saved["train"]["epochs"] == 1 and saved["train"]["batch_size"] == 4
    assert saved["bptt"] == 12 and saved["train"]["max_minutes"] == 5.0  # the task's time budget, by default
    assert main(["text", "evaluate", str(out), "--text", str(corpus), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["chars"] == len(TEXT * 20)  # JSON, not a Python dict
    assert main([*args[:-3], "--set", "train.nope=1"]) == 2
    assert "nope" in capsys.readouterr().err


def test_text_train_tests_on_the_test_file_and_reports_the_chosen_size(tmp_path, capsys):
    """Issue 20: --test FILE is the test text (the training text then keeps no test part), scored beside both 5-grams
    in the same run; the size given by hand is recorded as given, with the steps the budget allows."""
    corpus, test = tmp_path / "corpus.txt", tmp_path / "test.txt"
    corpus.write_text(TEXT * 20)
    test.write_text("BEN: the moon is calm.\n" * 7)
    out = tmp_path / "lm"
    assert main(["text", "train", "--text", str(corpus), "--test", str(test), "--out", str(out), *SMALL, "--epochs",
                 "1", "--json"]) == 0  # fmt: skip
    result = json.loads(capsys.readouterr().out)
    assert result["metrics"]["chars"] == len(test.read_text()) and result["test_source"] == "the --test file"
    assert result["size"]["reason"] == "given" and result["size"]["hidden_size"] == 24
    assert result["baselines"]["5-gram kneser-ney"]["nats_per_char"] < uniform_nats(TEXT)
    assert isinstance(result["beats_ngrams"], bool)
    saved = json.loads((out / "config.json").read_text())["config"]["lm"]
    assert saved["test_fraction"] == 0.0 and saved["net"]["num_layers"] == 1
    assert main(["text", "train", "--text", str(corpus), "--test", str(tmp_path / "none.txt"), "--out",
                 str(tmp_path / "x"), *SMALL]) == 2  # fmt: skip
    assert "none.txt" in capsys.readouterr().err


def test_a_text_without_line_breaks_trains_saves_and_generates(tmp_path, capsys):
    """Issue 18: training ended, then sampling after '\\n' failed and nothing was saved."""
    corpus = tmp_path / "one_line.txt"
    corpus.write_text(TEXT.replace("\n", " ") * 20)
    out = tmp_path / "lm"
    assert main(["text", "train", "--text", str(corpus), "--out", str(out), *SMALL, "--epochs", "1", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert "warnings" not in result and result["metrics"]["nats_per_char"] < uniform_nats(corpus.read_text())  # 2.79
    for name in ("config.json", "model.safetensors", "result.json", "samples.txt", "report.html"):
        assert (out / name).exists(), name
    assert "'\\n'" not in (out / "samples.txt").read_text()  # prompted with what the model knows
    assert main(["text", "generate", str(out), "--max-tokens", "10", "--seed", "1", "--json"]) == 0  # empty prompt
    assert len(json.loads(capsys.readouterr().out)["text"]) == 10


def test_a_failure_after_training_is_a_warning_and_the_model_is_kept(tmp_path, capsys, monkeypatch):
    import lstmkit.report

    corpus = tmp_path / "corpus.txt"
    corpus.write_text(TEXT * 20)
    out = tmp_path / "lm"
    monkeypatch.setattr(lstmkit.report, "write_report", lambda run: (_ for _ in ()).throw(OSError("Disk full.")))
    assert main(["text", "train", "--text", str(corpus), "--out", str(out), *SMALL, "--epochs", "1", "--json"]) == 0
    captured = capsys.readouterr()
    assert "Writing report.html failed: Disk full. The model is saved in" in captured.err
    assert json.loads(captured.out)["warnings"] == json.loads((out / "result.json").read_text())["warnings"]
    assert main(["text", "generate", str(out), "--prompt", "BEN:", "--max-tokens", "5"]) == 0  # the model is there
    capsys.readouterr()
    assert main(["text", "train", "--text", str(corpus), "--out", str(out), *SMALL]) == 2
    assert "already holds a finished language model" in capsys.readouterr().err


def _interrupt_in_epoch_2(monkeypatch):
    from lstmkit.train.loop import Trainer

    real = Trainer._optimizer_step

    def step(self, *args, **kwargs):
        if self.history:  # epoch 1 is done (and checkpointed)
            raise KeyboardInterrupt
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Trainer, "_optimizer_step", step)


def test_an_interrupted_run_has_a_config_a_report_and_resumes(tmp_path, capsys, monkeypatch):
    """Issue 18: a killed `text train` left no config.json, and `lstmkit resume` knew no 'language_model' kind."""
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(TEXT * 20)
    out = tmp_path / "lm"
    args = ["text", "train", "--text", str(corpus), "--out", str(out), *SMALL, "--epochs", "2"]
    with monkeypatch.context() as m:
        _interrupt_in_epoch_2(m)
        assert main(args) == 130
    capsys.readouterr()
    started = json.loads((out / "config.json").read_text())  # written as training started
    assert started["status"] == "training" and started["kind"] == "language_model"
    assert started["config"]["net"]["hidden_size"] == 24 and started["command"]["argv"] == args
    assert not (out / "model.safetensors").exists()
    assert main(["report", str(out)]) == 0 and (out / "report.html").exists()  # a run in progress has a report
    assert main(["text", "generate", str(out)]) == 2
    assert "whose model has not been saved" in capsys.readouterr().err
    assert main(args) == 2  # a plain re-run is told how to continue
    assert "--resume" in capsys.readouterr().err

    assert main(["resume", str(out), "--json"]) == 0  # the recorded command, again, with --resume
    result = json.loads(capsys.readouterr().out)
    assert result["run_dir"] == str(out.resolve()) and result["metrics"]["nats_per_char"] < unigram_nats(TEXT)
    saved = json.loads((out / "config.json").read_text())
    assert "status" not in saved and "tokenizer" in saved["config"]
    assert len((out / "metrics.csv").read_text().splitlines()) == 3  # both epochs, once each
    assert main(["resume", str(out)]) == 2
    assert "finished run" in capsys.readouterr().err


def test_a_diverged_run_is_understood_by_report_and_by_a_rerun(tmp_path, capsys):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(TEXT * 20)
    out = tmp_path / "lm"
    args = ["text", "train", "--text", str(corpus), "--out", str(out), *SMALL, "--epochs", "1"]
    assert main([*args, "--lr", "1e9"]) == 2
    assert "Training diverged at step 2" in capsys.readouterr().err
    assert json.loads((out / "config.json").read_text())["status"] == "training"
    assert main(["report", str(out)]) == 0
    assert main([*args, "--lr", "1e9", "--resume"]) == 2  # from its last good checkpoint it diverges again
    assert "Training diverged" in capsys.readouterr().err
    assert main([*args, "--lr", "1e-3", "--json"]) == 0  # nothing past step 0 was kept: a re-run starts afresh
    assert json.loads(capsys.readouterr().out)["metrics"]["nats_per_char"] < uniform_nats(TEXT)  # fresh weights: 3.00
    assert "status" not in json.loads((out / "config.json").read_text())


def test_text_classify_train_reads_set_and_config_into_the_sections(tmp_path, capsys):
    """Issue 19: --config FILE < the command's options < --set, for the classifier's net and train sections."""
    csv = tmp_path / "reviews.csv"
    rows = [f"the film was {w} {f},{int(w == 'great')}" for w in ("great", "dull") for f in ("today", "again")] * 6
    csv.write_text("text,label\n" + "\n".join(rows) + "\n")
    config = tmp_path / "clf.json"
    config.write_text(json.dumps({"net": {"hidden_size": 6, "pooling": "mean"}, "train": {"lr": 5e-3}}))
    out = tmp_path / "clf"
    args = ["text", "classify", "train", "--csv", str(csv), "--out", str(out), "--config", str(config), "--epochs",
            "1", "--embedding-size", "4", "--set", "net.hidden_size=5", "--set", "max_length=7", "--no-baseline",
            "--json"]  # fmt: skip
    assert main(args) == 0
    result = json.loads(capsys.readouterr().out)
    assert list(result)[:4] == ["task", "run_dir", "metrics", "baselines"] and result["baselines"] == {}
    saved = json.loads((out / "config.json").read_text())["config"]["params"]
    assert saved["net"] == {**saved["net"], "hidden_size": 5, "pooling": "mean", "embedding_size": 4}
    assert saved["max_length"] == 7 and saved["train"]["lr"] == 5e-3 and saved["train"]["epochs"] == 1
    assert main([*args[:5], "--out", str(tmp_path / "g"), "--device", "cuda"]) == 2
    assert "trains on the CPU" in capsys.readouterr().err


def test_text_classify_train_resumes_too(tmp_path, capsys, monkeypatch):
    csv = tmp_path / "reviews.csv"
    rows = [f"the film was {w} {f},{int(w == 'great')}" for w in ("great", "dull") for f in ("today", "again")] * 6
    csv.write_text("text,label\n" + "\n".join(rows) + "\n")
    out = tmp_path / "clf"
    args = ["text", "classify", "train", "--csv", str(csv), "--out", str(out), "--epochs", "2", "--hidden-size", "8",
            "--embedding-size", "8", "--no-baseline", "--json"]  # fmt: skip
    with monkeypatch.context() as m:
        _interrupt_in_epoch_2(m)
        assert main(args) == 130
    capsys.readouterr()
    assert json.loads((out / "config.json").read_text())["status"] == "training"
    assert main(["resume", str(out), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert (result["train"], result["held_out"]) == (19, 5) and (out / "model.safetensors").exists()


def test_resume_of_a_run_started_from_python_says_how_to_continue_it(tmp_path, capsys, monkeypatch):
    from lstmkit.tasks.text.language import LanguageModel

    out = tmp_path / "lm"
    lm = LanguageModel(hidden_size=8, embedding_size=8, num_layers=1, batch_size=4, bptt=16, epochs=2, progress=False)
    with monkeypatch.context() as m:
        _interrupt_in_epoch_2(m)
        with pytest.raises(KeyboardInterrupt):
            lm.fit(TEXT * 20, run_dir=out)
    assert "command" not in json.loads((out / "config.json").read_text())
    assert main(["resume", str(out)]) == 2
    err = capsys.readouterr().err
    assert "'language_model' run" in err and "started from Python" in err and "resume=True" in err
    assert "Traceback" not in err and f"lstmkit resume {out}" not in err  # not the command the user just ran


def test_a_network_too_large_for_the_machine_is_refused_before_allocating(tmp_path, capsys):
    """Issue 18: --hidden-size 100000000 was an allocator error for 1.6e17 bytes."""
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(TEXT * 20)
    small = [a if a != "24" else "100000000" for a in SMALL]
    assert main(["text", "train", "--text", str(corpus), "--out", str(tmp_path / "lm"), *small]) == 2
    err = capsys.readouterr().err
    assert "LSTM: 1 layer(s) of hidden size 100,000,000 would hold" in err and "(1.6e+17 bytes)" in err
    assert "more than this machine's memory" in err and "Traceback" not in err


# ---- issue 18, found by tests/test_csv_properties.py


def _text_csv(path, labels, texts=None):
    import pandas as pd

    words = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda omicron".split()
    texts = texts or [f"{words[i % len(words)]}" for i in range(len(labels))]
    pd.DataFrame({"text": texts, "label": labels}).to_csv(path, index=False)
    return path


def _refused_line(capsys, argv) -> str:
    assert main(argv) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and len(lines[0]) < 300 and captured.out == "", captured.err
    return lines[0]


def test_text_classify_keeps_a_run_whose_texts_leave_the_baseline_no_words(tmp_path, capsys):
    """No word in two training texts: the bag-of-words baseline raised ("After pruning, no terms remain") after the
    model was saved, so the command failed with model.safetensors written, no result.json, and a re-run was refused
    as a finished run. Now the run is kept without a baseline. And predict read its CSV with pandas directly, so a
    header alone printed nothing and exited 0."""
    csv = _text_csv(tmp_path / "words.csv", ["pos", "neg"] * 5)
    out = tmp_path / "clf"
    small = ["--epochs", "1", "--hidden-size", "4", "--embedding-size", "4", "--json"]
    assert main(["text", "classify", "train", "--csv", str(csv), *small, "--out", str(out)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["baselines"] == {} and "accuracy" in result["metrics"]
    assert (out / "model.safetensors").is_file() and (out / "result.json").is_file()
    header = tmp_path / "header.csv"
    header.write_text("text\n")
    line = _refused_line(capsys, ["text", "classify", "predict", str(out), "--csv", str(header)])
    assert line == "error: header.csv has no data rows, only the header; give a file with data under its header."
    line = _refused_line(capsys, ["text", "classify", "predict", str(out), "--csv", str(csv), "--text-column", "x"])
    assert (
        line == "error: Unknown column 'x'; words.csv has ['text', 'label']. Name the text column with --text-column."
    )


def test_text_classify_refuses_held_out_classes_before_training(tmp_path, capsys):
    """A class only the held-out texts have made the held-out evaluation raise after the model was saved (a run that
    looked finished but had no result.json), quoting the label uncapped (a 100,000-character label)."""
    from lstmkit.tasks.text.classification import holdout_split

    labels = ["pos", "neg"] * 5
    labels[holdout_split(10, 0.2, 0)[1][0]] = "r" * 100_000
    csv = _text_csv(tmp_path / "rare.csv", labels)
    out = tmp_path / "clf"
    line = _refused_line(capsys, ["text", "classify", "train", "--csv", str(csv), "--epochs", "1", "--out", str(out)])
    assert line.startswith("error: The held-out texts (--holdout 0.2) include the class(es) ['rrrr")
    assert "which no training text has" in line and not out.exists()
    one = _text_csv(tmp_path / "one.csv", ["x" * 100_000] * 6)
    line = _refused_line(capsys, ["text", "classify", "train", "--csv", str(one), "--epochs", "1", "--out", str(out)])
    assert line.startswith("error: All labels are 'xxxx") and "a classifier needs at least two classes" in line
    assert not out.exists()


def test_a_first_row_with_an_extra_field_is_refused_not_read_shifted(tmp_path, capsys):
    """pandas took the first column as the index when the first data row had one field more than the header: every
    column moved one place (the texts became row names, the labels texts, 'extra' a label), and the refusal named
    "Row 'bad film'" (a file whose rows all had the extra field trained on the shifted columns)."""
    csv = tmp_path / "ragged.csv"
    csv.write_text("text,label\ngood film,pos,extra\n" + "bad film,neg\ngreat plot,pos\n" * 4)
    out = tmp_path / "clf"
    line = _refused_line(capsys, ["text", "classify", "train", "--csv", str(csv), "--epochs", "1", "--out", str(out)])
    assert line == (
        "error: ragged.csv could not be read as CSV: a row has more fields than the header names; remove the extra "
        "fields, or name every column in the header."
    )
    assert not out.exists()
