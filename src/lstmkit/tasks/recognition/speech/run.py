"""``lstmkit speech train``'s work: train on a data set's training voices and write a scored run directory."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from .... import runs
from ..ctc import cer, wer
from .audio import load_audio
from .config import SpeechConfig
from .recognizer import SpeechRecognizer

__all__ = ["LENGTH_BONUSES", "LM_WEIGHTS", "train_run"]

LM_WEIGHTS = (0.25, 0.5, 1.0)  # the n-gram weights and length bonuses tried on the validation voices
LENGTH_BONUSES = (0.0, 1.0, 2.0)


def scores_by_kind(utts: list[Any], hyps: list[str]) -> dict[str, Any]:
    """CER / WER of digit strings, commands, digit strings in the accent never heard in training, and all."""
    from .data import HELD_OUT_ACCENT

    scores = {}
    groups = {"digits": lambda u: u.kind == "digits", "command": lambda u: u.kind == "command",
              "digits_unseen_accent": lambda u: u.kind == "digits" and u.accent == HELD_OUT_ACCENT,
              "all": lambda u: True}  # fmt: skip
    for name, keep in groups.items():
        refs = [u.text for u in utts if keep(u)]
        hs = [h for u, h in zip(utts, hyps, strict=True) if keep(u)]
        if refs:
            scores[name] = {"cer": cer(refs, hs), "wer": wer(refs, hs), "n": len(refs)}
    return scores


def stream_all(rec: SpeechRecognizer, paths: list[Path], chunk_ms: int) -> tuple[list[str], float]:
    """Each file fed through a :class:`SpeechStream` in ``chunk_ms`` chunks: texts and seconds per audio second."""
    import time

    texts, busy, audio_seconds = [], 0.0, 0.0
    for path in paths:
        samples, rate = load_audio(path)
        step = max(1, rate * chunk_ms // 1000)
        t0 = time.perf_counter()
        live = rec.stream(rate)
        for start in range(0, len(samples), step):
            live.push(samples[start : start + step])
        texts.append(live.finish())
        busy += time.perf_counter() - t0
        audio_seconds += len(samples) / rate
    return texts, busy / max(audio_seconds, 1e-9)


def train_run(
    data_dir: str | os.PathLike[str], config: SpeechConfig, out: str | os.PathLike[str], *, beam_size: int = 8,
    lm_weight: float | None = None, length_bonus: float = 1.0, resume: bool = False, stream_chunk_ms: int = 100,
) -> dict[str, Any]:  # fmt: skip
    """Train on a data set from :func:`lstmkit.tasks.recognition.speech.data.make_dataset` (its train split,
    validating on its validation voices) and write a run directory: config.json, model.safetensors,
    extra.safetensors, metrics.csv, result.json, predictions.csv and report.html (the model is saved before the
    scoring).

    result.json holds CER / WER on the test voices (never heard in training) for digit strings, commands, digit
    strings in the held-out accent, and all: greedy, beam search, and beam search with the training transcripts'
    character n-gram. ``lm_weight=None`` picks the n-gram weight and the length bonus on the validation voices
    (from :data:`LM_WEIGHTS` x :data:`LENGTH_BONUSES`). A model that can stream is also run through
    :class:`SpeechStream` on every test file in ``stream_chunk_ms`` chunks: its CER, the share of files whose
    streamed text equals the offline greedy text, and its compute time per second of audio."""
    import json
    import time

    import pandas as pd

    from ...._atomic import atomic_write_bytes
    from ....report import write_report
    from .data import read_manifest

    out = Path(out)
    if runs.is_finished(out):
        raise FileExistsError(f"{out} already holds a finished recogniser; choose another --out or delete it.")
    if lm_weight is not None and lm_weight < 0:
        raise ValueError(f"lm_weight must be >= 0 (or None: chosen on the validation voices), got {lm_weight}.")
    data_dir = Path(data_dir)
    utts = read_manifest(data_dir)
    split = {s: [u for u in utts if u.split == s] for s in ("train", "validation", "test")}
    if not split["train"]:
        raise ValueError(f"The data set at {data_dir} has no training utterances.")
    path = lambda u: data_dir / u.path  # noqa: E731
    t0 = time.perf_counter()
    validation = split["validation"]
    rec = SpeechRecognizer(config).fit(
        [path(u) for u in split["train"]], [u.text for u in split["train"]], run_dir=out, resume=resume,
        validation=([path(u) for u in validation], [u.text for u in validation]) if validation else None,
    )  # fmt: skip
    rec.save(out)  # the model first: a failure in a step after training cannot lose it
    result: dict[str, Any] = {"run_dir": str(out), "data": str(data_dir), "train_seconds": round(time.perf_counter()
                              - t0, 1), "utterances": {s: len(v) for s, v in split.items()}}  # fmt: skip
    result["parameters"] = sum(p.numel() for p in rec.net.parameters())  # type: ignore[union-attr]
    if lm_weight is None:
        lm_weight, length_bonus = 0.5, length_bonus
        if validation:
            v_lps, v_refs = rec.log_probs([path(u) for u in validation]), [u.text for u in validation]
            grid = {(w, b): cer(v_refs, [rec.decode(lp, beam_size=beam_size, lm_weight=w, length_bonus=b)
                                         for lp in v_lps]) for w in LM_WEIGHTS for b in LENGTH_BONUSES}  # fmt: skip
            lm_weight, length_bonus = min(grid, key=lambda k: (grid[k], k))
            result["lm_choice"] = {"lm_weight": lm_weight, "length_bonus": length_bonus, "validation_cer": grid[
                (lm_weight, length_bonus)], "tried": [[w, b, c] for (w, b), c in grid.items()]}  # fmt: skip
    test = split["test"]
    if test:
        lps = rec.log_probs([path(u) for u in test])
        decodings = {"greedy": {}, f"beam_{beam_size}": {"beam_size": beam_size},
                     f"beam_{beam_size}_lm": {"beam_size": beam_size, "lm_weight": lm_weight,
                                              "length_bonus": length_bonus}}  # fmt: skip
        table = pd.DataFrame({"id": [u.id for u in test], "voice": [u.voice for u in test],
                              "kind": [u.kind for u in test], "reference": [u.text for u in test]})  # fmt: skip
        for name, options in decodings.items():
            t1 = time.perf_counter()
            hyps = [rec.decode(lp, **options) for lp in lps]
            table[name] = hyps
            result[name] = {**scores_by_kind(test, hyps), "decode_seconds": round(time.perf_counter() - t1, 2)}
        if config.can_stream:
            streamed, seconds_per_second = stream_all(rec, [path(u) for u in test], stream_chunk_ms)
            table["streaming"] = streamed
            same = float(np.mean([a == b for a, b in zip(streamed, table["greedy"], strict=True)]))
            result["streaming"] = {**scores_by_kind(test, streamed), "chunk_ms": stream_chunk_ms,
                                   "same_as_offline_greedy": same,
                                   "seconds_per_audio_second": seconds_per_second}  # fmt: skip
        atomic_write_bytes(out / "predictions.csv", table.to_csv(index=False).encode())
    atomic_write_bytes(out / "result.json", (json.dumps(result, indent=2) + "\n").encode())
    write_report(out)
    return result
