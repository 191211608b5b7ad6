"""lstmkit.tasks: one package per family, each task a typed config, a model, fit / predict / evaluate, save / load.

- ``sequence/``: the LSTM head the tasks share and the scikit-learn-style estimators.
- ``timeseries/``: forecasting, ``anomaly/``, classification of whole series, metrics and baselines.
- ``text/``: tokenizers, n-grams, the language model, the text classifier, sequence-to-sequence translation.
- ``recognition/``: CTC, ``speech/`` and ``handwriting/``.
- ``music/`` and ``long_lag/``.

Importing this package (or a family) loads no task: each task module is imported when it is used.
"""
