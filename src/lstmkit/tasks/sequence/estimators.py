"""Array estimators in the scikit-learn convention: ``SequenceRegressor`` and ``SequenceClassifier``.

The Keras example people copy (an LSTM of 50 units on (10, 1) inputs, a dense output, Adam, MSE, 10 epochs,
batch 16) is, here::

    import lstmkit
    model = lstmkit.SequenceRegressor(hidden_size=50, epochs=10, batch_size=16).fit(X, y)
    y_pred = model.predict(X_test)

``X`` is (N, T, F) (or (N, T) for one feature), or a list of N arrays (T_i, F) (or (T_i,)) when the sequences'
lengths differ: they are right-padded into one (N, T_max, F) batch and the model reads each sequence only up to its
own length (the engine's ``lengths`` path), so padding never changes a prediction. ``y`` is (N,) or (N, K) for the
regressor and (N,) class labels (any hashable values) for the classifier.

Series classification (the classifier's defaults): each channel is standardised with the mean and standard deviation
of the *training* sequences' valid steps (``normalize=True``; saved with the model and reused at predict time, never
refitted on new data), a sequence is summarised by ``pooling`` ("last", "mean", "max" or "attention", see
:mod:`lstmkit.tasks.sequence.model`), and ``class_weight="balanced"`` weights the cross-entropy against imbalance.

Both follow scikit-learn's estimator contract (``get_params`` / ``set_params``, ``sklearn.base.clone``, ``fit``
returns self, :class:`NotFittedError` before ``fit``, fitted attributes ending in ``_``; checked against
``sklearn.utils.estimator_checks`` by tests/tasks/test_sklearn_checks.py) without importing scikit-learn.
"""

from __future__ import annotations

import json
import warnings
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ... import runs
from .base import NotFittedError, SequenceEstimator
from .config import CLASSIFIER_MIN_STEPS, SequenceNet
from .scores import classification_scores

__all__ = [
    "CLASSIFIER_KIND",
    "REGRESSOR_KIND",
    "NotFittedError",
    "SequenceClassifier",
    "SequenceEstimator",
    "SequenceRegressor",
    "UnderfitWarning",
    "classification_scores",
]

REGRESSOR_KIND = "sequence_regressor"
CLASSIFIER_KIND = "sequence_classifier"


@runs.register_kind(REGRESSOR_KIND)
class SequenceRegressor(SequenceEstimator):
    """Predict one or more numbers per sequence (MSE loss), from its last step by default. ``score`` is R^2."""

    _kind = REGRESSOR_KIND
    _estimator_type = "regressor"

    def _prepare_targets(self, y: Any, n: int) -> tuple[Tensor, int]:
        arr = np.asarray(y, dtype=np.float32)
        if arr.ndim == 1:
            arr = arr[:, None]
        if arr.ndim != 2 or arr.shape[0] != n:
            raise ValueError(f"y must be shaped (N,) or (N, K) with N = {n} samples like X, got shape {arr.shape}.")
        if not np.isfinite(arr).all():
            raise ValueError("y contains NaN or infinite values; drop those samples before fitting.")
        self.output_ndim_ = 1 if np.asarray(y).ndim == 1 else 2
        return torch.from_numpy(arr), arr.shape[1]

    def _loss(self, pred: Tensor, y: Tensor) -> Tensor:
        return F.mse_loss(pred, y)

    def _extra_state(self) -> dict[str, Any]:
        return {"output_ndim": self.output_ndim_}

    def _restore_extra(self, state: dict[str, Any]) -> None:
        self.output_ndim_ = state["output_ndim"]

    def predict(self, X: Any) -> np.ndarray:
        """(N,) or (N, K) predictions, matching the shape of the ``y`` given to fit."""
        pred = self._raw_predict(X).numpy()
        return pred[:, 0] if self.output_ndim_ == 1 else pred

    def score(self, X: Any, y: Any) -> float:
        """Coefficient of determination R^2 (1 is perfect, 0 is predicting the mean)."""
        y_pred = np.asarray(self.predict(X), dtype=np.float64).reshape(len(X), -1)
        y_true = np.asarray(y, dtype=np.float64).reshape(len(X), -1)
        ss_res = ((y_true - y_pred) ** 2).sum()
        ss_tot = ((y_true - y_true.mean(axis=0)) ** 2).sum()
        return float(1.0 - ss_res / ss_tot) if ss_tot > 0 else 0.0


class UnderfitWarning(UserWarning):
    """A classifier ended its training no better on its own training data than a constant guess."""


@runs.register_kind(CLASSIFIER_KIND)
class SequenceClassifier(SequenceEstimator):
    """Predict a class per sequence (cross-entropy loss). ``score`` is accuracy; ``evaluate`` gives accuracy,
    balanced accuracy, macro-F1 and the confusion matrix.

    Args (beyond the shared ones, see :class:`SequenceRegressor`):
        pooling: how a sequence's steps become one vector for the head: "last" (its last valid step; both
            directions' final states when bidirectional), "mean", "max" or "attention" (a learned score per step,
            softmax over the valid steps; the weights come back from :meth:`predict_attention`).
        head_dropout: dropout on the pooled vector before the linear head, in training only (0.0: none, as before
            this option existed).
        conv_branch: LSTM-FCN (Karim et al. 2017): a fully convolutional branch (Conv1d -> BatchNorm -> ReLU, 128 /
            256 / 128 filters of 8 / 5 / 3 steps, averaged over each series' valid steps) beside the LSTM, its vector
            concatenated with the pooled one before the head (see
            :meth:`lstmkit.tasks.sequence.model.SequenceModel.conv_features`). False: the plain recurrent classifier.
        dimension_shuffle: LSTM-FCN's "dimension shuffle": the LSTM reads each series transposed, a series of T steps
            and F channels as F steps of T features (the convolutional branch still reads it step by step). Needs
            equal-length series; T is fixed at fit time (``model_config_.shuffle_length``). False: step by step.
        pooled_dropout: dropout on the LSTM's pooled vector alone, before the convolutional branch's vector joins it
            (LSTM-FCN's 0.8), in training only; 0.0: none.
        weight_decay: the optimizer's weight decay (L2 for "adam", decoupled for "adamw"); 0.0: none.
        normalize: standardise each channel with the mean and standard deviation of the training data's valid
            steps (saved with the model, applied unchanged to new data).
        class_weight: None (every sample counts the same), "balanced" (class k weighs N / (K * N_k) over the
            training rows, scikit-learn's rule) or a dict label -> weight covering every class. The loss is then
            ``sum_i w[y_i] * CE_i / sum_i w[y_i]`` over a batch (``torch.nn.functional.cross_entropy`` with weight).
        epochs: passes over the training series; None (the default): as many whole epochs as make ``min_steps``
            optimiser steps, so a few dozen series train as long as a few thousand do (a fixed epoch count gives
            36 series 2 steps an epoch). The regressor's is 10.
        min_steps: the training length in optimiser steps when ``epochs`` is None: 300 by default
            (:data:`lstmkit.tasks.sequence.config.CLASSIFIER_MIN_STEPS`, also the CLI's), chosen on hold-outs of the
            bundled training splits; ``max_minutes`` still ends a fit that would run longer.

    The defaults that differ from the regressor's (``normalize``, ``epochs``, ``min_steps``) and ``class_weight``
    are the only parameters this class declares; the rest are :class:`SequenceRegressor`'s, in one signature.

    Example:
        >>> import numpy as np, lstmkit
        >>> X = [np.random.randn(n, 2) for n in (5, 9, 7, 12)]          # four series of different lengths
        >>> clf = lstmkit.SequenceClassifier(hidden_size=8, epochs=2, pooling="attention", progress=False)
        >>> clf.fit(X, ["a", "b", "a", "b"]).predict_attention(X).shape  # (N, T_max), 0 past each end
        (4, 12)
    """

    _kind = CLASSIFIER_KIND
    _estimator_type = "classifier"

    def __init__(
        self,
        hidden_size: int = SequenceNet.hidden_size,
        *,
        normalize: bool = True,
        class_weight: None | Literal["balanced"] | dict[Any, float] = None,
        epochs: int | None = None,
        min_steps: int = CLASSIFIER_MIN_STEPS,
        **shared: Any,
    ) -> None:
        # only what differs from the shared parameters (see SequenceEstimator); the signature users see is merged
        super().__init__(hidden_size, normalize=normalize, epochs=epochs, min_steps=min_steps, **shared)
        self.class_weight = class_weight

    def fit(self, X: Any, y: Any, run_dir: Any = None, *, resume: bool = False) -> SequenceClassifier:
        """Train on ``X`` and the class labels ``y`` (see :meth:`SequenceEstimator.fit`); returns ``self``.

        After training, the accuracy on the training series themselves is compared with a constant guess of the
        most frequent class: when it stays within a tenth of the way from that guess to perfect, an
        :class:`UnderfitWarning` says so (the model did not fit its own training data), and ``fit_warnings_``
        keeps the sentence for the run's result.
        """
        super().fit(X, y, run_dir, resume=resume)
        self.fit_warnings_: list[str] = []
        labels = np.asarray(y)
        majority = float(np.unique(labels, return_counts=True)[1].max() / len(labels))
        train_accuracy = float(self.score(X, y))
        if train_accuracy < majority + 0.1 * (1.0 - majority):
            message = (
                f"training accuracy {train_accuracy:.3f} stayed near chance (always guessing the most frequent class "
                f"scores {majority:.3f}): the model did not fit its own training data. Train longer (min_steps, or "
                "epochs), with a larger learning rate (lr), or add the convolutional branch (conv_branch=True)."
            )
            self.fit_warnings_.append(message)
            warnings.warn(message, UnderfitWarning, stacklevel=2)
        return self

    def _validate_params(self) -> None:
        super()._validate_params()
        if not (self.class_weight is None or self.class_weight == "balanced" or isinstance(self.class_weight, dict)):
            raise ValueError(
                f"class_weight must be None, 'balanced' or a dict label -> weight, got {self.class_weight!r}."
            )

    def _prepare_targets(self, y: Any, n: int) -> tuple[Tensor, int]:
        labels = np.asarray(y)
        if labels.ndim != 1 or labels.shape[0] != n:
            raise ValueError(f"y must be a 1-D array of N = {n} class labels, got shape {labels.shape}.")
        if labels.dtype.kind == "f" and np.isfinite(labels).all() and (labels != np.round(labels)).any():
            example = labels[labels != np.round(labels)][0].item()
            raise ValueError(
                f"y holds continuous values (such as {example!r}), not class labels; predict numbers with "
                "SequenceRegressor, or turn them into classes first."
            )
        self.classes_, codes = np.unique(labels, return_inverse=True)
        if len(self.classes_) < 2:
            only = self.classes_[:1].tolist()[0]
            raise ValueError(f"y holds one class only ({only!r}); a classifier needs at least two.")
        return torch.from_numpy(codes.astype(np.int64)), len(self.classes_)

    def _split(self, targets: Tensor, n_val: int) -> tuple[Tensor, Tensor]:
        """Stratified: each class gives about ``validation_split`` of its samples, and keeps at least one to train."""
        if n_val == 0:
            return torch.zeros(0, dtype=torch.long), torch.arange(targets.shape[0])
        generator = torch.Generator().manual_seed(self.seed)
        val, train = [], []
        for k in range(len(self.classes_)):
            members = torch.nonzero(targets == k).flatten()
            members = members[torch.randperm(len(members), generator=generator)]
            take = min(int(round(len(members) * self.validation_split)), len(members) - 1)
            val.append(members[:take])
            train.append(members[take:])
        return torch.cat(val), torch.cat(train)

    def _prepare_loss(self, train_targets: Tensor) -> None:
        K = len(self.classes_)
        if self.class_weight is None:
            self.class_weights_ = None
        elif self.class_weight == "balanced":
            counts = np.bincount(train_targets.numpy(), minlength=K).astype(np.float64)
            self.class_weights_ = np.where(counts > 0, counts.sum() / (K * np.maximum(counts, 1)), 0.0)
        else:
            given = {str(k): float(v) for k, v in self.class_weight.items()}
            missing = [c for c in self.classes_.tolist() if str(c) not in given]
            unknown = sorted(set(given) - {str(c) for c in self.classes_.tolist()})
            if missing or unknown:
                raise ValueError(
                    f"class_weight must give a weight for every class and only for them: missing {missing}, unknown "
                    f"{unknown}; the classes are {self.classes_.tolist()}."
                )
            if any(w < 0 or not np.isfinite(w) for w in given.values()):
                raise ValueError(f"class_weight values must be finite and non-negative, got {given}.")
            self.class_weights_ = np.array([given[str(c)] for c in self.classes_.tolist()])
        self._weight = None if self.class_weights_ is None else torch.tensor(self.class_weights_, dtype=torch.float32)

    def _loss(self, pred: Tensor, y: Tensor) -> Tensor:
        weight = getattr(self, "_weight", None)
        return F.cross_entropy(pred, y, weight=None if weight is None else weight.to(pred.device))

    def _metrics(self, pred: Tensor, y: Tensor) -> dict[str, Tensor]:
        return {"accuracy": (pred.argmax(dim=1) == y).float().mean()}

    def _jsonable_params(self) -> dict[str, Any]:
        params = self.get_params()
        if isinstance(self.class_weight, dict):  # JSON keys are strings; labels match by str() when refitting
            params["class_weight"] = {str(k): float(v) for k, v in self.class_weight.items()}
        return params

    def _extra_state(self) -> dict[str, Any]:
        state: dict[str, Any] = {"classes": json.loads(json.dumps(self.classes_.tolist()))}
        if self.class_weights_ is not None:
            state["class_weights"] = self.class_weights_.tolist()
        return state

    def _restore_extra(self, state: dict[str, Any]) -> None:
        self.classes_ = np.asarray(state["classes"])
        weights = state.get("class_weights")
        self.class_weights_ = None if weights is None else np.asarray(weights)

    def predict_proba(self, X: Any) -> np.ndarray:
        """(N, K) class probabilities, columns in the order of ``classes_``."""
        return torch.softmax(self._raw_predict(X), dim=-1).numpy()

    def predict(self, X: Any) -> np.ndarray:
        """(N,) predicted labels."""
        proba = self.predict_proba(X)  # first: before fit, it raises NotFittedError
        return self.classes_[proba.argmax(axis=1)]

    def predict_attention(self, X: Any) -> np.ndarray:
        """(N, T_max) attention weights of pooling="attention": each row sums to 1 over its sequence's steps and is
        0 past its end (T_max is the longest sequence of ``X``)."""
        model = self._check_fitted()
        if self.pooling != "attention":
            raise ValueError(
                f"This classifier pools with {self.pooling!r}, so it has no attention weights; fit one with "
                "pooling='attention'."
            )
        x, lengths = self._inputs(X)
        parts = []
        for i in range(0, x.shape[0], 1024):
            lb = None if lengths is None else lengths[i : i + 1024]
            parts.append(model.attention_weights(x[i : i + 1024], lb))
        return torch.cat(parts).numpy()

    def score(self, X: Any, y: Any) -> float:
        """Accuracy."""
        return float((self.predict(X) == np.asarray(y)).mean())

    def evaluate(self, X: Any, y: Any) -> dict[str, Any]:
        """Accuracy, balanced accuracy, macro-F1 and the confusion matrix (rows: true, columns: predicted, in the
        order of ``classes``) of the predictions for ``X`` against the labels ``y``.

        Raises:
            ValueError: if ``y`` does not hold one label per sequence, or holds a label the model never saw.
        """
        self._check_fitted()
        labels = np.asarray(y)
        n = len(X)
        if labels.ndim != 1 or labels.shape[0] != n:
            raise ValueError(f"y must be a 1-D array of N = {n} class labels, got shape {labels.shape}.")
        known = set(self.classes_.tolist())
        unseen = sorted({str(v) for v in labels.tolist() if v not in known})
        if unseen:
            raise ValueError(
                f"The labels include {', '.join(unseen[:5])}, which the model never saw in training (its classes: "
                f"{', '.join(map(str, self.classes_.tolist()))}); evaluate on data with the training classes."
            )
        return classification_scores(labels, self.predict(X), self.classes_)
