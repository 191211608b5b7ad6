"""Gate orders and the ONNX layout: pure tensor conversions, checked against torch.nn.LSTM and the ONNX spec."""

import itertools

import numpy as np
import pytest
import torch

from lstmkit.nn.weights import GATE_ORDER, GATE_ORDERS, from_onnx_lstm_weights, reorder_gates, to_onnx_lstm_weights

I, H = 4, 5  # input_size, hidden_size


def _random_lstm(**kwargs) -> torch.nn.LSTM:
    """A torch.nn.LSTM whose every parameter, biases included, is random (torch inits both biases the same way)."""
    lstm = torch.nn.LSTM(I, H, **kwargs)
    with torch.no_grad():
        for p in lstm.parameters():
            p.normal_(0.0, 0.5)
    return lstm


def _onnx_lstm(x, W, R, B):
    """ONNX's LSTM operator with its default attributes, written from the spec (onnx/docs/Operators.md#LSTM).

    x: (T, B, I); W: (D, 4H, I), R: (D, 4H, H), B: (D, 8H), gates i, o, f, c. Returns Y: (T, D, B, H).
    """
    T, D, H_ = x.shape[0], W.shape[0], R.shape[2]
    Y = torch.zeros(T, D, x.shape[1], H_, dtype=x.dtype)
    for d in range(D):  # direction 0 is forward, 1 is reverse
        Wi, Wo, Wf, Wc = W[d].chunk(4)
        Ri, Ro, Rf, Rc = R[d].chunk(4)
        Wbi, Wbo, Wbf, Wbc, Rbi, Rbo, Rbf, Rbc = B[d].chunk(8)
        h = c = torch.zeros(x.shape[1], H_, dtype=x.dtype)
        for t in range(T) if d == 0 else reversed(range(T)):
            xt = x[t]
            i = torch.sigmoid(xt @ Wi.T + h @ Ri.T + Wbi + Rbi)
            f = torch.sigmoid(xt @ Wf.T + h @ Rf.T + Wbf + Rbf)
            ct = torch.tanh(xt @ Wc.T + h @ Rc.T + Wbc + Rbc)
            c = f * c + i * ct
            o = torch.sigmoid(xt @ Wo.T + h @ Ro.T + Wbo + Rbo)
            h = o * torch.tanh(c)
            Y[t, d] = h
    return Y


def test_gate_orders_are_written_in_lstmkit_letters():
    assert GATE_ORDER == ("i", "f", "g", "o")
    assert GATE_ORDERS["torch"] == GATE_ORDERS["keras"] == GATE_ORDER
    for order in GATE_ORDERS.values():
        assert sorted(order) == sorted(GATE_ORDER)


def test_reorder_gates_moves_whole_blocks():
    w = torch.arange(8.0).view(4, 2)  # rows: block i = [0, 1], f = [2, 3], g = [4, 5], o = [6, 7]
    expected = torch.tensor([[0.0, 1.0], [6.0, 7.0], [2.0, 3.0], [4.0, 5.0]])  # i, o, f, g
    torch.testing.assert_close(reorder_gates(w, "torch", "onnx"), expected, rtol=0, atol=0)
    torch.testing.assert_close(reorder_gates(w, GATE_ORDER, "iofg"), expected, rtol=0, atol=0)
    torch.testing.assert_close(reorder_gates(w.T, "torch", "onnx", dim=1), expected.T, rtol=0, atol=0)
    torch.testing.assert_close(reorder_gates(w, "torch", "haste")[:, 0], torch.tensor([0.0, 4.0, 2.0, 6.0]))


@pytest.mark.parametrize("src, dst", list(itertools.permutations(GATE_ORDERS, 2)))
def test_reorder_gates_round_trip(src, dst):
    w = torch.randn(4 * H, I)
    back = reorder_gates(reorder_gates(w, src, dst), dst, src)
    torch.testing.assert_close(back, w, rtol=0, atol=0)


def test_reorder_gates_errors():
    w = torch.randn(4 * H, I)
    with pytest.raises(ValueError, match="must name the same gates"):
        reorder_gates(w, "torch", ("i", "f", "g", "x"))
    with pytest.raises(ValueError, match="library name .* or a sequence of distinct gate letters"):
        reorder_gates(w, "tensorflow", "torch")
    with pytest.raises(ValueError, match=r"must stack 4 equal gate blocks along dim 1, got shape \(20, 5\)"):
        reorder_gates(torch.randn(4 * H, H), "torch", "onnx", dim=1)  # a weight_hh passed with the wrong dim


@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("bias", [False, True])
def test_onnx_weights_match_the_operator_spec(bidirectional, bias):
    lstm = _random_lstm(bidirectional=bidirectional, bias=bias).double()
    x = torch.randn(7, 3, I, dtype=torch.float64)  # (T, B, I)
    W, R, B = to_onnx_lstm_weights(lstm)
    D = 2 if bidirectional else 1
    assert (W.shape, R.shape, B.shape) == ((D, 4 * H, I), (D, 4 * H, H), (D, 8 * H))
    out, _ = lstm(x)  # (T, B, D*H)
    expected = out.view(7, 3, D, H).permute(0, 2, 1, 3)  # (T, D, B, H), ONNX's Y
    torch.testing.assert_close(_onnx_lstm(x, W, R, B), expected, rtol=1e-10, atol=1e-12)


def test_onnx_round_trip_every_layer():
    lstm = _random_lstm(num_layers=2, bidirectional=True)
    copy = torch.nn.LSTM(I, H, num_layers=2, bidirectional=True)
    for k in range(2):
        W, R, B = to_onnx_lstm_weights(lstm, layer_index=k)
        assert from_onnx_lstm_weights(W, R, B, module=copy, layer_index=k) is copy
    for name, p in lstm.state_dict().items():
        torch.testing.assert_close(copy.state_dict()[name], p, rtol=0, atol=0, msg=name)
    x = torch.randn(6, 2, I)
    torch.testing.assert_close(copy(x)[0], lstm(x)[0], rtol=0, atol=0)


def test_from_onnx_state_dict_without_module():
    W, R, B = to_onnx_lstm_weights(_random_lstm())
    state = from_onnx_lstm_weights(W.numpy(), R.numpy(), None, layer_index=3)  # numpy arrays, no B
    assert sorted(state) == ["bias_hh_l3", "bias_ih_l3", "weight_hh_l3", "weight_ih_l3"]
    assert state["weight_ih_l3"].shape == (4 * H, I) and state["weight_hh_l3"].shape == (4 * H, H)
    assert not state["bias_ih_l3"].any() and not state["bias_hh_l3"].any()
    Wb = torch.arange(4 * H, dtype=torch.float32)  # ONNX order i, o, f, c: H values each
    state = from_onnx_lstm_weights(W, R, torch.cat([Wb, -Wb])[None])
    torch.testing.assert_close(state["bias_ih_l0"], reorder_gates(Wb, "onnx", "torch"))
    torch.testing.assert_close(state["bias_ih_l0"][H : 2 * H], Wb[2 * H : 3 * H])  # f is ONNX's third block
    torch.testing.assert_close(state["bias_hh_l0"], -state["bias_ih_l0"])


def test_onnx_into_module_without_bias():
    W, R, B = to_onnx_lstm_weights(_random_lstm())
    no_bias = torch.nn.LSTM(I, H, bias=False)
    from_onnx_lstm_weights(W, R, torch.zeros_like(B), module=no_bias)  # zero biases fit a bias=False module
    torch.testing.assert_close(no_bias.weight_hh_l0, reorder_gates(R[0], "onnx", "torch"))
    with pytest.raises(ValueError, match="bias=False but the ONNX LSTM layer has nonzero biases"):
        from_onnx_lstm_weights(W, R, B, module=no_bias)


def test_onnx_errors():
    W, R, B = to_onnx_lstm_weights(_random_lstm())
    with pytest.raises(ValueError, match=r"`W` must have shape \(D, 4\*H, I\)"):
        from_onnx_lstm_weights(W[0], R, B)
    with pytest.raises(ValueError, match=r"`R` must have shape \(D, 4\*H, H\) = \(1, 20, 5\), got \(1, 20, 4\)"):
        from_onnx_lstm_weights(W, R[..., :4], B)
    with pytest.raises(ValueError, match=r"`B` must have shape \(D, 8\*H\) = \(1, 40\), got \(1, 20\)"):
        from_onnx_lstm_weights(W, R, B[:, : 4 * H])
    with pytest.raises(ValueError, match="Hidden sizes differ: .* hidden size 5, .* hidden_size=6"):
        from_onnx_lstm_weights(W, R, B, module=torch.nn.LSTM(I, 6))
    with pytest.raises(ValueError, match="Input sizes differ: .* takes 4 input features, .* takes 3"):
        from_onnx_lstm_weights(W, R, B, module=torch.nn.LSTM(3, H))
    with pytest.raises(ValueError, match="unidirectional but the module's layer 0 is bidirectional"):
        from_onnx_lstm_weights(W, R, B, module=torch.nn.LSTM(I, H, bidirectional=True))
    with pytest.raises(ValueError, match="no layer 1 .*num_layers=1"):
        from_onnx_lstm_weights(W, R, B, module=torch.nn.LSTM(I, H), layer_index=1)
    with pytest.raises(ValueError, match=r"projection \(proj_size=2.*ONNX's LSTM operator .*proj_size=0"):
        to_onnx_lstm_weights(torch.nn.LSTM(I, H, proj_size=2))


def test_non_lstm_parameters_are_refused():
    lstm = torch.nn.LSTM(I, H)
    lstm.register_parameter("weight_ci_l0", torch.nn.Parameter(torch.zeros(H)))  # a peephole, say
    with pytest.raises(ValueError, match=r"parameters \['weight_ci_l0'\] beyond a plain LSTM's"):
        to_onnx_lstm_weights(lstm)


def test_numpy_is_accepted_like_torch():
    W, R, B = (t.numpy() for t in to_onnx_lstm_weights(_random_lstm()))
    assert isinstance(W, np.ndarray)
    a = from_onnx_lstm_weights(W, R, B)
    b = from_onnx_lstm_weights(torch.from_numpy(W), torch.from_numpy(R), torch.from_numpy(B))
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=0, atol=0)
