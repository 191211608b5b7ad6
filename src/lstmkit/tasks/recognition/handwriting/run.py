"""``lstmkit handwriting train``'s work: train, tune the language model, score the test sets, write a run directory."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .... import runs
from .. import ctc
from .config import HandwritingConfig
from .data import Sample
from .recognizer import HandwritingRecognizer

__all__ = ["score_samples", "train_run"]


def score_samples(
    model: HandwritingRecognizer, samples: list[Sample], beam_width: int
) -> tuple[dict[str, Any], list[dict[str, str]]]:
    """CER / WER of ``samples`` read greedily, by beam search and by beam search with the language model (the n-gram,
    or the character LSTM of :meth:`HandwritingRecognizer.set_char_lm`; one network pass
    for all three), and a row per sample: its text, font and the three readings."""
    trajectories, texts = [s.points for s in samples], [s.text for s in samples]
    lps = model._readings(trajectories)
    a, b = model.lm_alpha, model.lm_beta
    outputs: dict[str, list[str]] = {"greedy": [model._decode(lp, 1, None, a, b) for lp in lps]}
    if beam_width > 1:
        outputs[f"beam_{beam_width}"] = [model._decode(lp, beam_width, None, a, b) for lp in lps]
        if model.lm is not None or model.char_lm is not None:
            outputs[f"beam_{beam_width}_lm"] = [model._decode(lp, beam_width, model._lm_hook(""), a, b) for lp in lps]
    scores = {k: {"cer": ctc.cer(texts, v), "wer": ctc.wer(texts, v), "n": len(texts)} for k, v in outputs.items()}
    rows = [{"text": t, "font": s.font, **{k: v[i] for k, v in outputs.items()}}
            for i, (t, s) in enumerate(zip(texts, samples, strict=True))]  # fmt: skip
    return scores, rows


def train_run(
    train: list[Sample], validation: list[Sample], tests: dict[str, list[Sample]], config: HandwritingConfig,
    out: str | os.PathLike[str], *, beam_width: int = 16, resume: bool = False, lm_texts: list[str] | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Train on ``train`` (``validation`` picks the epoch and the language model's weight and bonus), score every
    test set with greedy, beam and beam + n-gram decoding, and write a run directory: config.json,
    model.safetensors, extra.safetensors (the n-gram), metrics.csv, result.json, predictions.csv, samples.png (test
    words with what was recognised) and report.html. The model is saved before the scoring."""
    import json

    import pandas as pd

    from ...._atomic import atomic_write_bytes
    from ....report import write_report
    from ....viz.handwriting import plot_handwriting

    out = Path(out)
    if runs.is_finished(out):
        raise FileExistsError(f"{out} already holds a finished model; choose another --out or delete it.")
    model = HandwritingRecognizer(config).fit(
        [s.points for s in train], [s.text for s in train], run_dir=out, resume=resume,
        validation=([s.points for s in validation], [s.text for s in validation]) if validation else None,
        lm_texts=lm_texts,
    )  # fmt: skip
    result: dict[str, Any] = {
        "run_dir": str(out), "train": len(train), "validation": len(validation),
        "train_fonts": sorted({s.font for s in train}), "best_val_cer": getattr(model, "best_val_cer_", None),
        "epochs_run": len(model.history_), "lm_extra_words": len(lm_texts or []),
    }  # fmt: skip
    if model.lm is not None and validation and beam_width > 1:  # on validation words in the training fonts
        result["lm_tuning"] = model.tune_lm([s.points for s in validation[:200]], [s.text for s in validation[:200]],
                                            beam_width=min(beam_width, 8))  # fmt: skip
    model.save(out)  # trained and tuned, saved first: a failure in scoring or plotting cannot lose it
    tables = []
    for name, samples in tests.items():
        if not samples:
            continue
        scores, rows = score_samples(model, samples, beam_width)
        result[name] = {"fonts": sorted({s.font for s in samples}), **scores}
        tables.append(pd.DataFrame(rows).assign(test_set=name))
        if name == next(iter(tests)):
            shown = samples[:12]
            plot_handwriting([s.points for s in shown], [s.text for s in shown], [r["greedy"] for r in rows[:12]],
                             out / "samples.png", title=f"{name}: {', '.join(result[name]['fonts'])} (truth -> "
                             "recognised, greedy)")  # fmt: skip
    if tables:
        atomic_write_bytes(out / "predictions.csv", pd.concat(tables).to_csv(index=False).encode())
    atomic_write_bytes(out / "result.json", (json.dumps(result, indent=2) + "\n").encode())
    write_report(out)
    return result
