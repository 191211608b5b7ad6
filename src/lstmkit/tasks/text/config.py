"""The configs of the text tasks: each a task config with a ``net`` and a ``train`` section (light: no torch, so the
command line reads them to build its options without loading a model)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from ...config import ConfigError, StrictConfig, TrainConfig

__all__ = [
    "LanguageModelConfig", "LanguageModelNet", "LanguageModelTrain",
    "Seq2SeqConfig", "Seq2SeqNetConfig", "Seq2SeqTrain",
    "TextClassifierConfig", "TextClassifierNet", "TextClassifierTrain",
]  # fmt: skip


@dataclass(frozen=True)
class LanguageModelNet(StrictConfig):
    """The network of a language model: embedding, stacked LSTM (with the engine's variants), decoder."""

    embedding_size: int = 128
    # None (both): chosen by fit from the time budget, this machine's measured speed and the corpus size (the largest
    # of lstmkit.tasks.text.language.SIZES that trains on enough tokens per parameter); config.json records the sizes
    # chosen. Give either to set the size by hand (the other then defaults to 512 units / 2 layers).
    hidden_size: int | None = None
    num_layers: int | None = None
    dropout: float = 0.2  # between stacked layers and before the decoder
    recurrent_dropout: float = 0.0  # the engine's variants, as in lstmkit.nn.LSTM
    zoneout: float = 0.0
    layer_norm: bool = False
    proj_size: int = 0
    tie_weights: bool = False  # decoder weight = embedding weight; needs embedding_size == output size

    @property
    def output_size(self) -> int:
        return self.proj_size or self.hidden_size or 0

    @property
    def sized(self) -> bool:
        """Whether the sizes are set (by hand, or by fit's choice); otherwise fit chooses them."""
        return self.hidden_size is not None and self.num_layers is not None

    def validate(self) -> None:
        for name in ("embedding_size", "hidden_size", "num_layers"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ConfigError(f"LanguageModelConfig.{name} must be at least 1, got {getattr(self, name)}.")
        if self.tie_weights and self.output_size and self.embedding_size != self.output_size:
            raise ConfigError(
                f"tie_weights needs embedding_size ({self.embedding_size}) equal to the LSTM's output size "
                f"({self.output_size}); set embedding_size={self.output_size} or proj_size={self.embedding_size}."
            )
        if not 0 <= self.dropout < 1:
            raise ConfigError(f"LanguageModelConfig.dropout must lie in [0, 1), got {self.dropout}.")


@dataclass(frozen=True)
class LanguageModelTrain(TrainConfig):
    """Training of a language model: the defaults it changes from :class:`~lstmkit.config.TrainConfig`.

    ``batch_size`` is the number of parallel token streams (char-rnn style: the state flows from batch to batch);
    ``max_steps`` ends the cosine schedule there; None with a time budget: the steps the measured speed fits into
    ``max_minutes`` (so the schedule ends as the budget does)."""

    batch_size: int = 64
    lr: float = 2e-3
    schedule: Literal["constant", "cosine", "step", "plateau"] = "cosine"
    carry_state_across_batches: bool = True
    # the whole fit, the size probe included; the model size and the steps are chosen to fit it (issue 20: a default
    # 2x512 trained 8 minutes saw under one pass of a few-MB corpus and lost to a 5-gram)
    max_minutes: float | None = 5.0
    log_every_steps: int | None = 100


@dataclass(frozen=True)
class LanguageModelConfig(StrictConfig):
    """Tokenisation and truncated BPTT of a language model, its network (``net``) and its training (``train``).

    Flat keyword names are read into the sections by :meth:`from_dict` (``from_dict({"hidden_size": 64,
    "epochs": 2})``), as saved runs of older versions hold them."""

    level: Literal["char", "word", "bpe"] = "char"
    vocab_size: int | None = None  # word: the most frequent N words (default 20,000); bpe: merges' target (2,000)
    bptt: int = 100  # truncated-BPTT length: tokens per chunk
    val_fraction: float = 0.05  # the held-out tail of the corpus: validation, then test
    test_fraction: float = 0.05
    net: LanguageModelNet = field(default_factory=LanguageModelNet)
    train: LanguageModelTrain = field(default_factory=LanguageModelTrain)

    def validate(self) -> None:
        if self.bptt < 1:
            raise ConfigError(f"LanguageModelConfig.bptt must be at least 1, got {self.bptt}.")
        if not (0 <= self.val_fraction < 0.5 and 0 <= self.test_fraction < 0.5):
            raise ConfigError("val_fraction and test_fraction must each lie in [0, 0.5).")
        if self.vocab_size is not None and self.vocab_size < 2:
            raise ConfigError(f"LanguageModelConfig.vocab_size must be at least 2 (or None), got {self.vocab_size}.")


@dataclass(frozen=True)
class Seq2SeqNetConfig(StrictConfig):
    """The network of a sequence-to-sequence model: embeddings, encoder, attention, decoder."""

    RENAMED: ClassVar[Mapping[str, tuple[str, Any]]] = {"encoder_layers": ("num_layers", None)}

    embedding_size: int = 64
    hidden_size: int = 128
    num_layers: int = 1  # the encoder's layers
    decoder_layers: int | None = 1  # the decoder's (1, as in 0.1); None: as many as the encoder's
    bidirectional: bool = True  # the encoder
    attention: Literal["bahdanau", "luong", "none"] = "bahdanau"
    attention_size: int = 128
    dropout: float = 0.1

    def validate(self) -> None:
        for name in ("embedding_size", "hidden_size", "num_layers"):
            if getattr(self, name) < 1:
                raise ConfigError(f"Seq2SeqConfig.{name} must be at least 1, got {getattr(self, name)}.")
        if self.decoder_layers is not None and self.decoder_layers < 1:
            raise ConfigError(f"Seq2SeqConfig.decoder_layers must be at least 1 (or None), got {self.decoder_layers}.")
        if not 0 <= self.dropout < 1:
            raise ConfigError(f"Seq2SeqConfig.dropout must lie in [0, 1), got {self.dropout}.")


@dataclass(frozen=True)
class Seq2SeqTrain(TrainConfig):
    """Training of a sequence-to-sequence model: the defaults it changes from :class:`~lstmkit.config.TrainConfig`."""

    epochs: int = 20
    batch_size: int = 64
    lr: float = 2e-3
    max_minutes: float | None = 60.0  # the recorded verse translation trained for 40


@dataclass(frozen=True)
class Seq2SeqConfig(StrictConfig):
    """Tokenisation, scheduled sampling and decoding of a sequence-to-sequence model, its network (``net``) and its
    training (``train``). Flat names (``hidden_size=64, epochs=5``) are read into the sections by :meth:`from_dict`."""

    source_level: Literal["char", "word", "space", "bpe"] = "space"
    target_level: Literal["char", "word", "space", "bpe"] = "space"
    vocab_size: int | None = None  # per side: word/space vocabulary or BPE size
    sampling_max: float = 0.25  # scheduled sampling: the largest share of fed-back model tokens, reached at the end
    max_output_ratio: float = 3.0  # decoding stops at ratio x source tokens + 10 if no end token came
    net: Seq2SeqNetConfig = field(default_factory=Seq2SeqNetConfig)
    train: Seq2SeqTrain = field(default_factory=Seq2SeqTrain)

    def validate(self) -> None:
        if not 0 <= self.sampling_max <= 1:
            raise ConfigError(f"Seq2SeqConfig.sampling_max must lie in [0, 1], got {self.sampling_max}.")


@dataclass(frozen=True)
class TextClassifierNet(StrictConfig):
    """The network of a text classifier: embedding, dropout, the recurrent core, pooling over the valid steps."""

    embedding_size: int = 128
    hidden_size: int = 128
    num_layers: int = 1
    bidirectional: bool = True
    dropout: float = 0.3  # on the embeddings, and between stacked layers
    pooling: Literal["max", "mean", "attention", "last"] = "max"

    def validate(self) -> None:
        for name in ("embedding_size", "hidden_size", "num_layers"):
            if getattr(self, name) < 1:
                raise ConfigError(f"TextClassifierConfig.{name} must be at least 1, got {getattr(self, name)}.")
        if not 0 <= self.dropout < 1:
            raise ConfigError(f"TextClassifierConfig.dropout must lie in [0, 1), got {self.dropout}.")


@dataclass(frozen=True)
class TextClassifierTrain(TrainConfig):
    """Training of a text classifier: the defaults it changes from :class:`~lstmkit.config.TrainConfig`. The
    validation texts' accuracy is watched: ``early_stopping_patience`` epochs without a better one stop training
    (the best epoch's weights are kept)."""

    RENAMED: ClassVar[Mapping[str, tuple[str, Any]]] = {
        **TrainConfig.RENAMED, "patience": ("early_stopping_patience", None),
    }  # fmt: skip

    epochs: int = 5
    batch_size: int = 64
    lr: float = 2e-3
    early_stopping_patience: int | None = 2
    monitor: str = "val_accuracy"
    monitor_mode: Literal["min", "max"] = "max"
    max_minutes: float | None = 60.0  # the recorded IMDB run trained for 16


@dataclass(frozen=True)
class TextClassifierConfig(StrictConfig):
    """Tokens, class weights and validation share of a text classifier, its network (``net``) and its training
    (``train``). Flat names (``hidden_size=64, epochs=5``) are read into the sections by :meth:`from_dict`."""

    level: Literal["word", "bpe"] = "word"
    vocab_size: int = 20000  # the most frequent words kept (or BPE's target size); the rest map to <unk>
    lowercase: bool = True  # lower-case words before counting them
    max_length: int = 400  # tokens read per text (its first ones)
    class_weight: Literal["balanced"] | dict[Any, float] | None = None  # "balanced": inverse to class frequency
    validation_fraction: float = 0.1  # of the training texts, scored each epoch for early stopping
    # "auto": a TF-IDF logistic regression is fitted beside the LSTM and their probabilities averaged with the weight
    # that scores best on the validation texts (the LSTM alone, the bag of words alone, or a mix); "never": the LSTM
    # alone. See TextClassifier.fit.
    bag_of_words: Literal["auto", "never"] = "auto"
    net: TextClassifierNet = field(default_factory=TextClassifierNet)
    train: TextClassifierTrain = field(default_factory=TextClassifierTrain)

    def validate(self) -> None:
        if self.max_length < 1:
            raise ConfigError(f"max_length must be at least 1 token, got {self.max_length}.")
        if not 0 <= self.validation_fraction < 0.5:
            raise ConfigError(f"validation_fraction must lie in [0, 0.5), got {self.validation_fraction}.")
