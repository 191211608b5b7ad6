"""Speech recognition with CTC: ``lstmkit.SpeechRecognizer`` (audio in, characters out).

Audio (a WAV file of any sample rate, mono or stereo, or a NumPy array with its rate) is mixed down to mono,
resampled to 16 kHz (soxr, as librosa does) and turned into 40 log-mel bands (librosa) every 10 ms from 25 ms
windows. Frames are taken with ``center=False``, so frame ``k`` reads samples ``[160 k, 160 k + 400)`` only and the
features of a prefix of the audio are a prefix of the features: what makes streaming exact. Each band is
normalised per utterance:

- ``"utterance"``: mean and variance over the whole utterance (offline models);
- ``"running"``: mean and variance over the frames so far, blended with the training set's statistics as a prior of
  ``prior_frames`` frames (causal: a streaming model sees the same numbers as an offline pass over the same audio).

``stack`` consecutive frames are concatenated into one network step (3: 30 ms steps, a third of the LSTM's work).

Networks (``architecture``):

- ``"lstm"``: a stacked, by default bidirectional :class:`lstmkit.nn.LSTM` and a linear layer to ``C`` classes
  (the CTC blank and one per character);
- ``"conv"``: the non-recurrent baseline, a frame classifier: 1-D convolutions over the stacked frames (ReLU), each
  output seeing a fixed window of ``conv_layers * (conv_kernel - 1) + 1`` steps, then the same linear layer.

Both train with CTC (:mod:`lstmkit.tasks.recognition.ctc`) and decode greedily or by prefix beam search, optionally with a
character n-gram (interpolated Witten-Bell) fitted on the training transcripts. A unidirectional LSTM with running
normalisation also streams: :meth:`SpeechRecognizer.stream` takes chunks of samples as they arrive and returns the
partial transcript after each, carrying the resampler, the frame buffer, the normaliser's sums and the LSTM state.
Its only lookahead is the 25 ms window, the stacking (two more frames) and the resampler's filter delay when the
rate is not 16 kHz; the final text equals the offline pass over the same audio (tested).

Shapes: ``N`` samples, ``F`` frames, ``M`` mel bands, ``T`` network steps (``F // stack``), ``I = stack * M``,
``B`` batch, ``C`` classes.

Example:
    >>> rec = SpeechRecognizer(hidden_size=128, epochs=20).fit(wav_paths, texts)        # doctest: +SKIP
    >>> rec.transcribe("three.wav", beam_size=8)                                      # doctest: +SKIP
    'three one four'
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Union

import numpy as np
import torch
from torch import Tensor, nn

from .... import runs
from ....config import StrictConfig, TrainConfig
from ....data import SeededBatches, bucketed
from ....nn import LSTM
from ....train import GateStatistics, StepOutput, Trainer, seed_everything
from ..ctc import (
    Alphabet,
    beam_search,
    cer,
    char_lm_hook,
    ctc_loss,
    greedy_decode,
    min_frames,
    ngram_hook,
    pack_targets,
    wer,
)

__all__ = ["SpeechConfig", "SpeechRecognizer", "SpeechStream", "audio_features", "load_audio", "train_run"]

KIND = "speech_recognizer"
SAMPLE_RATE = 16000  # features are computed at this rate
WINDOW = 400  # 25 ms analysis window (samples at 16 kHz)
HOP = 160  # 10 ms between frames
MIN_RATE = 8000  # below this the mel bands up to 8 kHz would be empty
CLIP_SHARE = 0.005  # more than this share of samples at full scale is called clipped
SILENCE_PEAK = 1e-4  # -80 dBFS: a quieter peak is called silent
_WAV_FORMATS = ("WAV", "WAVEX", "RF64")
_SAMPLE_FORMATS = ("PCM_U8", "PCM_S8", "PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE")

Audio = Union[str, os.PathLike, tuple[np.ndarray, int]]  # noqa: UP007  (a path, or (samples, sample_rate))


@dataclass(frozen=True)
class SpeechConfig(StrictConfig):
    """Features, network and training of a speech recogniser."""

    architecture: Literal["lstm", "conv"] = "lstm"  # conv: the non-recurrent frame-classifier baseline
    bidirectional: bool = True  # False: a causal model that can stream (with normalisation="running")
    hidden_size: int = 128
    num_layers: int = 2
    dropout: float = 0.1  # between stacked layers and before the output layer
    conv_channels: int = 256
    conv_layers: int = 3
    conv_kernel: int = 5  # odd: each layer sees (kernel - 1) / 2 steps on either side
    n_mels: int = 40
    stack: int = 3  # 10 ms frames per network step
    normalisation: Literal["utterance", "running"] = "utterance"
    prior_frames: float = 30.0  # running normalisation: weight of the training statistics, in frames
    augment: bool = True  # SpecAugment-style masks in training: one band block and one time block per utterance
    lm_order: int = 5  # the character n-gram used by decoding with lm_weight > 0
    epochs: int = 8  # with the defaults: 3.6 % CER on unseen voices' digit strings (docs/results/speech.md)
    max_minutes: float | None = None  # and/or stop after this much wall-clock training time
    batch_size: int = 16  # small batches: CTC needs many updates to leave its all-blank start
    lr: float = 3e-3
    clip_grad_norm: float = 5.0
    seed: int = 0
    progress: bool = True

    def validate(self) -> None:
        for name in ("hidden_size", "num_layers", "conv_channels", "conv_layers", "n_mels", "stack", "epochs",
                     "batch_size", "lm_order"):  # fmt: skip
            if getattr(self, name) < 1:
                raise ValueError(f"SpeechConfig.{name} must be at least 1, got {getattr(self, name)}.")
        if self.conv_kernel < 1 or self.conv_kernel % 2 == 0:
            raise ValueError(f"SpeechConfig.conv_kernel must be odd and positive, got {self.conv_kernel}.")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"SpeechConfig.dropout must lie in [0, 1), got {self.dropout}.")
        if self.prior_frames < 0:
            raise ValueError(f"SpeechConfig.prior_frames must be >= 0, got {self.prior_frames}.")
        if self.max_minutes is not None and not self.max_minutes > 0:
            raise ValueError(f"SpeechConfig.max_minutes must be positive (or None), got {self.max_minutes}.")

    @property
    def can_stream(self) -> bool:
        return self.architecture == "lstm" and not self.bidirectional and self.normalisation == "running"


# ---- audio in ----------------------------------------------------------------------------------------------------
def _audio_module(name: str) -> Any:
    """``soundfile``, ``soxr`` or ``librosa``, or an ImportError that says how to install them."""
    import importlib

    try:
        return importlib.import_module(name)
    except ImportError as e:
        raise ImportError(f"Speech recognition reads audio with {name}, which is not installed: pip install "
                          "'lstmkit[speech]' (librosa, soundfile and soxr).") from e  # fmt: skip


def _check_samples(samples: np.ndarray, sample_rate: int, name: str) -> np.ndarray:
    """Mono float32 samples in [-1, 1] from (N,) or (N, channels); one clear ValueError for each kind of bad audio."""
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, (int, np.integer)) or sample_rate <= 0:
        raise ValueError(f"The sample rate of {name} must be a positive integer (Hz), got {sample_rate!r}.")
    if sample_rate < MIN_RATE:
        raise ValueError(f"{name} is sampled at {sample_rate} Hz; at least {MIN_RATE} Hz is needed (the features "
                         "reach 8 kHz). Record or export at 16 kHz.")  # fmt: skip
    x = np.asarray(samples)
    if x.dtype == np.int16:
        x = x.astype(np.float32) / 32768.0
    elif x.dtype.kind != "f":
        raise ValueError(f"{name} has samples of type {x.dtype}; expected float samples in [-1, 1] or int16.")
    if x.ndim == 2:
        x = x.mean(axis=1)  # (N, channels) -> (N,): mix down
    elif x.ndim != 1:
        raise ValueError(f"{name} must be (samples,) or (samples, channels); got shape {x.shape}.")
    if x.size == 0:
        raise ValueError(f"{name} is empty: it has no samples.")
    if not np.isfinite(x).all():
        raise ValueError(f"{name} has NaN or infinite samples; expected finite values in [-1, 1].")
    need = math.ceil((WINDOW + HOP * 2) * sample_rate / SAMPLE_RATE)
    if x.size < need:
        raise ValueError(f"{name} is {x.size / sample_rate * 1000:.0f} ms long; at least 45 ms of audio is needed.")
    peak = float(np.abs(x).max())
    if peak < SILENCE_PEAK:
        level = "all zeros" if peak == 0 else f"its loudest sample is {20 * math.log10(peak):.0f} dBFS"
        raise ValueError(f"{name} is silent ({level}); give a recording with speech in it.")
    clipped = float(np.mean(np.abs(x) >= 0.999))
    if clipped > CLIP_SHARE:
        raise ValueError(f"{name} is clipped: {clipped:.1%} of its samples sit at full scale (at most "
                         f"{CLIP_SHARE:.1%} allowed); record it again at a lower gain.")  # fmt: skip
    return x.astype(np.float32, copy=False)


def load_audio(source: Audio) -> tuple[np.ndarray, int]:
    """``(samples (N,) float32 mono, sample_rate)`` from a WAV file or a ``(samples, sample_rate)`` pair.

    Raises:
        FileNotFoundError: no file at the path.
        ValueError: not readable as audio, not a WAV, an unsupported sample format, empty, shorter than 45 ms,
            silent, clipped, NaN, or a sample rate below 8 kHz (one sentence each).
    """
    if isinstance(source, tuple):
        samples, rate = source
        return _check_samples(samples, rate, "The audio"), int(rate)
    soundfile = _audio_module("soundfile")

    path = Path(source)
    if not path.is_file():
        raise FileNotFoundError(f"No audio file at {path}.")
    try:
        info = soundfile.info(str(path))
    except Exception as e:  # libsndfile's own error for an unreadable file
        reason = str(e).split(":")[-1].strip() or type(e).__name__
        raise ValueError(f"{path} could not be read as a WAV file ({reason}); give a WAV file.") from None
    if info.format not in _WAV_FORMATS:
        raise ValueError(f"{path} is a {info.format} file, not a WAV; convert it: sox {path.name} out.wav")
    if info.subtype not in _SAMPLE_FORMATS:
        raise ValueError(f"{path} holds {info.subtype} samples; expected PCM (8 to 32 bit) or float samples. "
                         f"Convert it: sox {path.name} -b 16 -e signed-integer out.wav")  # fmt: skip
    if info.frames == 0:
        raise ValueError(f"{path} is empty: it has no samples.")
    samples, rate = soundfile.read(str(path), dtype="float32", always_2d=True)  # (N, channels)
    return _check_samples(samples, rate, str(path)), int(rate)


def _resample(samples: np.ndarray, rate: int) -> np.ndarray:
    if rate == SAMPLE_RATE:
        return samples
    soxr = _audio_module("soxr")

    return soxr.resample(samples, rate, SAMPLE_RATE).astype(np.float32, copy=False)


def _mel_basis(n_mels: int) -> np.ndarray:
    librosa = _audio_module("librosa")

    return librosa.filters.mel(sr=SAMPLE_RATE, n_fft=WINDOW, n_mels=n_mels, fmin=20.0, fmax=SAMPLE_RATE / 2)


def log_mel(samples: np.ndarray, n_mels: int = 40) -> np.ndarray:
    """(F, M) log-mel energies of 16 kHz samples (N,): 25 ms Hann windows every 10 ms, no centring (frame k reads
    samples [160 k, 160 k + 400) only), F = 1 + (N - 400) // 160 (0 if N < 400)."""
    librosa = _audio_module("librosa")

    if len(samples) < WINDOW:
        return np.zeros((0, n_mels), dtype=np.float32)
    power = np.abs(librosa.stft(samples, n_fft=WINDOW, hop_length=HOP, window="hann", center=False)) ** 2  # (W/2+1, F)
    mel = _mel_basis(n_mels) @ power  # (M, F)
    return np.log(mel + 1e-6).T.astype(np.float32)  # (F, M)


def _normalise(frames: np.ndarray, cfg: SpeechConfig, mean: np.ndarray, var: np.ndarray) -> np.ndarray:
    """(F, M) -> (F, M) normalised per band (see the module docstring)."""
    if cfg.normalisation == "utterance":
        return ((frames - frames.mean(axis=0)) / np.sqrt(frames.var(axis=0) + 1e-3)).astype(np.float32)
    x = frames.astype(np.float64)
    k = cfg.prior_frames
    count = np.arange(1, len(x) + 1, dtype=np.float64)[:, None] + k  # (F, 1)
    run_mean = (np.cumsum(x, axis=0) + k * mean) / count  # (F, M)
    run_var = (np.cumsum(x * x, axis=0) + k * (var + mean * mean)) / count - run_mean**2
    return ((x - run_mean) / np.sqrt(np.maximum(run_var, 0) + 1e-3)).astype(np.float32)


def _stack(frames: np.ndarray, stack: int) -> np.ndarray:
    """(F, M) -> (F // stack, stack * M): consecutive frames side by side, the leftover frames dropped."""
    steps = len(frames) // stack
    return frames[: steps * stack].reshape(steps, stack * frames.shape[1])


def audio_features(source: Audio, cfg: SpeechConfig, mean: np.ndarray | None = None,
                   var: np.ndarray | None = None) -> np.ndarray:  # fmt: skip
    """The network's input for one utterance: (T, I) float32 (``mean``/``var``: the running normaliser's prior)."""
    samples, rate = load_audio(source)
    frames = log_mel(_resample(samples, rate), cfg.n_mels)  # (F, M)
    if mean is None or var is None:
        mean, var = np.zeros(cfg.n_mels), np.ones(cfg.n_mels)
    return _stack(_normalise(frames, cfg, mean, var), cfg.stack)  # (T, I)


# ---- networks ----------------------------------------------------------------------------------------------------
class SpeechNet(nn.Module):
    """Features -> per-step class log-probabilities. ``"lstm"``: LSTM stack + linear; ``"conv"``: 1-D convolutions
    over time (the padded steps zeroed after every layer, so a padded batch gives each utterance's own numbers).

    Shape: x (B, T, I), lengths (B,) -> log_probs (B, T, C).
    """

    def __init__(self, input_size: int, num_classes: int, cfg: SpeechConfig) -> None:
        super().__init__()
        self.architecture = cfg.architecture
        self.drop = nn.Dropout(cfg.dropout)
        if cfg.architecture == "lstm":
            self.lstm = LSTM(input_size, cfg.hidden_size, cfg.num_layers, bidirectional=cfg.bidirectional,
                             dropout=cfg.dropout if cfg.num_layers > 1 else 0.0)  # fmt: skip
            width = cfg.hidden_size * (2 if cfg.bidirectional else 1)
        else:
            sizes = [input_size] + [cfg.conv_channels] * cfg.conv_layers
            self.convs = nn.ModuleList(nn.Conv1d(a, b, cfg.conv_kernel, padding=cfg.conv_kernel // 2)
                                       for a, b in zip(sizes, sizes[1:], strict=False))  # fmt: skip
            width = cfg.conv_channels
        self.output = nn.Linear(width, num_classes)

    def forward(self, x: Tensor, lengths: Tensor) -> Tensor:
        if self.architecture == "lstm":
            full = bool((lengths == x.shape[1]).all())  # no padding: PyTorch's fused kernel
            hidden, _ = self.lstm(x, lengths=None if full else lengths)  # (B, T, D*H)
        else:
            mask = (torch.arange(x.shape[1])[None, :] < lengths[:, None]).to(x.dtype)[:, None, :]  # (B, 1, T)
            hidden = x.transpose(1, 2) * mask  # (B, I, T)
            for conv in self.convs:
                hidden = torch.relu(conv(hidden)) * mask  # (B, K, T)
            hidden = hidden.transpose(1, 2)  # (B, T, K)
        return torch.log_softmax(self.output(self.drop(hidden)), dim=-1)  # (B, T, C)

    def step(self, x_t: Tensor, state: Any) -> tuple[Tensor, Any]:
        """One step of a unidirectional LSTM: x_t (B, I) -> log_probs (B, C), state carried."""
        y_t, state = self.lstm.step(x_t, state)  # (B, H)
        return torch.log_softmax(self.output(y_t), dim=-1), state


def _pad(feats: list[np.ndarray], with_background: bool = False) -> tuple[Tensor, Tensor]:
    """(B, T, I) batch and (B,) lengths. ``with_background``: each utterance is extended by repeating its first step
    (the background noise before the speech) and every length is T: more audio with nothing said in it."""
    lengths = torch.tensor([len(f) for f in feats])
    x = torch.zeros(len(feats), int(lengths.max()), feats[0].shape[1])  # (B, T, I)
    for i, f in enumerate(feats):
        x[i, : len(f)] = torch.from_numpy(f)
        if with_background:
            x[i, len(f) :] = torch.from_numpy(f[0])
    return x, torch.full_like(lengths, x.shape[1]) if with_background else lengths


class _Batches(SeededBatches):
    """Shuffled batches ``(x, lengths, targets, target_lengths)``, bucketed by length like seq2seq's, re-iterable,
    with its own generators (the order's and the masks', saved in checkpoints for an exact resume).

    Training batches (``with_background``) are padded with each utterance's own background (see :func:`_pad`), not
    masked: bucketing keeps the padding to a step or two, and an unmasked batch takes PyTorch's fused LSTM kernel,
    1.6x faster than the masked bidirectional layer here. Validation and decoding are exact (masked)."""

    POOL = 50

    def __init__(self, feats: list[np.ndarray], labels: list[list[int]], batch_size: int, seed: int,
                 shuffle: bool = True, with_background: bool = False,
                 masks: tuple[int, int] | None = None) -> None:  # fmt: skip
        order = bucketed([len(f) for f in feats], self.POOL)
        super().__init__(feats, labels, batch_size=batch_size, seed=seed, shuffle=shuffle, order=order,
                         generators=("mask_generator",))  # fmt: skip
        self.feats, self.labels = feats, labels
        self.with_background = with_background
        self.masks = masks  # (n_mels, stack): SpecAugment masks on every batch (see _mask)
        self.mask_generator = self.generators["mask_generator"]

    def collate(self, index: list[int]) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        x, lengths = _pad([self.feats[i] for i in index], self.with_background)
        if self.masks is not None:
            x = _mask(x, lengths, *self.masks, self.mask_generator)
        targets, target_lengths = pack_targets([self.labels[i] for i in index])
        return x, lengths, targets, target_lengths


def _mask(x: Tensor, lengths: Tensor, n_mels: int, stack: int, gen: torch.Generator) -> Tensor:
    """SpecAugment-style (Park et al. 2019), light: per utterance one block of up to 6 mel bands (in every stacked
    frame) and one block of up to 5 steps set to 0 (the normalised mean)."""
    x = x.clone()
    for b in range(x.shape[0]):
        width = int(torch.randint(0, 7, (1,), generator=gen))
        start = int(torch.randint(0, n_mels - width + 1, (1,), generator=gen))
        for k in range(stack):
            x[b, :, k * n_mels + start : k * n_mels + start + width] = 0
        span = int(torch.randint(0, 6, (1,), generator=gen))
        t0 = int(torch.randint(0, max(1, int(lengths[b]) - span), (1,), generator=gen))
        x[b, t0 : t0 + span] = 0
    return x


# ---- the recogniser -----------------------------------------------------------------------------------------------
@runs.register_kind(KIND)
class SpeechRecognizer:
    """Audio to text with CTC: ``fit``, ``transcribe``, ``evaluate``, ``stream``, ``save``, ``load``. Keyword
    arguments are :class:`SpeechConfig` fields."""

    def __init__(self, config: SpeechConfig | None = None, **kwargs: Any) -> None:
        self.config = config if config is not None else SpeechConfig(**kwargs)
        self.alphabet: Alphabet | None = None
        self.net: SpeechNet | None = None
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
        picks = np.random.default_rng(self.config.seed).permutation(len(audio))[:500]
        frames = [log_mel(_resample(*load_audio(audio[i])), self.config.n_mels) for i in picks]
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
        seed_everything(cfg.seed)
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
        seed_everything(cfg.seed)
        self.net = SpeechNet(feats[0].shape[1], self.alphabet.num_classes, cfg)
        data = _Batches(feats, labels, cfg.batch_size, cfg.seed, with_background=True,
                        masks=(cfg.n_mels, cfg.stack) if cfg.augment else None)  # fmt: skip
        val = None
        if validation is not None:
            v_audio, v_texts = validation
            v_feats = [self.features(a) for a in v_audio]
            val = _Batches(v_feats, [self.alphabet.encode(t) for t in v_texts], 64, cfg.seed, shuffle=False)

        def loss_fn(model: SpeechNet, batch: tuple[Tensor, ...], state: Any) -> StepOutput:
            x, lengths, targets, target_lengths = batch  # training batches come masked (augment)
            log_probs = model(x, lengths)  # (B, T, C)
            loss = ctc_loss(log_probs.transpose(0, 1), targets, lengths, target_lengths)
            return StepOutput(loss=loss, n_items=len(lengths))

        def eval_fn(model: SpeechNet, val_data: Any) -> dict[str, float]:
            total, n, references, hypotheses = 0.0, 0, [], []
            for x, lengths, targets, target_lengths in val_data:  # batches sorted by length: references from them
                log_probs = model(x, lengths)  # (B, T, C)
                total += float(ctc_loss(log_probs.transpose(0, 1), targets, lengths, target_lengths)) * len(lengths)
                n += len(lengths)
                references += [alphabet.decode(y.tolist()) for y in torch.split(targets, target_lengths.tolist())]
                hypotheses += [alphabet.decode(h) for h in greedy_decode(log_probs.transpose(0, 1), lengths)]
            return {"val_loss": total / n, "val_cer": cer(references, hypotheses)}

        train_cfg = TrainConfig(
            epochs=cfg.epochs, batch_size=cfg.batch_size, lr=cfg.lr, clip_grad_norm=cfg.clip_grad_norm,
            schedule="cosine", seed=cfg.seed, progress=cfg.progress, monitor="val_cer",
            early_stopping_patience=cfg.epochs if val is not None else None,  # never stops early; keeps the best
            max_minutes=cfg.max_minutes,
        )  # fmt: skip
        run_config = {k: v for k, v in cfg.to_dict().items() if k != "progress"}
        trainer = Trainer(self.net, loss_fn, train_cfg, run_dir=run_dir, eval_fn=eval_fn if val else None,
                          callbacks=[GateStatistics()], run_config=run_config, kind=KIND)  # fmt: skip
        self.history_ = trainer.fit(data, val_data=val, resume=resume)
        self.net.eval()
        return self

    def _check(self) -> tuple[SpeechNet, Alphabet]:
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
            x, lengths = _pad(feats[start : start + batch_size])
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
                f"(architecture={self.config.architecture!r}, bidirectional={self.config.bidirectional}, "
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
        rec.net = SpeechNet(saved["input_size"], rec.alphabet.num_classes, rec.config)
        rec.net.load_state_dict(runs.read_state_dict(run_dir))
        rec.net.eval()
        extra = runs.read_extra_tensors(run_dir)
        rec.mean, rec.var = extra["feature_mean"].numpy(), extra["feature_var"].numpy()
        rec.lm_labels = extra["lm_labels"].numpy() if "lm_labels" in extra else None
        return rec


class SpeechStream:
    """Recognition while audio arrives: :meth:`push` a chunk of samples, get the partial transcript; :meth:`finish`
    at the end of the audio. State carried between chunks: the resampler's (soxr's streaming resampler gives the
    samples of a whole-file resampling), the samples of an unfinished frame, the frames of an unfinished step, the
    running normaliser's sums and the LSTM's ``(h, c)``. Greedy decoding, read off as the steps come.
    """

    def __init__(self, recognizer: SpeechRecognizer, sample_rate: int) -> None:
        if isinstance(sample_rate, bool) or not isinstance(sample_rate, int) or sample_rate < MIN_RATE:
            raise ValueError(f"The stream's sample rate must be an integer of at least {MIN_RATE} Hz, got "
                             f"{sample_rate!r}.")  # fmt: skip
        self.recognizer, self.sample_rate = recognizer, sample_rate
        cfg = recognizer.config
        self._resampler = None
        if sample_rate != SAMPLE_RATE:
            soxr = _audio_module("soxr")

            self._resampler = soxr.ResampleStream(sample_rate, SAMPLE_RATE, 1, dtype="float32")
        self._samples = np.zeros(0, dtype=np.float32)  # 16 kHz samples not yet consumed by a frame
        self._frames = np.zeros((0, cfg.n_mels), dtype=np.float32)  # normalised frames of an unfinished step
        self._sum = np.zeros(cfg.n_mels)  # running sums of the raw log-mel frames (float64, as the offline cumsum)
        self._sum_sq = np.zeros(cfg.n_mels)
        self._count = 0
        self._state: Any = None
        self._path: list[int] = []  # argmax class of every step so far
        self.log_probs: list[np.ndarray] = []  # (C,) class log-probabilities of every step so far
        self.steps = 0
        self.finished = False

    def _frames_in(self, frames: np.ndarray) -> np.ndarray:
        """Raw (F, M) log-mel frames -> normalised with the sums so far, frame by frame (causal)."""
        rec, k = self.recognizer, self.recognizer.config.prior_frames
        out = np.empty(frames.shape, dtype=np.float32)
        for i, f in enumerate(frames.astype(np.float64)):
            self._sum += f
            self._sum_sq += f * f
            self._count += 1
            mean = (self._sum + k * rec.mean) / (self._count + k)
            var = (self._sum_sq + k * (rec.var + rec.mean * rec.mean)) / (self._count + k) - mean**2
            out[i] = (f - mean) / np.sqrt(np.maximum(var, 0) + 1e-3)
        return out

    @torch.no_grad()
    def _advance(self, samples16k: np.ndarray) -> None:
        cfg = self.recognizer.config
        net, _ = self.recognizer._check()
        self._samples = np.concatenate([self._samples, samples16k])
        raw = log_mel(self._samples, cfg.n_mels)  # (F, M): every complete frame in the buffer
        self._samples = self._samples[len(raw) * HOP :]
        frames = np.concatenate([self._frames, self._frames_in(raw)])
        steps = _stack(frames, cfg.stack)  # (T, I)
        self._frames = frames[len(steps) * cfg.stack :]
        for x_t in torch.from_numpy(steps):
            lp, self._state = net.step(x_t[None], self._state)  # (1, C)
            self.log_probs.append(lp[0].numpy())
            self._path.append(int(lp[0].argmax()))
            self.steps += 1

    def _text(self) -> str:
        from ..ctc import collapse

        return self.recognizer.alphabet.decode(collapse(self._path))  # type: ignore[union-attr]

    def push(self, samples: np.ndarray) -> str:
        """Feed the next chunk (N,) or (N, channels) of float samples in [-1, 1] (or int16); returns the partial
        transcript so far. Chunks may be of any size, even empty."""
        if self.finished:
            raise ValueError("This stream is finished; start a new one with recognizer.stream().")
        x = np.asarray(samples)
        if x.dtype == np.int16:
            x = x.astype(np.float32) / 32768.0
        if x.dtype.kind != "f" or x.ndim not in (1, 2):
            raise ValueError(f"A chunk must be float (or int16) samples shaped (N,) or (N, channels); got "
                             f"{x.dtype} {x.shape}.")  # fmt: skip
        x = (x.mean(axis=1) if x.ndim == 2 else x).astype(np.float32)
        if not np.isfinite(x).all():
            raise ValueError("The chunk has NaN or infinite samples; expected finite values in [-1, 1].")
        if self._resampler is not None:
            x = self._resampler.resample_chunk(x, last=False)
        self._advance(x)
        return self._text()

    def finish(self) -> str:
        """End of audio: flush the resampler and return the final transcript."""
        if not self.finished and self._resampler is not None:
            self._advance(self._resampler.resample_chunk(np.zeros(0, dtype=np.float32), last=True))
        self.finished = True
        return self._text()


# ---- a run directory ----------------------------------------------------------------------------------------------
LM_WEIGHTS = (0.25, 0.5, 1.0)  # the n-gram weights and length bonuses tried on the validation voices
LENGTH_BONUSES = (0.0, 1.0, 2.0)


def _scores(utts: list[Any], hyps: list[str]) -> dict[str, Any]:
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


def _stream_all(rec: SpeechRecognizer, paths: list[Path], chunk_ms: int) -> tuple[list[str], float]:
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
    """Train on a data set from :func:`lstmkit.tasks.recognition.speech.data.make_dataset` (its train split, validating on its
    validation voices) and write a run directory: config.json, model.safetensors, extra.safetensors, metrics.csv,
    result.json, predictions.csv and report.html (the model is saved before the scoring).

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
            result[name] = {**_scores(test, hyps), "decode_seconds": round(time.perf_counter() - t1, 2)}
        if config.can_stream:
            streamed, seconds_per_second = _stream_all(rec, [path(u) for u in test], stream_chunk_ms)
            table["streaming"] = streamed
            same = float(np.mean([a == b for a, b in zip(streamed, table["greedy"], strict=True)]))
            result["streaming"] = {**_scores(test, streamed), "chunk_ms": stream_chunk_ms,
                                   "same_as_offline_greedy": same,
                                   "seconds_per_audio_second": seconds_per_second}  # fmt: skip
        atomic_write_bytes(out / "predictions.csv", table.to_csv(index=False).encode())
    atomic_write_bytes(out / "result.json", (json.dumps(result, indent=2) + "\n").encode())
    write_report(out)
    return result
