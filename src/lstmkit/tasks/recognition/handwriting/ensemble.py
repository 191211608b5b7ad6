"""Several trained handwriting recognisers read as one: :class:`HandwritingEnsemble`."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import numpy as np

from .. import ctc
from .recognizer import HandwritingRecognizer

__all__ = ["HandwritingEnsemble"]


class HandwritingEnsemble(HandwritingRecognizer):
    """Several trained recognisers read as one, with the same ``recognize``, ``evaluate`` and ``tune_lm`` (the
    language model is the first member's n-gram, until :meth:`fit_lm` gives the ensemble its own).

    ``combine="probs"``: the members' per-point class probabilities are averaged, then decoded like one model's.
    ``combine="sequences"``: each member proposes its own readings (its best path, or its beams with the language
    model), and the proposal with the highest mean CTC log-likelihood over the members, plus the language model's
    score, wins (:func:`lstmkit.tasks.recognition.ctc.rescore`): every member scores every proposal exactly, so the
    members need not put a letter's spike on the same point.

    Members must share the alphabet, the resampling step and ``overlap``, so that point ``t`` is the same pen
    position for all of them (they differ in seed, data or size; CTC here runs on the input points themselves, no
    downsampling).
    Networks may put a letter's CTC spike on different points: decode a ``"probs"`` ensemble with beam search, whose
    sum over alignments absorbs that; its best path (greedy) can double or drop such a letter (``"sequences"`` does
    not suffer from it). In docs/results/handwriting.md two seeds' probabilities read together read the stand-in
    fonts better than the two seeds' mean but not always better than the better seed, four read worse than two (the
    averaged spikes blur), and ``"sequences"`` read them slightly worse than ``"probs"`` with beam search and the
    n-gram: measure before adding members.

    Example:
        >>> both = HandwritingEnsemble.load(["runs/hw-seed0", "runs/hw-seed1"])          # doctest: +SKIP
        >>> both.recognize([points], beam_width=16, use_lm=True)                        # doctest: +SKIP
    """

    def __init__(self, members: list[HandwritingRecognizer], combine: Literal["probs", "sequences"] = "probs") -> None:
        if combine not in ("probs", "sequences"):
            raise ValueError(f"combine must be 'probs' (average the members' probabilities per point) or "
                             f"'sequences' (rescore the members' proposals), got {combine!r}.")  # fmt: skip
        if len(members) < 2:
            raise ValueError(f"An ensemble needs at least two recognisers, got {len(members)}.")
        first = members[0]
        for i, m in enumerate(members[1:], start=1):
            m._check()
            mine = (m.config.alphabet, m.config.step, m.config.overlap)
            if mine != (first.config.alphabet, first.config.step, first.config.overlap):
                raise ValueError(
                    f"Member {i} reads alphabet {m.config.alphabet!r} at step {m.config.step} with overlap "
                    f"{m.config.overlap}, member 0 {first.config.alphabet!r} at step {first.config.step} with "
                    f"overlap {first.config.overlap}; an ensemble's members must share all three (train them with "
                    "the same alphabet, --step and --overlap)."
                )
        super().__init__(first.config)
        self.members = list(members)
        self.combine = combine
        self.net = first._check()  # for _check; log_probs below uses every member
        self.lm, self.lm_alpha, self.lm_beta = first.lm, first.lm_alpha, first.lm_beta

    def log_probs(self, trajectories: list[np.ndarray], batch_size: int = 64) -> list[np.ndarray]:
        """Log of the members' mean class probabilities, one (T_i, C) array per trajectory."""
        each = [m.log_probs(trajectories, batch_size) for m in self.members]  # members x trajectories x (T_i, C)
        k = np.log(len(self.members))
        return [np.logaddexp.reduce(np.stack(lps), axis=0) - k for lps in zip(*each, strict=True)]

    def _readings(self, trajectories: list[np.ndarray]) -> list[np.ndarray]:
        """``combine="probs"``: the (T, C) log mean probabilities; ``"sequences"``: the members' (M, T, C)."""
        if self.combine == "probs":
            return self.log_probs(trajectories)
        each = [m.log_probs(trajectories) for m in self.members]  # members x trajectories x (T_i, C)
        return [np.stack(lps) for lps in zip(*each, strict=True)]

    def _decode(self, lp: np.ndarray, beam_width: int, hook: ctc.LMHook | None, alpha: float, beta: float) -> str:
        if lp.ndim == 2:
            return super()._decode(lp, beam_width, hook, alpha, beta)
        alpha, beta = (alpha, beta) if hook else (0.0, 0.0)
        if beam_width == 1:
            proposals = [ctc.greedy_decode(member) for member in lp]
        else:
            proposals = [labels for member in lp
                         for labels, _ in ctc.beam_search(member, beam_width, lm=hook, alpha=alpha, beta=beta,
                                                          return_beams=True)]  # fmt: skip
        best, _ = ctc.rescore(list(lp), proposals, lm=hook, alpha=alpha, beta=beta)[0]
        return self.alphabet.decode(best)

    def fit(self, *args: Any, **kwargs: Any) -> HandwritingRecognizer:
        raise TypeError("An ensemble is built from trained recognisers; fit each member, then combine them.")

    def save(self, run_dir: str | os.PathLike[str], *, overwrite: bool = False) -> Path:
        raise TypeError("An ensemble is not saved as one run; save its members and load them together with "
                        "HandwritingEnsemble.load([run_dir, ...]).")  # fmt: skip

    @classmethod
    def load(  # type: ignore[override]
        cls, run_dirs: list[str | os.PathLike[str]], combine: Literal["probs", "sequences"] = "probs"
    ) -> HandwritingEnsemble:
        """The recognisers in ``run_dirs`` (each written by ``lstmkit handwriting train``) as one ensemble."""
        return cls([HandwritingRecognizer.load(d) for d in run_dirs], combine)
