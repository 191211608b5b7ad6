"""``lstmkit handwriting make-data | train | recognize | evaluate`` in-process: files, outputs, one-sentence errors.

One small data set and one run, made once for the module (they are only read afterwards), serve every test."""

import contextlib
import io
import json

import numpy as np
import pytest

import lstmkit.cli.handwriting  # noqa: F401  (registers the command group whatever cli/__init__ lists)
from lstmkit.cli import main
from lstmkit.tasks.recognition.handwriting.data import load_dataset

SMALL = ["--hidden-size", "8", "--layers", "1", "--epochs", "1", "--step", "0.5", "--beam", "2"]
WORDS = "on\nno\nin\nan\nit\nat\nto\n\nme\n"


def _json_of(argv: list[str]):
    """Run a command that must succeed with --json; its stdout parsed (usable from module-scoped fixtures)."""
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(io.StringIO()):
        assert main([*argv, "--json"]) == 0
    return json.loads(stdout.getvalue())


def _refused(capsys, argv: list[str], message: str) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err, err
    return err


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """(the data file, the word list, make-data's JSON summary)"""
    root = tmp_path_factory.mktemp("hw-data")
    path, words = root / "hw.npz", root / "words.txt"
    words.write_text(WORDS)
    summary = _json_of(["handwriting", "make-data", "--out", str(path), "--train-samples", "24",
                        "--validation-samples", "4", "--test-samples", "4", "--test-words", "2", "--validation-words",
                        "2", "--words", str(words)])  # fmt: skip
    return path, words, summary


@pytest.fixture(scope="module")
def run(tmp_path_factory, data):
    """(the run directory, train's JSON result): a 3-gram over the training words plus a three-word lexicon."""
    root = tmp_path_factory.mktemp("hw-run")
    lexicon, out = root / "lexicon.txt", root / "run"
    lexicon.write_text("one\nnot\nonto\n")
    result = _json_of(["handwriting", "train", "--data", str(data[0]), "--out", str(out), *SMALL, "--lm-words",
                       str(lexicon), "--lm-order", "3", "--overlap", "0.1"])  # fmt: skip
    return out, result


@pytest.fixture(scope="module")
def files(tmp_path_factory, data):
    """One test word written twice: as JSON strokes and as an x,y,pen_up,t CSV."""
    root = tmp_path_factory.mktemp("hw-files")
    sample = load_dataset(data[0])["test"][0]
    strokes, start = [], 0
    for end in np.flatnonzero(sample.points[:, 2] > 0.5):
        strokes.append(sample.points[start : end + 1, :2].tolist())
        start = end + 1
    (root / "word.json").write_text(json.dumps({"strokes": strokes}))
    rows = "\n".join(f"{x},{y},{int(p)},{t}" for (x, y, p), t in zip(sample.points, sample.times, strict=True))
    (root / "word.csv").write_text("x,y,pen_up,t\n" + rows)
    return [str(root / "word.json"), str(root / "word.csv")]


@pytest.fixture(scope="module")
def greedy(run, files):
    """recognize's plain (greedy) JSON for both files."""
    return _json_of(["handwriting", "recognize", str(run[0]), *files])


@pytest.fixture(scope="module")
def char_lm(tmp_path_factory):
    """A tiny character LSTM run, read by --lm-run in place of the n-gram."""
    from lstmkit.tasks.text.language import LanguageModel

    out = tmp_path_factory.mktemp("hw-lstm") / "lstm"
    lstm = LanguageModel(level="char", embedding_size=8, hidden_size=16, num_layers=1, bptt=8, batch_size=4, epochs=1,
                         val_fraction=0.0, test_fraction=0.0, progress=False)  # fmt: skip
    lstm.fit("\n".join(["on", "no", "in", "an"] * 8 + ["the quick brown fox jumps over a lazy dog"]) + "\n")
    lstm.save(out)
    return out


def _python_reading(run_dir, files, char_lm=None, share=None, **kwargs) -> list[str]:
    from lstmkit.tasks.recognition.handwriting.recognizer import HandwritingRecognizer
    from lstmkit.tasks.recognition.handwriting.strokes import read_strokes
    from lstmkit.tasks.text.language import LanguageModel

    recognizer = HandwritingRecognizer.load(run_dir)
    if char_lm is not None:
        lm = LanguageModel.load(char_lm)
        recognizer = recognizer.set_char_lm(lm) if share is None else recognizer.set_char_lm(lm, share)
    return recognizer.recognize([read_strokes(f) for f in files], **kwargs)


# ---- make-data ------------------------------------------------------------------------------------------------------


def test_make_data_writes_the_samples_asked_for_with_the_font_held_out(data):
    summary = data[2]
    assert summary["test"]["fonts"] == ["scriptc"] and summary["train"]["samples"] == 24


def test_make_data_mixes_fonts_with_distortion_and_loops(data, tmp_path):
    summary = _json_of(["handwriting", "make-data", "--out", str(tmp_path / "mixed.npz"), "--words", str(data[1]),
                        "--train-samples", "12", "--validation-samples", "2", "--test-samples", "2", "--test-words",
                        "2", "--validation-words", "2", "--fonts", "scripts,futural", "--distort", "0.05", "--mix",
                        "1", "--loops", "0.5"])  # fmt: skip
    assert set(summary["train"]["fonts"]) == {"scripts+mixed", "futural+mixed"}


@pytest.mark.parametrize(
    "option, message",
    [
        (["--fonts", "scripts,comic"], "Unknown Hershey font 'comic'"),
        (["--fonts", "scripts,scriptc"], "include the held-out font"),
        (["--fonts", " , "], "--fonts names no font"),
        (["--mix", "2"], "between 0 and 1"),
        (["--loops", "2"], "loops is the share"),
        (["--distort", "-1"], "0 or more"),
    ],
)
def test_make_data_refuses_bad_options_in_one_sentence_writing_nothing(data, tmp_path, capsys, option, message):
    make_data = ["handwriting", "make-data", "--out", str(tmp_path / "bad.npz"), "--words", str(data[1]),
                 "--train-samples", "2", "--test-words", "2", "--validation-words", "2"]  # fmt: skip
    _refused(capsys, [*make_data, *option], message)
    assert not (tmp_path / "bad.npz").exists()


def test_make_data_refuses_words_outside_the_alphabet(tmp_path, capsys):
    words = tmp_path / "words.txt"
    words.write_text("on\nOff\n")
    _refused(capsys, ["handwriting", "make-data", "--out", str(tmp_path / "hw.npz"), "--words", str(words)],
             "outside 'abcdefghijklmnopqrstuvwxyz' (first: 'Off')")  # fmt: skip


# ---- train ----------------------------------------------------------------------------------------------------------


def test_train_writes_a_run_with_greedy_beam_and_lm_results(run, assert_png):
    out, result = run
    assert list(result)[:4] == ["task", "run_dir", "metrics", "baselines"] and result["task"] == "handwriting"
    tests = result["tests"]
    assert {"greedy", "beam_2", "beam_2_lm"} <= set(tests["test"]) and "test_seen_font" in tests
    assert result["metrics"]["cer"] == tests["test"]["greedy"]["cer"]
    assert result["metrics"]["wer_beam_2_lm"] == tests["test"]["beam_2_lm"]["wer"]
    saved = json.loads((out / "config.json").read_text())["config"]["handwriting"]
    assert result["lm_extra_words"] == 3 and saved["lm_order"] == 3 and saved["overlap"] == 0.1
    assert saved["net"]["hidden_size"] == 8 and saved["train"]["epochs"] == 1
    assert (out / "report.html").exists()
    assert_png(out / "samples.png")


def test_train_refuses_a_bad_lexicon_or_lm_order_before_writing_anything(data, tmp_path, capsys):
    out, lexicon = tmp_path / "run", tmp_path / "lexicon.txt"
    lexicon.write_text("one\nnot\nOnto\n")
    train = ["handwriting", "train", "--data", str(data[0]), "--out", str(out), *SMALL, "--lm-words", str(lexicon)]
    _refused(capsys, train, "characters outside 'abcdefghijklmnopqrstuvwxyz' (first: 'Onto')")
    assert not out.exists()
    lexicon.write_text("one\nnot\nonto\n")
    _refused(capsys, [*train, "--lm-order", "0"], "--lm-order 0 turns the n-gram off")
    assert not out.exists()


def test_train_refuses_bad_step_and_overlap(data, tmp_path, capsys):
    train = ["handwriting", "train", "--data", str(data[0]), "--out", str(tmp_path / "x")]
    _refused(capsys, [*train, "--step", "0"], "step must be positive")
    _refused(capsys, [*train, "--overlap", "-1"], "overlap is a distance in ink heights")
    assert not (tmp_path / "x").exists()


# ---- recognize ------------------------------------------------------------------------------------------------------


def test_recognize_reads_json_and_csv_strokes_alike(run, files, greedy, capsys):
    assert [o["file"] for o in greedy] == files and greedy[0]["text"] == greedy[1]["text"]
    assert main(["handwriting", "recognize", str(run[0]), *files, "--beam", "4", "--lm"]) == 0
    assert len(capsys.readouterr().out.strip().splitlines()) == 2  # one line per file without --json


def test_recognize_with_lm_weight_and_bonus_reads_as_python(run, files):
    """The n-gram's weight and bonus given: the same as recognize(alpha=, beta=) in Python."""
    outputs = _json_of(["handwriting", "recognize", str(run[0]), *files, "--beam", "4", "--lm", "--lm-weight", "3",
                        "--lm-bonus", "0.5"])  # fmt: skip
    expected = _python_reading(run[0], files, beam_width=4, use_lm=True, alpha=3.0, beta=0.5)
    assert [o["text"] for o in outputs] == expected


def test_recognize_with_a_character_lstm_reads_as_set_char_lm_in_python(run, files, char_lm):
    recognize = ["handwriting", "recognize", str(run[0]), *files, "--beam", "4", "--lm", "--lm-run", str(char_lm)]
    outputs = _json_of([*recognize, "--lm-weight", "2", "--lm-bonus", "0"])
    expected = _python_reading(run[0], files, char_lm, beam_width=4, use_lm=True, alpha=2.0, beta=0.0)
    assert [o["text"] for o in outputs] == expected
    outputs = _json_of([*recognize, "--lm-share", "0.4", "--lm-weight", "2"])
    expected = _python_reading(run[0], files, char_lm, 0.4, beam_width=4, use_lm=True, alpha=2.0)
    assert [o["text"] for o in outputs] == expected


def test_recognize_refuses_bad_stroke_files_and_a_missing_run(run, files, tmp_path, capsys):
    (tmp_path / "dot.json").write_text(json.dumps({"points": [[1, 1, 0], [1, 1, 1]]}))
    (tmp_path / "cols.csv").write_text("x,y\n1,2\n3,4\n")
    (tmp_path / "empty.json").write_text("[]")
    for name, message in [("dot.json", "the pen never moved"), ("cols.csv", "expected a header with x, y, pen_up"),
                          ("empty.json", "are empty")]:  # fmt: skip
        err = _refused(capsys, ["handwriting", "recognize", str(run[0]), str(tmp_path / name)], message)
        assert name in err
    _refused(capsys, ["handwriting", "recognize", str(tmp_path / "nope"), files[0]], "No run directory")


# ---- evaluate -------------------------------------------------------------------------------------------------------


def test_evaluate_with_a_character_lstm_scores_the_test_split(run, data, char_lm):
    result = _json_of(["handwriting", "evaluate", str(run[0]), "--data", str(data[0]), "--beam", "2", "--lm",
                       "--lm-run", str(char_lm), "--lm-share", "0.5"])  # fmt: skip
    assert result["n"] == 4


def test_evaluate_refuses_lm_options_that_do_not_go_together(run, data, char_lm, tmp_path, capsys):
    evaluate = ["handwriting", "evaluate", str(run[0]), "--data", str(data[0])]
    _refused(capsys, [*evaluate, "--lm-weight", "1"], "add --lm to use it")
    _refused(capsys, [*evaluate, "--lm", "--lm-share", "0.5"], "give the LSTM with --lm-run")
    _refused(capsys, [*evaluate, "--beam", "2", "--lm", "--lm-run", str(char_lm), "--lm-share", "2"],
             "--lm-share is the LSTM's part of the next-character probability")  # fmt: skip
    _refused(capsys, [*evaluate, "--lm-run", str(char_lm)],
             "--lm-run gives beam search a character language model; add --lm")  # fmt: skip
    _refused(capsys, [*evaluate, "--beam", "4", "--lm", "--lm-run", str(tmp_path / "nope")], "nope")
    _refused(capsys, [*evaluate, "--split", "dev"], "no split 'dev'")


# ---- ensembles (--with) ---------------------------------------------------------------------------------------------


def test_one_run_twice_is_an_ensemble_that_reads_exactly_as_the_run(run, data, files, greedy):
    evaluate = ["handwriting", "evaluate", str(run[0]), "--data", str(data[0])]
    alone = _json_of(evaluate)
    assert alone["n"] == 4
    assert _json_of([*evaluate, "--with", str(run[0])]) == alone
    recognize = ["handwriting", "recognize", str(run[0]), *files, "--with", str(run[0])]
    assert _json_of(recognize) == greedy
    # each run proposes its readings and both score every proposal: one run twice reads as that run (greedy)
    assert _json_of([*recognize, "--combine", "sequences"]) == greedy


def test_ensemble_mistakes_are_one_sentence(run, files, tmp_path, capsys):
    recognize = ["handwriting", "recognize", str(run[0]), files[0]]
    _refused(capsys, [*recognize, "--with", str(tmp_path / "nope")], "No run directory")
    _refused(capsys, [*recognize, "--with", str(run[0]), "--combine", "votes"], "combine must be 'probs'")
    _refused(capsys, [*recognize, "--combine", "sequences"], "give the others with --with")


def test_train_options_set_and_config_reach_the_config(data, tmp_path, capsys, monkeypatch):
    """--set and --config reach HandwritingConfig's sections (the training itself replaced: this is about the
    command)."""
    from lstmkit.tasks.recognition.handwriting import run as handwriting_run

    seen = {}

    def fake_train_run(train, validation, tests, cfg, out, **kwargs):
        seen["cfg"], seen["kwargs"] = cfg, kwargs
        return {"run_dir": str(out), "test": {"fonts": ["scriptc"], "greedy": {"cer": 0.5, "wer": 1.0, "n": 4}}}

    monkeypatch.setattr(handwriting_run, "train_run", fake_train_run)
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"net": {"output_dropout": 0.2}, "step": 0.4, "train": {"lr": 0.005}}))
    argv = ["handwriting", "train", "--data", str(data[0]), "--out", str(tmp_path / "run"), "--config", str(config),
            "--set", "train.on_nonfinite=skip", "--set", "train.average_from_epoch=2", "--hidden-size", "24",
            "--epochs", "3", "--overlap", "0.1", "--json"]  # fmt: skip
    assert main(argv) == 0, capsys.readouterr().err
    cfg = seen["cfg"]
    assert (cfg.net.hidden_size, cfg.net.output_dropout, cfg.step, cfg.overlap) == (24, 0.2, 0.4, 0.1)
    trained = (cfg.train.lr, cfg.train.epochs, cfg.train.on_nonfinite, cfg.train.average_from_epoch)
    assert trained == (0.005, 3, "skip", 2)
    printed = json.loads(capsys.readouterr().out)
    assert list(printed)[:4] == ["task", "run_dir", "metrics", "baselines"]
    assert printed["metrics"] == {"cer": 0.5, "wer": 1.0} and printed["tests"]["test"]["fonts"] == ["scriptc"]
    _refused(capsys, [*argv[:-1], "--set", "train.average_from_epoch=4"], "average_from_epoch must be an epoch")
