"""lstmkit: Long Short-Term Memory networks, from the readable reference cell to trained, measured tasks.

>>> import lstmkit
>>> lstm = lstmkit.nn.LSTM(8, 16)
>>> model = lstmkit.SequenceRegressor(hidden_size=50, epochs=10, batch_size=16)   # .fit(X, y) on (N, T, F)

``import lstmkit`` is lazy (PEP 562): it imports no task, not even torch, until a name is first used; then only the
module that defines that name is imported. ``lstmkit.load(path)`` imports only the task of the run it reads.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._version import __version__

if TYPE_CHECKING:  # what type checkers and IDEs see; at run time __getattr__ imports each on first use
    from . import nn
    from .inference.predictor import Predictor
    from .runs import load
    from .tasks.music.model import MusicModel
    from .tasks.recognition.handwriting.recognizer import HandwritingRecognizer
    from .tasks.recognition.speech.recognizer import SpeechRecognizer
    from .tasks.sequence.estimators import SequenceClassifier, SequenceRegressor
    from .tasks.text.classification import TextClassifier
    from .tasks.text.language import LanguageModel
    from .tasks.text.seq2seq import Seq2Seq
    from .tasks.timeseries.anomaly.detector import AnomalyDetector
    from .tasks.timeseries.forecasting import Forecaster

__all__ = [
    "AnomalyDetector", "Forecaster", "HandwritingRecognizer", "LanguageModel", "MusicModel", "Predictor", "Seq2Seq",
    "SequenceClassifier", "SequenceRegressor", "SpeechRecognizer", "TextClassifier", "__version__", "load", "nn",
]  # fmt: skip

# public name -> the module that defines it (the same names as the TYPE_CHECKING block above; a test keeps them equal)
_LAZY: dict[str, str] = {
    "AnomalyDetector": "lstmkit.tasks.timeseries.anomaly.detector",
    "Forecaster": "lstmkit.tasks.timeseries.forecasting",
    "HandwritingRecognizer": "lstmkit.tasks.recognition.handwriting.recognizer",
    "LanguageModel": "lstmkit.tasks.text.language",
    "MusicModel": "lstmkit.tasks.music.model",
    "Predictor": "lstmkit.inference.predictor",
    "Seq2Seq": "lstmkit.tasks.text.seq2seq",
    "SequenceClassifier": "lstmkit.tasks.sequence.estimators",
    "SequenceRegressor": "lstmkit.tasks.sequence.estimators",
    "SpeechRecognizer": "lstmkit.tasks.recognition.speech.recognizer",
    "TextClassifier": "lstmkit.tasks.text.classification",
    "load": "lstmkit.runs",
}


def __getattr__(name: str) -> Any:
    """Import a public name, or a subpackage (``lstmkit.nn``, ``lstmkit.train``, ...), on first access."""
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value  # later accesses skip __getattr__
        return value
    if not name.startswith("__"):
        try:
            return importlib.import_module(f"{__name__}.{name}")  # the import sets it as an attribute of the package
        except ModuleNotFoundError as exc:
            if exc.name != f"{__name__}.{name}":  # the submodule exists but something it imports is missing
                raise
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
