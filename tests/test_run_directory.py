"""The README's run-directory promise, checked for every task that trains (issue 18): ``config.json``,
``model.safetensors`` holding the real weights, ``metrics.csv``, ``result.json`` and ``report.html``, written by the
task's own ``train`` command."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pandas as pd
import pytest
import safetensors

from lstmkit.cli import main

TEXT = "".join(
    f"{w}: the {x} is {y}.\n" for w in ("ANNA", "BEN") for x in ("sea", "sky", "moon") for y in ("grey", "calm")
)


def _monthly(path):
    t = pd.date_range("2000-01-01", periods=96, freq="MS")
    y = 10 + np.sin(2 * np.pi * np.arange(96) / 12) + 0.05 * np.random.default_rng(0).normal(size=96)
    pd.DataFrame({"time": t, "y": y}).to_csv(path, index=False)
    # the network alone (no statistical combination), so that the task contract's export has a graph to write
    return ["--csv", str(path), "--target", "y", "--horizon", "3", "--season", "12", "--epochs", "2",
            "--set", "combine=none"]  # fmt: skip


def _anomaly(path, method, labelled=True):
    rng = np.random.default_rng(0)
    n = 400
    values = np.sin(2 * np.pi * np.arange(n) / 24) + 0.05 * rng.normal(size=n)
    values[300:304] += 2.0
    label = np.zeros(n, dtype=int)
    label[300:304] = 1
    split = ["train"] * 200 + ["test"] * 200
    pd.DataFrame({"t": np.arange(n), "hr": values, "anomaly": label, "split": split}).to_csv(path, index=False)
    extra = ["--window", "12"] if method == "reconstruction" else ["--season", "24", "--steps-ahead", "2"]
    label = ["--label", "anomaly"] if labelled else []
    return ["--csv", str(path), "--time", "t", "--target", "hr", *label, "--method", method, *extra, "--epochs", "2"]


def _classify(path):
    rng = np.random.default_rng(0)
    rows = []
    for s in range(24):
        cls = s % 2
        for k in range(10):
            rows.append({"series": s, "tick": k, "a": float(np.sin(k / 2 + cls * 2) + 0.1 * rng.normal()),
                         "cls": ["low", "high"][cls]})  # fmt: skip
    pd.DataFrame(rows).to_csv(path, index=False)
    return ["--csv", str(path), "--id", "series", "--label", "cls", "--step", "tick", "--hidden-size", "8",
            "--epochs", "2"]  # fmt: skip


def _text(path):
    path.write_text(TEXT * 10)
    return ["--text", str(path), "--hidden-size", "16", "--embedding-size", "8", "--layers", "1", "--batch-size", "4",
            "--bptt", "16", "--epochs", "1"]  # fmt: skip


def _translate(path):
    from lstmkit.tasks.text.seq2seq import number_phrases

    src, tgt = number_phrases(np.arange(120))
    pd.DataFrame({"en": src, "fr": tgt}).to_csv(path, index=False)
    return ["--csv", str(path), "--source-column", "en", "--target-column", "fr", "--epochs", "1", "--hidden-size",
            "16", "--beam", "2"]  # fmt: skip


@pytest.fixture(scope="module")
def speech_data(tmp_path_factory):
    if shutil.which("espeak-ng") is None or shutil.which("sox") is None:
        message = "needs Debian's espeak-ng and sox (make test installs them: scripts/install-system-deps.sh)"
        if os.environ.get("CI"):  # CI runs make test, which installs them: their absence is a failure there
            pytest.fail(message)
        pytest.skip(message)
    data = tmp_path_factory.mktemp("speech") / "data"
    assert main(["speech", "make-data", "--out", str(data), "--train", "8", "--validation", "2", "--test", "2",
                 "--max-digits", "2", "--seed", "2"]) == 0  # fmt: skip
    return data


@pytest.fixture(scope="module")
def handwriting_data(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("handwriting")
    data, words = tmp / "hw.npz", tmp / "words.txt"
    words.write_text("on\nno\nin\nan\nit\nat\nto\nme\n")
    assert (
        main(
            [
                "handwriting",
                "make-data",
                "--out",
                str(data),
                "--train-samples",
                "16",
                "--validation-samples",
                "4",
                "--test-samples",
                "4",
                "--test-words",
                "2",
                "--validation-words",
                "2",
                "--words",
                str(words),
            ]
        )
        == 0
    )
    return data


def _text_classify(path):
    rows = [{"text": f"{w} {x} film", "label": "pos" if w in ("good", "fine") else "neg"}
            for w in ("good", "fine", "bad", "dull") for x in ("a", "the", "this", "that", "one", "my")]  # fmt: skip
    pd.DataFrame(rows).to_csv(path, index=False)
    return ["--csv", str(path), "--text-column", "text", "--label-column", "label", "--hidden-size", "8",
            "--epochs", "1"]  # fmt: skip


NEEDS = {"speech": "speech_data", "handwriting": "handwriting_data"}
TASKS = {
    "text-classify": lambda tmp: ["text", "classify", "train", *_text_classify(tmp / "reviews.csv")],
    "experiment": lambda tmp: [
        "experiment",
        "adding",
        "--length",
        "10",
        "--max-sequences",
        "2000",
        "--hidden-size",
        "8",
    ],
    "anomaly-unlabelled": lambda tmp: ["anomaly", "train", *_anomaly(tmp / "a.csv", "reconstruction", False)],
    "translate": lambda tmp: ["translate", "train", *_translate(tmp / "pairs.csv")],
    "speech": lambda data: [
        "speech",
        "train",
        "--data",
        str(data),
        "--unidirectional",
        "--hidden-size",
        "8",
        "--layers",
        "1",
        "--epochs",
        "1",
        "--beam",
        "2",
    ],  # fmt: skip
    "handwriting": lambda data: [
        "handwriting",
        "train",
        "--data",
        str(data),
        "--hidden-size",
        "8",
        "--layers",
        "1",
        "--epochs",
        "1",
        "--step",
        "0.5",
        "--beam",
        "2",
    ],  # fmt: skip
    "forecast": lambda tmp: ["forecast", "train", *_monthly(tmp / "m.csv")],
    "anomaly-prediction": lambda tmp: ["anomaly", "train", *_anomaly(tmp / "a.csv", "prediction")],
    "anomaly-reconstruction": lambda tmp: ["anomaly", "train", *_anomaly(tmp / "a.csv", "reconstruction")],
    "classify": lambda tmp: ["classify", "train", *_classify(tmp / "c.csv")],
    "text": lambda tmp: ["text", "train", *_text(tmp / "t.txt")],
    "music": lambda tmp: [
        "music",
        "train",
        "--limit",
        "6",
        "--hidden-size",
        "16",
        "--embedding-size",
        "8",
        "--layers",
        "1",
        "--bptt",
        "20",
        "--batch-size",
        "4",
        "--epochs",
        "1",
    ],  # fmt: skip
}


@pytest.mark.parametrize("task", sorted(TASKS))
def test_every_train_command_leaves_the_promised_run_directory(task, tmp_path, capsys, request):
    out = tmp_path / "run"
    given = request.getfixturevalue(NEEDS[task]) if task in NEEDS else tmp_path
    assert main([*TASKS[task](given), "--out", str(out), "--json"]) == 0, capsys.readouterr().err
    summary = json.loads(capsys.readouterr().out)
    present = {p.name for p in out.iterdir()}
    assert {"config.json", "model.safetensors", "metrics.csv", "result.json", "report.html"} <= present, present
    config = json.loads((out / "config.json").read_text())
    assert isinstance(config["kind"], str) and isinstance(config["config"], dict)
    assert "status" not in config  # the finished config replaced the one written as training started
    with safetensors.safe_open(out / "model.safetensors", "np") as f:
        sizes = [f.get_slice(k).get_shape() for k in f.keys()]
    assert sizes and sum(int(np.prod(s)) for s in sizes) > 100  # the network's weights, not a placeholder
    assert json.loads((out / "result.json").read_text())  # a JSON object with the run's figures
    assert len((out / "metrics.csv").read_text().splitlines()) >= 2  # a header and at least one epoch
    assert isinstance(summary, dict)
    shutil.rmtree(out)
