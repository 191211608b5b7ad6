"""The lstmkit engine: the reference equations, LSTM / GRU / RNN layers, fast paths pinned to the reference.

Dimension letters, used in every shape in this package:
``B`` batch, ``T`` time, ``I`` input_size, ``H`` hidden_size, ``P`` proj_size, ``S`` the size of h (P if P > 0
else H), ``L`` layers, ``D`` directions (2 if bidirectional), ``V`` vocabulary, ``K`` classes.

This package imports only torch and the standard library.
"""

from .cell import LSTMCell
from .functional import LSTMLayerWeights, StepMasks
from .introspect import hidden_grad_norms
from .lstm import LSTM, Explanation, LSTMTrace
from .rnn import GRU, RNN

__all__ = [
    "GRU",
    "LSTM",
    "RNN",
    "Explanation",
    "LSTMCell",
    "LSTMLayerWeights",
    "LSTMTrace",
    "StepMasks",
    "hidden_grad_norms",
]
