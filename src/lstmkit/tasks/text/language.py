"""Language models and text generation: ``lstmkit.LanguageModel`` (character, word or BPE level).

The char-rnn / ``word_language_model`` recipe: the training text becomes one long token sequence, cut into
``batch_size`` contiguous streams; each batch is the next ``bptt`` tokens of every stream, so the recurrent state
is carried (detached) from batch to batch and the model sees context far longer than one chunk (truncated BPTT).
Embedding, a stacked :class:`lstmkit.nn.LSTM` (with any of its variants), dropout, a linear decoder (optionally tied
to the embedding, Press & Wolf 2017). Validation reports nats per token and per character, bits per character and
perplexity; the held-out measures read the text as one stream, state carried, so every token has its full context.

Size and steps follow the time budget (issue 20, :mod:`lstmkit.tasks.text.lm_size`): unless ``hidden_size`` /
``num_layers`` are given, a few training steps of each candidate size are timed on this machine and the largest that
trains on enough tokens per parameter within ``max_minutes`` is kept; ``max_steps`` is then the steps that fit the
budget, so the cosine schedule ends as the budget does. The choice goes to ``lm.sizing_`` (and ``result.json``).

Generation feeds the prompt once and then one token at a time, carrying the state: nothing is recomputed, and a
streamed generation keeps only the state and the pending bytes of an unfinished character, so memory does not grow
with the output. Sampling (temperature, top-k, top-p) draws from a seeded generator, so a seed repeats a sample.

Example:
    >>> lm = LanguageModel(level="char", hidden_size=256, epochs=1).fit(text)          # doctest: +SKIP
    >>> lm.generate("ROMEO:", max_tokens=200, temperature=0.8, seed=1)                 # doctest: +SKIP
"""

from __future__ import annotations

import logging
import math
import os
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ... import runs
from ...data import SeriesStream
from ...nn import LSTM
from ...train import StepOutput, resolve_device, seed_everything
from ..training import on_training_device, task_trainer
from .config import LanguageModelConfig, LanguageModelNet, LanguageModelTrain
from .data import (
    BPETokenizer,
    StreamDecoder,
    TextError,
    Tokenizer,
    make_tokenizer,
    split_text,
    tokenizer_from_dict,
)  # fmt: skip
from .lm_size import BY_HAND, STEP_SHARE, StepSeconds, choose_size, chosen_lr, measure_step_seconds, saved_choice

if TYPE_CHECKING:
    from ...nn.onnx_graph import CheckedGraph

__all__ = [
    "LanguageModel", "LanguageModelConfig", "LanguageModelNet", "LanguageModelTrain", "LMNet", "TokenStream",
    "sample_token",
]  # fmt: skip

KIND = "language_model"

logger = logging.getLogger(__name__)


class LMNet(nn.Module):
    """Embedding -> stacked LSTM -> dropout -> linear decoder.

    Shape: ids (B, T) int64 -> logits (B, T, V); state ``(h, c)`` each (L, B, H) (h: (L, B, proj) with projection).
    """

    def __init__(
        self, vocab_size: int, *, embedding_size: int, hidden_size: int, num_layers: int, dropout: float,
        recurrent_dropout: float = 0.0, zoneout: float = 0.0, layer_norm: bool = False, proj_size: int = 0,
        tie_weights: bool = False,
    ) -> None:  # fmt: skip
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embedding_size)
        self.lstm = LSTM(
            embedding_size, hidden_size, num_layers, dropout=dropout if num_layers > 1 else 0.0,
            recurrent_dropout=recurrent_dropout, zoneout=zoneout, layer_norm=layer_norm, proj_size=proj_size,
        )  # fmt: skip
        self.drop = nn.Dropout(dropout)
        self.decoder = nn.Linear(proj_size or hidden_size, vocab_size)
        if tie_weights:
            self.decoder.weight = self.embedding.weight

    @classmethod
    def build(cls, vocab_size: int, net: LanguageModelNet) -> LMNet:
        """The network with the sizes of a config's ``net`` section (chosen: :func:`choose_size` fills them)."""
        if not net.sized:
            raise ValueError("LMNet.build needs hidden_size and num_layers; LanguageModel.fit chooses them when unset.")
        return cls(vocab_size, **net.to_dict())

    def forward(self, ids: Tensor, state: Any = None) -> tuple[Tensor, Any]:
        x = self.drop(self.embedding(ids))  # (B, T, E)
        out, state = self.lstm(x, state)  # (B, T, H)
        return self.decoder(self.drop(out)), state  # (B, T, V)


class TokenStream(SeriesStream):
    """Truncated-BPTT batches of token ids: ``(x, y)`` each (B, bptt) int64, ``y`` one token ahead."""

    def iter_from(self, batch: int) -> Iterator[tuple[Tensor, Tensor]]:
        for x, y in super().iter_from(batch):
            yield x[..., 0], y[..., 0]


def _knows(tok: Tokenizer, text: str) -> bool:
    """Whether ``text`` gives tokens the model saw in training (and at least one)."""
    try:
        return bool(tok.encode(text, strict=True))
    except TextError:
        return False


def sample_token(
    logits: Tensor, temperature: float, top_k: int | None, top_p: float | None, gen: torch.Generator
) -> int:
    """One token id from the last-step logits (V,): temperature, then top-k, then top-p (nucleus) truncation."""
    # shifted so the largest is 0 before the division: a tiny temperature (5e-324, say) then gives 0 and -inf (the
    # most likely token, nearly surely), never inf - inf = nan (a 500 found by fuzzing the server)
    logits = logits.double()
    logits = (logits - logits.max()) / temperature
    if top_k is not None and top_k < logits.numel():
        kth = torch.topk(logits, top_k).values[-1]
        logits = logits.masked_fill(logits < kth, -math.inf)
    probs = torch.softmax(logits, dim=-1)
    if top_p is not None and top_p < 1.0:
        sorted_p, order = torch.sort(probs, descending=True)
        before = torch.cumsum(sorted_p, dim=0) - sorted_p  # mass strictly above each token
        sorted_p = sorted_p.masked_fill(before >= top_p, 0.0)  # keep the smallest set reaching top_p (>= 1 token)
        probs = torch.zeros_like(probs).scatter(0, order, sorted_p)
    return int(torch.multinomial(probs, 1, generator=gen))


@runs.register_kind(KIND)
class LanguageModel:
    """A character, word or BPE language model: ``fit``, ``evaluate``, ``generate`` / ``stream``, ``save``,
    ``load``. Keyword arguments are :class:`LanguageModelConfig` fields, flat (``hidden_size=64, epochs=2``) or by
    section (``net=LanguageModelNet(...)``)."""

    def __init__(self, config: LanguageModelConfig | None = None, **kwargs: Any) -> None:
        self.config = config if config is not None else LanguageModelConfig.from_dict(kwargs)
        self.tokenizer: Tokenizer | None = None
        self.net: LMNet | None = None
        self.history_: list[dict[str, Any]] = []
        self.sizing_: dict[str, Any] | None = None  # what fit chose (choose_size), None before fit and when loaded

    # ---- training ---------------------------------------------------------------------------------------------
    def _ids(self, text: str) -> np.ndarray:
        assert self.tokenizer is not None
        return np.asarray(self.tokenizer.encode(text), dtype=np.int64)

    def fit(
        self, text: str, run_dir: str | os.PathLike[str] | None = None, *, resume: bool = False,
        step_seconds: StepSeconds | None = None,
    ) -> LanguageModel:  # fmt: skip
        """Train on ``text``: its tail (``val_fraction + test_fraction``) is held out; the tokenizer and every
        statistic are fitted on the training part only. Unset sizes and steps are chosen from the time budget
        (:func:`lstmkit.tasks.text.lm_size.choose_size`); ``self.config`` then holds the sizes chosen and
        ``self.sizing_`` the choice.

        Args:
            step_seconds: seconds per training step of a net config; None measures them on this machine.

        Raises:
            TextError: empty text, or too short for one batch of ``batch_size`` streams of ``bptt + 1`` tokens.
        """
        started = time.perf_counter()
        cfg = self.config
        batch_size = cfg.train.batch_size
        device = resolve_device(cfg.train.device)
        if not text.strip():
            raise TextError("The training text is empty; give a corpus with some text in it.")
        train, val, _ = split_text(text, cfg.val_fraction, cfg.test_fraction)
        seed_everything(cfg.train.seed)
        self.tokenizer = make_tokenizer(cfg.level, cfg.vocab_size).fit(train)
        train_ids, val_ids = self._ids(train), self._ids(val)
        need = batch_size * (cfg.bptt + 1)
        if len(train_ids) < need:
            raise TextError(
                f"The training part has {len(train_ids):,} {cfg.level} tokens, too few for one batch of "
                f"{batch_size} streams x {cfg.bptt + 1} tokens ({need:,}); give more text or lower batch_size / "
                "bptt."
            )
        data = TokenStream(train_ids, batch_size, cfg.bptt, dtype=torch.long)
        cfg, train_cfg = self._size(
            cfg, (len(train_ids), len(val_ids)), len(data), device, run_dir, resume, step_seconds, started
        )  # fmt: skip
        self.config = cfg
        seed_everything(cfg.train.seed)
        self.net = LMNet.build(self.tokenizer.vocab_size, cfg.net)
        val_streams = min(batch_size, max(1, len(val_ids) // (cfg.bptt + 1)))
        enough = len(val_ids) > cfg.bptt + 1
        val_data = TokenStream(val_ids, val_streams, cfg.bptt, dtype=torch.long) if enough else None
        n_chars = {"train": len(train) / max(len(train_ids), 1), "val": len(val) / max(len(val_ids), 1)}

        def loss_fn(model: LMNet, batch: tuple[Tensor, Tensor], state: Any) -> StepOutput:
            x, y = batch
            logits, state = model(x, state)
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
            which = "train" if model.training else "val"
            per_char = loss / n_chars[which]  # nats per token -> nats per character of text
            return StepOutput(loss=loss, state=state, n_items=y.numel(), metrics={"nats_per_char": per_char})

        with on_training_device(self.net, device):  # evaluate, generate and save run on the CPU
            trainer = task_trainer(self.net, loss_fn, cfg, kind=KIND, run_dir=run_dir, train=train_cfg)
            self.history_ = trainer.fit(data, val_data=val_data, resume=resume)
        self.net.eval()
        return self

    def _size(
        self, cfg: LanguageModelConfig, tokens: tuple[int, int], steps_per_epoch: int, device: torch.device,
        run_dir: str | os.PathLike[str] | None, resume: bool, step_seconds: StepSeconds | None, started: float,
    ) -> tuple[LanguageModelConfig, LanguageModelTrain]:  # fmt: skip
        """The config with its sizes and steps set (chosen, given, or those of the run being resumed), and the train
        section the Trainer runs under (its budget less the time spent before training and the time the last
        validation pass takes, from the timed step: a forward pass over ``tokens[1]`` validation tokens)."""
        assert self.tokenizer is not None
        train_tokens, val_tokens = tokens
        vocab = self.tokenizer.vocab_size
        net = cfg.net
        if (net.hidden_size is None) != (net.num_layers is None):  # one given by hand: the other as before 0.4
            net = net.replace(**{k: v for k, v in BY_HAND.items() if getattr(net, k) is None})
        saved = saved_choice(run_dir) if resume else None
        budget = cfg.train.max_minutes
        if saved is not None:  # a resume trains the size the run chose, for the steps it chose (unless given now)
            sizes = {"hidden_size": net.hidden_size, "num_layers": net.num_layers} if net.sized else saved
            steps = cfg.train.max_steps if cfg.train.max_steps is not None else saved["max_steps"]
            lr = saved["lr"] if not net.sized and saved["lr"] is not None else cfg.train.lr
            cfg = cfg.with_overrides({"net.hidden_size": sizes["hidden_size"], "net.num_layers": sizes["num_layers"],
                                      "train.max_steps": steps, "train.lr": lr})  # fmt: skip
            self.sizing_ = {"hidden_size": sizes["hidden_size"], "num_layers": sizes["num_layers"],
                            "max_steps": steps, "reason": "resumed: the size and steps the run chose"}  # fmt: skip
            return cfg, cfg.train
        if net.sized and (cfg.train.max_steps is not None or budget is None):
            cfg = cfg.replace(net=net)  # nothing to choose: the steps are given, or there is no budget
            self.sizing_ = {"hidden_size": net.hidden_size, "num_layers": net.num_layers,
                            "max_steps": cfg.train.max_steps, "reason": "given"}  # fmt: skip
            return cfg, cfg.train
        tr = cfg.train
        measure = step_seconds or (
            lambda n: measure_step_seconds(vocab, n, tr.batch_size, cfg.bptt, tr.lr, device))  # fmt: skip
        before = time.perf_counter() - started  # reading and tokenizing
        # the probe's own time comes out of the budget: each candidate's steps are counted on what is left after it
        spent = [before]

        def timed(n: LanguageModelNet) -> float:
            t0 = time.perf_counter()
            seconds = measure(n)
            spent[0] += time.perf_counter() - t0
            return seconds

        budget_s = None if budget is None else budget * 60
        share = None if budget_s is None else STEP_SHARE * (budget_s - before)
        choice = choose_size(net, vocab, train_tokens=train_tokens, steps_per_epoch=steps_per_epoch, cfg=cfg,
                             budget_seconds=share, step_seconds=timed)  # fmt: skip
        seconds = next((r["seconds_per_step"] for r in choice.table if "seconds_per_step" in r and
                        (r["units"], r["layers"]) == (choice.hidden_size, choice.num_layers)), 0.0)  # fmt: skip
        # the validation pass after the last step: a forward pass, about half a training step per batch, generous
        validation_s = 0.5 * seconds * val_tokens / (tr.batch_size * cfg.bptt)
        if budget_s is not None and choice.max_steps is not None:  # take the probe's time off the steps too
            left = STEP_SHARE * (budget_s - spent[0])
            choice.max_steps = max(1, min(choice.max_steps, int(left / max(seconds, 1e-9))))
        lr = cfg.train.lr if net.sized else chosen_lr(cfg, choice.hidden_size)
        cfg = cfg.with_overrides({"net.hidden_size": choice.hidden_size, "net.num_layers": choice.num_layers,
                                  "train.max_steps": choice.max_steps, "train.lr": lr})  # fmt: skip
        self.sizing_ = {**choice.to_dict(), "lr": lr}
        logger.info("language model size: %dx%d, %s steps (%s)", choice.num_layers, choice.hidden_size,
                    choice.max_steps, choice.reason)  # fmt: skip
        elapsed = time.perf_counter() - started
        left_minutes = None if budget is None else max((budget * 60 - elapsed - validation_s) / 60, 1e-3)
        return cfg, cfg.train.replace(max_minutes=left_minutes)

    def _check(self) -> tuple[LMNet, Tokenizer]:
        if self.net is None or self.tokenizer is None:
            raise RuntimeError("This LanguageModel is not fitted: call fit(text) or LanguageModel.load(run_dir).")
        return self.net, self.tokenizer

    # ---- evaluation -------------------------------------------------------------------------------------------
    @torch.no_grad()
    def evaluate(self, text: str, chunk: int = 2048) -> dict[str, float]:
        """Held-out measures of ``text`` read as one stream with the state carried (every token in full context).

        Returns:
            ``nats_per_token``, ``perplexity``, ``nats_per_char``, ``bits_per_char``, ``tokens``, ``chars``,
            ``unknown`` (tokens that were ``<unk>``: characters or words never seen in training).
        """
        net, tok = self._check()
        ids = torch.as_tensor(self._ids(text))
        if len(ids) < 2:
            raise TextError(f"The text has {len(ids)} token(s); at least two are needed to score a prediction.")
        net.eval()
        total, state = 0.0, None
        for start in range(0, len(ids) - 1, chunk):
            x = ids[start : start + chunk][None]  # (1, t)
            y = ids[start + 1 : start + chunk + 1][None]
            x = x[:, : y.shape[1]]
            logits, state = net(x, state)
            total += float(F.cross_entropy(logits[0], y[0], reduction="sum"))
        n = len(ids) - 1
        per_char = total / max(len(text) * n / len(ids), 1)  # the characters the scored tokens cover
        unknown = 0 if isinstance(tok, BPETokenizer) else int((ids == 0).sum())  # id 0 is <unk> (BPE has none)
        return {
            "nats_per_token": total / n, "perplexity": math.exp(min(total / n, 709.0)), "nats_per_char": per_char,
            "bits_per_char": per_char / math.log(2), "tokens": n, "chars": len(text), "unknown": unknown,
        }  # fmt: skip

    # ---- generation -------------------------------------------------------------------------------------------
    def _prompt_ids(self, prompt: str) -> list[int]:
        _, tok = self._check()
        if prompt == "":  # start as after a line break (after a space, or the first token, in a text without any)
            return next((tok.encode(p) for p in ("\n", " ") if _knows(tok, p)), [1])
        ids = tok.encode(prompt, strict=True, what="prompt")
        if not ids:
            raise TextError(f"The prompt {prompt!r} gives no tokens at the {self.config.level} level; give some text.")
        return ids

    def stream(
        self, prompt: str = "", max_tokens: int = 200, *, temperature: float = 1.0, top_k: int | None = None,
        top_p: float | None = None, greedy: bool = False, seed: int | None = None,
    ) -> Iterator[str]:  # fmt: skip
        """Text pieces as they are produced (the prompt is not repeated). The prompt is read once; then each step
        feeds one token and carries the state, so nothing is recomputed and memory stays constant. The options and
        the prompt are checked here, before the first piece is asked for.

        Raises:
            TextError: a prompt with characters (or words) the model never saw.
            ValueError: temperature <= 0, top_k < 1, top_p outside (0, 1].
        """
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}; use greedy=True for the most likely token.")
        if top_k is not None and top_k < 1:
            raise ValueError(f"top_k must be at least 1, got {top_k}.")
        if top_p is not None and not 0 < top_p <= 1:
            raise ValueError(f"top_p must lie in (0, 1], got {top_p}.")
        if max_tokens < 0:
            raise ValueError(f"max_tokens must be >= 0, got {max_tokens}.")
        ids = self._prompt_ids(prompt)
        # without a seed, a fresh one from the OS (torch.seed() would reseed the global generator as a side effect)
        gen = torch.Generator().manual_seed(seed if seed is not None else secrets.randbits(63))
        sample = (lambda logits: int(logits.argmax())) if greedy else (
            lambda logits: sample_token(logits, temperature, top_k, top_p, gen))  # fmt: skip
        return self._steps(ids, max_tokens, sample, after_newline=prompt.endswith("\n") or prompt == "")

    @torch.no_grad()
    def _steps(self, ids: list[int], max_tokens: int, sample: Any, after_newline: bool) -> Iterator[str]:
        net, tok = self._check()
        net.eval()
        logits, state = net(torch.tensor([ids]))  # (1, P, V): the prompt, once
        pieces = StreamDecoder(tok, after_newline)
        for _ in range(max_tokens):
            token = sample(logits[0, -1])
            piece = pieces.push(token)
            if piece:
                yield piece
            y_t, state = net.lstm.step(net.embedding(torch.tensor([token])), state)  # the engine's streaming step
            logits = net.decoder(y_t)[None]  # (1, 1, V)
        rest = pieces.flush()
        if rest:
            yield rest

    def generate(self, prompt: str = "", max_tokens: int = 200, **kwargs: Any) -> str:
        """The prompt's continuation as one string (see :meth:`stream` for the options; ``beam_size`` > 1 runs
        :meth:`beam_search` instead)."""
        beam = kwargs.pop("beam_size", 1)
        if beam < 1:
            raise ValueError(f"beam_size must be at least 1 (1: no beam search), got {beam}.")
        if beam > 1:
            defaults = {"temperature": 1.0, "top_k": None, "top_p": None, "greedy": False, "seed": None}
            sampling = sorted(k for k, v in kwargs.items() if v != defaults.get(k))
            if sampling:
                raise ValueError(
                    f"Beam search finds the most likely continuation and takes no sampling options "
                    f"({', '.join(sampling)}); drop them, or use beam_size=1 to sample."
                )
            return self.beam_search(prompt, max_tokens, beam_size=beam)
        return "".join(self.stream(prompt, max_tokens, **kwargs))

    @torch.no_grad()
    def beam_search(self, prompt: str = "", max_tokens: int = 50, *, beam_size: int = 5) -> str:
        """The most likely continuation of ``max_tokens`` tokens found by beam search (all beams have the same
        length, so no length normalisation is needed)."""
        if beam_size < 1:
            raise ValueError(f"beam_size must be at least 1, got {beam_size}.")
        net, tok = self._check()
        net.eval()
        ids = self._prompt_ids(prompt)
        logits, state = net(torch.tensor([ids]))
        scores = torch.zeros(1, dtype=torch.float64)  # (K,) log-probabilities of the beams
        seqs = torch.zeros(1, 0, dtype=torch.long)  # (K, t)
        for _ in range(max_tokens):
            logp = torch.log_softmax(logits[:, -1].double(), dim=-1)  # (K, V)
            total = (scores[:, None] + logp).flatten()  # (K * V,)
            scores, flat = torch.topk(total, min(beam_size, total.numel()))
            beam, token = flat // logp.shape[1], flat % logp.shape[1]
            seqs = torch.cat([seqs[beam], token[:, None]], dim=1)
            state = tuple(s[:, beam] for s in state)  # (L, K, H) each: the chosen beams' states
            logits, state = net(token[:, None], state)
        pieces = StreamDecoder(tok, after_newline=prompt.endswith("\n") or prompt == "")
        return "".join(pieces.push(int(i)) for i in seqs[0]) + pieces.flush()

    @property
    def run_kind(self) -> str:
        """The kind its runs are saved as (``config.json``'s ``kind``), which its ONNX export records."""
        return KIND

    def onnx_graphs(self, streaming: bool = False, rng: np.random.Generator | None = None) -> list[CheckedGraph]:
        """This model as ONNX graphs, each with sample inputs and the model's own outputs for them: ``ids``, ``h0``,
        ``c0`` -> ``logits``, ``h_n``, ``c_n`` (the state explicit, so the same graph streams).
        :func:`lstmkit.export.onnx.export_onnx` checks them and writes the files; ``rng`` draws the samples (default:
        seed 0). Raises ValueError where a graph cannot express the model (the reason)."""
        from .onnx import language_model_graphs

        return language_model_graphs(self, streaming, np.random.default_rng(0) if rng is None else rng)

    # ---- persistence ------------------------------------------------------------------------------------------
    def save(self, run_dir: str | os.PathLike[str], *, overwrite: bool = False) -> Path:
        """config.json (the config and the tokenizer's vocabulary, JSON) + model.safetensors."""
        net, tok = self._check()
        cfg = {"lm": self.config.to_dict(), "tokenizer": tok.to_dict(), "vocab_size": tok.vocab_size}
        return runs.save_run(run_dir, KIND, cfg, net, overwrite=overwrite)

    @classmethod
    def load(cls, run_dir: str | os.PathLike[str]) -> LanguageModel:
        saved = runs.read_run_config(run_dir, KIND)["config"]
        lm = cls(LanguageModelConfig.from_dict(saved["lm"]))
        lm.tokenizer = tokenizer_from_dict(saved["tokenizer"])
        lm.net = LMNet.build(saved["vocab_size"], lm.config.net)
        lm.net.load_state_dict(runs.read_state_dict(run_dir))
        lm.net.eval()
        return lm


def resolve_text(corpus: str | None, path: str | os.PathLike[str] | None, errors: str = "strict") -> str:
    """The training text: a bundled corpus by name or a file / folder of ``*.txt`` files (exactly one of them)."""
    from .data import load_corpus, read_text

    if (corpus is None) == (path is None):
        raise ValueError("Give the text one way: a bundled corpus (--data shakespeare) or a file or folder (--text).")
    return load_corpus(corpus) if corpus is not None else read_text(path, errors=errors)  # type: ignore[arg-type]


def train_run(
    text: str, config: LanguageModelConfig, out: str | os.PathLike[str], *, resume: bool = False, ngram_order: int = 5,
    test_text: str | None = None, step_seconds: StepSeconds | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Train on ``text`` and write a run directory: config.json (with the vocabulary and the sizes chosen),
    model.safetensors, metrics.csv / steps.csv, checkpoints, ``result.json`` (the size choice; held-out test measures
    beside interpolated Kneser-Ney and Witten-Bell n-gram models fitted on the same training part, in the same run),
    ``samples.txt`` and ``report.html``.

    The test part is the tail of ``text`` (``test_fraction``), or ``test_text`` when given (``text`` then keeps no
    test part: ``test_fraction`` 0).

    config.json is written as training starts (``"status": "training"``), so a failure before the end leaves a run
    that ``--resume`` (or ``lstmkit resume``) continues; the model and its config are saved as soon as training ends,
    before anything else, and a step after that which fails (measures, samples, report) is a warning, logged and
    listed in the result's ``warnings``, never an error that loses the trained model."""
    import json
    import time

    from ..._atomic import atomic_write_bytes
    from ...report import write_report
    from .ngram import ngram_baselines

    out = Path(out)
    if runs.is_finished(out):
        raise FileExistsError(f"{out} already holds a finished language model; choose another --out or delete it.")
    if test_text is not None:
        if not test_text.strip():
            raise TextError("The test text is empty; give a --test file with some text in it.")
        config = config.replace(test_fraction=0.0)
    t0 = time.perf_counter()
    lm = LanguageModel(config).fit(text, run_dir=out, resume=resume, step_seconds=step_seconds)
    seconds = time.perf_counter() - t0  # config.json (status training, the sizes chosen) is written as it starts
    config = lm.config
    tok = lm.tokenizer
    assert tok is not None and lm.net is not None
    lm.save(out)  # the model and its config first: no step after training can lose them
    result: dict[str, Any] = {"run_dir": str(out), "level": config.level, "train_seconds": round(seconds, 1)}
    result["parameters"] = sum(p.numel() for p in lm.net.parameters())
    result["size"] = lm.sizing_
    result["budget_minutes"] = config.train.max_minutes
    result["steps"] = lm.history_[-1].get("step") if lm.history_ else None
    tail = f"the last {config.test_fraction:.0%} of the text"
    result["test_source"] = "the --test file" if test_text is not None else tail
    warnings: list[str] = []

    def attempt(what: str, step: Any) -> None:
        """One step after training; its failure is a warning (in the log and in result.json), never an error."""
        try:
            step()
        except Exception as e:  # noqa: BLE001  (the trained model is saved; nothing here may lose the run)
            warnings.append(f"{what} failed: {e} The model is saved in {out}.")
            logger.warning("%s", warnings[-1])

    train, _, test = split_text(text, config.val_fraction, config.test_fraction)
    if test_text is not None:
        test = test_text

    def measure() -> None:
        if len(test) <= 1:
            return
        result["test"] = lm.evaluate(test)
        order = ngram_order if config.level == "char" else min(ngram_order, 3)
        if tok.vocab_size**order < 2**62:
            test_ids = tok.encode(test)
            found = ngram_baselines(np.asarray(tok.encode(train)), np.asarray(test_ids), tok.vocab_size, order)
            for row in found.values():
                row["nats_per_char"] = row["nats_per_token"] * len(test_ids) / len(test)
            result["ngram"] = found["witten_bell"]  # the key runs before 0.4 wrote
            result["kneser_ney"] = found["kneser_ney"]
            best = min(row["nats_per_char"] for row in found.values())
            result["beats_ngrams"] = result["test"]["nats_per_char"] < best

    def sample() -> None:
        # prompts the model knows: a line break (unless the text has none), and the test part's opening rebuilt from
        # the tokens the model knows (never a cut word)
        known = [i for i in tok.encode(test[:200]) if i != 0 or isinstance(tok, BPETokenizer)]
        opening = tok.decode(known[: {"char": 40, "word": 8, "bpe": 12}[config.level]]) if len(test) > 1 else ""
        starts = [p for p in ("\n", opening) if _knows(tok, p)] or [""]
        samples = [f"--- prompt {p!r}, temperature {t}, seed 0\n{p}{lm.generate(p, 300, temperature=t, seed=0)}\n"
                   for p in dict.fromkeys(starts) for t in (0.5, 1.0)]  # fmt: skip
        atomic_write_bytes(out / "samples.txt", "\n".join(samples).encode())

    def write_result() -> None:
        if warnings:
            result["warnings"] = list(warnings)
        atomic_write_bytes(out / "result.json", (json.dumps(result, indent=2) + "\n").encode())

    attempt("Measuring the test part", measure)
    attempt("Writing samples.txt", sample)
    attempt("Writing result.json", write_result)
    n_warnings = len(warnings)
    attempt("Writing report.html", lambda: write_report(out))
    if len(warnings) > n_warnings:  # result.json names the report's failure too
        attempt("Writing result.json", write_result)
    return result
