"""Keras 3 LSTM <-> torch layout: converted networks must compute the same outputs and final states.

torch.nn.LSTM stands in for lstmkit's LSTM (same parameter names and layout). The tests are written to hold on any
Keras backend (inputs are numpy, outputs go through keras.ops.convert_to_numpy), but ask for the torch backend,
the one installed with lstmkit's dev extras.
"""

import os

import numpy as np
import pytest
import torch

from lstmkit.nn.weights import from_keras, to_keras

os.environ["KERAS_BACKEND"] = "torch"  # read when keras is first imported
keras = pytest.importorskip("keras")

B, T, I, H = 3, 7, 4, 5  # batch, time, input_size, hidden_size

# Keras converts torch tensors with np.array(x), which numpy 2 warns about for torch's Tensor.__array__.
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword")


def _input(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(B, T, I)).astype("float32")  # (B, T, I)


def _randomize_keras(layer, seed: int = 0):
    """Random values for every weight (Keras inits the bias to zeros and ones), so biases are checked too."""
    rng = np.random.default_rng(seed)
    layer.set_weights([rng.normal(0.0, 0.5, size=w.shape).astype(w.dtype) for w in layer.get_weights()])
    return layer


def _randomize_torch(module, seed: int = 0):
    """Random values for every parameter, with different bias_ih and bias_hh so that their sum is checked."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=generator) * 0.5)
    return module


def _keras_lstm(bidirectional: bool = False, merge_mode: str | None = "concat", input_size: int = I, **kwargs):
    """A built Keras (Bidirectional) LSTM with random weights that returns sequences and states."""
    layer = keras.layers.LSTM(H, return_sequences=True, return_state=True, **kwargs)
    if bidirectional:
        layer = keras.layers.Bidirectional(layer, merge_mode=merge_mode)
    layer.build((None, None, input_size))
    return _randomize_keras(layer, seed=input_size)


def _run_keras(layer, x) -> list[torch.Tensor]:
    return [torch.as_tensor(keras.ops.convert_to_numpy(y)) for y in layer(x)]


def _run_torch(module, x):
    with torch.no_grad():
        return module(torch.from_numpy(x))


@pytest.mark.parametrize("use_bias", [True, False])
def test_from_keras_lstm_matches(use_bias):
    layer = _keras_lstm(use_bias=use_bias)
    lstm = from_keras(layer, torch.nn.LSTM(I, H, batch_first=True))
    x = _input()
    y, h, c = _run_keras(layer, x)  # (B, T, H), (B, H), (B, H)
    out, (h_n, c_n) = _run_torch(lstm, x)
    torch.testing.assert_close(out, y)
    torch.testing.assert_close(h_n[0], h)
    torch.testing.assert_close(c_n[0], c)


def test_from_keras_bidirectional_matches():
    layer = _keras_lstm(bidirectional=True)
    lstm = from_keras(layer, torch.nn.LSTM(I, H, batch_first=True, bidirectional=True))
    x = _input()
    y, h_fwd, c_fwd, h_bwd, c_bwd = _run_keras(layer, x)  # Keras: [output, h_fwd, c_fwd, h_bwd, c_bwd]
    out, (h_n, c_n) = _run_torch(lstm, x)  # out: (B, T, 2H) = [forward | backward], like merge_mode="concat"
    torch.testing.assert_close(out, y)
    torch.testing.assert_close(h_n, torch.stack([h_fwd, h_bwd]))
    torch.testing.assert_close(c_n, torch.stack([c_fwd, c_bwd]))


@pytest.mark.parametrize("merge_mode", ["sum", "ave", "mul", None])
def test_from_keras_other_merge_modes_combine_the_halves(merge_mode):
    layer = _keras_lstm(bidirectional=True, merge_mode=merge_mode)
    lstm = from_keras(layer, torch.nn.LSTM(I, H, batch_first=True, bidirectional=True))
    x = _input()
    out, _ = _run_torch(lstm, x)
    forward, backward = out[..., :H], out[..., H:]
    if merge_mode is None:  # Keras returns the pair
        y_fwd, y_bwd = _run_keras(layer, x)[:2]
        torch.testing.assert_close(forward, y_fwd)
        torch.testing.assert_close(backward, y_bwd)
        return
    expected = {"sum": forward + backward, "ave": (forward + backward) / 2, "mul": forward * backward}[merge_mode]
    torch.testing.assert_close(_run_keras(layer, x)[0], expected)


def test_from_keras_state_dict():
    layer = _keras_lstm(bidirectional=True)
    state = from_keras(layer, layer_index=2)
    kernel, recurrent_kernel, bias = layer.forward_layer.get_weights()
    assert {name: tuple(t.shape) for name, t in state.items()} == {
        f"{kind}_l2{suffix}": shape
        for suffix in ("", "_reverse")
        for kind, shape in [
            ("weight_ih", (4 * H, I)),
            ("weight_hh", (4 * H, H)),
            ("bias_ih", (4 * H,)),
            ("bias_hh", (4 * H,)),
        ]
    }
    torch.testing.assert_close(state["weight_ih_l2"], torch.from_numpy(kernel.T), rtol=0, atol=0)
    torch.testing.assert_close(state["weight_hh_l2"], torch.from_numpy(recurrent_kernel.T), rtol=0, atol=0)
    torch.testing.assert_close(state["bias_ih_l2"], torch.from_numpy(bias), rtol=0, atol=0)
    assert not state["bias_hh_l2"].any()
    state["bias_ih_l2"].zero_()  # the returned tensors are copies: Keras keeps its weights
    assert layer.forward_layer.get_weights()[2].any()


def test_from_keras_fills_one_layer_of_a_deeper_module():
    first = _keras_lstm(bidirectional=True)
    second = _keras_lstm(bidirectional=True, input_size=2 * H)  # reads both directions of the first
    lstm = torch.nn.LSTM(I, H, num_layers=2, batch_first=True, bidirectional=True)
    from_keras(first, lstm)
    from_keras(second, lstm, layer_index=1)
    x = _input()
    y = _run_keras(second, keras.ops.convert_to_numpy(_run_keras(first, x)[0]))[0]
    torch.testing.assert_close(_run_torch(lstm, x)[0], y)


@pytest.mark.parametrize("bidirectional", [False, True])
def test_to_keras_matches(bidirectional):
    lstm = _randomize_torch(torch.nn.LSTM(I, H, batch_first=True, bidirectional=bidirectional))
    layer = _keras_lstm(bidirectional=bidirectional)
    assert to_keras(lstm, layer) is layer
    x = _input()
    y, *states = _run_keras(layer, x)
    out, (h_n, c_n) = _run_torch(lstm, x)
    torch.testing.assert_close(y, out)
    torch.testing.assert_close(torch.stack(states[0::2]), h_n)  # Keras states: h, c (, h_bwd, c_bwd)
    torch.testing.assert_close(torch.stack(states[1::2]), c_n)


def test_to_keras_sums_the_biases_and_casts():
    lstm = _randomize_torch(torch.nn.LSTM(I, H, batch_first=True)).double()
    layer = to_keras(lstm, _keras_lstm())
    bias = layer.get_weights()[2]
    assert bias.dtype == np.float32
    torch.testing.assert_close(torch.from_numpy(bias), (lstm.bias_ih_l0 + lstm.bias_hh_l0).float().detach())
    x = _input()
    torch.testing.assert_close(_run_keras(layer, x)[0], _run_torch(lstm, x.astype("float64"))[0].float())


def test_to_keras_from_a_module_without_bias():
    lstm = _randomize_torch(torch.nn.LSTM(I, H, batch_first=True, bias=False))
    for layer in (_keras_lstm(), _keras_lstm(use_bias=False)):
        to_keras(lstm, layer)
        torch.testing.assert_close(_run_keras(layer, _input())[0], _run_torch(lstm, _input())[0])


def test_round_trip_keras_torch_keras():
    layer = _keras_lstm(bidirectional=True)
    copy = to_keras(from_keras(layer, torch.nn.LSTM(I, H, bidirectional=True)), _keras_lstm(bidirectional=True))
    for a, b in zip(layer.get_weights(), copy.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_from_keras_errors():
    layer = _keras_lstm()
    with pytest.raises(ValueError, match=r"Hidden sizes differ: .* hidden size 5, .* hidden_size=6 .*hidden_size=5"):
        from_keras(layer, torch.nn.LSTM(I, 6))
    with pytest.raises(ValueError, match=r"Input sizes differ: .* takes 4 input features, .* takes 3 .*input_size=4"):
        from_keras(layer, torch.nn.LSTM(3, H))
    with pytest.raises(ValueError, match="unidirectional but the module's layer 0 is bidirectional"):
        from_keras(layer, torch.nn.LSTM(I, H, bidirectional=True))
    with pytest.raises(ValueError, match="bidirectional but the module's layer 0 is unidirectional"):
        from_keras(_keras_lstm(bidirectional=True), torch.nn.LSTM(I, H))
    with pytest.raises(ValueError, match="bias=False but the Keras layer .* nonzero biases.*bias=True"):
        from_keras(layer, torch.nn.LSTM(I, H, bias=False))
    with pytest.raises(ValueError, match="no layer 1"):
        from_keras(layer, torch.nn.LSTM(I, H), layer_index=1)
    with pytest.raises(ValueError, match=r"projection \(proj_size=2"):
        from_keras(layer, torch.nn.LSTM(I, H, proj_size=2))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"activation": "relu"}, "activation='relu'.*activation='tanh'"),
        (
            {"recurrent_activation": "hard_sigmoid"},
            "recurrent_activation='hard_sigmoid'.*recurrent_activation='sigmoid'",
        ),
        ({"go_backwards": True}, "go_backwards=True, expected False.*Bidirectional"),
    ],
)
def test_keras_settings_torch_cannot_express(kwargs, message):
    layer = _keras_lstm(**kwargs)
    with pytest.raises(ValueError, match=message):
        from_keras(layer)
    with pytest.raises(ValueError, match=message):
        to_keras(torch.nn.LSTM(I, H), layer)


def test_keras_layers_that_are_not_built_lstms():
    with pytest.raises(ValueError, match=r"not built.*layer.build\(\(None, None, input_size\)\)"):
        from_keras(keras.layers.LSTM(H))
    gru = keras.layers.GRU(H)
    gru.build((None, None, I))
    with pytest.raises(ValueError, match=r"is not an LSTM: its kernel is \(4, 15\)"):
        from_keras(gru)
    dense = keras.layers.Dense(H)
    dense.build((None, I))
    with pytest.raises(ValueError, match="Expected a Keras `LSTM`.*got Dense"):
        from_keras(dense)


def test_to_keras_errors():
    with pytest.raises(ValueError, match=r"proj_size=2.*Keras's LSTM has no equivalent.*proj_size=0"):
        to_keras(torch.nn.LSTM(I, H, proj_size=2), _keras_lstm())
    with pytest.raises(ValueError, match="Hidden sizes differ: .* hidden_size=6 .* units=5.*units=6"):
        to_keras(torch.nn.LSTM(I, 6), _keras_lstm())
    with pytest.raises(ValueError, match="Input sizes differ: .* takes 3 input features .* takes 4"):
        to_keras(torch.nn.LSTM(3, H), _keras_lstm())
    with pytest.raises(ValueError, match="bidirectional but .* is unidirectional.*Bidirectional"):
        to_keras(torch.nn.LSTM(I, H, bidirectional=True), _keras_lstm())
    with pytest.raises(ValueError, match="use_bias=False but the module's layer 0 has nonzero biases.*use_bias=True"):
        to_keras(_randomize_torch(torch.nn.LSTM(I, H)), _keras_lstm(use_bias=False))


@pytest.mark.parametrize("backend", ["auto", "lstmkit", "reference"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_keras_weights_round_trip_through_lstmkit_lstm(backend, bidirectional):
    """Keras -> lstmkit.nn.LSTM (every backend) gives Keras' numbers, and lstmkit -> Keras gives them back."""
    import lstmkit.nn as lnn

    layer = _keras_lstm(bidirectional=bidirectional)
    lstm = from_keras(layer, lnn.LSTM(I, H, bidirectional=bidirectional, backend=backend))
    x = _input(3)
    expected = _run_keras(layer, x)
    out, (h_n, c_n) = _run_torch(lstm, x)
    torch.testing.assert_close(out, expected[0])
    torch.testing.assert_close(h_n[0], expected[1])
    torch.testing.assert_close(c_n[0], expected[2])
    fresh = _keras_lstm(bidirectional=bidirectional)
    to_keras(lstm, fresh)
    torch.testing.assert_close(_run_keras(fresh, x)[0], out)
