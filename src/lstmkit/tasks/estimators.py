"""Array estimators in the scikit-learn convention: ``SequenceRegressor`` and ``SequenceClassifier``.

The Keras example people copy (an LSTM of 50 units on (10, 1) inputs, a dense output, Adam, MSE, 10 epochs,
batch 16) is, here::

    import lstmkit
    model = lstmkit.SequenceRegressor(hidden_size=50, epochs=10, batch_size=16).fit(X, y)
    y_pred = model.predict(X_test)

``X`` is (N, T, F) (or (N, T) for one feature); ``y`` is (N,) or (N, K) for the regressor and (N,) class labels
(any hashable values) for the classifier.
"""

from __future__ import annotations

import abc
import json
import os
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from .. import runs
from ..config import TrainConfig
from ..train import StepOutput, Trainer, seed_everything
from .sequence_model import ModelConfig, SequenceModel, predict_batches

REGRESSOR_KIND = "sequence_regressor"
CLASSIFIER_KIND = "sequence_classifier"


def _as_sequences(X: Any, name: str = "X") -> np.ndarray:
    """(N, T, F) float32 from an array-like; (N, T) becomes (N, T, 1)."""
    try:
        arr = np.asarray(X, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be numeric, shaped (N, T, F) or (N, T); it could not be read: {exc}") from None
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.ndim != 3:
        raise ValueError(
            f"{name} must be shaped (samples N, time steps T, features F) or (N, T), got {arr.ndim} dimensions "
            f"with shape {arr.shape}."
        )
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"{name} has no samples or no time steps (shape {arr.shape}).")
    if not np.isfinite(arr).all():
        bad = np.argwhere(~np.isfinite(arr))[0]
        raise ValueError(
            f"{name} contains NaN or infinite values (the first at sample {bad[0]}, step {bad[1]}, feature {bad[2]}); "
            "impute or drop them before fitting."
        )
    return arr


class _ShuffledBatches:
    """Shuffled mini-batches by slicing whole tensors: no per-sample indexing and collation as in a DataLoader,
    which costs as much as the model itself at the estimators' small sizes. Re-iterable, one pass per epoch."""

    def __init__(self, x: Tensor, y: Tensor, batch_size: int, seed: int) -> None:
        self.x, self.y, self.batch_size = x, y, batch_size
        self.generator = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        return -(-self.x.shape[0] // self.batch_size)

    def state_dict(self) -> dict[str, Tensor]:
        """The shuffling generator's state: checkpointed at each epoch start so a resumed fit shuffles the same."""
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        self.generator.set_state(state["generator"])

    def __iter__(self):
        order = torch.randperm(self.x.shape[0], generator=self.generator)
        for start in range(0, self.x.shape[0], self.batch_size):
            index = order[start : start + self.batch_size]
            yield self.x[index], self.y[index]


class _SequenceEstimator(abc.ABC):
    """Shared fit / predict / save / load plumbing. Subclasses name the loss, the targets and the score."""

    _kind: str

    def __init__(
        self,
        hidden_size: int = 64,
        *,
        num_layers: int = 1,
        cell: Literal["lstm", "gru", "rnn"] = "lstm",
        bidirectional: bool = False,
        dropout: float = 0.0,
        epochs: int = 10,
        batch_size: int = 32,
        lr: float = 1e-3,
        optimizer: Literal["adam", "adamw", "sgd", "rmsprop"] = "adam",
        clip_grad_norm: float | None = None,
        validation_split: float = 0.0,
        early_stopping_patience: int | None = None,
        seed: int = 0,
        progress: bool = True,
    ) -> None:
        if not 0.0 <= validation_split < 1.0:
            raise ValueError(f"validation_split must be in [0, 1), got {validation_split}.")
        self.hidden_size, self.num_layers, self.cell = hidden_size, num_layers, cell
        self.bidirectional, self.dropout = bidirectional, dropout
        self.epochs, self.batch_size, self.lr, self.optimizer = epochs, batch_size, lr, optimizer
        self.clip_grad_norm, self.validation_split = clip_grad_norm, validation_split
        self.early_stopping_patience, self.seed, self.progress = early_stopping_patience, seed, progress
        self.model_: SequenceModel | None = None
        self.history_: list[dict[str, Any]] = []

    # ---- hooks for subclasses ---------------------------------------------------------------------------------
    @abc.abstractmethod
    def _prepare_targets(self, y: Any, n: int) -> tuple[Tensor, int]:
        """Check ``y`` against N samples; return the target tensor and the model's output size."""

    @abc.abstractmethod
    def _loss(self, pred: Tensor, y: Tensor) -> Tensor:
        """The training loss of predictions (B, O) against targets."""

    @abc.abstractmethod
    def _extra_state(self) -> dict[str, Any]:
        """What the subclass saves beside the weights (e.g. class labels), JSON-ready."""

    @abc.abstractmethod
    def _restore_extra(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`_extra_state` saved."""

    # ---- public API --------------------------------------------------------------------------------------------
    def get_params(self) -> dict[str, Any]:
        """The constructor arguments (scikit-learn convention)."""
        names = (
            "hidden_size", "num_layers", "cell", "bidirectional", "dropout", "epochs", "batch_size", "lr",
            "optimizer", "clip_grad_norm", "validation_split", "early_stopping_patience", "seed", "progress",
        )  # fmt: skip
        return {name: getattr(self, name) for name in names}

    def fit(self, X: Any, y: Any, run_dir: str | os.PathLike[str] | None = None, *, resume: bool = False):
        """Train on ``X`` (N, T, F) and ``y``; returns ``self``.

        ``run_dir`` also writes metrics.csv and crash-safe checkpoints there; after a crash, ``fit(X, y, run_dir,
        resume=True)`` with the same data and parameters continues to the weights an uninterrupted fit gives.
        """
        x = torch.from_numpy(_as_sequences(X))
        targets, out_size = self._prepare_targets(y, x.shape[0])
        seed_everything(self.seed)
        self.input_size_ = x.shape[2]
        self.model_config_ = ModelConfig(
            input_size=x.shape[2], output_size=out_size, cell=self.cell, hidden_size=self.hidden_size,
            num_layers=self.num_layers, bidirectional=self.bidirectional, dropout=self.dropout,
        )  # fmt: skip
        self.model_ = SequenceModel(self.model_config_)
        n_val = int(round(x.shape[0] * self.validation_split))
        order = torch.randperm(x.shape[0], generator=torch.Generator().manual_seed(self.seed))
        val_idx, train_idx = order[:n_val], order[n_val:]
        loader = _ShuffledBatches(x[train_idx], targets[train_idx], self.batch_size, self.seed)
        val = None
        if n_val > 0:
            val = [(x[val_idx], targets[val_idx])]
        cfg = TrainConfig(
            epochs=self.epochs, batch_size=self.batch_size, lr=self.lr, optimizer=self.optimizer,
            clip_grad_norm=self.clip_grad_norm, early_stopping_patience=self.early_stopping_patience if val else None,
            seed=self.seed, progress=self.progress,
        )  # fmt: skip

        def loss_fn(model, batch, state):
            xb, yb = batch
            pred, _ = model(xb)
            return StepOutput(loss=self._loss(pred, yb), n_items=xb.shape[0])

        run_config = {k: v for k, v in self.get_params().items() if k != "progress"}
        trainer = Trainer(self.model_, loss_fn, cfg, run_dir=run_dir, run_config=run_config)
        self.history_ = trainer.fit(loader, val_data=val, resume=resume)
        self.model_.eval()
        return self

    def _check_fitted(self) -> SequenceModel:
        if self.model_ is None:
            raise RuntimeError(f"This {type(self).__name__} is not fitted yet: call fit(X, y) before predict or save.")
        return self.model_

    def _raw_predict(self, X: Any) -> Tensor:
        model = self._check_fitted()
        x = _as_sequences(X)
        if x.shape[2] != self.input_size_:
            raise ValueError(
                f"X has {x.shape[2]} features per step, but the model was fitted on {self.input_size_}; "
                "pass data shaped like the training data."
            )
        return predict_batches(model, torch.from_numpy(x))

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write a run directory: config.json (the estimator's and the model's config) and model.safetensors."""
        model = self._check_fitted()
        config = {"estimator": self.get_params(), "model": self.model_config_.to_dict(), **self._extra_state()}
        return runs.save_run(path, self._kind, config, model)

    @classmethod
    def load(cls, path: str | os.PathLike[str]):
        """Rebuild a fitted estimator from a directory written by :meth:`save`."""
        saved = runs.read_run_config(path)
        if saved["kind"] != cls._kind:
            raise ValueError(f"{path} holds a {saved['kind']!r} run, not a {cls._kind!r}; load it with lstmkit.load.")
        config = saved["config"]
        est = cls(**config["estimator"])
        est.model_config_ = ModelConfig.from_dict(config["model"])
        est.input_size_ = est.model_config_.input_size
        est.model_ = SequenceModel(est.model_config_)
        est.model_.load_state_dict(runs.read_state_dict(path))
        est.model_.eval()
        est._restore_extra(config)
        return est

    def __repr__(self) -> str:
        changed = {k: v for k, v in self.get_params().items() if v != type(self)().get_params()[k]}
        return f"{type(self).__name__}(" + ", ".join(f"{k}={v!r}" for k, v in changed.items()) + ")"


@runs.register_kind(REGRESSOR_KIND)
class SequenceRegressor(_SequenceEstimator):
    """Predict one or more numbers per sequence from its last step (MSE loss). ``score`` is R^2."""

    _kind = REGRESSOR_KIND

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
        y_true = np.asarray(y, dtype=np.float64).reshape(len(X), -1)
        y_pred = np.asarray(self.predict(X), dtype=np.float64).reshape(len(X), -1)
        ss_res = ((y_true - y_pred) ** 2).sum()
        ss_tot = ((y_true - y_true.mean(axis=0)) ** 2).sum()
        return float(1.0 - ss_res / ss_tot) if ss_tot > 0 else 0.0


@runs.register_kind(CLASSIFIER_KIND)
class SequenceClassifier(_SequenceEstimator):
    """Predict a class per sequence from its last step (cross-entropy loss). ``score`` is accuracy."""

    _kind = CLASSIFIER_KIND

    def _prepare_targets(self, y: Any, n: int) -> tuple[Tensor, int]:
        labels = np.asarray(y)
        if labels.ndim != 1 or labels.shape[0] != n:
            raise ValueError(f"y must be a 1-D array of N = {n} class labels, got shape {labels.shape}.")
        self.classes_, codes = np.unique(labels, return_inverse=True)
        if len(self.classes_) < 2:
            raise ValueError(f"y holds a single class ({self.classes_[0]!r}); a classifier needs at least two.")
        return torch.from_numpy(codes.astype(np.int64)), len(self.classes_)

    def _loss(self, pred: Tensor, y: Tensor) -> Tensor:
        return F.cross_entropy(pred, y)

    def _extra_state(self) -> dict[str, Any]:
        return {"classes": json.loads(json.dumps(self.classes_.tolist()))}

    def _restore_extra(self, state: dict[str, Any]) -> None:
        self.classes_ = np.asarray(state["classes"])

    def predict_proba(self, X: Any) -> np.ndarray:
        """(N, K) class probabilities, columns in the order of ``classes_``."""
        return torch.softmax(self._raw_predict(X), dim=-1).numpy()

    def predict(self, X: Any) -> np.ndarray:
        """(N,) predicted labels."""
        return self.classes_[self.predict_proba(X).argmax(axis=1)]

    def score(self, X: Any, y: Any) -> float:
        """Accuracy."""
        return float((self.predict(X) == np.asarray(y)).mean())
