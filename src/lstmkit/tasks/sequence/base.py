"""``SequenceEstimator``: the fit / predict / save / load plumbing the array estimators share, in the scikit-learn
convention, and the :class:`NotFittedError` they raise before ``fit``."""

from __future__ import annotations

import abc
import inspect
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch
from torch import Tensor

from ... import runs
from ...train import GateStatistics, StepOutput, Trainer, resolve_device, seed_everything
from .config import SequenceConfig, SequenceNet, SequenceTrain, training_epochs
from .inputs import ShuffledBatches, as_ragged, fit_scaler, valid_mask
from .model import ModelConfig, SequenceModel, predict_batches

if TYPE_CHECKING:
    from ...nn.onnx_graph import CheckedGraph

POOLINGS = ("last", "mean", "max", "attention")
_CONFIG, _NET, _TRAIN = SequenceConfig(), SequenceNet(), SequenceTrain()  # the defaults, declared in config.py


def _same(a: Any, b: Any) -> bool:
    """``a == b`` as one bool (False where comparing raises or gives an array)."""
    try:
        return bool(a == b) if type(a) is type(b) else False
    except (TypeError, ValueError):
        return False


class NotFittedError(ValueError, AttributeError):
    """An estimator was used (predict, score, save, ...) before ``fit``: a ValueError and an AttributeError, as
    scikit-learn's ``sklearn.exceptions.NotFittedError``. When scikit-learn is loaded the error raised is also an
    instance of its class (see :func:`not_fitted_error`), so ``except sklearn.exceptions.NotFittedError`` catches it."""


_SKLEARN_NOT_FITTED: dict[type, type] = {}


def not_fitted_error(message: str) -> NotFittedError:
    """A :class:`NotFittedError`, also of scikit-learn's class when scikit-learn is already imported (code that
    catches scikit-learn's class has imported it; importing it here would cost a second at ``import lstmkit``)."""
    sklearn_exceptions = sys.modules.get("sklearn.exceptions")
    base = getattr(sklearn_exceptions, "NotFittedError", None)
    if base is None:
        return NotFittedError(message)
    if base not in _SKLEARN_NOT_FITTED:
        _SKLEARN_NOT_FITTED[base] = type("NotFittedError", (NotFittedError, base), {"__module__": __name__})
    return _SKLEARN_NOT_FITTED[base](message)


class SequenceEstimator(abc.ABC):
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
        hidden_size: int = _NET.hidden_size,
        *,
        num_layers: int = _NET.num_layers,
        cell: Literal["lstm", "gru", "rnn"] = _NET.cell,
        bidirectional: bool = _NET.bidirectional,
        dropout: float = _NET.dropout,
        pooling: Literal["last", "mean", "max", "attention"] = _NET.pooling,
        head_dropout: float = _NET.head_dropout,
        conv_branch: bool = _NET.conv_branch,
        dimension_shuffle: bool = _NET.dimension_shuffle,
        pooled_dropout: float = _NET.pooled_dropout,
        normalize: bool = _CONFIG.normalize,
        epochs: int | None = _TRAIN.epochs,
        min_steps: int = _TRAIN.min_steps,
        batch_size: int = _TRAIN.batch_size,
        lr: float = _TRAIN.lr,
        optimizer: Literal["adam", "adamw", "sgd", "rmsprop"] = _TRAIN.optimizer,
        weight_decay: float = _TRAIN.weight_decay,
        clip_grad_norm: float | None = _TRAIN.clip_grad_norm,
        validation_split: float = _CONFIG.validation_split,
        early_stopping_patience: int | None = _TRAIN.early_stopping_patience,
        max_minutes: float | None = _TRAIN.max_minutes,
        seed: int = _TRAIN.seed,
        device: Literal["cpu", "cuda", "auto"] = _TRAIN.device,
        progress: bool = _TRAIN.progress,
    ) -> None:
        self.hidden_size, self.num_layers, self.cell = hidden_size, num_layers, cell
        self.bidirectional, self.dropout, self.pooling, self.normalize = bidirectional, dropout, pooling, normalize
        self.epochs, self.batch_size, self.lr, self.optimizer = epochs, batch_size, lr, optimizer
        self.head_dropout, self.weight_decay, self.conv_branch = head_dropout, weight_decay, conv_branch
        self.dimension_shuffle, self.pooled_dropout = dimension_shuffle, pooled_dropout
        self.clip_grad_norm, self.validation_split = clip_grad_norm, validation_split
        self.early_stopping_patience, self.seed, self.progress = early_stopping_patience, seed, progress
        self.max_minutes, self.device, self.min_steps = max_minutes, device, min_steps

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

    def set_params(self, **params: Any) -> SequenceEstimator:
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
        if self.pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {', '.join(POOLINGS)}, got {self.pooling!r}.")
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
    def config(self) -> SequenceConfig:
        """The estimator's parameters in the task shape (``net``, ``train`` and the data settings), as ``fit`` uses
        them.

        Raises:
            ConfigError: on a parameter of the wrong type or out of range (a ValueError).
        """
        params = self.get_params()
        names = {*SequenceConfig.field_names(), *SequenceNet.field_names(), *SequenceTrain.field_names()}
        return SequenceConfig.from_dict({k: v for k, v in params.items() if k in names})

    def fit(self, X: Any, y: Any, run_dir: str | os.PathLike[str] | None = None, *, resume: bool = False):
        """Train on ``X`` (N, T, F), or a list of (T_i, F) sequences, and ``y``; returns ``self``.

        ``run_dir`` also writes metrics.csv and crash-safe checkpoints there; after a crash, ``fit(X, y, run_dir,
        resume=True)`` with the same data and parameters continues to the weights an uninterrupted fit gives.
        With ``validation_split``, that fraction of the sequences is held out (stratified by class for the
        classifier) and the normalisation is fitted on the rest only.

        Fitted attributes (scikit-learn convention): ``model_``, ``model_config_``, ``n_features_in_`` (channels per
        step, F), ``scaler_`` (per-channel mean and std, or None), ``history_`` (one row per epoch), ``epochs_`` (the
        epochs asked for: ``epochs``, or with ``epochs=None`` the whole epochs that make ``min_steps`` optimiser
        steps; a time budget or early stopping may end training sooner), and the subclass's (``classes_``,
        ``class_weights_``; ``output_ndim_``).

        Training runs on ``device`` ("cpu", "cuda" or "auto": CUDA when PyTorch sees a GPU) and stops cleanly after
        ``max_minutes`` (None: no budget); the fitted model is on the CPU, where ``predict`` and ``save`` run.
        """
        self._validate_params()
        cfg = self.config()  # checks the training settings before any work on the data
        device = resolve_device(cfg.train.device)  # "cuda" on a machine without one: one sentence, here
        if y is None:
            raise ValueError(f"{type(self).__name__} requires y to be passed, but the target y is None.")
        x_np, lengths_np = as_ragged(X)
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
            self.scaler_ = fit_scaler(x_np[rows], None if lengths_np is None else lengths_np[rows])
        x = torch.from_numpy(self._scale(x_np, lengths_np))
        lengths = None if lengths_np is None else torch.from_numpy(lengths_np)
        net = cfg.net
        self.model_config_ = ModelConfig(
            input_size=x.shape[2], output_size=out_size, cell=net.cell, hidden_size=net.hidden_size,
            num_layers=net.num_layers, bidirectional=net.bidirectional, dropout=net.dropout, pooling=net.pooling,
            head_dropout=net.head_dropout, conv_branch=net.conv_branch, dimension_shuffle=net.dimension_shuffle,
            shuffle_length=x.shape[1] if net.dimension_shuffle else 0, pooled_dropout=net.pooled_dropout,
        )  # fmt: skip
        self.model_ = SequenceModel(self.model_config_)

        def part(index: Tensor) -> tuple[Tensor, Tensor, Tensor | None]:
            return x[index], targets[index], None if lengths is None else lengths[index]

        loader = ShuffledBatches(*part(train_idx)[:2], cfg.train.batch_size, cfg.train.seed, lengths=part(train_idx)[2])
        val = None
        if n_val > 0:
            xv, yv, lv = part(val_idx)
            val = [(xv, yv) if lv is None else (xv[:, : int(lv.max())], yv, lv)]
        train_cfg = cfg.train if val else cfg.train.replace(early_stopping_patience=None)  # nothing to stop on
        batches = -(-len(train_idx) // cfg.train.batch_size)  # per epoch: ShuffledBatches keeps the last, short one
        self.epochs_ = training_epochs(cfg.train.epochs, cfg.train.min_steps, batches)
        train_cfg = train_cfg.replace(epochs=self.epochs_)

        def loss_fn(model, batch, state):
            xb, yb = batch[0], batch[1]
            pred, _ = model(xb, None, batch[2] if len(batch) > 2 else None)
            return StepOutput(loss=self._loss(pred, yb), metrics=self._metrics(pred, yb), n_items=xb.shape[0])

        # the budget is no part of what is computed: a resumed fit may have another (classify train's refit gets
        # what its selection left), as TrainConfig.max_minutes may differ on resume
        run_config = {k: v for k, v in self._jsonable_params().items() if k not in ("progress", "max_minutes")}
        self.model_.to(device)  # the weights are drawn on the CPU first: the same model for a seed on every device
        try:
            trainer = Trainer(
                self.model_,
                loss_fn,
                train_cfg,
                run_dir=run_dir,
                callbacks=[GateStatistics()],
                run_config=run_config,
                kind=self._kind,
            )
            self.history_ = trainer.fit(loader, val_data=val, resume=resume)
        finally:
            self.model_.to("cpu")  # predict and save run on the CPU
        self.model_.eval()
        return self

    def _scale(self, x: np.ndarray, lengths: np.ndarray | None) -> np.ndarray:
        """``x`` standardised with the training scaler (padding stays 0); ``x`` itself without one."""
        if self.scaler_ is None:
            return x
        mean, std = self.scaler_
        return ((x - mean) / std * valid_mask(x, lengths)).astype(np.float32)

    def _check_fitted(self) -> SequenceModel:
        model = getattr(self, "model_", None)
        if model is None:
            raise not_fitted_error(
                f"This {type(self).__name__} is not fitted yet: call fit(X, y) before predict or save."
            )
        return model

    def _inputs(self, X: Any) -> tuple[Tensor, Tensor | None]:
        """The model's input for ``X``: checked against the training features, scaled, with lengths."""
        self._check_fitted()
        x, lengths = as_ragged(X)
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

    @property
    def network(self) -> SequenceModel:
        """The fitted :class:`~lstmkit.tasks.sequence.model.SequenceModel` (recurrent core and head), for inference
        outside ``predict`` (a Predictor's streaming step); NotFittedError before ``fit``."""
        return self._check_fitted()

    def standardise(self, x: np.ndarray, lengths: np.ndarray | None = None) -> np.ndarray:
        """``x`` (N, T, F) as the network reads it: scaled with the training statistics when the estimator
        normalises (steps past ``lengths`` stay 0), else ``x`` itself."""
        return self._scale(x, lengths)

    @property
    def run_kind(self) -> str:
        """The kind its runs are saved as (``config.json``'s ``kind``), which its ONNX export records."""
        return self._kind

    def onnx_graphs(self, streaming: bool = False, rng: np.random.Generator | None = None) -> list[CheckedGraph]:
        """This model as ONNX graphs, each with sample inputs and the model's own outputs for them: the classifier's
        ``logits`` and ``probabilities`` (the regressor's ``prediction``) from raw ``x`` and ``lengths``, the training
        standardisation inside; with ``streaming``, the one-observation step of a unidirectional LSTM reading its last
        state. :func:`lstmkit.export.onnx.export_onnx` checks them and writes the files; ``rng`` draws the samples
        (default: seed 0). Raises ValueError where a graph cannot express the model (the reason)."""
        from .onnx import estimator_graphs

        return estimator_graphs(self, streaming, np.random.default_rng(0) if rng is None else rng)

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
