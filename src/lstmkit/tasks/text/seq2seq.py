"""Sequence to sequence with attention: ``lstmkit.Seq2Seq`` (translation, number words, any text-to-text job).

Encoder: embedding, a stacked, optionally bidirectional :class:`lstmkit.nn.LSTM` over the padded source with its
lengths. Its final states (both directions concatenated) pass through a linear bridge to the decoder's initial
``(h, c)``. Decoder: embedding, a stacked LSTM stepped one token at a time, and attention over the encoder outputs
(padding masked):

- ``"bahdanau"`` (additive, Bahdanau et al. 2015): ``e_j = v . tanh(W s_{t-1} + U h_j)`` from the decoder's previous
  top state; the context joins the next input token's embedding ("input feeding").
- ``"luong"`` (multiplicative "general", Luong et al. 2015): ``e_j = s_t . W h_j`` from the current top state; the
  output is ``tanh(W_c [c_t; s_t])``, also fed to the next step.
- ``"none"``: the bridge alone carries the source.

Training uses teacher forcing with scheduled sampling (Bengio et al. 2015): at each step the previous token fed in is
the model's own greedy choice with probability ``p``, which rises linearly from 0 to ``sampling_max`` over training.
Decoding is greedy or beam search with GNMT's length normalisation ``((5 + |y|) / 6) ** alpha`` (Wu et al. 2016).
:func:`corpus_scores` gives exact match, BLEU and chrF (sacrebleu).

Example:
    >>> model = Seq2Seq(attention="bahdanau", epochs=20).fit(sources, targets)       # doctest: +SKIP
    >>> model.translate(["three hundred and twelve"], beam_size=4)                    # doctest: +SKIP
    ['trois cent douze']
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ... import runs
from ...config import ConfigError
from ...data import SeededBatches, bucketed
from ...nn import LSTM
from ...train import StepOutput, Trainer, seed_everything
from ..training import task_trainer
from .config import Seq2SeqConfig, Seq2SeqNetConfig, Seq2SeqTrain
from .data import TextError, Tokenizer, make_tokenizer, tokenizer_from_dict

if TYPE_CHECKING:
    from ...nn.onnx_graph import CheckedGraph

__all__ = [
    "Seq2Seq",
    "Seq2SeqConfig",
    "Seq2SeqNetConfig",
    "Seq2SeqTrain",
    "corpus_scores",
    "number_phrases",
    "read_pairs",
    "train_run",
]

KIND = "seq2seq"
PAD, BOS, EOS, SPECIALS = 0, 1, 2, 3  # the tokenizer's id i becomes i + SPECIALS (its <unk>, id 0, becomes 3)


class Seq2SeqNet(nn.Module):
    """Encoder, bridge, attentive decoder (see the module docstring for the equations).

    Shapes: source (B, S) and source lengths (B,); targets (B, T) starting with BOS; logits (B, T, V_target).
    """

    def __init__(
        self, n_source: int, n_target: int, *, embedding_size: int, hidden_size: int, encoder_layers: int,
        decoder_layers: int, bidirectional: bool, attention: str, attention_size: int, dropout: float,
    ) -> None:  # fmt: skip
        super().__init__()
        self.hidden_size, self.bidirectional, self.decoder_layers = hidden_size, bidirectional, decoder_layers
        self.attention, self.attention_size = attention, attention_size
        H, E, D = hidden_size, embedding_size, 2 if bidirectional else 1
        self.source_embedding = nn.Embedding(n_source, E, padding_idx=PAD)
        self.target_embedding = nn.Embedding(n_target, E, padding_idx=PAD)
        self.encoder = LSTM(E, H, encoder_layers, bidirectional=bidirectional,
                            dropout=dropout if encoder_layers > 1 else 0.0)  # fmt: skip
        self.bridge_h = nn.Linear(D * H, decoder_layers * H)
        self.bridge_c = nn.Linear(D * H, decoder_layers * H)
        feed = H if attention != "none" else 0  # the previous attentional vector, fed with the next token
        self.decoder = LSTM(E + feed, H, decoder_layers, dropout=dropout if decoder_layers > 1 else 0.0)
        self.drop = nn.Dropout(dropout)
        if attention == "bahdanau":
            self.query = nn.Linear(H, attention_size, bias=False)
            self.keys = nn.Linear(D * H, attention_size)
            self.score = nn.Linear(attention_size, 1, bias=False)
            self.combine = nn.Linear(D * H + H, H)
        elif attention == "luong":
            self.keys = nn.Linear(D * H, H, bias=False)
            self.combine = nn.Linear(D * H + H, H)
        self.out = nn.Linear(H, n_target)

    @classmethod
    def build(cls, n_source: int, n_target: int, net: Seq2SeqNetConfig) -> Seq2SeqNet:
        """The network with the sizes of a config's ``net`` section."""
        return cls(
            n_source, n_target, embedding_size=net.embedding_size, hidden_size=net.hidden_size,
            encoder_layers=net.num_layers, decoder_layers=net.decoder_layers or net.num_layers,
            bidirectional=net.bidirectional, attention=net.attention, attention_size=net.attention_size,
            dropout=net.dropout,
        )  # fmt: skip

    def encode(self, source: Tensor, lengths: Tensor) -> dict[str, Tensor]:
        """Encoder outputs (B, S, D*H), the padding mask (B, S) and the decoder's initial state."""
        out, (h_n, c_n) = self.encoder(self.drop(self.source_embedding(source)), None, lengths)  # (B, S, D*H)
        D, B = 2 if self.bidirectional else 1, source.shape[0]
        last_h = h_n[-D:].transpose(0, 1).reshape(B, -1)  # (B, D*H): the top layer's final states
        last_c = c_n[-D:].transpose(0, 1).reshape(B, -1)
        L, H = self.decoder_layers, self.hidden_size
        h0 = torch.tanh(self.bridge_h(last_h)).view(B, L, H).transpose(0, 1).contiguous()  # (L, B, H)
        c0 = self.bridge_c(last_c).view(B, L, H).transpose(0, 1).contiguous()
        mask = torch.arange(source.shape[1])[None, :] < lengths[:, None]  # (B, S)
        memory = {"outputs": out, "mask": mask, "h": h0, "c": c0}
        if self.attention == "bahdanau":
            memory["keys"] = self.keys(out)  # (B, S, A): computed once per source
        elif self.attention == "luong":
            memory["keys"] = self.keys(out)  # (B, S, H)
        return memory

    def _attend(self, energies: Tensor, memory: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
        weights = torch.softmax(energies.masked_fill(~memory["mask"], float("-inf")), dim=1)  # (B, S)
        return torch.einsum("bs,bsd->bd", weights, memory["outputs"]), weights  # (B, D*H), (B, S)

    def step(self, token: Tensor, state: dict[str, Tensor], memory: dict[str, Tensor]) -> tuple[Tensor, dict, Tensor]:
        """One decoder step: previous token (B,) -> logits (B, V), the new state, attention weights (B, S)."""
        emb = self.drop(self.target_embedding(token))  # (B, E)
        weights = memory["mask"].float() * 0
        if self.attention == "bahdanau":
            query = self.query(state["h"][-1])[:, None]  # (B, 1, A): the previous top state
            energies = self.score(torch.tanh(query + memory["keys"])).squeeze(-1)  # (B, S)
            context, weights = self._attend(energies, memory)
            x = torch.cat([emb, state["feed"]], dim=-1)
            out, (h, c) = self.decoder(x[:, None], (state["h"], state["c"]))  # (B, 1, H)
            top = torch.tanh(self.combine(torch.cat([context, out[:, 0]], dim=-1)))  # (B, H)
        elif self.attention == "luong":
            x = torch.cat([emb, state["feed"]], dim=-1)
            out, (h, c) = self.decoder(x[:, None], (state["h"], state["c"]))
            energies = torch.einsum("bh,bsh->bs", out[:, 0], memory["keys"])  # (B, S)
            context, weights = self._attend(energies, memory)
            top = torch.tanh(self.combine(torch.cat([context, out[:, 0]], dim=-1)))
        else:
            out, (h, c) = self.decoder(emb[:, None], (state["h"], state["c"]))
            top = out[:, 0]
        return self.out(self.drop(top)), {"h": h, "c": c, "feed": top}, weights

    def initial_state(self, memory: dict[str, Tensor]) -> dict[str, Tensor]:
        B, H = memory["h"].shape[1], self.hidden_size
        return {"h": memory["h"], "c": memory["c"], "feed": memory["h"].new_zeros(B, H)}

    def forward(self, source: Tensor, lengths: Tensor, target_in: Tensor, sampling: float = 0.0) -> Tensor:
        """Teacher-forced logits (B, T, V) for ``target_in`` (BOS, y_1, ..., y_{T-1}); with ``sampling`` > 0 each
        fed-in token after the first is the model's own greedy choice with that probability."""
        memory = self.encode(source, lengths)
        state = self.initial_state(memory)
        logits, token = [], target_in[:, 0]
        for t in range(target_in.shape[1]):
            step_logits, state, _ = self.step(token, state, memory)
            logits.append(step_logits)
            if t + 1 < target_in.shape[1]:
                token = target_in[:, t + 1]
                if sampling > 0:
                    own = step_logits.argmax(-1)
                    use_own = torch.rand(token.shape) < sampling
                    token = torch.where(use_own & (token != PAD), own, token)
        return torch.stack(logits, dim=1)


def _pad(seqs: list[list[int]]) -> tuple[Tensor, Tensor]:
    lengths = torch.tensor([len(s) for s in seqs])
    out = torch.full((len(seqs), int(lengths.max())), PAD, dtype=torch.long)
    for i, s in enumerate(seqs):
        out[i, : len(s)] = torch.tensor(s, dtype=torch.long)
    return out, lengths


class _Pairs(SeededBatches):
    """Shuffled batches of (source, lengths, target_in, target_out), re-iterable, with its own generator.

    Batches are bucketed: the shuffled pairs are cut into pools of ``POOL`` batches, each pool sorted by length and
    cut into batches, and the batches shuffled, so a batch holds pairs of similar length (less padding, the same
    pairs per epoch)."""

    POOL = 50

    def __init__(self, src: list[list[int]], tgt: list[list[int]], batch_size: int, seed: int) -> None:
        order = bucketed([(len(t), len(s)) for s, t in zip(src, tgt, strict=True)], self.POOL)
        super().__init__(src, tgt, batch_size=batch_size, seed=seed, order=order)
        self.src, self.tgt = src, tgt

    def collate(self, index: list[int]) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        src, lengths = _pad([self.src[i] for i in index])
        tgt, _ = _pad([[BOS, *self.tgt[i], EOS] for i in index])
        return src, lengths, tgt[:, :-1], tgt[:, 1:]


@runs.register_kind(KIND)
class Seq2Seq:
    """Sequence-to-sequence model: ``fit``, ``translate``, ``evaluate``, ``attention``, ``save``, ``load``.
    Keyword arguments are :class:`Seq2SeqConfig` fields."""

    def __init__(self, config: Seq2SeqConfig | None = None, **kwargs: Any) -> None:
        self.config = config if config is not None else Seq2SeqConfig.from_dict(kwargs)
        self.source_tokenizer: Tokenizer | None = None
        self.target_tokenizer: Tokenizer | None = None
        self.net: Seq2SeqNet | None = None
        self.history_: list[dict[str, Any]] = []

    def _ids(self, tok: Tokenizer, text: str) -> list[int]:
        return [i + SPECIALS for i in tok.encode(text)]

    def fit(self, sources: list[str], targets: list[str], run_dir: str | os.PathLike[str] | None = None, *,
            resume: bool = False, validation: tuple[list[str], list[str]] | None = None) -> Seq2Seq:  # fmt: skip
        """Train on parallel lists of source and target texts (``validation``: a held-out pair of lists, scored by
        loss each epoch)."""
        cfg = self.config
        if len(sources) != len(targets):
            raise ValueError(f"{len(sources)} sources but {len(targets)} targets; give one target per source.")
        if not sources:
            raise ValueError("No training pairs; give at least one source and its target.")
        empty = next((i for i, (s, t) in enumerate(zip(sources, targets, strict=True)) if not s.strip()
                      or not t.strip()), None)  # fmt: skip
        if empty is not None:
            raise TextError(f"Pair {empty} has an empty source or target; drop it or fill it in.")
        if cfg.train.device == "cuda":
            raise ConfigError("Seq2Seq trains on the CPU (its decoder steps one token at a time); set device cpu.")
        seed_everything(cfg.train.seed)
        self.source_tokenizer = make_tokenizer(cfg.source_level, cfg.vocab_size).fit("\n".join(sources))
        self.target_tokenizer = make_tokenizer(cfg.target_level, cfg.vocab_size).fit("\n".join(targets))
        src = [self._ids(self.source_tokenizer, s) for s in sources]
        tgt = [self._ids(self.target_tokenizer, t) for t in targets]
        self.net = Seq2SeqNet.build(self.source_tokenizer.vocab_size + SPECIALS,
                                    self.target_tokenizer.vocab_size + SPECIALS, cfg.net)  # fmt: skip
        data = _Pairs(src, tgt, cfg.train.batch_size, cfg.train.seed)
        steps_total = cfg.train.epochs * len(data)
        val = None
        if validation is not None:
            vs, vt = validation
            val = list(_Pairs([self._ids(self.source_tokenizer, s) for s in vs],
                              [self._ids(self.target_tokenizer, t) for t in vt], 256, cfg.train.seed))  # fmt: skip
        trainer_ref: dict[str, Trainer] = {}

        def loss_fn(model: Seq2SeqNet, batch: tuple[Tensor, ...], state: Any) -> StepOutput:
            source, lengths, target_in, target_out = batch
            progress = trainer_ref["t"].global_step / max(steps_total, 1) if model.training else 0.0
            logits = model(source, lengths, target_in, sampling=cfg.sampling_max * progress if model.training else 0)
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), target_out.reshape(-1), ignore_index=PAD)
            return StepOutput(loss=loss, n_items=int((target_out != PAD).sum()))

        trainer_ref["t"] = trainer = task_trainer(self.net, loss_fn, cfg, kind=KIND, run_dir=run_dir)
        self.history_ = trainer.fit(data, val_data=val, resume=resume)
        self.net.eval()
        return self

    def _check(self) -> Seq2SeqNet:
        if self.net is None:
            raise RuntimeError("This Seq2Seq model is not fitted: call fit(sources, targets) or Seq2Seq.load(run_dir).")
        return self.net

    def _decode_ids(self, ids: list[int]) -> str:
        assert self.target_tokenizer is not None
        return self.target_tokenizer.decode([i - SPECIALS for i in ids if i >= SPECIALS])

    @torch.no_grad()
    def translate(self, sources: list[str], *, beam_size: int = 1, alpha: float = 0.6,
                  batch_size: int = 128) -> list[str]:  # fmt: skip
        """The output text of each source: greedy (``beam_size=1``) or beam search with length normalisation."""
        net = self._check()
        assert self.source_tokenizer is not None
        if isinstance(sources, str):
            raise TypeError("Pass a list of source texts, not one string (wrap it: [text]).")
        if beam_size < 1:
            raise ValueError(f"beam_size must be at least 1, got {beam_size}.")
        net.eval()
        out: list[str] = []
        for s in range(0, len(sources), batch_size):
            chunk = [self._ids(self.source_tokenizer, x) or [SPECIALS] for x in sources[s : s + batch_size]]
            if beam_size == 1:
                out += [self._decode_ids(ids) for ids in self._greedy(chunk)[0]]
            else:
                out += [self._decode_ids(self._beam(ids, beam_size, alpha)) for ids in chunk]
        return out

    def _greedy(self, chunk: list[list[int]]) -> tuple[list[list[int]], list[Tensor]]:
        net = self._check()
        source, lengths = _pad(chunk)
        memory = net.encode(source, lengths)
        state = net.initial_state(memory)
        token = torch.full((len(chunk),), BOS, dtype=torch.long)
        limit = int(self.config.max_output_ratio * int(lengths.max())) + 10
        result = [[] for _ in chunk]
        done = torch.zeros(len(chunk), dtype=torch.bool)
        weights = []
        for _ in range(limit):
            logits, state, w = net.step(token, state, memory)
            token = logits.argmax(-1)
            weights.append(w)
            for i in torch.nonzero(~done).flatten().tolist():
                if int(token[i]) == EOS:
                    done[i] = True
                else:
                    result[i].append(int(token[i]))
            if bool(done.all()):
                break
        return result, weights

    def _beam(self, ids: list[int], beam_size: int, alpha: float) -> list[int]:
        """Beam search for one source; finished hypotheses ranked by log p / ((5 + |y|) / 6) ** alpha."""
        net = self._check()
        source, lengths = _pad([ids])
        memory = net.encode(source, lengths)
        state = net.initial_state(memory)
        limit = int(self.config.max_output_ratio * len(ids)) + 10
        beams: list[tuple[float, list[int]]] = [(0.0, [])]
        tokens = torch.tensor([BOS])
        finished: list[tuple[float, list[int]]] = []
        for _ in range(limit):
            k = len(beams)
            mem = {name: t.expand(k, *t.shape[1:]) for name, t in memory.items() if name not in ("h", "c")}
            logits, state, _ = net.step(tokens, state, mem)
            logp = torch.log_softmax(logits.double(), dim=-1)  # (k, V)
            total = torch.tensor([b[0] for b in beams], dtype=torch.float64)[:, None] + logp
            scores, flat = torch.topk(total.flatten(), min(2 * beam_size, total.numel()))
            keep, new_beams = [], []
            for score, f in zip(scores.tolist(), flat.tolist(), strict=True):
                b, tok = divmod(f, logp.shape[1])
                seq = [*beams[b][1], tok]
                if tok == EOS:
                    finished.append((score / ((5 + len(seq)) / 6) ** alpha, seq[:-1]))
                elif len(new_beams) < beam_size:
                    new_beams.append((score, seq))
                    keep.append(b)
            best_done = max((f[0] for f in finished), default=-np.inf)
            if (
                not new_beams
                or len(finished) >= beam_size
                and best_done >= max(s / ((5 + limit) / 6) ** alpha for s, _ in new_beams)
            ):  # no open beam can still beat the best finished one
                break
            beams = new_beams
            index = torch.tensor(keep)
            state = {name: (t[:, index] if name in ("h", "c") else t[index]) for name, t in state.items()}
            tokens = torch.tensor([seq[-1] for _, seq in beams])
        if not finished:
            finished = [(s / ((5 + len(q)) / 6) ** alpha, q) for s, q in beams]
        return max(finished, key=lambda f: f[0])[1]

    @torch.no_grad()
    def attention(self, source: str) -> tuple[list[str], list[str], np.ndarray]:
        """Source tokens, greedy output tokens and the attention weights (outputs x sources) for one source."""
        assert self.source_tokenizer is not None and self.target_tokenizer is not None
        if self.config.net.attention == "none":
            raise ValueError("This model has no attention (attention='none').")
        ids = self._ids(self.source_tokenizer, source)
        out, weights = self._greedy([ids])
        matrix = torch.stack(weights[: len(out[0])], dim=0)[:, 0].numpy() if out[0] else np.zeros((0, len(ids)))
        src_tokens = [self.source_tokenizer.decode([i - SPECIALS]) for i in ids]
        tgt_tokens = [self.target_tokenizer.decode([i - SPECIALS]) for i in out[0]]
        return src_tokens, tgt_tokens, matrix

    def evaluate(self, sources: list[str], references: list[str], *, beam_size: int = 1) -> dict[str, float]:
        """Exact match, BLEU and chrF of the outputs against ``references``."""
        if len(sources) != len(references):
            raise ValueError(f"{len(sources)} sources but {len(references)} references.")
        return corpus_scores(self.translate(sources, beam_size=beam_size), references)

    @property
    def run_kind(self) -> str:
        """The kind its runs are saved as (``config.json``'s ``kind``), which its ONNX export records."""
        return KIND

    def onnx_graphs(self, streaming: bool = False, rng: np.random.Generator | None = None) -> list[CheckedGraph]:
        """This model as ONNX graphs, each with sample inputs and the model's own outputs for them: the encoder and the
        decoder step, two graphs (the decoding loop stays in the caller's code). :func:`lstmkit.export.onnx.export_onnx`
        checks them and writes the files; ``rng`` draws the samples (default: seed 0). Raises ValueError where a graph
        cannot express the model (the reason)."""
        from .onnx import seq2seq_graphs

        return seq2seq_graphs(self, streaming, np.random.default_rng(0) if rng is None else rng)

    # ---- persistence --------------------------------------------------------------------------------------------
    def save(self, run_dir: str | os.PathLike[str], *, overwrite: bool = False) -> Path:
        net = self._check()
        assert self.source_tokenizer is not None and self.target_tokenizer is not None
        config = {"seq2seq": self.config.to_dict(), "source_tokenizer": self.source_tokenizer.to_dict(),
                  "target_tokenizer": self.target_tokenizer.to_dict()}  # fmt: skip
        return runs.save_run(run_dir, KIND, config, net, overwrite=overwrite)

    @classmethod
    def load(cls, run_dir: str | os.PathLike[str]) -> Seq2Seq:
        saved = runs.read_run_config(run_dir, KIND)["config"]
        model = cls(Seq2SeqConfig.from_dict(saved["seq2seq"]))
        model.source_tokenizer = tokenizer_from_dict(saved["source_tokenizer"])
        model.target_tokenizer = tokenizer_from_dict(saved["target_tokenizer"])
        model.net = Seq2SeqNet.build(model.source_tokenizer.vocab_size + SPECIALS,
                                     model.target_tokenizer.vocab_size + SPECIALS, model.config.net)  # fmt: skip
        model.net.load_state_dict(runs.read_state_dict(run_dir))
        model.net.eval()
        return model


def corpus_scores(outputs: list[str], references: list[str]) -> dict[str, float]:
    """Exact-match rate, corpus BLEU and chrF (sacrebleu, default settings) of ``outputs`` against ``references``."""
    try:
        import sacrebleu
    except ImportError as e:
        raise ImportError("BLEU and chrF come from sacrebleu: pip install 'lstmkit[text]'.") from e
    exact = float(np.mean([o.strip() == r.strip() for o, r in zip(outputs, references, strict=True)]))
    return {
        "exact_match": exact, "bleu": float(sacrebleu.corpus_bleu(outputs, [references]).score),
        "chrf": float(sacrebleu.corpus_chrf(outputs, [references]).score), "n": len(outputs),
    }  # fmt: skip


def number_phrases(
    numbers: np.ndarray, source_lang: str = "en", target_lang: str = "fr"
) -> tuple[list[str], list[str]]:
    """Each number written out in words in two languages (num2words), e.g. 'one hundred and twelve' ->
    'cent douze'."""
    try:
        from num2words import num2words
    except ImportError as e:
        raise ImportError("Number phrases come from num2words: pip install 'lstmkit[text]'.") from e
    return ([num2words(int(n), lang=source_lang) for n in numbers],
            [num2words(int(n), lang=target_lang) for n in numbers])  # fmt: skip


def read_pairs(
    dataset: str | None, csv: str | os.PathLike[str] | None, source_column: str = "source",
    target_column: str = "target", *, n: int = 20000, seed: int = 0,
) -> tuple[list[str], list[str]]:  # fmt: skip
    """Parallel texts: ``numbers`` (``n`` distinct random numbers below a million, English words -> French words),
    ``verses`` (all 31,084 English-Spanish Bible verse pairs, KJV and Reina-Valera 1909; ``n`` is ignored; see
    ``lstmkit.tasks.text.verses``) or a CSV file with a source and a target column."""
    if (dataset is None) == (csv is None):
        raise ValueError("Give the pairs one way: a bundled set (--data numbers|verses) or a CSV file (--csv).")
    if dataset is not None:
        if dataset == "verses":
            from .verses import load_verse_pairs

            pairs = load_verse_pairs()
            return pairs.english, pairs.spanish
        if dataset != "numbers":
            raise KeyError(
                f"Unknown pair set {dataset!r}; bundled: numbers (English to French number words), verses (English "
                "to Spanish Bible verses)."
            )
        numbers = np.random.default_rng(seed).choice(1_000_000, size=n, replace=False)
        return number_phrases(numbers)
    import pandas as pd

    path = Path(csv)  # type: ignore[arg-type]
    if not path.is_file():
        raise FileNotFoundError(f"No CSV file at {path}.")
    df = pd.read_csv(path)
    missing = [c for c in (source_column, target_column) if c not in df.columns]
    if missing:
        raise ValueError(
            f"Unknown column(s) {missing}; {path.name} has {list(df.columns)}. Name them with --source-column and "
            "--target-column."
        )
    return df[source_column].fillna("").astype(str).tolist(), df[target_column].fillna("").astype(str).tolist()


def train_run(
    sources: list[str], targets: list[str], config: Seq2SeqConfig, out: str | os.PathLike[str], *,
    holdout: float = 0.1, beam_size: int = 4, resume: bool = False, groups: list[str] | None = None,
    word_by_word: bool = True,
) -> dict[str, Any]:  # fmt: skip
    """Hold out a seeded random ``holdout`` share of the pairs, train on the rest (a tenth of it validating), and
    write a run directory: config.json, model.safetensors, metrics.csv, result.json (exact match, BLEU and chrF of
    greedy and beam decoding on the held-out pairs, beside copying the source and, with ``word_by_word``, beside a
    word-by-word dictionary learned from the training pairs), predictions.csv, alignment.png (the attention of the
    first held-out pair) and report.html. The model is saved before the scoring.

    ``groups`` (one label per pair, e.g. the chapter of a verse) makes the split by group: whole groups are held out
    or validate, so near-duplicate neighbours never straddle the split; the shares then count groups."""
    import json

    from ..._atomic import atomic_write_bytes
    from ...report import write_report
    from ...viz.plots import plot_alignment

    out = Path(out)
    if runs.is_finished(out):
        raise FileExistsError(f"{out} already holds a finished model; choose another --out or delete it.")
    if len(sources) != len(targets):
        raise ValueError(f"{len(sources)} sources but {len(targets)} targets; give one target per source.")
    if groups is not None and len(groups) != len(sources):
        raise ValueError(f"{len(groups)} group labels for {len(sources)} pairs; give one label per pair.")
    labels = list(dict.fromkeys(groups)) if groups is not None else list(range(len(sources)))
    order = np.random.default_rng(config.train.seed).permutation(len(labels))
    n_test = int(round(len(labels) * holdout))
    n_val = max(1, (len(labels) - n_test) // 10) if len(labels) - n_test > 10 else 0
    test, val, train = order[:n_test], order[n_test : n_test + n_val], order[n_test + n_val :]
    if groups is not None:  # group positions -> pair positions
        where = {g: k for k, g in enumerate(labels)}
        part = np.array([where[g] for g in groups])
        rank = np.empty(len(labels), dtype=np.int64)
        rank[order] = np.arange(len(labels))
        pair_rank = rank[part]
        test = np.flatnonzero(pair_rank < n_test)
        val = np.flatnonzero((pair_rank >= n_test) & (pair_rank < n_test + n_val))
        train = np.flatnonzero(pair_rank >= n_test + n_val)
        n_val = len(val)
        n_test = len(test)
    pick = lambda idx, xs: [xs[i] for i in idx]  # noqa: E731
    model = Seq2Seq(config).fit(pick(train, sources), pick(train, targets), run_dir=out, resume=resume,
                                validation=(pick(val, sources), pick(val, targets)) if n_val else None)  # fmt: skip
    model.save(out)  # the model first: a failure in a step after training cannot lose it
    result: dict[str, Any] = {"run_dir": str(out), "train": len(train), "validation": n_val, "held_out": n_test}
    if n_test:
        test_src, test_tgt = pick(test, sources), pick(test, targets)
        greedy = model.translate(test_src)
        result["greedy"] = corpus_scores(greedy, test_tgt)
        if beam_size > 1:
            result[f"beam_{beam_size}"] = corpus_scores(model.translate(test_src, beam_size=beam_size), test_tgt)
        result["copy_source"] = corpus_scores(test_src, test_tgt)
        if word_by_word:
            from .word_alignment import WordByWordTranslator

            dictionary = WordByWordTranslator().fit(pick(train, sources), pick(train, targets))
            word_outputs = dictionary.translate(test_src)
            result["word_by_word"] = corpus_scores(word_outputs, test_tgt)
        import pandas as pd

        table = pd.DataFrame({"source": test_src, "reference": test_tgt, "output": greedy})
        if word_by_word:
            table["word_by_word"] = word_outputs
        atomic_write_bytes(out / "predictions.csv", table.to_csv(index=False).encode())
        if config.net.attention != "none":
            src_tokens, out_tokens, weights = model.attention(test_src[0])
            if out_tokens:
                plot_alignment(weights, src_tokens, out_tokens, out / "alignment.png",
                               title=f"{config.net.attention} attention")  # fmt: skip
    atomic_write_bytes(out / "result.json", (json.dumps(result, indent=2) + "\n").encode())
    write_report(out)
    return result
