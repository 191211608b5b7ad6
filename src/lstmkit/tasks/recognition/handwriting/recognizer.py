"""Online handwriting recognition: ``lstmkit.HandwritingRecognizer`` (pen trajectories to text).

Input: pen trajectories (N, 3) ``x, y, pen_up`` (see :mod:`.strokes`), turned into ``(dx, dy, y, pen_up)`` points
at equal arc length, normalised by the ink's height. Network (:mod:`.network`): a stacked bidirectional
:class:`lstmkit.nn.LSTM` over the points and a linear layer to ``C`` classes (the blank and each character) at every
point, trained with CTC (Graves et al. 2006; online handwriting: Graves et al. 2009, "A novel connectionist system
for unconstrained handwriting recognition"). Decoding (:mod:`lstmkit.tasks.recognition.ctc`): greedy (best path),
prefix beam search, and beam search with a character n-gram language model (interpolated Witten-Bell, fitted on the
training texts and saved with the run). Scores: CER and WER.

Modules: ``config`` (HandwritingConfig), ``strokes`` (reading, checking, features), ``network`` (network, batches,
the saved n-gram), ``recognizer`` (HandwritingRecognizer), ``ensemble`` (HandwritingEnsemble), ``run`` (train_run:
a scored run directory), ``data`` (the synthetic Hershey-font words).

Example:
    >>> model = HandwritingRecognizer(epochs=20).fit(trajectories, texts)              # doctest: +SKIP
    >>> model.recognize([points], beam_width=16)                                      # doctest: +SKIP
    ['hello']
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from .... import runs
from ....train import StepOutput, resolve_device, seed_everything
from ...text.ngram import WittenBellLM
from ...training import on_training_device, task_trainer
from .. import ctc
from .config import HandwritingConfig
from .network import HandwritingBatches, HandwritingNetwork, lm_from_tensors, lm_tensors, ngram_ids, pad_points
from .strokes import StrokeError, features, read_strokes

__all__ = ["KIND", "HandwritingRecognizer"]

logger = logging.getLogger(__name__)

KIND = "handwriting"


@runs.register_kind(KIND)
class HandwritingRecognizer:
    """Pen trajectories to text: ``fit``, ``recognize``, ``evaluate``, ``save``, ``load``. Keyword arguments are
    :class:`HandwritingConfig` fields, flat (``hidden_size=64, epochs=4``) or by section."""

    def __init__(self, config: HandwritingConfig | None = None, **kwargs: Any) -> None:
        self.config = config if config is not None else HandwritingConfig.from_dict(kwargs)
        self.alphabet = ctc.Alphabet(self.config.alphabet)
        self.net: HandwritingNetwork | None = None
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
        seed_everything(cfg.train.seed)
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
            ids = np.concatenate([ngram_ids(labels), extra[1:]])  # the training texts, then lm_texts
            self.lm = WittenBellLM(cfg.lm_order, self.alphabet.num_classes).fit(ids)
        device = resolve_device(cfg.train.device)
        self.net = _network(self.alphabet.num_classes, cfg)
        data = HandwritingBatches(feats, labels, cfg.train.batch_size, cfg.train.seed)
        val = None
        if validation is not None and validation[0]:
            v_feats, v_labels = self._features(validation[0]), self._labels(validation[1])
            val = list(HandwritingBatches(v_feats, v_labels, 64, cfg.train.seed, False))

        def loss_fn(model: HandwritingNetwork, batch: tuple[Tensor, ...], state: Any) -> StepOutput:
            x, lengths, targets, target_lengths = batch
            log_probs = model(x, lengths if cfg.exact_padding else None).transpose(0, 1)  # (T, B, C)
            return StepOutput(loss=ctc.ctc_loss(log_probs, targets, lengths, target_lengths), n_items=x.shape[0])

        def eval_fn(model: HandwritingNetwork, batches: list[tuple[Tensor, ...]]) -> dict[str, float]:
            total, n, refs, hyps = 0.0, 0, [], []
            on = next(model.parameters()).device
            for batch in batches:
                x, lengths, targets, target_lengths = (t.to(on) for t in batch)
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
        keep_best = val is not None and cfg.train.average_from_epoch is None
        patience = cfg.train.early_stopping_patience or cfg.train.epochs if keep_best else None
        train_cfg = cfg.train.replace(early_stopping_patience=patience)
        lm_words = None  # a resumed run must fit its n-gram on the same words (ResumeError otherwise)
        if lm_texts:
            lm_words = {"lm_texts": {"n": len(lm_texts), "sha256": hashlib.sha256(extra.tobytes()).hexdigest()}}
        trainer = task_trainer(self.net, loss_fn, cfg, kind=KIND, run_dir=run_dir, train=train_cfg,
                               eval_fn=eval_fn if val else None, run_config_extra=lm_words)  # fmt: skip
        with on_training_device(self.net, device):  # recognition and saving run on the CPU
            self.history_ = trainer.fit(data, val_data=val, resume=resume)
        self.net.eval()
        if trainer.averaged_steps and val:  # the net holds the average: score that on the validation words
            with torch.no_grad():
                self.best_val_cer_ = eval_fn(self.net, val)["val_cer"]
        elif not trainer.averaged_steps and trainer.best_value is not None:  # the best epoch's weights are back
            self.best_val_cer_ = trainer.best_value
        return self

    def _check(self) -> HandwritingNetwork:
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
            x, lengths = pad_points(feats[s : s + batch_size])
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
        plus ``1 - share`` times the n-gram's (:func:`lstmkit.tasks.recognition.ctc.mix_hooks`). ``None`` goes back to
        the n-gram. The model is not saved with the recogniser (it is a run of its own). The weight and bonus stay those
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
        """:func:`.network.ngram_ids` of texts, each checked: not empty, in the alphabet (``what`` names them in
        errors)."""
        labels = []
        for i, t in enumerate(texts):
            if not t:
                raise ValueError(f"{what}[{i}] is empty; the language model reads words in the alphabet.")
            try:
                labels.append(self.alphabet.encode(t))
            except ValueError as e:
                raise ValueError(f"{what}[{i}]: {e}") from e
        return ngram_ids(labels)

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
        """The text of the strokes in a JSON or CSV file (see :func:`.strokes.read_strokes`)."""
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
        extra = lm_tensors(self.lm) if self.lm is not None else None
        config = {"handwriting": self.config.to_dict(), "lm_alpha": self.lm_alpha, "lm_beta": self.lm_beta}
        return runs.save_run(run_dir, KIND, config, net, extra, overwrite=overwrite)

    @classmethod
    def load(cls, run_dir: str | os.PathLike[str]) -> HandwritingRecognizer:
        saved = runs.read_run_config(run_dir, KIND)["config"]
        model = cls(HandwritingConfig.from_dict(saved["handwriting"]))
        model.net = _network(model.alphabet.num_classes, model.config)
        model.net.load_state_dict(runs.read_state_dict(run_dir))
        model.net.eval()
        model.lm_alpha, model.lm_beta = float(saved["lm_alpha"]), float(saved["lm_beta"])
        if model.config.lm_order:
            tensors = runs.read_extra_tensors(run_dir)
            model.lm = lm_from_tensors(tensors, model.config.lm_order, model.alphabet.num_classes)
        return model


def _network(num_classes: int, cfg: HandwritingConfig) -> HandwritingNetwork:
    """The network of ``cfg.net``'s sizes."""
    n = cfg.net
    return HandwritingNetwork(num_classes, hidden_size=n.hidden_size, num_layers=n.num_layers, dropout=n.dropout,
                              output_dropout=n.output_dropout)  # fmt: skip
