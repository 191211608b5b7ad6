"""Every validation branch of the engine raises a ValueError whose message names the layer, what was received and,
where there is one, the fix. One ``pytest.raises(ValueError, match=...)`` per branch.
"""

import re

import pytest
import torch

import lstmkit.nn as lnn

I, H = 3, 4


def _lstm(**kwargs) -> lnn.LSTM:
    torch.manual_seed(0)
    return lnn.LSTM(I, H, **kwargs)


def _x(*shape, dtype=torch.float32):
    return torch.randn(*shape).to(dtype)


def _message(excinfo) -> str:
    return str(excinfo.value)


def assert_clear(message: str, *received: str) -> None:
    """A clear message: starts with the layer's name, is one line ending in a full stop, and shows what it received."""
    assert re.match(r"^(LSTM|GRU|RNN|LSTM\.step|LSTMCell): [a-zA-Z]", message), message
    assert "\n" not in message and message.endswith("."), message
    for value in received:
        assert value in message, f"{value!r} not in {message!r}"


# ---- forward: the input ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(5,), (1, 2, 5, I)])
def test_wrong_input_rank(shape):
    with pytest.raises(ValueError, match=r"expected input of 3 dimensions \(B, T, I\)") as excinfo:
        _lstm()(torch.randn(*shape))
    assert_clear(_message(excinfo), f"got {len(shape)} dimensions", str(tuple(shape)))


def test_wrong_input_rank_names_the_time_major_layout():
    with pytest.raises(ValueError, match=r"\(T, B, I\) \(batch_first=False\)"):
        _lstm(batch_first=False)(torch.randn(1, 2, 5, I))


def test_wrong_feature_size():
    with pytest.raises(ValueError, match=r"input has 5 features .* input_size=3") as excinfo:
        _lstm()(_x(2, 6, 5))
    assert_clear(_message(excinfo), "5 features", "input_size=3", "input_size=5")


@pytest.mark.parametrize("shape", [(2, 0, I), (0, 6, I)])
def test_empty_time_or_batch(shape):
    with pytest.raises(ValueError, match=r"empty batch or time dimension") as excinfo:
        _lstm()(torch.empty(shape))
    assert_clear(_message(excinfo), str(shape))


@pytest.mark.parametrize("dtype", [torch.int64, torch.int32, torch.bool])
def test_integer_input(dtype):
    with pytest.raises(ValueError, match=r"must be a floating-point tensor") as excinfo:
        _lstm()(torch.ones(2, 6, I, dtype=dtype))
    assert_clear(_message(excinfo), str(dtype))


def test_input_dtype_differs_from_parameters():
    with pytest.raises(ValueError, match=r"input dtype torch.float64 differs from the parameters' dtype torch.float32"):
        _lstm()(_x(2, 6, I, dtype=torch.float64))


# ---- forward: the state ---------------------------------------------------------------------------------------------
def test_wrong_h0_shape():
    lstm = _lstm(num_layers=2)
    h0, c0 = torch.zeros(1, 2, H), torch.zeros(2, 2, H)
    with pytest.raises(ValueError, match=r"h_0 has shape \(1, 2, 4\), expected \(2, 2, 4\)") as excinfo:
        lstm(_x(2, 6, I), (h0, c0))
    assert_clear(_message(excinfo))


def test_wrong_c0_shape():
    lstm = _lstm(proj_size=2)  # h is (L, B, P), c is (L, B, H): a c_0 shaped like h_0 is wrong
    h0, c0 = torch.zeros(1, 2, 2), torch.zeros(1, 2, 2)
    with pytest.raises(ValueError, match=r"c_0 has shape \(1, 2, 2\), expected \(1, 2, 4\)") as excinfo:
        lstm(_x(2, 6, I), (h0, c0))
    assert_clear(_message(excinfo))


def test_state_dtype_differs_from_input():
    h0, c0 = torch.zeros(1, 2, H, dtype=torch.float64), torch.zeros(1, 2, H)
    with pytest.raises(ValueError, match=r"h_0 has dtype torch.float64, expected torch.float32"):
        _lstm()(_x(2, 6, I), (h0, c0))


@pytest.mark.parametrize("state", [torch.zeros(1, 2, H), (torch.zeros(1, 2, H),)], ids=["tensor", "1-tuple"])
def test_state_not_a_pair(state):
    with pytest.raises(ValueError, match=r"state must be a tuple \(h_0, c_0\)") as excinfo:
        _lstm()(_x(2, 6, I), state)
    assert_clear(_message(excinfo))


def test_state_not_a_pair_names_what_it_received():
    with pytest.raises(ValueError) as excinfo:
        _lstm()(_x(2, 6, I), torch.zeros(1, 2, H))
    assert_clear(_message(excinfo), "Tensor")


# ---- forward: lengths -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("lengths", [torch.tensor([3, 3, 3]), torch.tensor([[3], [3]])], ids=["too-many", "2-D"])
def test_lengths_of_wrong_shape(lengths):
    with pytest.raises(ValueError, match=r"lengths must be a 1-D tensor .* \(shape \(2,\)\)") as excinfo:
        _lstm()(_x(2, 6, I), lengths=lengths)
    assert_clear(_message(excinfo), f"got shape {tuple(lengths.shape)}")


@pytest.mark.parametrize("lengths, low, high", [([0, 6], 0, 6), ([7, 2], 2, 7), ([-1, 3], -1, 3)])
def test_lengths_out_of_range(lengths, low, high):
    with pytest.raises(ValueError, match=r"every length must be between 1 and the padded sequence length 6") as excinfo:
        _lstm()(_x(2, 6, I), lengths=torch.tensor(lengths))
    assert_clear(_message(excinfo), f"got lengths from {low} to {high}")


@pytest.mark.parametrize("dtype", [torch.float32, torch.bool])
def test_lengths_not_integers(dtype):
    with pytest.raises(ValueError, match=r"lengths must hold integers") as excinfo:
        _lstm()(_x(2, 6, I), lengths=torch.tensor([3, 1]).to(dtype))
    assert_clear(_message(excinfo), str(dtype))


def test_lengths_as_a_python_list_are_accepted():
    out, _ = _lstm()(_x(2, 6, I), lengths=[6, 2])
    assert torch.count_nonzero(out[1, 2:]) == 0 and torch.count_nonzero(out[1, :2]) > 0


# ---- forward: NaN ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_input_with_check_finite(bad):
    x = _x(2, 6, I)
    x[1, 4, 2] = bad
    with pytest.raises(ValueError, match=r"input contains 1 NaN or infinite values \(the first at index \(1, 4, 2\)\)"):
        _lstm(check_finite=True)(x)


def test_non_finite_input_without_check_finite_runs():
    x = _x(2, 6, I)
    x[1, 4, 2] = float("nan")
    out, _ = _lstm()(x)  # the default costs nothing and raises nothing; NaN flows through from step 4 on
    assert torch.isfinite(out[0]).all() and torch.isfinite(out[1, :4]).all() and torch.isnan(out[1, 4:]).all()


def test_check_finite_ignores_the_padding_when_lengths_are_given():
    x = _x(2, 6, I)
    x[1, 3:] = float("nan")  # padding past length 3
    out, _ = _lstm(check_finite=True, backend="torch")(x, lengths=torch.tensor([6, 3]))
    assert torch.isfinite(out).all()


# ---- constructor ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "kwargs, pattern, received",
    [
        ({"hidden_size": 0}, r"hidden_size must be a positive integer, got 0\.", "got 0"),
        ({"hidden_size": 2.5}, r"hidden_size must be a positive integer, got 2\.5\.", "got 2.5"),
        ({"input_size": -1}, r"input_size must be a positive integer, got -1\.", "got -1"),
        ({"num_layers": 0}, r"num_layers must be a positive integer, got 0\.", "got 0"),
        ({"num_layers": True}, r"num_layers must be a positive integer, got True\.", "got True"),
        ({"proj_size": 4}, r"proj_size must be an integer in \[0, hidden_size\) = \[0, 4\), got 4\.", "got 4"),
        ({"proj_size": 9}, r"proj_size must be an integer in \[0, hidden_size\)", "got 9"),
        ({"proj_size": -1}, r"proj_size must be an integer in \[0, hidden_size\)", "got -1"),
        ({"dropout": 1.0}, r"dropout is a probability in \[0, 1\), got 1\.0\.", "got 1.0"),
        ({"dropout": -0.1}, r"dropout is a probability in \[0, 1\)", "got -0.1"),
        ({"recurrent_dropout": 1.0}, r"recurrent_dropout is a probability in \[0, 1\)", "got 1.0"),
        ({"zoneout": 1.5}, r"zoneout is a probability in \[0, 1\)", "got 1.5"),
        ({"backend": "cudnn"}, r"backend must be one of 'auto', 'reference', 'torch', 'lstmkit'", "got 'cudnn'"),
    ],
)
def test_bad_constructor_arguments(kwargs, pattern, received):
    args = {"input_size": I, "hidden_size": H} | kwargs
    with pytest.raises(ValueError, match=pattern) as excinfo:
        lnn.LSTM(**args)
    assert_clear(_message(excinfo), received)


@pytest.mark.parametrize("cls", [lnn.GRU, lnn.RNN])
@pytest.mark.parametrize(
    "kwargs, pattern",
    [
        ({"hidden_size": 0}, r"hidden_size must be a positive integer, got 0\."),
        ({"dropout": 1.0}, r"dropout is a probability in \[0, 1\), got 1\.0\."),
        ({"backend": "lstmkit"}, r"backend must be 'auto', 'torch' or 'reference', got 'lstmkit'\."),
    ],
)
def test_bad_gru_and_rnn_arguments(cls, kwargs, pattern):
    with pytest.raises(ValueError, match=pattern) as excinfo:
        cls(**({"input_size": I, "hidden_size": H} | kwargs))
    assert_clear(_message(excinfo))
    assert _message(excinfo).startswith(cls.__name__ + ":")


@pytest.mark.parametrize("cls", [lnn.GRU, lnn.RNN])
def test_gru_and_rnn_check_input_and_state(cls):
    layer = cls(I, H)
    with pytest.raises(ValueError, match=rf"^{cls.__name__}: input has 5 features"):
        layer(_x(2, 6, 5))
    with pytest.raises(ValueError, match=rf"^{cls.__name__}: h_0 has shape \(2, 2, 4\), expected \(1, 2, 4\)"):
        layer(_x(2, 6, I), torch.zeros(2, 2, H))
    with pytest.raises(ValueError, match=rf"^{cls.__name__}: every length must be between 1 and"):
        layer(_x(2, 6, I), lengths=torch.tensor([0, 6]))


@pytest.mark.parametrize("cls", [lnn.GRU, lnn.RNN])
def test_gru_and_rnn_torch_backend_refuses_record(cls):
    with pytest.raises(ValueError, match=r"record=True needs backend='auto' or 'reference'"):
        cls(I, H, backend="torch")(_x(2, 6, I), record=True)


# ---- backend choice -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "variant, named",
    [
        ({"layer_norm": True}, "layer_norm=True"),
        ({"peephole": True}, "peephole=True"),
        ({"recurrent_dropout": 0.2}, "recurrent_dropout=0.2"),
        ({"zoneout": 0.1}, "zoneout=0.1"),
    ],
)
def test_torch_backend_with_a_variant_names_the_variant(variant, named):
    lstm = _lstm(backend="torch", **variant)
    with pytest.raises(
        ValueError, match=rf"backend='torch' was requested.*\({re.escape(named)}\).*backend='auto'"
    ) as e:
        lstm(_x(2, 6, I))
    assert_clear(_message(e), named)
    with pytest.raises(ValueError, match=re.escape(named)):
        lstm.explain()


def test_torch_backend_with_record_names_record():
    with pytest.raises(ValueError, match=r"backend='torch' was requested.*record=True"):
        _lstm(backend="torch")(_x(2, 6, I), record=True)


def test_lstmkit_backend_with_record_raises():
    with pytest.raises(ValueError, match=r"backend='lstmkit' does not record gates; record=True needs") as excinfo:
        _lstm(backend="lstmkit", layer_norm=True)(_x(2, 6, I), record=True)
    assert_clear(_message(excinfo))


# ---- step and cell --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("x_t, got", [(torch.randn(2, 5), r"\(2, 5\)"), (torch.randn(2, 6, I), r"\(2, 6, 3\)")])
def test_step_rejects_a_wrongly_shaped_step(x_t, got):
    with pytest.raises(ValueError, match=rf"^LSTM\.step: expected x_t shaped \(B, 3\), got {got}\.$"):
        _lstm().step(x_t)


def test_step_on_bidirectional_explains_why():
    with pytest.raises(ValueError, match=r"^LSTM\.step: a bidirectional LSTM needs the whole sequence") as excinfo:
        _lstm(bidirectional=True).step(torch.randn(2, I))
    assert_clear(_message(excinfo))


def test_lstm_cell_rejects_a_wrongly_shaped_input():
    with pytest.raises(ValueError, match=r"^LSTMCell: expected input shaped \(B, 3\), got \(2, 5\)\.$"):
        lnn.LSTMCell(I, H)(torch.randn(2, 5))


def test_lstm_cell_rejects_zero_sizes():
    with pytest.raises(ValueError, match=r"^LSTMCell: sizes must be positive, got input_size=3, hidden_size=0\.$"):
        lnn.LSTMCell(I, 0)


def test_non_tensor_input_is_a_type_error():
    with pytest.raises(TypeError, match=r"^LSTM: expected the input to be a torch.Tensor shaped \(B, T, I\), got list"):
        _lstm()([[1.0, 2.0, 3.0]])
