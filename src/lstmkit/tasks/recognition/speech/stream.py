"""Recognition while audio arrives: :class:`SpeechStream` (a unidirectional LSTM with running normalisation).

Its only lookahead is the 25 ms window, the stacking (two more frames) and the resampler's filter delay when the
rate is not 16 kHz; the final text equals the offline pass over the same audio (tested).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ..ctc import collapse
from .audio import HOP, MIN_RATE, SAMPLE_RATE, audio_module, log_mel, stack_frames

if TYPE_CHECKING:
    from .recognizer import SpeechRecognizer

__all__ = ["SpeechStream"]


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
            soxr = audio_module("soxr")

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
        steps = stack_frames(frames, cfg.stack)  # (T, I)
        self._frames = frames[len(steps) * cfg.stack :]
        for x_t in torch.from_numpy(steps):
            lp, self._state = net.step(x_t[None], self._state)  # (1, C)
            self.log_probs.append(lp[0].numpy())
            self._path.append(int(lp[0].argmax()))
            self.steps += 1

    def _text(self) -> str:
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
