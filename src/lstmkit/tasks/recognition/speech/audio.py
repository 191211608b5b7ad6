"""Audio in and the features the speech networks read: WAV or ``(samples, rate)`` -> mono 16 kHz -> log-mel frames
-> normalised per band -> stacked network steps.

Frames are taken with ``center=False``, so frame ``k`` reads samples ``[160 k, 160 k + 400)`` only and the features
of a prefix of the audio are a prefix of the features: what makes streaming exact. Normalisation per band:
``"utterance"`` (mean and variance over the whole utterance) or ``"running"`` (over the frames so far, blended with
the training statistics as a prior of ``prior_frames`` frames: causal).

Shapes: ``N`` samples, ``F`` frames, ``M`` mel bands, ``T`` network steps (``F // stack``), ``I = stack * M``.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

import numpy as np

if TYPE_CHECKING:
    from .config import SpeechConfig

__all__ = [
    "HOP", "MIN_RATE", "SAMPLE_RATE", "WINDOW", "Audio", "audio_features", "audio_module", "load_audio", "log_mel",
    "normalise", "resample", "stack_frames",
]  # fmt: skip

SAMPLE_RATE = 16000  # features are computed at this rate
WINDOW = 400  # 25 ms analysis window (samples at 16 kHz)
HOP = 160  # 10 ms between frames
MIN_RATE = 8000  # below this the mel bands up to 8 kHz would be empty
CLIP_SHARE = 0.005  # more than this share of samples at full scale is called clipped
SILENCE_PEAK = 1e-4  # -80 dBFS: a quieter peak is called silent
_WAV_FORMATS = ("WAV", "WAVEX", "RF64")
_SAMPLE_FORMATS = ("PCM_U8", "PCM_S8", "PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE")

Audio = Union[str, os.PathLike, tuple[np.ndarray, int]]  # noqa: UP007  (a path, or (samples, sample_rate))


# ---- audio in ----------------------------------------------------------------------------------------------------
def audio_module(name: str) -> Any:
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
    soundfile = audio_module("soundfile")

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


def resample(samples: np.ndarray, rate: int) -> np.ndarray:
    if rate == SAMPLE_RATE:
        return samples
    soxr = audio_module("soxr")

    return soxr.resample(samples, rate, SAMPLE_RATE).astype(np.float32, copy=False)


def _mel_basis(n_mels: int) -> np.ndarray:
    librosa = audio_module("librosa")

    return librosa.filters.mel(sr=SAMPLE_RATE, n_fft=WINDOW, n_mels=n_mels, fmin=20.0, fmax=SAMPLE_RATE / 2)


def log_mel(samples: np.ndarray, n_mels: int = 40) -> np.ndarray:
    """(F, M) log-mel energies of 16 kHz samples (N,): 25 ms Hann windows every 10 ms, no centring (frame k reads
    samples [160 k, 160 k + 400) only), F = 1 + (N - 400) // 160 (0 if N < 400)."""
    librosa = audio_module("librosa")

    if len(samples) < WINDOW:
        return np.zeros((0, n_mels), dtype=np.float32)
    power = np.abs(librosa.stft(samples, n_fft=WINDOW, hop_length=HOP, window="hann", center=False)) ** 2  # (W/2+1, F)
    mel = _mel_basis(n_mels) @ power  # (M, F)
    return np.log(mel + 1e-6).T.astype(np.float32)  # (F, M)


def normalise(frames: np.ndarray, cfg: SpeechConfig, mean: np.ndarray, var: np.ndarray) -> np.ndarray:
    """(F, M) -> (F, M) normalised per band (see the module docstring)."""
    if cfg.normalisation == "utterance":
        return ((frames - frames.mean(axis=0)) / np.sqrt(frames.var(axis=0) + 1e-3)).astype(np.float32)
    x = frames.astype(np.float64)
    k = cfg.prior_frames
    count = np.arange(1, len(x) + 1, dtype=np.float64)[:, None] + k  # (F, 1)
    run_mean = (np.cumsum(x, axis=0) + k * mean) / count  # (F, M)
    run_var = (np.cumsum(x * x, axis=0) + k * (var + mean * mean)) / count - run_mean**2
    return ((x - run_mean) / np.sqrt(np.maximum(run_var, 0) + 1e-3)).astype(np.float32)


def stack_frames(frames: np.ndarray, stack: int) -> np.ndarray:
    """(F, M) -> (F // stack, stack * M): consecutive frames side by side, the leftover frames dropped."""
    steps = len(frames) // stack
    return frames[: steps * stack].reshape(steps, stack * frames.shape[1])


def audio_features(source: Audio, cfg: SpeechConfig, mean: np.ndarray | None = None,
                   var: np.ndarray | None = None) -> np.ndarray:  # fmt: skip
    """The network's input for one utterance: (T, I) float32 (``mean``/``var``: the running normaliser's prior)."""
    samples, rate = load_audio(source)
    frames = log_mel(resample(samples, rate), cfg.n_mels)  # (F, M)
    if mean is None or var is None:
        mean, var = np.zeros(cfg.n_mels), np.ones(cfg.n_mels)
    return stack_frames(normalise(frames, cfg, mean, var), cfg.stack)  # (T, I)
