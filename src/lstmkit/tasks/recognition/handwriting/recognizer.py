"""Online handwriting recognition: ``lstmkit.HandwritingRecognizer`` (pen trajectories to text).

Input: pen trajectories (N, 3) ``x, y, pen_up`` (see :mod:`lstmkit.tasks.recognition.handwriting.data`), turned into
``(dx, dy, y, pen_up)`` points at equal arc length, normalised by the ink's height. Network: a stacked bidirectional
:class:`lstmkit.nn.LSTM` over the points and a linear layer to ``C`` classes (the blank and each character) at every
point, trained with CTC (Graves et al. 2006; online handwriting: Graves et al. 2009, "A novel connectionist system
for unconstrained handwriting recognition"). Decoding (:mod:`lstmkit.tasks.recognition.ctc`): greedy (best path), prefix beam
search, and beam search with a character n-gram language model (interpolated Witten-Bell, fitted on the training
texts and saved with the run). Scores: CER and WER.

Example:
    >>> model = HandwritingRecognizer(epochs=20).fit(trajectories, texts)              # doctest: +SKIP
    >>> model.recognize([points], beam_width=16)                                      # doctest: +SKIP
    ['hello']
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor, nn

from .... import runs
from ....config import StrictConfig, TrainConfig
from ....data import SeededBatches, bucketed
from ....nn import LSTM
from ....train import GateStatistics, StepOutput, Trainer, seed_everything
from ...text.ngram import WittenBellLM, _Order
from .. import ctc
from .data import Sample, StrokeError, features, read_strokes

__all__ = [
    "HandwritingConfig",
    "HandwritingEnsemble",
    "HandwritingNet",
    "HandwritingRecognizer",
    "score_samples",
    "train_run",
]

logger = logging.getLogger(__name__)

KIND = "handwriting"
N_FEATURES = 4  # dx, dy, y, pen_up


@dataclass(frozen=True)
class HandwritingConfig(StrictConfig):
    """Features, network, language model and training of a handwriting recogniser."""

    alphabet: str = "abcdefghijklmnopqrstuvwxyz"  # the characters it can write out; texts outside it are an error
    step: float = 0.3  # resampling distance in ink heights: about 10-15 points per letter
    # Strokes that go over ink already written, within this many ink heights, are dropped before resampling (a
    # retraced line, the extra lines of a thick stroke in a "complex" font: handwriting_data.drop_overlapping);
    # 0 keeps every stroke. Measured in docs/results/handwriting.md (setup mixed-overlap).
    overlap: float = 0.0
    # One bidirectional layer, as in Graves et al. (2009): in trials on the Hershey words, stacks of 2-3 layers of 128
    # at lr 3e-3 sat on CTC's early plateau (greedy output mostly blank) for over 500 steps; one layer of 192 at
    # lr 1e-2, batch 16, left it after about 400 steps.
    hidden_size: int = 192  # per direction
    num_layers: int = 1
    dropout: float = 0.1  # between stacked layers
    # on the last layer's outputs, before the classifier: dropout on an LSTM's feed-forward connections only, as in
    # Pham et al. (2014, "Dropout improves recurrent neural networks for handwriting recognition")
    output_dropout: float = 0.0
    lm_order: int = 4  # the character n-gram used by beam search with a language model (0: none)
    epochs: int = 10
    max_minutes: float | None = None  # and/or stop after this much wall-clock training time
    batch_size: int = 16
    lr: float = 1e-2
    clip_grad_norm: float = 5.0
    # a step whose gradient overflows (a rare spike at lr 1e-2): stop with an error, skip the step, or roll back
    on_nonfinite: Literal["raise", "skip", "rollback"] = "raise"
    # Average the weights over every step from this epoch on (dense stochastic weight averaging, TrainConfig's
    # average_from_epoch) and keep the average instead of the best epoch; None: keep the epoch with the lowest
    # validation CER. Measured in docs/results/handwriting.md (setup mixed-swa).
    average_from_epoch: int | None = None
    # Training batches are bucketed by length, so a batch pads only a few points. False: they run padded through
    # PyTorch's fused kernel (1.7x faster on one CPU thread; CTC still reads only the real points, but the backward
    # direction starts on those few zero points). True: the LSTM skips padding exactly (lengths=). Recognition
    # always skips padding exactly.
    exact_padding: bool = False
    seed: int = 0
    progress: bool = True

    def validate(self) -> None:
        for name in ("hidden_size", "num_layers", "epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"HandwritingConfig.{name} must be at least 1, got {getattr(self, name)}.")
        if not self.step > 0:
            raise ValueError(f"HandwritingConfig.step must be positive (a distance in ink heights), got {self.step}.")
        if not 0 <= self.overlap < 1:
            raise ValueError(f"HandwritingConfig.overlap is a distance in ink heights, at least 0 (0: keep every "
                             f"stroke) and under 1, got {self.overlap}.")  # fmt: skip
        for name in ("dropout", "output_dropout"):
            if not 0 <= getattr(self, name) < 1:
                raise ValueError(f"HandwritingConfig.{name} must lie in [0, 1), got {getattr(self, name)}.")
        if self.lm_order < 0:
            raise ValueError(f"HandwritingConfig.lm_order must be 0 (no language model) or more, got {self.lm_order}.")
        if self.average_from_epoch is not None and not 1 <= self.average_from_epoch <= self.epochs:
            raise ValueError(f"HandwritingConfig.average_from_epoch must be an epoch from 1 to epochs={self.epochs} "
                             f"(or None), got {self.average_from_epoch}.")  # fmt: skip
        if self.max_minutes is not None and not self.max_minutes > 0:
            raise ValueError(f"HandwritingConfig.max_minutes must be positive (or None), got {self.max_minutes}.")
        ctc.Alphabet(self.alphabet)  # duplicates / empty


class HandwritingNet(nn.Module):
    """Bidirectional stacked LSTM and a linear layer to CTC classes at every point.

    Shapes: points (B, T, 4) and lengths (B,) -> log-probabilities (B, T, C), C = 1 + len(alphabet).
    """

    def __init__(self, num_classes: int, cfg: HandwritingConfig) -> None:
        super().__init__()
        H = cfg.hidden_size
        self.lstm = LSTM(N_FEATURES, H, cfg.num_layers, bidirectional=True,
                         dropout=cfg.dropout if cfg.num_layers > 1 else 0.0)  # fmt: skip
        self.drop = nn.Dropout(cfg.output_dropout)
        self.out = nn.Linear(2 * H, num_classes)

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        if lengths is not None and bool((lengths == x.shape[1]).all()):
            lengths = None  # no padding: the plain path
        h, _ = self.lstm(x, None, lengths)  # (B, T, 2H)
        return torch.log_softmax(self.out(self.drop(h)), dim=-1)  # (B, T, C)


def _pad(feats: list[np.ndarray]) -> tuple[Tensor, Tensor]:
    lengths = torch.tensor([len(f) for f in feats], dtype=torch.long)
    x = torch.zeros(len(feats), int(lengths.max()), N_FEATURES)  # (B, T, 4)
    for i, f in enumerate(feats):
        x[i, : len(f)] = torch.from_numpy(f)
    return x, lengths


class _Batches(SeededBatches):
    """Shuffled batches (x (B, T, 4), lengths (B,), targets (sum S,), target_lengths (B,)), bucketed by length so a
    batch pads little; re-iterable, with its own generator (exact resume)."""

    POOL = 50

    def __init__(self, feats: list[np.ndarray], labels: list[list[int]], batch_size: int, seed: int,
                 shuffle: bool = True) -> None:  # fmt: skip
        order = bucketed([len(f) for f in feats], self.POOL)
        super().__init__(feats, labels, batch_size=batch_size, seed=seed, shuffle=shuffle, order=order)
        self.feats, self.labels = feats, labels

    def collate(self, index: list[int]) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        x, lengths = _pad([self.feats[i] for i in index])
        targets, target_lengths = ctc.pack_targets([self.labels[i] for i in index])
        return x, lengths, targets, target_lengths


def _ngram_ids(labels: list[list[int]]) -> np.ndarray:
    """The n-gram's training layout of label sequences: 0, labels, 0, labels, ..., 0 (0 marks each start and end)."""
    ids = [0]
    for y in labels:
        ids += [*y, 0]
    return np.array(ids, dtype=np.int64)


def _lm_tensors(lm: WittenBellLM) -> dict[str, Tensor]:
    out = {}
    for k, o in enumerate(lm.orders, start=1):
        for name in ("ngrams", "ngram_counts", "contexts", "context_counts", "context_types"):
            out[f"lm.{k}.{name}"] = torch.from_numpy(np.ascontiguousarray(getattr(o, name), dtype=np.int64))
    return out


def _lm_from_tensors(tensors: dict[str, Tensor], order: int, vocab_size: int) -> WittenBellLM:
    lm = WittenBellLM(order, vocab_size)
    names = ("ngrams", "ngram_counts", "contexts", "context_counts", "context_types")
    lm.orders = [_Order(*(tensors[f"lm.{k}.{n}"].numpy() for n in names)) for k in range(1, order + 1)]
    return lm


@runs.register_kind(KIND)
class HandwritingRecognizer:
    """Pen trajectories to text: ``fit``, ``recognize``, ``evaluate``, ``save``, ``load``. Keyword arguments are
    :class:`HandwritingConfig` fields."""

    def __init__(self, config: HandwritingConfig | None = None, **kwargs: Any) -> None:
        self.config = config if config is not None else HandwritingConfig(**kwargs)
        self.alphabet = ctc.Alphabet(self.config.alphabet)
        self.net: HandwritingNet | None = None
        self.lm: WittenBellLM | None = None
        # a character LanguageModel that beam search with use_lm reads instead of the n-gram, or mixed with it at
        # this share of the probability (set_char_lm)
        self.char_lm: Any = None
        self.char_lm_share = 1.0
        # beam search with the language model: its weight and the bonus per character (tune_lm sets them)
        self.lm_alpha, self.lm_beta = 0.5, 1.0
        self.history_: list[dict[str, Any]] = []

    # ---- data ---------------------------------------------------------------------------------------------------
    def _features(self, trajectories: list[np.ndarray]) -> list[np.ndarray]:
        out = []
        for i, points in enumerate(trajectories):
            try:
                out.append(features(points, self.config.step, self.config.overlap))
            except StrokeError as e:
                if len(trajectories) == 1:
                    raise
                raise StrokeError(f"Trajectory {i}: {e}") from e
        return out

    def _labels(self, texts: list[str]) -> list[list[int]]:
        return [self.alphabet.encode(t) for t in texts]

    # ---- training -----------------------------------------------------------------------------------------------
    def fit(self, trajectories: list[np.ndarray], texts: list[str], run_dir: str | os.PathLike[str] | None = None, *,
            resume: bool = False, validation: tuple[list[np.ndarray], list[str]] | None = None,
            lm_texts: list[str] | None = None) -> HandwritingRecognizer:  # fmt: skip
        """Train on trajectories and their texts (``validation``: held-out trajectories and texts, scored by loss
        and greedy CER after each epoch; the epoch with the lowest CER is kept). The character n-gram is fitted on
        the training texts and ``lm_texts`` (more words in the alphabet, e.g. a word list of the language; see
        :meth:`fit_lm`)."""
        cfg = self.config
        extra = np.zeros(1, dtype=np.int64)  # the n-gram layout of lm_texts: just the leading 0 when there are none
        if lm_texts:
            if not cfg.lm_order:
                raise ValueError("lm_texts were given but lm_order is 0 (no language model); set lm_order or leave "
                                 "lm_texts out.")  # fmt: skip
            extra = self._lm_ids(lm_texts, "lm_texts")  # a bad word list fails before training, not after
        if len(trajectories) != len(texts):
            raise ValueError(f"{len(trajectories)} trajectories but {len(texts)} texts; give one text per trajectory.")
        if not texts:
            raise ValueError("No training examples; give at least one trajectory and its text.")
        empty = next((i for i, t in enumerate(texts) if not t), None)
        if empty is not None:
            raise ValueError(f"Text {empty} is empty; every training trajectory needs the text it writes.")
        seed_everything(cfg.seed)
        feats, labels = self._features(trajectories), self._labels(texts)
        fits = [len(f) >= ctc.min_frames(y) for f, y in zip(feats, labels, strict=True)]
        if not all(fits):
            logger.warning("%d training trajectories have fewer points than their texts need; left out (a smaller "
                           "step gives more points).", len(fits) - sum(fits))  # fmt: skip
            feats = [f for f, ok in zip(feats, fits, strict=True) if ok]
            labels = [y for y, ok in zip(labels, fits, strict=True) if ok]
            if not feats:
                raise ValueError("No training trajectory has enough points for its text; lower step.")
        if cfg.lm_order:
            ids = np.concatenate([_ngram_ids(labels), extra[1:]])  # the training texts, then lm_texts
            self.lm = WittenBellLM(cfg.lm_order, self.alphabet.num_classes).fit(ids)
        self.net = HandwritingNet(self.alphabet.num_classes, cfg)
        data = _Batches(feats, labels, cfg.batch_size, cfg.seed)
        val = None
        if validation is not None and validation[0]:
            val = list(_Batches(self._features(validation[0]), self._labels(validation[1]), 64, cfg.seed, False))

        def loss_fn(model: HandwritingNet, batch: tuple[Tensor, ...], state: Any) -> StepOutput:
            x, lengths, targets, target_lengths = batch
            log_probs = model(x, lengths if cfg.exact_padding else None).transpose(0, 1)  # (T, B, C)
            return StepOutput(loss=ctc.ctc_loss(log_probs, targets, lengths, target_lengths), n_items=x.shape[0])

        def eval_fn(model: HandwritingNet, batches: list[tuple[Tensor, ...]]) -> dict[str, float]:
            total, n, refs, hyps = 0.0, 0, [], []
            for x, lengths, targets, target_lengths in batches:
                log_probs = model(x, lengths).transpose(0, 1)  # (T, B, C)
                total += float(ctc.ctc_loss(log_probs, targets, lengths, target_lengths, "sum"))
                n += x.shape[0]
                ends = torch.cumsum(target_lengths, 0).tolist()
                refs += [targets[e - s : e].tolist() for s, e in zip(target_lengths.tolist(), ends, strict=True)]
                hyps += ctc.greedy_decode(log_probs, lengths)
            as_text = lambda ys: [self.alphabet.decode(y) for y in ys]  # noqa: E731
            return {"val_loss": total / max(n, 1), "val_cer": ctc.cer(as_text(refs), as_text(hyps))}

        # The epoch with the lowest validation CER is kept by the trainer's early stopping that never stops (patience =
        # epochs), which a resumed run remembers; with weight averaging the average is kept instead.
        keep_best = val is not None and cfg.average_from_epoch is None
        train_cfg = TrainConfig(epochs=cfg.epochs, batch_size=cfg.batch_size, lr=cfg.lr, seed=cfg.seed,
                                clip_grad_norm=cfg.clip_grad_norm, progress=cfg.progress, schedule="cosine",
                                on_nonfinite=cfg.on_nonfinite, average_from_epoch=cfg.average_from_epoch,
                                early_stopping_patience=cfg.epochs if keep_best else None, monitor="val_cer",
                                max_minutes=cfg.max_minutes)  # fmt: skip
        run_config = {k: v for k, v in cfg.to_dict().items() if k != "progress"}
        if lm_texts:  # a resumed run must fit its n-gram on the same words (ResumeError otherwise)
            run_config["lm_texts"] = {"n": len(lm_texts), "sha256": hashlib.sha256(extra.tobytes()).hexdigest()}
        trainer = Trainer(self.net, loss_fn, train_cfg, run_dir=run_dir, eval_fn=eval_fn if val else None,
                          callbacks=[GateStatistics()], run_config=run_config, kind=KIND)  # fmt: skip
        self.history_ = trainer.fit(data, val_data=val, resume=resume)
        self.net.eval()
        if trainer.averaged_steps and val:  # the net holds the average: score that on the validation words
            with torch.no_grad():
                self.best_val_cer_ = eval_fn(self.net, val)["val_cer"]
        elif not trainer.averaged_steps and trainer.best_value is not None:  # the best epoch's weights are back
            self.best_val_cer_ = trainer.best_value
        return self

    def _check(self) -> HandwritingNet:
        if self.net is None:
            raise RuntimeError("This HandwritingRecognizer is not fitted: call fit(trajectories, texts) or "
                               "HandwritingRecognizer.load(run_dir).")  # fmt: skip
        return self.net

    # ---- recognition --------------------------------------------------------------------------------------------
    @torch.no_grad()
    def log_probs(self, trajectories: list[np.ndarray], batch_size: int = 64) -> list[np.ndarray]:
        """Per-point class log-probabilities, one (T_i, C) array per trajectory."""
        net = self._check()
        net.eval()
        feats = self._features(trajectories)
        out: list[np.ndarray] = []
        for s in range(0, len(feats), batch_size):
            x, lengths = _pad(feats[s : s + batch_size])
            lp = net(x, lengths).double().numpy()  # (B, T, C)
            out += [lp[i, : int(n)] for i, n in enumerate(lengths)]
        return out

    def recognize(self, trajectories: list[np.ndarray] | np.ndarray, *, beam_width: int = 1, use_lm: bool = False,
                  alpha: float | None = None, beta: float | None = None) -> list[str]:  # fmt: skip
        """The text of each trajectory (a single (N, 3) array is taken as a list of one).

        Args:
            beam_width: 1: greedy (best path); more: CTC prefix beam search.
            use_lm: rank beams with the character n-gram (fitted on the training texts and any ``lm_texts``, or
                by :meth:`fit_lm`), or with the character LSTM given to :meth:`set_char_lm`: ``alpha`` its
                weight, ``beta`` the bonus per character, by default those :meth:`tune_lm` chose (see
                :func:`lstmkit.tasks.recognition.ctc.beam_search`).
        """
        if isinstance(trajectories, np.ndarray) and trajectories.ndim == 2:
            trajectories = [trajectories]
        if beam_width < 1:
            raise ValueError(f"beam_width must be at least 1, got {beam_width}.")
        if use_lm:
            self._lm_hook("recognise without use_lm")  # the error, before any reading
            beam_width = max(beam_width, 2)
        alpha = self.lm_alpha if alpha is None else alpha
        beta = self.lm_beta if beta is None else beta
        # a fresh hook per trajectory: an LSTM's cache of prefix states lasts one word, not the whole call
        return [self._decode(lp, beam_width, self._lm_hook("") if use_lm else None, alpha, beta)
                for lp in self._readings(list(trajectories))]  # fmt: skip

    def _readings(self, trajectories: list[np.ndarray]) -> list[np.ndarray]:
        """What :meth:`_decode` decodes, one per trajectory: here its (T, C) log-probabilities."""
        return self.log_probs(trajectories)

    def _lm_hook(self, instead: str) -> ctc.LMHook:
        """What beam search with the language model reads: the character LSTM if one is set, else the n-gram (a
        fresh hook: the LSTM's cache of prefix states lives as long as it). ``instead``: the way out, if neither."""
        if self.char_lm is not None:
            lstm = ctc.char_lm_hook(self.char_lm, self.alphabet, end="\n")
            if self.char_lm_share == 1.0:
                return lstm
            assert self.lm is not None  # set_char_lm checked it
            share = self.char_lm_share
            return ctc.mix_hooks([lstm, ctc.ngram_hook(self.lm)], [share, 1.0 - share])
        if self.lm is None:
            raise ValueError(f"This recogniser has no language model (lm_order=0 and no set_char_lm); {instead}.")
        return ctc.ngram_hook(self.lm)

    def set_char_lm(self, model: Any, share: float = 1.0) -> HandwritingRecognizer:
        """Beam search with ``use_lm`` (and :meth:`tune_lm`) reads ``model``, a character-level
        :class:`lstmkit.LanguageModel` trained on words one per line (its ``"\\n"`` starts and ends a word): alone
        (``share=1``) or mixed with the n-gram, the next character's probability being ``share`` times the LSTM's
        plus ``1 - share`` times the n-gram's (:func:`lstmkit.tasks.recognition.ctc.mix_hooks`). ``None`` goes back to the
        n-gram. The model is not saved with the recogniser (it is a run of its own). The weight and bonus stay those
        chosen for the n-gram until :meth:`tune_lm` chooses new ones (which :meth:`save` then writes) or ``alpha``
        and ``beta`` are passed. A model of running prose is accepted but reads ``"\\n"`` as a line's end, not a
        word's, and its probability of spaces and punctuation is lost: train it on words, one per line."""
        if model is None and share != 1.0:
            raise ValueError(f"share={share} is the part of a character LSTM, and no model was given; give one, or "
                             "leave share at 1 to go back to the n-gram.")  # fmt: skip
        if model is not None:
            if not 0.0 < share <= 1.0:
                raise ValueError(f"share is the LSTM's part of the mixed probability, in (0, 1], got {share}.")
            if share < 1.0 and self.lm is None:
                raise ValueError(f"share={share} mixes the LSTM with the n-gram, and this recogniser has none "
                                 "(lm_order=0); use share=1 or fit_lm first.")  # fmt: skip
            net, tok = model._check()
            level = getattr(tok, "level", None)
            if level != "character":
                raise ValueError(f"set_char_lm needs a character-level language model; this one is {level}-level "
                                 "(train one with `lstmkit text train --level char`).")  # fmt: skip
            known = set(tok.stoi)  # type: ignore[attr-defined]
            missing = [c for c in [*self.alphabet.chars, "\n"] if c not in known]
            if missing:
                raise ValueError(f"The language model never saw {', '.join(map(repr, missing))}, which the "
                                 "recogniser needs (its alphabet, and '\\n' for the start and end of a word); train it "
                                 "on text with one word per line.")  # fmt: skip
        self.char_lm, self.char_lm_share = model, share if model is not None else 1.0
        return self

    def _decode(self, lp: np.ndarray, beam_width: int, hook: ctc.LMHook | None, alpha: float, beta: float) -> str:
        if beam_width == 1:
            return self.alphabet.decode(ctc.greedy_decode(lp))  # type: ignore[arg-type]
        labels = ctc.beam_search(lp, beam_width, lm=hook, alpha=alpha if hook else 0.0, beta=beta if hook else 0.0)
        return self.alphabet.decode(labels)  # type: ignore[arg-type]

    def _lm_ids(self, texts: list[str], what: str = "texts") -> np.ndarray:
        """:func:`_ngram_ids` of texts, each checked: not empty, in the alphabet (``what`` names them in errors)."""
        labels = []
        for i, t in enumerate(texts):
            if not t:
                raise ValueError(f"{what}[{i}] is empty; the language model reads words in the alphabet.")
            try:
                labels.append(self.alphabet.encode(t))
            except ValueError as e:
                raise ValueError(f"{what}[{i}]: {e}") from e
        return _ngram_ids(labels)

    def fit_lm(self, texts: list[str], order: int | None = None) -> HandwritingRecognizer:
        """Fit the character n-gram that beam search reads (``use_lm``) on ``texts`` instead of the training texts:
        words (or lines) in the alphabet, each one's start and end marked. ``order``: the n-gram's order (default:
        the config's ``lm_order``, which this updates, so a recogniser's :meth:`save` writes the new model; an
        ensemble's n-gram lives only as long as the ensemble). A word list of the language gives the n-gram letter
        sequences the training words lack; call :meth:`tune_lm` afterwards (or pass ``alpha`` and ``beta``), since
        the weight and bonus chosen for the old model may not suit the new one."""
        order = self.config.lm_order if order is None else order
        if order < 1:
            raise ValueError(f"The language model's order must be at least 1, got {order}.")
        if not texts:
            raise ValueError("fit_lm needs at least one text to fit the language model on.")
        ids = self._lm_ids(texts)
        self.config = replace(self.config, lm_order=order)
        self.lm = WittenBellLM(order, self.alphabet.num_classes).fit(ids)
        return self

    def tune_lm(self, trajectories: list[np.ndarray], texts: list[str], *, beam_width: int = 8,
                alphas: tuple[float, ...] = (0.25, 0.5, 1.0), betas: tuple[float, ...] = (0.0, 1.0, 2.0),
                ) -> dict[str, float]:  # fmt: skip
        """Choose the language model's weight and character bonus by CER on held-out (validation) data; keeps them
        for :meth:`recognize` and returns ``{"alpha", "beta", "cer"}``."""
        self._lm_hook("there is nothing to tune")  # the error, before any reading
        lps = self._readings(trajectories)
        hooks = [self._lm_hook("") for _ in lps]  # one per trajectory, kept over the grid (an LSTM's cached states)
        best = {"alpha": self.lm_alpha, "beta": self.lm_beta, "cer": float("inf")}
        for alpha in alphas:
            for beta in betas:
                read = [self._decode(lp, beam_width, h, alpha, beta) for lp, h in zip(lps, hooks, strict=True)]
                score = ctc.cer(texts, read)
                if score < best["cer"]:
                    best = {"alpha": alpha, "beta": beta, "cer": score}
        self.lm_alpha, self.lm_beta = best["alpha"], best["beta"]
        return best

    def recognize_file(self, path: str | os.PathLike[str], *, y_down: bool = False, **kwargs: Any) -> str:
        """The text of the strokes in a JSON or CSV file (see :func:`lstmkit.tasks.recognition.handwriting.data.read_strokes`)."""
        return self.recognize([read_strokes(path, y_down=y_down)], **kwargs)[0]

    def evaluate(self, trajectories: list[np.ndarray], texts: list[str], **kwargs: Any) -> dict[str, float]:
        """CER and WER of :meth:`recognize` (same keyword arguments) against ``texts``."""
        if len(trajectories) != len(texts):
            raise ValueError(f"{len(trajectories)} trajectories but {len(texts)} texts; give one text per trajectory.")
        outputs = self.recognize(trajectories, **kwargs)
        return {"cer": ctc.cer(texts, outputs), "wer": ctc.wer(texts, outputs), "n": len(texts)}

    # ---- persistence --------------------------------------------------------------------------------------------
    def save(self, run_dir: str | os.PathLike[str], *, overwrite: bool = False) -> Path:
        net = self._check()
        extra = _lm_tensors(self.lm) if self.lm is not None else None
        config = {"handwriting": self.config.to_dict(), "lm_alpha": self.lm_alpha, "lm_beta": self.lm_beta}
        return runs.save_run(run_dir, KIND, config, net, extra, overwrite=overwrite)

    @classmethod
    def load(cls, run_dir: str | os.PathLike[str]) -> HandwritingRecognizer:
        saved = runs.read_run_config(run_dir, KIND)["config"]
        model = cls(HandwritingConfig.from_dict(saved["handwriting"]))
        model.net = HandwritingNet(model.alphabet.num_classes, model.config)
        model.net.load_state_dict(runs.read_state_dict(run_dir))
        model.net.eval()
        model.lm_alpha, model.lm_beta = float(saved["lm_alpha"]), float(saved["lm_beta"])
        if model.config.lm_order:
            tensors = runs.read_extra_tensors(run_dir)
            model.lm = _lm_from_tensors(tensors, model.config.lm_order, model.alphabet.num_classes)
        return model


class HandwritingEnsemble(HandwritingRecognizer):
    """Several trained recognisers read as one, with the same ``recognize``, ``evaluate`` and ``tune_lm`` (the
    language model is the first member's n-gram, until :meth:`fit_lm` gives the ensemble its own).

    ``combine="probs"``: the members' per-point class probabilities are averaged, then decoded like one model's.
    ``combine="sequences"``: each member proposes its own readings (its best path, or its beams with the language
    model), and the proposal with the highest mean CTC log-likelihood over the members, plus the language model's
    score, wins (:func:`lstmkit.tasks.recognition.ctc.rescore`): every member scores every proposal exactly, so the members need
    not put a letter's spike on the same point.

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
