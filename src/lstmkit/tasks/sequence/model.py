"""``SequenceModel``: a recurrent core (LSTM, GRU or tanh RNN) and a linear head, reading out the last step or all.

The model every simple task shares: the array estimators, series classification and the long-time-lag experiments.
Its config is typed data, saved with every run.

One output per sequence (``readout="last"``) comes from a pooling of the core's outputs over each sequence's own valid
steps (``pooling``): its last state (the default, as before pooling existed), the mean or the maximum over steps, or
an attention-weighted sum (a learned score per step, softmax over the valid steps only; Bahdanau et al. 2015's
additive score, as used for sequence classification by Zhou et al. 2016). Padding never reaches the head.

With ``conv_branch=True`` the model is an LSTM-FCN (Karim et al., "LSTM Fully Convolutional Networks for Time Series
Classification", IEEE Access 2017): beside the recurrent core, a fully convolutional branch reads the same input
(blocks of Conv1d -> BatchNorm1d -> ReLU, then the mean over each sequence's valid steps), and its vector is
concatenated with the pooled recurrent one before the head. See :meth:`SequenceModel.conv_features`.

With ``dimension_shuffle=True`` the recurrent core reads each series transposed, as LSTM-FCN's LSTM branch does: a
series of T steps and F channels becomes F steps of T features (a univariate series: one step of T features), so the
core is built for input size T (``shuffle_length``, the fixed series length) and only equal-length series fit. The
convolutional branch, if any, still reads the series step by step. ``pooled_dropout`` drops out the recurrent vector
alone before the convolutional one joins it (the paper's dropout 0.8 after the LSTM).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ...config import StrictConfig
from ...nn import GRU, LSTM, RNN
from .config import Cell, Pooling


@dataclass(frozen=True)
class ModelConfig(StrictConfig):
    """The recurrent model: core, sizes, variants and readout."""

    input_size: int
    output_size: int
    cell: Cell = "lstm"
    hidden_size: int = 64
    num_layers: int = 1
    bidirectional: bool = False
    dropout: float = 0.0  # between stacked layers
    readout: Literal["last", "all"] = "last"  # "last": one output per sequence; "all": one per step
    # How readout "last" summarises a sequence: its last valid step's state, the mean or max over valid steps, or
    # attention. "last" is the default so configs saved before pooling existed load unchanged.
    pooling: Pooling = "last"
    attention_size: int = 64  # width of the additive attention score's hidden layer (pooling="attention" only)
    # Dropout on the features the head reads (the pooled vector, or each step's output with readout "all"), in
    # training only. 0.0, the default, is the model as it was before this option existed (no parameters either way).
    head_dropout: float = 0.0
    # LSTM-FCN (Karim et al. 2017): a fully convolutional branch beside the core, one block per entry of conv_channels
    # (Conv1d of conv_kernels[k] steps, "same" padding -> BatchNorm1d -> ReLU), averaged over each sequence's valid
    # steps and concatenated with the pooled vector before the head (readout "last" only). The sizes are the paper's.
    # False, the default, is the model as it was before this option existed (no parameters), so old configs load.
    conv_branch: bool = False
    conv_channels: tuple[int, ...] = (128, 256, 128)
    conv_kernels: tuple[int, ...] = (8, 5, 3)
    # LSTM-FCN's "dimension shuffle": the core reads x (B, T, F) transposed, as F steps of T features, so it is built
    # for input size shuffle_length (= T, the fixed series length, set at fit time) and every series must have exactly
    # T steps. False, the default, is the model as before this option existed (the core reads T steps of F features).
    dimension_shuffle: bool = False
    shuffle_length: int = 0  # T with dimension_shuffle; 0 without
    # Dropout on the recurrent core's pooled vector alone (B, D*S), before the convolutional branch's vector joins it
    # (LSTM-FCN's dropout 0.8 after its LSTM), in training only; head_dropout acts after the concatenation. 0.0: none.
    pooled_dropout: float = 0.0
    # LSTM-only variants (lstmkit.nn.LSTM); ignored by the GRU and RNN cores
    layer_norm: bool = False
    peephole: bool = False
    recurrent_dropout: float = 0.0
    zoneout: float = 0.0
    proj_size: int = 0
    forget_bias: float = 1.0  # opens the memory early in training (Gers et al. 2000)

    def validate(self) -> None:
        for name in ("input_size", "output_size", "hidden_size", "num_layers", "attention_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"ModelConfig: {name} must be at least 1, got {getattr(self, name)}.")
        if not 0.0 <= self.head_dropout < 1.0:
            raise ValueError(
                f"ModelConfig: head_dropout must be in [0, 1), got {self.head_dropout}. Use 0.0 to turn it off."
            )
        if not 0.0 <= self.pooled_dropout < 1.0:
            raise ValueError(
                f"ModelConfig: pooled_dropout must be in [0, 1), got {self.pooled_dropout}. Use 0.0 to turn it off."
            )
        if self.dimension_shuffle and self.shuffle_length < 1:
            raise ValueError(
                f"ModelConfig: dimension_shuffle=True builds the core for one feature per time step of the series, so "
                f"it needs shuffle_length = the series length T >= 1, got {self.shuffle_length}."
            )
        if not self.dimension_shuffle and self.shuffle_length != 0:
            raise ValueError(
                f"ModelConfig: shuffle_length={self.shuffle_length} is used only with dimension_shuffle=True; set "
                "dimension_shuffle=True or leave shuffle_length at 0."
            )
        if self.dimension_shuffle and self.readout == "all":
            raise ValueError(
                "ModelConfig: dimension_shuffle=True makes the core step over the channels, not the time steps, so "
                "readout='all' has no output per time step. Use readout='last' with the dimension shuffle."
            )
        if len(self.conv_channels) != len(self.conv_kernels) or not self.conv_channels:
            raise ValueError(
                f"ModelConfig: conv_channels and conv_kernels give one entry per convolutional block, so they need the "
                f"same, non-zero length; got {len(self.conv_channels)} channels {self.conv_channels} and "
                f"{len(self.conv_kernels)} kernels {self.conv_kernels}."
            )
        if min(self.conv_channels) < 1 or min(self.conv_kernels) < 1:
            raise ValueError(
                f"ModelConfig: conv_channels and conv_kernels must be at least 1, got {self.conv_channels} and "
                f"{self.conv_kernels}."
            )
        if self.conv_branch and self.readout == "all":
            raise ValueError(
                "ModelConfig: conv_branch=True adds a per-sequence vector (its average over the steps), but "
                "readout='all' gives one output per step. Use readout='last' with the convolutional branch."
            )
        if self.cell != "lstm":
            variants = {
                "layer_norm": self.layer_norm, "peephole": self.peephole,
                "recurrent_dropout": self.recurrent_dropout, "zoneout": self.zoneout, "proj_size": self.proj_size,
            }  # fmt: skip
            used = [name for name, value in variants.items() if value]
            if used:
                raise ValueError(
                    f"ModelConfig: {', '.join(used)} exist only for cell='lstm', got cell={self.cell!r}. "
                    "Use cell='lstm' or drop those options."
                )
        if self.readout == "all" and self.pooling != "last":
            raise ValueError(
                f"ModelConfig: pooling={self.pooling!r} summarises a sequence into one output, but readout='all' "
                "gives one output per step. Use readout='last' with pooling, or pooling='last' with readout='all'."
            )


class SequenceModel(nn.Module):
    """Recurrent core + linear head, and with ``conv_branch`` a fully convolutional branch beside the core (LSTM-FCN).

    Shape:
        x (B, T, I); lengths (B,) or None; state as the core takes it.
        readout "last": (B, O), pooled over each sequence's own valid steps: pooling "last" reads its last step
        (both directions' final states when bidirectional), "mean" / "max" / "attention" pool the core's outputs
        (B, T, D*S) over the steps before ``lengths``; readout "all": (B, T, O).
        conv_branch: the head reads [pooled (B, D*S), conv_features (B, C)] -> (B, D*S + C), C = conv_channels[-1].
        S is proj_size or hidden_size.
        dimension_shuffle: the core reads x transposed, (B, I, T): I steps of T = shuffle_length features; x must
        have exactly T steps and lengths (if given) must all be T. The pooling runs over those I steps.
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        core_input = c.shuffle_length if c.dimension_shuffle else c.input_size  # features per step the core reads
        if c.cell == "lstm":
            self.core: nn.Module = LSTM(
                core_input, c.hidden_size, c.num_layers, bidirectional=c.bidirectional, dropout=c.dropout,
                proj_size=c.proj_size, layer_norm=c.layer_norm, peephole=c.peephole,
                recurrent_dropout=c.recurrent_dropout, zoneout=c.zoneout, forget_bias=c.forget_bias,
            )  # fmt: skip
            state_size = c.proj_size or c.hidden_size
        else:
            core_cls = GRU if c.cell == "gru" else RNN
            self.core = core_cls(
                core_input, c.hidden_size, c.num_layers, bidirectional=c.bidirectional, dropout=c.dropout
            )
            state_size = c.hidden_size
        self.directions = 2 if c.bidirectional else 1
        if c.pooling == "attention":  # score_t = v . tanh(W o_t + b), one number per step
            self.attention = nn.Sequential(
                nn.Linear(state_size * self.directions, c.attention_size), nn.Tanh(),
                nn.Linear(c.attention_size, 1, bias=False),
            )  # fmt: skip
        features = state_size * self.directions  # what the head reads: D*S, plus C with the convolutional branch
        if c.conv_branch:
            self.conv = nn.ModuleList()
            self.conv_norm = nn.ModuleList()
            channels_in = c.input_size
            for channels, kernel in zip(c.conv_channels, c.conv_kernels, strict=True):
                conv = nn.Conv1d(channels_in, channels, kernel)  # "same" padding is added in conv_features
                nn.init.kaiming_uniform_(conv.weight, nonlinearity="relu")  # the paper's he_uniform, zero bias
                nn.init.zeros_(conv.bias)
                self.conv.append(conv)
                self.conv_norm.append(nn.BatchNorm1d(channels))
                channels_in = channels
            features += c.conv_channels[-1]
        self.pooled_dropout = nn.Dropout(c.pooled_dropout)  # the recurrent vector alone; identity at 0.0 / in eval
        self.head_dropout = nn.Dropout(c.head_dropout)  # identity at 0.0 and in eval mode; holds no parameters
        self.head = nn.Linear(features, c.output_size)

    def forward(self, x: Tensor, state=None, lengths: Tensor | None = None, *, record: bool = False):
        """Returns ``(y, state)``, or ``(y, state, h_steps)`` with record=True (h_steps of the top layer, forward
        direction, for gradient-flow pictures; plus the LSTM trace as ``self.last_trace``)."""
        # fmt: off
        x_core, core_lengths = self.core_input(x, lengths)                             # (B, T, I) or (B, I, T)
        result = (self.core(x_core, state, core_lengths, record=record) if record
                  else self.core(x_core, state, core_lengths))
        output, new_state = result[0], result[1]                                       # (B, T, D*S)
        h_steps = None
        if record:
            extra = result[2]
            self.last_trace = extra if self.config.cell == "lstm" else None
            h_steps = (extra.h_steps if self.config.cell == "lstm" else extra)[-1][0]
        if self.config.readout == "all":
            y = self.head(self.head_dropout(output))                                   # (B, T, O)
            return (y, new_state, h_steps) if record else (y, new_state)
        if self.config.pooling == "last":
            h_n = new_state[0] if isinstance(new_state, tuple) else new_state          # (L*D, B, S)
            pooled = h_n[-self.directions:].transpose(0, 1).reshape(x.shape[0], -1)    # (B, D*S)
        else:
            pooled, _ = self.pool(output, core_lengths)                                # (B, D*S)
        pooled = self.pooled_dropout(pooled)                                           # (B, D*S)
        if self.config.conv_branch:
            pooled = torch.cat([pooled, self.conv_features(x, lengths)], dim=1)        # (B, D*S + C)
        y = self.head(self.head_dropout(pooled))                                       # (B, O)
        # fmt: on
        return (y, new_state, h_steps) if record else (y, new_state)

    def core_input(self, x: Tensor, lengths: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        """What the recurrent core reads: ``(x, lengths)`` unchanged, or with ``dimension_shuffle`` the series
        transposed, ``(x (B, I, T), None)``: I steps of T features, every step valid.

        Raises:
            ValueError: with ``dimension_shuffle``, if x does not have exactly ``shuffle_length`` steps or ``lengths``
                marks a series shorter than that (the shuffle needs equal-length series).
        """
        c = self.config
        if not c.dimension_shuffle:
            return x, lengths
        T = x.shape[1]
        if T != c.shuffle_length or (lengths is not None and bool((lengths != T).any())):
            got = f"{T}" if lengths is None else f"{sorted(set(lengths.tolist()))[:5]} (padded to {T})"
            raise ValueError(
                f"This model reads each series transposed (dimension_shuffle), so every series needs exactly the "
                f"{c.shuffle_length} steps it was trained on, got lengths {got}; resample or crop the series to "
                f"{c.shuffle_length} steps, or train without the dimension shuffle."
            )
        return x.transpose(1, 2), None  # (B, I, T)

    def conv_features(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        """The convolutional branch of LSTM-FCN (``conv_branch=True``): one vector per sequence.

        Each block is Conv1d over the steps (kernel ``conv_kernels[k]``, ``conv_channels[k]`` filters, "same" zero
        padding: (k - 1) // 2 steps before, k // 2 after) -> BatchNorm1d -> ReLU; the last block's output is averaged
        over each sequence's valid steps (global average pooling). The paper's sizes are the defaults: 128, 256, 128
        filters of 8, 5, 3 steps.

        Variable lengths: the steps past each sequence's end are set to 0 before every convolution, which is exactly
        the zero padding "same" gives that sequence read alone, and BatchNorm's batch statistics (training) are taken
        over the valid steps only. So padding never changes a sequence's vector: a padded batch gives what each
        sequence gives alone (in eval mode exactly; in training the statistics are those of the batch's valid steps).

        The paper's LSTM branch reads the series transposed (one step of T features, the "dimension shuffle") with
        dropout 0.8 after it: here that is ``dimension_shuffle=True`` with ``pooled_dropout=0.8`` (see
        :meth:`core_input`); without them the recurrent branch is this model's own core reading one step at a time
        with its pooling. ``head_dropout`` (if any) acts on the concatenated vector.

        Args:
            x: (B, T, I), the same input as the core.
            lengths: (B,) valid steps per sequence, or None when every sequence fills T.

        Returns:
            (B, C), C = conv_channels[-1].
        """
        if not self.config.conv_branch:
            raise ValueError("This model has no convolutional branch; build it with ModelConfig(conv_branch=True).")
        # fmt: off
        T = x.shape[1]
        valid = None
        if lengths is not None:
            valid = torch.arange(T, device=x.device)[None, :] < lengths.to(x.device)[:, None]  # (B, T)
            x = x.masked_fill(~valid.unsqueeze(-1), 0.0)                                     # (B, T, I)
        h = x.transpose(1, 2)                                                                # (B, I, T)
        for conv, norm in zip(self.conv, self.conv_norm, strict=True):
            k = conv.kernel_size[0]  # "same": (k - 1) // 2 zeros before, k // 2 after, as torch's padding="same"
            h = conv(F.pad(h, ((k - 1) // 2, k // 2)))                                       # (B, C_k, T)
            if valid is None:
                h = torch.relu(norm(h))                                                      # (B, C_k, T)
            else:  # statistics over the valid steps only, and the padding back to 0 for the next convolution
                steps = h.transpose(1, 2)                                                    # (B, T, C_k)
                out = steps.new_zeros(steps.shape)
                out[valid] = torch.relu(norm(steps[valid]))                                  # (N_valid, C_k)
                h = out.transpose(1, 2)                                                      # (B, C_k, T)
        if valid is None:
            return h.mean(2)                                                                 # (B, C)
        return h.sum(2) / lengths.to(h)[:, None]                                             # (B, C)
        # fmt: on

    def pool(self, output: Tensor, lengths: Tensor | None) -> tuple[Tensor, Tensor | None]:
        """Pool the core's outputs over each sequence's valid steps (pooling "mean", "max" or "attention").

        Returns ``(pooled (B, D*S), weights (B, T) or None)``: the attention weights, which sum to 1 over each
        sequence's valid steps and are exactly 0 on padding; None for "mean" and "max".
        """
        # fmt: off
        B, T = output.shape[0], output.shape[1]
        if lengths is None:
            valid = torch.ones(B, T, dtype=torch.bool, device=output.device)            # (B, T)
        else:
            steps = torch.arange(T, device=output.device)
            valid = steps[None, :] < lengths.to(output.device)[:, None]                # (B, T)
        pooling = self.config.pooling
        if pooling == "mean":
            mask = valid.unsqueeze(-1).to(output.dtype)                                # (B, T, 1)
            return (output * mask).sum(1) / mask.sum(1), None                          # (B, D*S)
        if pooling == "max":
            masked = output.masked_fill(~valid.unsqueeze(-1), float("-inf"))            # (B, T, D*S)
            return masked.amax(1), None                                                # (B, D*S)
        if pooling == "attention":
            scores = self.attention(output).squeeze(-1)                                # (B, T)
            scores = scores.masked_fill(~valid, float("-inf"))
            weights = torch.softmax(scores, dim=1)                                     # (B, T), 0 on padding
            return torch.einsum("bt,btd->bd", weights, output), weights               # (B, D*S)
        # fmt: on
        raise ValueError(f"SequenceModel.pool: pooling {pooling!r} has nothing to pool; it reads the last state.")

    @torch.no_grad()
    def attention_weights(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        """The attention weights (B, T) of pooling="attention" for ``x`` (B, T, I): 0 past each sequence's end."""
        if self.config.pooling != "attention":
            raise ValueError(
                f"This model pools with {self.config.pooling!r}, so it has no attention weights; "
                "train it with pooling='attention'."
            )
        x_core, core_lengths = self.core_input(x, lengths)  # with dimension_shuffle: weights over the channels
        output = self.core(x_core, None, core_lengths)[0]  # (B, T, D*S)
        return self.pool(output, core_lengths)[1]

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())


def build(config: ModelConfig) -> SequenceModel:
    """A fresh model for ``config`` (seed torch first for repeatable weights)."""
    return SequenceModel(config)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@torch.no_grad()
def predict_batches(model: nn.Module, x: Tensor, batch_size: int = 1024) -> Tensor:
    """Run ``model`` over ``x`` in batches in eval mode; returns the concatenated outputs."""
    was_training = model.training
    model.eval()
    try:
        outs = [model(x[i : i + batch_size])[0] for i in range(0, x.shape[0], batch_size)]
    finally:
        model.train(was_training)
    return torch.cat(outs)
