"""Speech recognition with CTC: ``lstmkit.SpeechRecognizer`` (audio in, characters out).

Audio (a WAV file of any sample rate, mono or stereo, or a NumPy array with its rate) is mixed down to mono,
resampled to 16 kHz (soxr, as librosa does) and turned into 40 log-mel bands (librosa) every 10 ms from 25 ms
windows, normalised per band and stacked ``stack`` frames to a network step (:mod:`.audio`). The network
(:mod:`.network`) is a stacked, by default bidirectional LSTM, or the convolutional frame-classifier baseline.

Both train with CTC (:mod:`lstmkit.tasks.recognition.ctc`) and decode greedily or by prefix beam search, optionally
with a character n-gram (interpolated Witten-Bell) fitted on the training transcripts. A unidirectional LSTM with
running normalisation also streams: :meth:`SpeechRecognizer.stream` gives a :class:`.stream.SpeechStream` that takes
chunks of samples as they arrive and returns the partial transcript after each, carrying the resampler, the frame
buffer, the normaliser's sums and the LSTM state. :func:`.run.train_run` is what ``lstmkit speech train`` runs.

Modules: ``config`` (SpeechConfig), ``audio`` (audio in, features), ``network`` (networks, batches), ``stream``
(SpeechStream), ``recognizer`` (SpeechRecognizer), ``run`` (train_run: a scored run directory), ``data`` (the
espeak-ng data set).

Shapes: ``T`` network steps, ``I`` input features per step, ``B`` batch, ``C`` classes.

Example:
    >>> rec = SpeechRecognizer(hidden_size=128, epochs=20).fit(wav_paths, texts)        # doctest: +SKIP
    >>> rec.transcribe("three.wav", beam_size=8)                                      # doctest: +SKIP
    'three one four'
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from .... import runs
from ....train import StepOutput, resolve_device, seed_everything
from ...training import on_training_device, task_trainer
from ..ctc import Alphabet, beam_search, cer, char_lm_hook, ctc_loss, greedy_decode, min_frames, ngram_hook, wer
from .audio import SAMPLE_RATE, Audio, audio_features, load_audio, log_mel, resample
from .config import SpeechConfig
from .network import SpeechBatches, SpeechNetwork, pad_features
from .stream import SpeechStream

__all__ = ["KIND", "SpeechRecognizer"]

KIND = "speech_recognizer"


# ---- the recogniser -----------------------------------------------------------------------------------------------
@runs.register_kind(KIND)
class SpeechRecognizer:
    """Audio to text with CTC: ``fit``, ``transcribe``, ``evaluate``, ``stream``, ``save``, ``load``. Keyword
    arguments are :class:`SpeechConfig` fields, flat (``hidden_size=64, epochs=4``) or by section."""

    def __init__(self, config: SpeechConfig | None = None, **kwargs: Any) -> None:
        self.config = config if config is not None else SpeechConfig.from_dict(kwargs)
        self.alphabet: Alphabet | None = None
        self.net: SpeechNetwork | None = None
        self.mean = np.zeros(self.config.n_mels)  # training log-mel statistics, the running normaliser's prior
        self.var = np.ones(self.config.n_mels)
        self.lm_labels: np.ndarray | None = None  # the training transcripts as labels, 0-separated (the n-gram's data)
        self._lm: Any = None
        self.history_: list[dict[str, Any]] = []

    # ---- features ---------------------------------------------------------------------------------------------
    def features(self, source: Audio) -> np.ndarray:
        """(T, I) network input of one utterance (see :func:`audio_features`)."""
        return audio_features(source, self.config, self.mean, self.var)

    def _fit_statistics(self, audio: Sequence[Audio]) -> None:
        """Mean and variance of every log-mel band over (up to 500 of) the training utterances."""
        picks = np.random.default_rng(self.config.train.seed).permutation(len(audio))[:500]
        frames = [log_mel(resample(*load_audio(audio[i])), self.config.n_mels) for i in picks]
        stacked = np.concatenate(frames).astype(np.float64)  # (sum F, M)
        self.mean, self.var = stacked.mean(axis=0), stacked.var(axis=0)

    # ---- training ---------------------------------------------------------------------------------------------
    def fit(
        self, audio: Sequence[Audio], texts: Sequence[str], run_dir: str | os.PathLike[str] | None = None, *,
        validation: tuple[Sequence[Audio], Sequence[str]] | None = None, resume: bool = False,
        features: Sequence[np.ndarray] | None = None,
    ) -> SpeechRecognizer:  # fmt: skip
        """Train on utterances (WAV paths or ``(samples, rate)`` pairs) and their transcripts.

        ``validation``: held-out utterances scored each epoch (loss and greedy CER); the weights of the epoch with
        the lowest validation CER are kept. ``features``: the utterances' precomputed :meth:`features` (needs the
        same statistics, so only for a recogniser whose statistics are already set).

        Raises:
            ValueError: no utterances, a count mismatch, an empty transcript, bad audio (one sentence naming the
                file), or an utterance too short for its transcript under CTC.
        """
        cfg = self.config
        if len(audio) != len(texts):
            raise ValueError(f"{len(audio)} utterances but {len(texts)} transcripts; give one transcript each.")
        if not len(audio):
            raise ValueError("No training utterances; give at least one WAV file and its transcript.")
        empty = next((i for i, t in enumerate(texts) if not t.strip()), None)
        if empty is not None:
            raise ValueError(f"Transcript {empty} is empty; every utterance needs its text.")
        seed_everything(cfg.train.seed)
        self.alphabet = alphabet = Alphabet.from_texts(texts)
        if cfg.normalisation == "running" and features is None:
            self._fit_statistics(audio)
        feats = list(features) if features is not None else [self.features(a) for a in audio]
        labels = [self.alphabet.encode(t) for t in texts]
        for i, (f, y) in enumerate(zip(feats, labels, strict=True)):
            if len(f) < min_frames(y):
                raise ValueError(
                    f"Utterance {i} gives {len(f)} steps of {cfg.stack * 10} ms, too few for its {len(y)}-character "
                    f"transcript {texts[i]!r}; check that the audio and transcript belong together."
                )
        self.lm_labels = np.array([i for y in labels for i in (0, *y)] + [0], dtype=np.int64)
        self._lm = None
        seed_everything(cfg.train.seed)
        device = resolve_device(cfg.train.device)
        self.net = _network(feats[0].shape[1], self.alphabet.num_classes, cfg)
        data = SpeechBatches(feats, labels, cfg.train.batch_size, cfg.train.seed, with_background=True,
                        masks=(cfg.n_mels, cfg.stack) if cfg.augment else None)  # fmt: skip
        val = None
        if validation is not None:
            v_audio, v_texts = validation
            v_feats = [self.features(a) for a in v_audio]
            val = SpeechBatches(v_feats, [self.alphabet.encode(t) for t in v_texts], 64, cfg.train.seed, shuffle=False)

        def loss_fn(model: SpeechNetwork, batch: tuple[Tensor, ...], state: Any) -> StepOutput:
            x, lengths, targets, target_lengths = batch  # training batches come masked (augment)
            log_probs = model(x, lengths)  # (B, T, C)
            loss = ctc_loss(log_probs.transpose(0, 1), targets, lengths, target_lengths)
            return StepOutput(loss=loss, n_items=len(lengths))

        def eval_fn(model: SpeechNetwork, val_data: Any) -> dict[str, float]:
            total, n, references, hypotheses = 0.0, 0, [], []
            on = next(model.parameters()).device
            for batch in val_data:  # batches sorted by length: references from them
                x, lengths, targets, target_lengths = (t.to(on) for t in batch)
                log_probs = model(x, lengths)  # (B, T, C)
                total += float(ctc_loss(log_probs.transpose(0, 1), targets, lengths, target_lengths)) * len(lengths)
                n += len(lengths)
                references += [alphabet.decode(y.tolist()) for y in torch.split(targets, target_lengths.tolist())]
                hypotheses += [alphabet.decode(h) for h in greedy_decode(log_probs.transpose(0, 1), lengths)]
            return {"val_loss": total / n, "val_cer": cer(references, hypotheses)}

        # with validation voices, the epoch with the lowest validation CER is kept: early stopping that never stops;
        # with weight averaging the average is kept instead (the Trainer refuses the two together)
        keep_best = val is not None and cfg.train.average_from_epoch is None
        patience = cfg.train.early_stopping_patience or cfg.train.epochs if keep_best else None
        train_cfg = cfg.train.replace(early_stopping_patience=patience)
        with on_training_device(self.net, device):  # decoding, streaming and saving run on the CPU
            trainer = task_trainer(self.net, loss_fn, cfg, kind=KIND, run_dir=run_dir, train=train_cfg,
                                   eval_fn=eval_fn if val else None)  # fmt: skip
            self.history_ = trainer.fit(data, val_data=val, resume=resume)
        self.net.eval()
        return self

    def _check(self) -> tuple[SpeechNetwork, Alphabet]:
        if self.net is None or self.alphabet is None:
            raise RuntimeError("This SpeechRecognizer is not fitted: call fit(audio, texts) or load(run_dir).")
        return self.net, self.alphabet

    # ---- decoding ---------------------------------------------------------------------------------------------
    def _lm_hook(self) -> Any:
        if self.lm_labels is None:
            raise ValueError("This recogniser has no language model data; lm_weight needs a fitted recogniser.")
        if self._lm is None:
            from ...text.ngram import WittenBellLM

            _, alphabet = self._check()
            hook = ngram_hook(WittenBellLM(self.config.lm_order, alphabet.num_classes).fit(self.lm_labels))
            history, cache = self.config.lm_order - 1, {}

            def cached(prefix: tuple[int, ...]) -> np.ndarray:
                # the n-gram reads only the last order - 1 labels (0-padded, as ngram_hook pads them), so the
                # answers are shared by every prefix and utterance with that history: 10x faster beam search
                key = tuple([0] * history + [0, *prefix])[len(prefix) + 1 :] if history else ()
                if key not in cache:
                    cache[key] = hook(prefix)
                return cache[key]

            self._lm = cached
        return self._lm

    @torch.no_grad()
    def log_probs(self, sources: Sequence[Audio] | Sequence[np.ndarray], batch_size: int = 32) -> list[np.ndarray]:
        """Per-step class log-probabilities (T, C) of each utterance (audio, or precomputed :meth:`features`)."""
        net, _ = self._check()
        net.eval()
        feats = [s if isinstance(s, np.ndarray) else self.features(s)
                 for s in sources]  # fmt: skip
        out = []
        for start in range(0, len(feats), batch_size):
            x, lengths = pad_features(feats[start : start + batch_size])
            lp = net(x, lengths)  # (B, T, C)
            out += [lp[b, : int(n)].numpy() for b, n in enumerate(lengths)]
        return out

    def decode(self, log_probs: np.ndarray, *, beam_size: int = 1, lm_weight: float = 0.0,
               length_bonus: float = 0.0, language_model: Any = None) -> str:  # fmt: skip
        """Text of one utterance's (T, C) log-probabilities: greedy (``beam_size=1``, no LM) or prefix beam search,
        with a character language model weighted by ``lm_weight``: the training transcripts' n-gram, or
        ``language_model``, a character-level :class:`lstmkit.LanguageModel` (its ``"\\n"`` ends a text)."""
        _, alphabet = self._check()
        if beam_size < 1:
            raise ValueError(f"beam_size must be at least 1, got {beam_size}.")
        if lm_weight < 0:
            raise ValueError(f"lm_weight must be >= 0, got {lm_weight}.")
        if beam_size == 1 and lm_weight == 0:
            return alphabet.decode(greedy_decode(log_probs))
        lm = None
        if lm_weight > 0:
            lm = self._lm_hook() if language_model is None else char_lm_hook(language_model, alphabet, end="\n")
        return alphabet.decode(beam_search(log_probs, beam_size, lm=lm, alpha=lm_weight, beta=length_bonus))

    def transcribe(self, audio: Audio | Sequence[Audio], *, beam_size: int = 1, lm_weight: float = 0.0,
                   length_bonus: float = 0.0, language_model: Any = None) -> str | list[str]:  # fmt: skip
        """The text of one utterance (a WAV path or ``(samples, rate)``), or of each in a list (options: see
        :meth:`decode`)."""
        single = isinstance(audio, (str, os.PathLike, tuple))
        items = [audio] if single else list(audio)  # type: ignore[list-item]
        texts = [self.decode(lp, beam_size=beam_size, lm_weight=lm_weight, length_bonus=length_bonus,
                             language_model=language_model) for lp in self.log_probs(items)]  # fmt: skip
        return texts[0] if single else texts

    def evaluate(
        self, audio: Sequence[Audio] | Sequence[np.ndarray], texts: Sequence[str], *, beam_size: int = 1,
        lm_weight: float = 0.0, length_bonus: float = 0.0, language_model: Any = None,
    ) -> dict[str, Any]:  # fmt: skip
        """CER and WER of the transcripts (``sentence_error``: the share not exactly right), with the hypotheses."""
        if len(audio) != len(texts):
            raise ValueError(f"{len(audio)} utterances but {len(texts)} transcripts; give one transcript each.")
        hyps = [self.decode(lp, beam_size=beam_size, lm_weight=lm_weight, length_bonus=length_bonus,
                            language_model=language_model) for lp in self.log_probs(audio)]  # fmt: skip
        return {"cer": cer(texts, hyps), "wer": wer(texts, hyps), "n": len(texts),
                "sentence_error": float(np.mean([h != t for h, t in zip(hyps, texts, strict=True)])),
                "hypotheses": hyps}  # fmt: skip

    def stream(self, sample_rate: int = SAMPLE_RATE) -> SpeechStream:
        """A :class:`SpeechStream` for audio arriving in chunks at ``sample_rate``.

        Raises:
            ValueError: the model is bidirectional, convolutional or normalises per utterance (it needs the end).
        """
        self._check()
        if not self.config.can_stream:
            raise ValueError(
                "This recogniser cannot stream: it needs a unidirectional LSTM with running normalisation "
                f"(architecture={self.config.net.architecture!r}, bidirectional={self.config.net.bidirectional}, "
                f"normalisation={self.config.normalisation!r}); train one with --unidirectional."
            )
        return SpeechStream(self, sample_rate)

    # ---- persistence ------------------------------------------------------------------------------------------
    def save(self, run_dir: str | os.PathLike[str], *, overwrite: bool = False) -> Path:
        """config.json (config, alphabet, input size) + model.safetensors + extra.safetensors (the log-mel
        statistics and the training transcripts as labels, for the n-gram)."""
        net, alphabet = self._check()
        config = {"speech": self.config.to_dict(), "alphabet": alphabet.chars,
                  "input_size": self.config.stack * self.config.n_mels}  # fmt: skip
        extra = {"feature_mean": torch.from_numpy(np.asarray(self.mean, dtype=np.float64)),
                 "feature_var": torch.from_numpy(np.asarray(self.var, dtype=np.float64))}  # fmt: skip
        if self.lm_labels is not None:
            extra["lm_labels"] = torch.from_numpy(self.lm_labels)
        return runs.save_run(run_dir, KIND, config, net, extra, overwrite=overwrite)

    @classmethod
    def load(cls, run_dir: str | os.PathLike[str]) -> SpeechRecognizer:
        saved = runs.read_run_config(run_dir, KIND)["config"]
        rec = cls(SpeechConfig.from_dict(saved["speech"]))
        rec.alphabet = Alphabet(saved["alphabet"])
        rec.net = _network(saved["input_size"], rec.alphabet.num_classes, rec.config)
        rec.net.load_state_dict(runs.read_state_dict(run_dir))
        rec.net.eval()
        extra = runs.read_extra_tensors(run_dir)
        rec.mean, rec.var = extra["feature_mean"].numpy(), extra["feature_var"].numpy()
        rec.lm_labels = extra["lm_labels"].numpy() if "lm_labels" in extra else None
        return rec


def _network(input_size: int, num_classes: int, cfg: SpeechConfig) -> SpeechNetwork:
    """The network of ``cfg.net``'s sizes."""
    n = cfg.net
    return SpeechNetwork(input_size, num_classes, architecture=n.architecture, hidden_size=n.hidden_size,
                         num_layers=n.num_layers, bidirectional=n.bidirectional, dropout=n.dropout,
                         conv_channels=n.conv_channels, conv_layers=n.conv_layers,
                         conv_kernel=n.conv_kernel)  # fmt: skip
