"""Sequence models on arrays: the LSTM head shared by the tasks (``model``) and the scikit-learn-style estimators."""
