"""What the task contract test (tests/test_task_contract.py) needs to know about each task kind: the class that
``lstmkit.load`` returns, a probe through the task's own Python API, the kind's CLI inference verb, the option naming
its data, and whether ONNX export supports it. The training commands themselves come from tests/test_run_directory.py.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from test_run_directory import TEXT

Probe = Callable[[Any, "Path | None"], dict[str, Any]]
"""``probe(task_object, data)``: the task's predictions on a fixed input, as ``{name: value}`` (arrays, frames,
strings, numbers, dicts of those); ``data`` is the run's data file or folder (None for tasks that read none)."""


@dataclass(frozen=True)
class Kind:
    cls: str  # the class lstmkit.load returns (its name)
    probe: Probe
    verb: Callable[[Path, Path | None, Path], list[str]] | None  # (run, data, tmp) -> the inference verb's argv
    check_verb: Callable[[Any, dict[str, Any]], None] | None  # (the verb's JSON, the probe's result) -> asserts
    data_flag: str | None  # the option that names the data file or folder; None: the task reads none
    exportable: bool  # lstmkit export onnx writes the run (export.onnx.EXPORTABLE_KINDS)


# ---- probes: the task's own Python API on a fixed input -------------------------------------------------------------
def _forecast(f: Any, data: Path | None) -> dict[str, Any]:
    from lstmkit.tasks.timeseries.series import dataset_or_csv

    table, _ = dataset_or_csv(None, data, "forecasting")
    pred = f.predict(table)
    assert len(pred) == 3 and np.isfinite(pred.select_dtypes("number").to_numpy()).all(), pred  # the 3-step horizon
    return {"forecast": pred}


def _classify(c: Any, data: Path | None) -> dict[str, Any]:
    k = np.arange(10)
    X = np.stack([np.sin(k / 2 + 2 * cls + shift)[:, None] for cls in (0, 1) for shift in (0.0, 0.1)])
    proba = c.predict_proba(X.astype(np.float32))
    assert proba.shape == (4, 2) and np.allclose(proba.sum(1), 1), proba
    return {"proba": proba, "labels": c.predict(X.astype(np.float32))}


def _anomaly(d: Any, data: Path | None) -> dict[str, Any]:
    t = np.arange(120)
    values = np.sin(2 * np.pi * t / 24)
    values[90:93] += 2.5
    scores = d.score(values)
    assert scores.shape == (120,) and np.isfinite(scores[-20:]).all(), scores
    return {"scores": scores, "flags": d.detect(values)}


def _text(lm: Any, data: Path | None) -> dict[str, Any]:
    sampled = lm.generate("ANNA:", 30, seed=0)
    assert isinstance(sampled, str) and sampled, sampled
    return {"sampled": sampled, "greedy": lm.generate("BEN:", 20, greedy=True), "scores": lm.evaluate(TEXT)}


def _text_classify(c: Any, data: Path | None) -> dict[str, Any]:
    proba = c.predict_proba(["good a film", "dull the film", "fine my film"])
    assert proba.shape == (3, 2) and np.allclose(proba.sum(1), 1), proba
    return {"proba": proba, "labels": c.predict(["good a film", "dull the film", "fine my film"])}


TRANSLATE_PROBE = ["three", "forty-two", "one hundred and eighteen"]


def _translate(s: Any, data: Path | None) -> dict[str, Any]:
    greedy = s.translate(TRANSLATE_PROBE)
    assert len(greedy) == 3 and all(isinstance(o, str) for o in greedy), greedy
    return {"greedy": greedy, "beam": s.translate(TRANSLATE_PROBE, beam_size=2)}


def _music(m: Any, data: Path | None) -> dict[str, Any]:
    piece = m.generate(bars=2, seed=0)
    notes = piece.notes()
    assert notes.ndim == 2 and notes.shape[1] == 4 and len(notes) > 0, notes
    return {"notes": notes, "pitches": piece.pitches, "nll": m.evaluate([piece])}


def speech_wavs(data: Path) -> list[Path]:
    return sorted((data / "wavs").glob("*.wav"))[:2]


def _speech(r: Any, data: Path | None) -> dict[str, Any]:
    wavs = speech_wavs(data)
    texts = r.transcribe(wavs)
    assert len(texts) == 2 and all(isinstance(t, str) for t in texts), texts
    return {"texts": texts, "log_probs": r.log_probs(wavs[:1])[0]}


def _handwriting(r: Any, data: Path | None) -> dict[str, Any]:
    from lstmkit.tasks.recognition.handwriting.data import load_dataset

    points = [s.points for s in load_dataset(data)["test"][:2]]
    texts = r.recognize(points)
    assert len(texts) == 2 and all(isinstance(t, str) for t in texts), texts
    return {"texts": texts, "beam": r.recognize(points, beam_width=2), "log_probs": r.log_probs(points[:1])[0]}


def _experiment(run: Any, data: Path | None) -> dict[str, Any]:
    result = run.evaluate(test_size=64, seed=1)
    assert set(result) == {"metric", "value", "solved"}, result
    return {"evaluate": result}


# ---- the CLI inference verbs, and how their output matches the probe -------------------------------------------------
def _same_forecast(doc: Any, probe: dict[str, Any]) -> None:
    frame = probe["forecast"]
    assert isinstance(doc, list) and len(doc) == len(frame), doc
    for row, (_, want) in zip(doc, frame.iterrows(), strict=True):
        for col, value in want.items():
            if isinstance(value, (float, np.floating)):
                assert row[col] == float(value), (col, row[col], value)


def _same_classify(doc: Any, probe: dict[str, Any]) -> None:
    assert isinstance(doc, list) and len(doc) == 24 and {"predicted"} <= set(doc[0]), doc[:2]


def _same_anomaly(doc: Any, probe: dict[str, Any]) -> None:
    assert isinstance(doc, dict) and Path(doc["scores"]).is_file(), doc


def _same_text(doc: Any, probe: dict[str, Any]) -> None:
    assert doc == {"prompt": "ANNA:", "text": probe["sampled"]}, (doc, probe["sampled"])  # same seed, same sample


def _same_text_classify(doc: Any, probe: dict[str, Any]) -> None:
    assert isinstance(doc, list) and len(doc) == 24 and {"label", "probability"} <= set(doc[0]), doc[:2]


def _same_translate(doc: Any, probe: dict[str, Any]) -> None:
    assert [d["output"] for d in doc] == probe["greedy"], (doc, probe["greedy"])


def _same_music(doc: Any, probe: dict[str, Any]) -> None:
    assert doc["notes"] == len(probe["notes"]) and all(Path(p).is_file() for p in doc["files"].values()), doc


def _same_speech(doc: Any, probe: dict[str, Any]) -> None:
    assert [d["text"] for d in doc] == probe["texts"], (doc, probe["texts"])


def _same_handwriting(doc: Any, probe: dict[str, Any]) -> None:
    assert isinstance(doc, dict) and {"cer", "wer"} <= set(doc), doc


KINDS: dict[str, Kind] = {
    "forecast": Kind(
        "Forecaster", _forecast, lambda run, data, tmp: ["forecast", "predict", str(run), "--csv", str(data)],
        _same_forecast, "--csv", True,
    ),
    "classify": Kind(
        "SequenceClassifier", _classify,
        lambda run, data, tmp: ["classify", "predict", str(run), "--csv", str(data), "--id", "series", "--step",
                                "tick"],
        _same_classify, "--csv", True,
    ),
    "anomaly-prediction": Kind(
        "AnomalyDetector", _anomaly,
        lambda run, data, tmp: ["anomaly", "score", str(run), "--csv", str(data), "--out", str(tmp / "scored")],
        _same_anomaly, "--csv", True,
    ),
    "text": Kind(
        "LanguageModel", _text,
        lambda run, data, tmp: ["text", "generate", str(run), "--prompt", "ANNA:", "--max-tokens", "30", "--seed", "0"],
        _same_text, "--text", True,
    ),
    "text-classify": Kind(
        "TextClassifier", _text_classify, lambda run, data, tmp: ["text", "classify", "predict", str(run), "--csv",
                                                                   str(data)],
        _same_text_classify, "--csv", True,
    ),
    "translate": Kind(
        "Seq2Seq", _translate, lambda run, data, tmp: ["translate", "text", str(run), *TRANSLATE_PROBE],
        _same_translate, "--csv", True,
    ),
    "music": Kind(
        "MusicModel", _music,
        lambda run, data, tmp: ["music", "generate", str(run), "--out", str(tmp / "piece"), "--bars", "2", "--seed",
                                "0"],
        _same_music, "--scores", False,
    ),
    "speech": Kind(
        "SpeechRecognizer", _speech,
        lambda run, data, tmp: ["speech", "transcribe", str(run), *map(str, speech_wavs(data))], _same_speech,
        "--data", False,
    ),
    "handwriting": Kind(
        "HandwritingRecognizer", _handwriting,
        lambda run, data, tmp: ["handwriting", "evaluate", str(run), "--data", str(data), "--split", "test"],
        _same_handwriting, "--data", False,
    ),
    "experiment": Kind("LongLagRun", _experiment, None, None, None, False),  # no verb reads a long-lag run back
}  # fmt: skip
KINDS["anomaly-reconstruction"] = KINDS["anomaly-unlabelled"] = KINDS["anomaly-prediction"]


def data_of(kind: Kind, argv: list[str]) -> Path | None:
    """The data file or folder a training command reads (the value of its data option), if it names one."""
    if kind.data_flag is None or kind.data_flag not in argv:
        return None
    return Path(argv[argv.index(kind.data_flag) + 1])


def same(a: Any, b: Any, where: str = "") -> None:
    """``a`` and ``b`` are equal, exactly: arrays element for element (NaN where NaN), frames cell for cell."""
    if isinstance(a, pd.DataFrame):
        pd.testing.assert_frame_equal(a, b, check_exact=True, obj=where or "DataFrame")
    elif isinstance(a, np.ndarray):
        np.testing.assert_array_equal(a, b, err_msg=where, strict=True)
    elif isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), (where, a, b)
        for k in a:
            same(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, (list, tuple)):
        assert type(a) is type(b) and len(a) == len(b), (where, a, b)
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            same(x, y, f"{where}[{i}]")
    else:
        assert a == b or (a != a and b != b), f"{where}: {a!r} != {b!r}"


def parse_json(stdout: str) -> Any:
    """The JSON document a command printed: it must be alone on stdout."""
    try:
        return json.loads(stdout)
    except ValueError as e:
        raise AssertionError(f"stdout is not one JSON document ({e}): {stdout[:2000]!r}") from None
