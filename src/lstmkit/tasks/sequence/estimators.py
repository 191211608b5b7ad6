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

import abc
import inspect
import json
import os
import sys
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ... import runs
from ...config import CLASSIFIER_EPOCHS, TrainConfig
from ...data import SeededBatches
from ...train import GateStatistics, StepOutput, Trainer, seed_everything
from .model import ModelConfig, SequenceModel, predict_batches

REGRESSOR_KIND = "sequence_regressor"
CLASSIFIER_KIND = "sequence_classifier"


def _float32(X: Any, name: str, shape: str) -> np.ndarray:
    """``X`` as a float32 array; refuses what the conversion would misread (a sparse matrix; complex numbers, whose
    imaginary part it drops) and, with numpy's error class, what it cannot read (TypeError for a cell that is no
    number)."""
    if type(X).__module__.startswith("scipy.sparse"):
        raise TypeError(
            f"{name} is a sparse matrix; sparse input is not supported: pass a dense array ({name}.toarray())."
        )
    try:
        arr = np.asarray(X)
        if arr.dtype.kind == "c":
            raise ValueError("Complex data not supported")
        arr = arr.astype(np.float32, copy=False)
    except (TypeError, ValueError) as exc:
        error = TypeError if isinstance(exc, TypeError) else ValueError
        raise error(f"{name} must be real numbers, shaped {shape}; it could not be read: {exc}.") from None
    return arr if arr.flags.writeable else arr.copy()  # torch.from_numpy shares memory and refuses to own read-only


def _as_sequences(X: Any, name: str = "X") -> np.ndarray:
    """(N, T, F) float32 from an array-like; (N, T) becomes (N, T, 1)."""
    arr = _float32(X, name, "(N, T, F) or (N, T)")
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.ndim == 1:
        raise ValueError(
            f"{name} must be shaped (samples N, time steps T, features F) or (N, T), got one dimension with shape "
            f"{arr.shape}. Reshape your data: {name}[None] is one sequence of {arr.shape[0]} steps, {name}[:, None] "
            f"{arr.shape[0]} sequences of one step."
        )
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


def _as_ragged(X: Any, name: str = "X") -> tuple[np.ndarray, np.ndarray | None]:
    """``(x (N, T_max, F) float32, lengths (N,) int64 or None)`` from an array or a list of (T_i, F) / (T_i,) arrays.

    ``lengths`` is None when every sequence is full length (an array input, or a list of equal lengths). Padding
    is zeros after each sequence's end.
    """
    if isinstance(X, np.ndarray) or not isinstance(X, (list, tuple)) or not X:
        return _as_sequences(X, name), None
    if all(np.ndim(x) == np.ndim(X[0]) and np.shape(x) == np.shape(X[0]) for x in X):
        return _as_sequences(X, name), None  # equal lengths: one array
    seqs = []
    for i, x in enumerate(X):
        arr = _float32(x, f"{name}[{i}]", "(T, F) or (T,)")
        if arr.ndim == 1:
            arr = arr[:, None]
        if arr.ndim != 2 or arr.shape[0] == 0:
            raise ValueError(
                f"{name}[{i}] must be one sequence shaped (time steps T, features F) or (T,) with T >= 1, got shape "
                f"{arr.shape}."
            )
        if not np.isfinite(arr).all():
            bad = np.argwhere(~np.isfinite(arr))[0]
            raise ValueError(
                f"{name}[{i}] contains NaN or infinite values (the first at step {bad[0]}, feature {bad[1]}); impute "
                "or drop them before fitting."
            )
        seqs.append(arr)
    features = {a.shape[1] for a in seqs}
    if len(features) > 1:
        raise ValueError(
            f"The sequences of {name} have different numbers of features ({sorted(features)}); every sequence needs "
            "the same channels."
        )
    lengths = np.array([len(a) for a in seqs], dtype=np.int64)
    x = np.zeros((len(seqs), int(lengths.max()), seqs[0].shape[1]), dtype=np.float32)  # (N, T_max, F)
    for i, a in enumerate(seqs):
        x[i, : len(a)] = a
    return x, lengths


class _ShuffledBatches(SeededBatches):
    """Shuffled mini-batches by slicing whole tensors: no per-sample indexing and collation as in a DataLoader,
    which costs as much as the model itself at the estimators' small sizes. Re-iterable, one pass per epoch, with
    its own generator (exact resume)."""

    def __init__(self, x: Tensor, y: Tensor, batch_size: int, seed: int, lengths: Tensor | None = None) -> None:
        super().__init__(x, y, batch_size=batch_size, seed=seed)
        self.x, self.y, self.lengths = x, y, lengths

    def collate(self, index: Tensor) -> tuple[Tensor, ...]:
        if self.lengths is None:
            return self.x[index], self.y[index]
        lengths = self.lengths[index]  # ragged: cut the batch to its longest sequence, so it runs over less padding
        return self.x[index, : int(lengths.max())], self.y[index], lengths


_POOLINGS = ("last", "mean", "max", "attention")


def _fit_scaler(x: np.ndarray, lengths: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and standard deviation (F,) over the valid steps of ``x`` (N, T, F); a constant channel gets
    a standard deviation of 1 (it is only centred)."""
    # fmt: off
    valid = _valid_mask(x, lengths)                                                    # (N, T, 1)
    count = valid.sum()
    mean = (x * valid).sum(axis=(0, 1), dtype=np.float64) / count                     # (F,)
    var = (((x - mean) ** 2) * valid).sum(axis=(0, 1), dtype=np.float64) / count      # (F,)
    # fmt: on
    std = np.sqrt(var)
    std[std < 1e-12] = 1.0
    return mean.astype(np.float32), std.astype(np.float32)


def _valid_mask(x: np.ndarray, lengths: np.ndarray | None) -> np.ndarray:
    """(N, T, 1) float32: 1 on each sequence's valid steps, 0 on padding."""
    if lengths is None:
        return np.ones((x.shape[0], x.shape[1], 1), dtype=np.float32)
    return (np.arange(x.shape[1])[None, :] < lengths[:, None]).astype(np.float32)[..., None]


def classification_scores(y_true: np.ndarray, y_pred: np.ndarray, classes: np.ndarray) -> dict[str, Any]:
    """Accuracy, balanced accuracy (mean recall over the classes present in ``y_true``), macro-F1 (over the classes
    in ``y_true`` or ``y_pred``; F1 = 0 where undefined) and the confusion matrix (rows: true class, columns:
    predicted, both in the order of ``classes``)."""
    index = {c: i for i, c in enumerate(classes.tolist())}
    t = np.array([index[c] for c in np.asarray(y_true).tolist()], dtype=np.int64)
    p = np.array([index[c] for c in np.asarray(y_pred).tolist()], dtype=np.int64)
    K = len(classes)
    confusion = np.zeros((K, K), dtype=np.int64)  # (K true, K predicted)
    np.add.at(confusion, (t, p), 1)
    tp, support, predicted = np.diag(confusion), confusion.sum(1), confusion.sum(0)
    present = support > 0
    recall = np.divide(tp, support, out=np.zeros(K), where=present)
    precision = np.divide(tp, predicted, out=np.zeros(K), where=predicted > 0)
    f1 = np.divide(2 * precision * recall, precision + recall, out=np.zeros(K), where=(precision + recall) > 0)
    used = present | (predicted > 0)
    return {
        "accuracy": float((t == p).mean()),
        "balanced_accuracy": float(recall[present].mean()),
        "macro_f1": float(f1[used].mean()),
        "n": int(len(t)),
        "classes": json.loads(json.dumps(classes.tolist())),
        "confusion_matrix": confusion.tolist(),
    }


def _same(a: Any, b: Any) -> bool:
    """``a == b`` as one bool (False where comparing raises or gives an array)."""
    try:
        return bool(a == b) if type(a) is type(b) else False
    except (TypeError, ValueError):
        return False


class NotFittedError(ValueError, AttributeError):
    """An estimator was used (predict, score, save, ...) before ``fit``: a ValueError and an AttributeError, as
    scikit-learn's ``sklearn.exceptions.NotFittedError``. When scikit-learn is loaded the error raised is also an
    instance of its class (see :func:`_not_fitted`), so ``except sklearn.exceptions.NotFittedError`` catches it."""


_SKLEARN_NOT_FITTED: dict[type, type] = {}


def _not_fitted(message: str) -> NotFittedError:
    """A :class:`NotFittedError`, also of scikit-learn's class when scikit-learn is already imported (code that
    catches scikit-learn's class has imported it; importing it here would cost a second at ``import lstmkit``)."""
    sklearn_exceptions = sys.modules.get("sklearn.exceptions")
    base = getattr(sklearn_exceptions, "NotFittedError", None)
    if base is None:
        return NotFittedError(message)
    if base not in _SKLEARN_NOT_FITTED:
        _SKLEARN_NOT_FITTED[base] = type("NotFittedError", (NotFittedError, base), {"__module__": __name__})
    return _SKLEARN_NOT_FITTED[base](message)


class _SequenceEstimator(abc.ABC):
    """Shared fit / predict / save / load plumbing and the parameters every estimator has. Subclasses name the loss,
    the targets and the score.

    The scikit-learn estimator contract without importing scikit-learn (an optional dependency that takes a second
    to import): ``__init__`` only stores its arguments (they are checked in ``fit``), ``get_params`` / ``set_params``
    read the constructor's signature as ``sklearn.base.BaseEstimator`` does (so ``sklearn.base.clone`` works),
    fitted attributes end in ``_``, and use before ``fit`` raises :class:`NotFittedError`.

    A subclass declares only what differs: its own parameters and the defaults it changes, keyword-only, and
    ``**shared`` for the rest; :meth:`__init_subclass__` gives its ``__init__`` the merged signature (what ``help``,
    ``inspect.signature`` and ``get_params`` read).
    """

    _kind: str
    _estimator_type: str  # "classifier" / "regressor": scikit-learn < 1.6 reads it (is_classifier)

    def __init__(
        self,
        hidden_size: int = 64,
        *,
        num_layers: int = 1,
        cell: Literal["lstm", "gru", "rnn"] = "lstm",
        bidirectional: bool = False,
        dropout: float = 0.0,
        pooling: Literal["last", "mean", "max", "attention"] = "last",
        head_dropout: float = 0.0,
        conv_branch: bool = False,
        dimension_shuffle: bool = False,
        pooled_dropout: float = 0.0,
        normalize: bool = False,
        epochs: int = 10,
        batch_size: int = 32,
        lr: float = 1e-3,
        optimizer: Literal["adam", "adamw", "sgd", "rmsprop"] = "adam",
        weight_decay: float = 0.0,
        clip_grad_norm: float | None = None,
        validation_split: float = 0.0,
        early_stopping_patience: int | None = None,
        seed: int = 0,
        progress: bool = True,
    ) -> None:
        self.hidden_size, self.num_layers, self.cell = hidden_size, num_layers, cell
        self.bidirectional, self.dropout, self.pooling, self.normalize = bidirectional, dropout, pooling, normalize
        self.epochs, self.batch_size, self.lr, self.optimizer = epochs, batch_size, lr, optimizer
        self.head_dropout, self.weight_decay, self.conv_branch = head_dropout, weight_decay, conv_branch
        self.dimension_shuffle, self.pooled_dropout = dimension_shuffle, pooled_dropout
        self.clip_grad_norm, self.validation_split = clip_grad_norm, validation_split
        self.early_stopping_patience, self.seed, self.progress = early_stopping_patience, seed, progress

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """A subclass ``__init__(self, ..., *, own=..., **shared)`` gets the signature of its parent's with its own
        keyword-only parameters added or their defaults replaced (one declaration of the shared parameters)."""
        super().__init_subclass__(**kwargs)
        init = cls.__dict__.get("__init__")
        if init is None:
            return
        own = inspect.signature(init).parameters
        if not any(p.kind is p.VAR_KEYWORD for p in own.values()):
            return
        parent = inspect.signature(super(cls, cls).__init__).parameters  # already merged for a deeper subclass
        merged = [own.get(name, p) for name, p in parent.items() if p.kind is not p.VAR_KEYWORD]
        for name, p in own.items():
            if name in parent or p.kind is p.VAR_KEYWORD:
                continue
            if p.kind is not p.KEYWORD_ONLY:
                raise TypeError(f"{cls.__name__}.__init__: a parameter added beside **shared must be keyword-only.")
            merged.append(p)
        init.__signature__ = inspect.Signature(merged, return_annotation=inspect.signature(init).return_annotation)

    @classmethod
    def _get_param_names(cls) -> list[str]:
        """The constructor's parameter names, in signature order."""
        params = inspect.signature(cls.__init__).parameters.values()
        return [p.name for p in params if p.name != "self" and p.kind is not p.VAR_KEYWORD]

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The constructor arguments (scikit-learn convention; no parameter is itself an estimator, so ``deep``
        changes nothing)."""
        return {name: getattr(self, name) for name in self._get_param_names()}

    def set_params(self, **params: Any) -> _SequenceEstimator:
        """Set constructor arguments (scikit-learn convention); they take effect at the next ``fit``. Returns self."""
        valid = self._get_param_names()
        for name, value in params.items():
            if name not in valid:
                raise ValueError(
                    f"Invalid parameter {name!r} for {type(self).__name__}; valid parameters are: {', '.join(valid)}."
                )
            setattr(self, name, value)
        return self

    def __sklearn_tags__(self) -> Any:
        """scikit-learn's estimator tags (read by scikit-learn >= 1.6 only, which is then imported)."""
        from sklearn.utils import ClassifierTags, RegressorTags, Tags, TargetTags

        classifier = self._estimator_type == "classifier"
        return Tags(
            estimator_type=self._estimator_type, target_tags=TargetTags(required=True, multi_output=not classifier),
            classifier_tags=ClassifierTags() if classifier else None,
            regressor_tags=None if classifier else RegressorTags(),
        )  # fmt: skip

    def _more_tags(self) -> dict[str, Any]:
        """The same for scikit-learn < 1.6."""
        return {"requires_y": True, "multioutput": self._estimator_type == "regressor"}

    def __sklearn_is_fitted__(self) -> bool:
        return getattr(self, "model_", None) is not None

    def _validate_params(self) -> None:
        """Check the constructor arguments (at ``fit``, as scikit-learn does, so ``set_params`` and ``clone`` see the
        same checks; the sizes, cell, learning rate and optimizer are checked by the model and training configs)."""
        if not 0.0 <= self.validation_split < 1.0:
            raise ValueError(f"validation_split must be in [0, 1), got {self.validation_split}.")
        if self.pooling not in _POOLINGS:
            raise ValueError(f"pooling must be one of {', '.join(_POOLINGS)}, got {self.pooling!r}.")
        if not 0.0 <= self.head_dropout < 1.0:
            raise ValueError(f"head_dropout must be in [0, 1), got {self.head_dropout}. Use 0.0 to turn it off.")
        if not 0.0 <= self.pooled_dropout < 1.0:
            raise ValueError(f"pooled_dropout must be in [0, 1), got {self.pooled_dropout}. Use 0.0 to turn it off.")
        if not (np.isfinite(self.weight_decay) and self.weight_decay >= 0.0):
            raise ValueError(f"weight_decay must be finite and >= 0, got {self.weight_decay}. Use 0.0 to turn it off.")

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

    def _split(self, targets: Tensor, n_val: int) -> tuple[Tensor, Tensor]:
        """(validation indices, training indices): a seeded random split."""
        order = torch.randperm(targets.shape[0], generator=torch.Generator().manual_seed(self.seed))
        return order[:n_val], order[n_val:]

    def _prepare_loss(self, train_targets: Tensor) -> None:
        """Set up anything the loss needs from the training targets (class weights)."""
        return None

    def _metrics(self, pred: Tensor, y: Tensor) -> dict[str, Tensor]:
        """Extra per-batch numbers logged as train_<name> / val_<name>."""
        return {}

    # ---- public API --------------------------------------------------------------------------------------------
    def fit(self, X: Any, y: Any, run_dir: str | os.PathLike[str] | None = None, *, resume: bool = False):
        """Train on ``X`` (N, T, F), or a list of (T_i, F) sequences, and ``y``; returns ``self``.

        ``run_dir`` also writes metrics.csv and crash-safe checkpoints there; after a crash, ``fit(X, y, run_dir,
        resume=True)`` with the same data and parameters continues to the weights an uninterrupted fit gives.
        With ``validation_split``, that fraction of the sequences is held out (stratified by class for the
        classifier) and the normalisation is fitted on the rest only.

        Fitted attributes (scikit-learn convention): ``model_``, ``model_config_``, ``n_features_in_`` (channels per
        step, F), ``scaler_`` (per-channel mean and std, or None), ``history_`` (one row per epoch), and the
        subclass's (``classes_``, ``class_weights_``; ``output_ndim_``).
        """
        self._validate_params()
        if y is None:
            raise ValueError(f"{type(self).__name__} requires y to be passed, but the target y is None.")
        x_np, lengths_np = _as_ragged(X)
        if self.dimension_shuffle and lengths_np is not None:
            raise ValueError(
                f"dimension_shuffle=True reads each series as one vector of its T steps, so every series needs the "
                f"same length, but X holds lengths from {int(lengths_np.min())} to {int(lengths_np.max())}; resample "
                "or crop them to one length, or fit with dimension_shuffle=False."
            )
        targets, out_size = self._prepare_targets(y, x_np.shape[0])
        seed_everything(self.seed)
        self.input_size_ = self.n_features_in_ = x_np.shape[2]
        self.data_config_: dict[str, Any] | None = None  # how a table maps to sequences, saved when set (tasks)
        n_val = int(round(x_np.shape[0] * self.validation_split))
        val_idx, train_idx = self._split(targets, n_val)
        self._prepare_loss(targets[train_idx])
        self.scaler_ = None
        if self.normalize:  # from the training rows only: validation and test data never shape the scaler
            rows = train_idx.numpy()
            self.scaler_ = _fit_scaler(x_np[rows], None if lengths_np is None else lengths_np[rows])
        x = torch.from_numpy(self._scale(x_np, lengths_np))
        lengths = None if lengths_np is None else torch.from_numpy(lengths_np)
        self.model_config_ = ModelConfig(
            input_size=x.shape[2], output_size=out_size, cell=self.cell, hidden_size=self.hidden_size,
            num_layers=self.num_layers, bidirectional=self.bidirectional, dropout=self.dropout, pooling=self.pooling,
            head_dropout=self.head_dropout, conv_branch=self.conv_branch, dimension_shuffle=self.dimension_shuffle,
            shuffle_length=x.shape[1] if self.dimension_shuffle else 0, pooled_dropout=self.pooled_dropout,
        )  # fmt: skip
        self.model_ = SequenceModel(self.model_config_)

        def part(index: Tensor) -> tuple[Tensor, Tensor, Tensor | None]:
            return x[index], targets[index], None if lengths is None else lengths[index]

        loader = _ShuffledBatches(*part(train_idx)[:2], self.batch_size, self.seed, lengths=part(train_idx)[2])
        val = None
        if n_val > 0:
            xv, yv, lv = part(val_idx)
            val = [(xv, yv) if lv is None else (xv[:, : int(lv.max())], yv, lv)]
        cfg = TrainConfig(
            epochs=self.epochs, batch_size=self.batch_size, lr=self.lr, optimizer=self.optimizer,
            weight_decay=self.weight_decay, clip_grad_norm=self.clip_grad_norm,
            early_stopping_patience=self.early_stopping_patience if val else None, seed=self.seed,
            progress=self.progress,
        )  # fmt: skip

        def loss_fn(model, batch, state):
            xb, yb = batch[0], batch[1]
            pred, _ = model(xb, None, batch[2] if len(batch) > 2 else None)
            return StepOutput(loss=self._loss(pred, yb), metrics=self._metrics(pred, yb), n_items=xb.shape[0])

        run_config = {k: v for k, v in self._jsonable_params().items() if k != "progress"}
        trainer = Trainer(
            self.model_,
            loss_fn,
            cfg,
            run_dir=run_dir,
            callbacks=[GateStatistics()],
            run_config=run_config,
            kind=self._kind,
        )
        self.history_ = trainer.fit(loader, val_data=val, resume=resume)
        self.model_.eval()
        return self

    def _scale(self, x: np.ndarray, lengths: np.ndarray | None) -> np.ndarray:
        """``x`` standardised with the training scaler (padding stays 0); ``x`` itself without one."""
        if self.scaler_ is None:
            return x
        mean, std = self.scaler_
        return ((x - mean) / std * _valid_mask(x, lengths)).astype(np.float32)

    def _check_fitted(self) -> SequenceModel:
        model = getattr(self, "model_", None)
        if model is None:
            raise _not_fitted(f"This {type(self).__name__} is not fitted yet: call fit(X, y) before predict or save.")
        return model

    def _inputs(self, X: Any) -> tuple[Tensor, Tensor | None]:
        """The model's input for ``X``: checked against the training features, scaled, with lengths."""
        self._check_fitted()
        x, lengths = _as_ragged(X)
        if x.shape[2] != self.input_size_:
            raise ValueError(
                f"X has {x.shape[2]} features per step, but the model was fitted on {self.input_size_}; "
                "pass data shaped like the training data."
            )
        T = self.model_config_.shuffle_length if self.model_config_.dimension_shuffle else 0
        if T and (lengths is not None or x.shape[1] != T):
            got = f"{x.shape[1]}" if lengths is None else f"from {int(lengths.min())} to {int(lengths.max())}"
            raise ValueError(
                f"This model reads each series transposed (dimension_shuffle), so every series needs the {T} steps "
                f"it was trained on, got lengths {got}; resample or crop the series to {T} steps."
            )
        x = self._scale(x, lengths)
        return torch.from_numpy(x), None if lengths is None else torch.from_numpy(lengths)

    def _raw_predict(self, X: Any) -> Tensor:
        model = self._check_fitted()
        x, lengths = self._inputs(X)
        if lengths is None:
            return predict_batches(model, x)
        outs = []
        with torch.no_grad():
            for i in range(0, x.shape[0], 1024):
                lb = lengths[i : i + 1024]
                outs.append(model(x[i : i + 1024, : int(lb.max())], None, lb)[0])
        return torch.cat(outs)

    def _jsonable_params(self) -> dict[str, Any]:
        return self.get_params()

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write a run directory: config.json (the estimator's and the model's config, the normalisation fitted on
        the training data) and model.safetensors."""
        model = self._check_fitted()
        config: dict[str, Any] = {"estimator": self._jsonable_params(), "model": self.model_config_.to_dict()}
        if self.scaler_ is not None:
            config["normalization"] = {"mean": self.scaler_[0].tolist(), "std": self.scaler_[1].tolist()}
        if self.data_config_ is not None:
            config["data"] = self.data_config_
        return runs.save_run(path, self._kind, {**config, **self._extra_state()}, model)

    @classmethod
    def load(cls, path: str | os.PathLike[str]):
        """Rebuild a fitted estimator from a directory written by :meth:`save`."""
        saved = runs.read_run_config(path)
        if saved["kind"] != cls._kind:
            raise ValueError(
                f"{path} holds a {saved['kind']!r} run, not a {cls._kind!r} one; pass a run of that kind (in Python, "
                "lstmkit.load opens a run of any kind)."
            )
        config = saved["config"]
        params = dict(config["estimator"])
        params.setdefault("normalize", "normalization" in config)  # runs saved before normalisation existed: none
        est = cls(**params)
        est.model_config_ = ModelConfig.from_dict(config["model"])
        est.input_size_ = est.n_features_in_ = est.model_config_.input_size
        est.model_ = SequenceModel(est.model_config_)
        est.model_.load_state_dict(runs.read_state_dict(path))
        est.model_.eval()
        est.scaler_ = None
        if "normalization" in config:
            norm = config["normalization"]
            est.scaler_ = (np.asarray(norm["mean"], dtype=np.float32), np.asarray(norm["std"], dtype=np.float32))
        est.history_ = []  # the training history stays in the run's metrics.csv
        est.data_config_ = config.get("data")
        est._restore_extra(config)
        return est

    def __repr__(self) -> str:
        defaults = inspect.signature(type(self).__init__).parameters
        changed = {k: v for k, v in self.get_params().items() if not _same(v, defaults[k].default)}
        return f"{type(self).__name__}(" + ", ".join(f"{k}={v!r}" for k, v in changed.items()) + ")"


@runs.register_kind(REGRESSOR_KIND)
class SequenceRegressor(_SequenceEstimator):
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


@runs.register_kind(CLASSIFIER_KIND)
class SequenceClassifier(_SequenceEstimator):
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
        epochs: passes over the training series; 100 by default (:data:`CLASSIFIER_EPOCHS`, also the CLI's; the
            regressor's is 10).

    The defaults that differ from the regressor's (``normalize``, ``epochs``) and ``class_weight`` are the only
    parameters this class declares; the rest are :class:`SequenceRegressor`'s, in one signature.

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
        hidden_size: int = 64,
        *,
        normalize: bool = True,
        class_weight: None | Literal["balanced"] | dict[Any, float] = None,
        epochs: int = CLASSIFIER_EPOCHS,
        **shared: Any,
    ) -> None:
        # only what differs from the shared parameters (see _SequenceEstimator); the signature users see is merged
        super().__init__(hidden_size, normalize=normalize, epochs=epochs, **shared)
        self.class_weight = class_weight

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
        return F.cross_entropy(pred, y, weight=getattr(self, "_weight", None))

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
