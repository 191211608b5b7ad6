"""lstmkit: Long Short-Term Memory networks, from the readable reference cell to trained, measured tasks.

>>> import lstmkit
>>> lstm = lstmkit.nn.LSTM(8, 16)
>>> model = lstmkit.SequenceRegressor(hidden_size=50, epochs=10, batch_size=16)   # .fit(X, y) on (N, T, F)
"""

__version__ = "0.1.0"

from . import nn
from .export.predictor import Predictor
from .runs import load
from .tasks import long_lag as _long_lag  # noqa: F401  (registers the "long_lag" run kind for lstmkit.load)
from .tasks.anomaly import AnomalyDetector
from .tasks.estimators import SequenceClassifier, SequenceRegressor
from .tasks.forecasting import Forecaster
from .tasks.handwriting import HandwritingRecognizer
from .tasks.language import LanguageModel
from .tasks.music import MusicModel
from .tasks.seq2seq import Seq2Seq
from .tasks.speech import SpeechRecognizer
from .tasks.text_classification import TextClassifier

__all__ = [
    "AnomalyDetector", "Forecaster", "HandwritingRecognizer", "LanguageModel", "MusicModel", "Predictor", "Seq2Seq",
    "SequenceClassifier", "SequenceRegressor", "SpeechRecognizer", "TextClassifier", "__version__", "load", "nn",
]  # fmt: skip
