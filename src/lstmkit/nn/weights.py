"""Weight layouts: lstmkit's own (which is torch's) and converters to and from other libraries' layouts.

lstmkit's LSTM uses exactly ``torch.nn.LSTM``'s parameter names, shapes and gate order, so a lstmkit ``state_dict``
loads into ``torch.nn.LSTM`` and back with no conversion. For layer ``k`` (suffix ``_reverse`` for the backward
direction):

==================  ===================  ===================================================
parameter           shape                layout
==================  ===================  ===================================================
``weight_ih_l{k}``  ``(4*H, I_k)``       ``(W_ii|W_if|W_ig|W_io)``; ``I_0 = I``, ``I_k = D*H_out`` for ``k > 0``
``weight_hh_l{k}``  ``(4*H, H_out)``     ``(W_hi|W_hf|W_hg|W_ho)``; ``H_out = P`` if ``P > 0`` else ``H``
``bias_ih_l{k}``    ``(4*H,)``           ``(b_ii|b_if|b_ig|b_io)``
``bias_hh_l{k}``    ``(4*H,)``           ``(b_hi|b_hf|b_hg|b_ho)``; two biases for torch/cuDNN compatibility
``weight_hr_l{k}``  ``(P, H)``           only when ``proj_size = P > 0``
==================  ===================  ===================================================

Other libraries stack the same four gate blocks in other orders (``GATE_ORDERS`` holds them in lstmkit's letters,
where ``g`` is the cell candidate that Keras and ONNX call ``c``):

=========================  =================  ==================  ================================================
library                    order, own names   in lstmkit letters  layout
=========================  =================  ==================  ================================================
torch.nn.LSTM, lstmkit     i, f, g, o         i, f, g, o          as above
Keras 3 ``LSTM``           i, f, c, o         i, f, g, o          kernel ``(I, 4H)``, recurrent_kernel ``(H, 4H)``,
                                                                  one bias ``(4H,)``
ONNX ``LSTM`` operator     i, o, f, c         i, o, f, g          W ``(D, 4H, I)``, R ``(D, 4H, H)``,
                                                                  B ``(D, 8H)`` = ``[Wb, Rb]``
haste ``LSTM``             i, g, f, o         i, g, f, o          kernel ``(I, 4H)``, recurrent_kernel ``(H, 4H)``,
                                                                  one bias ``(4H,)``
=========================  =================  ==================  ================================================

Every converter here is exact: the converted network computes the same function (up to float rounding), which
``tests/nn/test_weights.py`` and ``tests/nn/test_weights_keras.py`` check by running both sides on the same input.
Converters read and write modules by parameter *name* (``getattr(module, "weight_ih_l0")``), so they work for
``lstmkit.nn.LSTM``, ``torch.nn.LSTM`` and anything else with those attributes. Keras layers are duck-typed through
``layer.cell`` / ``layer.get_weights()`` / ``layer.set_weights()``; this module never imports keras.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar, overload

import torch
from torch import nn

__all__ = [
    "GATE_ORDER",
    "GATE_ORDERS",
    "reorder_gates",
    "from_keras",
    "to_keras",
    "to_onnx_lstm_weights",
    "from_onnx_lstm_weights",
]

GATE_ORDER: tuple[str, ...] = ("i", "f", "g", "o")
"""lstmkit's (and torch's) gate order: input, forget, cell candidate, output."""

GATE_ORDERS: dict[str, tuple[str, ...]] = {
    "torch": ("i", "f", "g", "o"),  # torch.nn.LSTM, cuDNN, lstmkit
    "keras": ("i", "f", "g", "o"),  # Keras kernel columns i, f, c, o: the same as torch, only transposed
    "onnx": ("i", "o", "f", "g"),  # ONNX LSTM operator rows i, o, f, c
    "haste": ("i", "g", "f", "o"),  # lmnt-com/haste LSTM
}
"""Gate orders of other libraries, written in lstmkit's letters (``g`` is the cell candidate, Keras/ONNX ``c``)."""

ModuleT = TypeVar("ModuleT", bound=nn.Module)

_DIRECTIONS = ("", "_reverse")  # torch's suffixes: forward, backward


# ----------------------------------------------------------------------------------------------------------------------
# Gate order


def _gate_order(order: str | Sequence[str], argument: str) -> tuple[str, ...]:
    """A library name from ``GATE_ORDERS`` or a sequence of distinct gate letters, as a tuple of letters."""
    if isinstance(order, str) and order in GATE_ORDERS:
        return GATE_ORDERS[order]
    letters = tuple(order)
    if not letters or len(set(letters)) != len(letters):
        raise ValueError(
            f"`{argument}` must be a library name ({', '.join(GATE_ORDERS)}) or a sequence of distinct gate letters "
            f"such as {GATE_ORDER}, got {order!r}."
        )
    return letters


def reorder_gates(
    w: torch.Tensor, src_order: str | Sequence[str], dst_order: str | Sequence[str], dim: int = 0
) -> torch.Tensor:
    """Reorders the gate blocks of a stacked weight or bias from one gate order to another.

    Args:
        w: a tensor whose dimension ``dim`` stacks one equal block per gate, e.g. ``weight_ih_l0`` ``(4*H, I)``
            with ``dim=0`` or a Keras kernel ``(I, 4*H)`` with ``dim=1``.
        src_order: the order of the blocks in ``w``: a key of ``GATE_ORDERS`` (``"torch"``, ``"keras"``,
            ``"onnx"``, ``"haste"``) or a sequence of distinct letters such as ``("i", "o", "f", "g")`` or ``"iofg"``.
        dst_order: the order wanted, in the same form; must hold the same letters as ``src_order``.
        dim: the dimension that stacks the gates.

    Returns:
        A new tensor, the same shape as ``w``, with the blocks in ``dst_order``.

    Raises:
        ValueError: if the orders are malformed or differ in their letters, or ``w.shape[dim]`` is not divisible by
            the number of gates.

    Example:
        >>> w = torch.arange(4.0)  # one number per gate, in torch's order i, f, g, o
        >>> reorder_gates(w, "torch", "onnx")  # ONNX order i, o, f, g(c)
        tensor([0., 3., 1., 2.])
    """
    src = _gate_order(src_order, "src_order")
    dst = _gate_order(dst_order, "dst_order")
    if sorted(src) != sorted(dst):
        raise ValueError(f"`src_order` {src} and `dst_order` {dst} must name the same gates.")
    if w.dim() == 0 or w.shape[dim] % len(src) != 0:
        raise ValueError(
            f"`w` must stack {len(src)} equal gate blocks along dim {dim}, got shape {tuple(w.shape)}. "
            f"Pass the `dim` that holds the {len(src)}*H gate rows or columns."
        )
    blocks = dict(zip(src, w.chunk(len(src), dim=dim), strict=True))
    return torch.cat([blocks[gate] for gate in dst], dim=dim)


# ----------------------------------------------------------------------------------------------------------------------
# Loading a converted layer into a module, with errors that say what differs


def _layer_param_names(module: nn.Module, layer_index: int) -> set[str]:
    """Names of the module's parameters that belong to layer ``layer_index`` (``*_l{k}`` and ``*_l{k}_reverse``)."""
    pattern = re.compile(rf"_l{layer_index}(_reverse)?$")
    return {name for name, _ in module.named_parameters(recurse=False) if pattern.search(name)}


def _check_plain_lstm_layer(module: nn.Module, layer_index: int, other: str) -> None:
    """Raises ValueError unless layer ``layer_index`` of ``module`` is a plain LSTM layer that ``other`` can express."""
    k = layer_index
    if getattr(module, f"weight_ih_l{k}", None) is None:
        num_layers = getattr(module, "num_layers", "?")
        raise ValueError(
            f"The module has no layer {k} (no parameter `weight_ih_l{k}`; num_layers={num_layers}). "
            f"Pass a `layer_index` below num_layers, or build the module with more layers."
        )
    w_hr = getattr(module, f"weight_hr_l{k}", None)
    if w_hr is not None:
        raise ValueError(
            f"The module's layer {k} has a projection (proj_size={w_hr.shape[0]}, `weight_hr_l{k}` of shape "
            f"{tuple(w_hr.shape)}), which {other} has no equivalent of. Build the module with proj_size=0."
        )
    plain = {
        f"{kind}_l{k}{suffix}" for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh") for suffix in _DIRECTIONS
    }
    extra = sorted(_layer_param_names(module, k) - plain)
    if extra:
        raise ValueError(
            f"The module's layer {k} has parameters {extra} beyond a plain LSTM's, which {other} has no equivalent of "
            f"(peepholes, layer norm, ...). Convert a plain LSTM layer instead."
        )


def _load_layer(module: ModuleT, state: Mapping[str, torch.Tensor], layer_index: int, source: str) -> ModuleT:
    """Loads the converted layer ``state`` (torch names for layer ``layer_index``) into ``module``, checking sizes."""
    k = layer_index
    _check_plain_lstm_layer(module, k, source)
    module_is_bidirectional = getattr(module, f"weight_ih_l{k}_reverse", None) is not None
    source_is_bidirectional = f"weight_ih_l{k}_reverse" in state
    if module_is_bidirectional != source_is_bidirectional:
        want = "bidirectional" if source_is_bidirectional else "unidirectional"
        have = "bidirectional" if module_is_bidirectional else "unidirectional"
        raise ValueError(
            f"Directions differ: {source} is {want} but the module's layer {k} is {have}. "
            f"Build the module with bidirectional={source_is_bidirectional}."
        )

    w_ih = getattr(module, f"weight_ih_l{k}")  # (4H, I_k)
    source_hidden = state[f"weight_hh_l{k}"].shape[1]
    source_input = state[f"weight_ih_l{k}"].shape[1]
    if w_ih.shape[0] != 4 * source_hidden:
        raise ValueError(
            f"Hidden sizes differ: {source} has hidden size {source_hidden}, the module's layer {k} has "
            f"hidden_size={w_ih.shape[0] // 4} (`weight_ih_l{k}` is {tuple(w_ih.shape)}). "
            f"Build the module with hidden_size={source_hidden}."
        )
    if w_ih.shape[1] != source_input:
        below = " (layer k > 0 takes D*H features from the layer below)" if k > 0 else ""
        fix = f"Build the module with input_size={source_input}." if k == 0 else "Check `layer_index`."
        raise ValueError(
            f"Input sizes differ: {source} takes {source_input} input features, the module's layer {k} takes "
            f"{w_ih.shape[1]}{below} (`weight_ih_l{k}` is {tuple(w_ih.shape)}). {fix}"
        )

    to_load = dict(state)
    if getattr(module, f"bias_ih_l{k}", None) is None:  # module built with bias=False
        biases = [name for name in state if name.startswith(("bias_ih", "bias_hh"))]
        if any(bool(state[name].any()) for name in biases):
            raise ValueError(
                f"Biases differ: the module was built with bias=False but {source} has nonzero biases. "
                "Build the module with bias=True."
            )
        for name in biases:
            del to_load[name]
    for name, tensor in to_load.items():
        expected = tuple(getattr(module, name).shape)
        if tuple(tensor.shape) != expected:
            raise ValueError(f"`{name}`: the module expects shape {expected}, {source} gives {tuple(tensor.shape)}.")

    result = module.load_state_dict(to_load, strict=False)
    assert not result.unexpected_keys, result.unexpected_keys  # every name was checked against the module above
    return module


# ----------------------------------------------------------------------------------------------------------------------
# Keras


def _keras_directions(layer: Any) -> list[tuple[str, Any, bool]]:
    """``(torch suffix, Keras LSTM layer, expected go_backwards)`` per direction of a Keras (Bidirectional) LSTM."""
    if hasattr(layer, "forward_layer") and hasattr(layer, "backward_layer"):  # keras.layers.Bidirectional
        # merge_mode only combines the two outputs after the fact ("concat" is torch's output layout, "sum" and
        # "ave" are out[..., :H] + out[..., H:] (/ 2), "mul" the product, None the pair); the weights are the same.
        return [("", layer.forward_layer, False), ("_reverse", layer.backward_layer, True)]
    return [("", layer, False)]


def _fn_name(fn: Any) -> str:
    return getattr(fn, "__name__", None) or type(fn).__name__


def _keras_cell(layer: Any, expected_go_backwards: bool) -> Any:
    """The LSTM cell of a built Keras ``LSTM`` layer, after checking that torch's LSTM computes the same function."""
    name = getattr(layer, "name", type(layer).__name__)
    cell = getattr(layer, "cell", layer)  # LSTM and RNN(LSTMCell) hold a cell; an LSTMCell is its own cell
    if not all(hasattr(cell, attr) for attr in ("units", "activation", "recurrent_activation", "use_bias")):
        raise ValueError(
            f"Expected a Keras `LSTM`, `RNN(LSTMCell)` or `Bidirectional(LSTM)` layer, got {type(layer).__name__} "
            f"'{name}'."
        )
    if not layer.get_weights():
        raise ValueError(
            f"The Keras layer '{name}' is not built, so it has no weights yet. Call it on an input first, "
            f"or build it with `layer.build((None, None, input_size))`."
        )
    activation = _fn_name(cell.activation)
    if activation != "tanh":
        raise ValueError(
            f"The Keras layer '{name}' has activation='{activation}', but torch's and lstmkit's LSTM use tanh for "
            f"the cell candidate and output. Build the Keras layer with activation='tanh' (the default)."
        )
    recurrent_activation = _fn_name(cell.recurrent_activation)
    if recurrent_activation != "sigmoid":
        raise ValueError(
            f"The Keras layer '{name}' has recurrent_activation='{recurrent_activation}', but torch's and lstmkit's "
            f"LSTM use sigmoid for the gates. Build the Keras layer with recurrent_activation='sigmoid' (the default)."
        )
    go_backwards = bool(getattr(layer, "go_backwards", False))
    if go_backwards != expected_go_backwards:
        raise ValueError(
            f"The Keras layer '{name}' has go_backwards={go_backwards}, expected {expected_go_backwards}: a "
            f"go_backwards layer reads the sequence backwards and returns its outputs in reversed time order, which "
            f"torch's forward direction does not. Use `Bidirectional(LSTM(...))` for a backward direction, or "
            f"go_backwards=False."
        )
    return cell


def _read_keras_lstm(layer: Any, expected_go_backwards: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(kernel (I, 4H), recurrent_kernel (H, 4H), bias (4H,))`` of a Keras LSTM as new tensors; zero bias if none."""
    cell = _keras_cell(layer, expected_go_backwards)
    arrays = [torch.tensor(array) for array in layer.get_weights()]  # copies: Keras may share memory with numpy
    kernel, recurrent_kernel = arrays[0], arrays[1]  # (I, 4H), (H, 4H)
    hidden = recurrent_kernel.shape[0]
    if kernel.shape[1] != 4 * hidden or recurrent_kernel.shape[1] != 4 * hidden:
        raise ValueError(
            f"The Keras layer '{getattr(layer, 'name', '?')}' is not an LSTM: its kernel is {tuple(kernel.shape)} "
            f"and recurrent kernel {tuple(recurrent_kernel.shape)}, expected (I, 4*units) and (units, 4*units) with "
            f"units={hidden}."
        )
    bias = arrays[2] if cell.use_bias else torch.zeros(4 * hidden, dtype=kernel.dtype)  # (4H,)
    return kernel, recurrent_kernel, bias


@overload
def from_keras(layer: Any, module: None = None, layer_index: int = 0) -> dict[str, torch.Tensor]: ...
@overload
def from_keras(layer: Any, module: ModuleT, layer_index: int = 0) -> ModuleT: ...
def from_keras(
    layer: Any, module: nn.Module | None = None, layer_index: int = 0
) -> dict[str, torch.Tensor] | nn.Module:
    """Converts a Keras 3 ``LSTM`` (or ``Bidirectional(LSTM)``) layer's weights to torch's layout.

    Keras stacks the gates in the same order as torch (Keras ``i, f, c, o``), stores the kernels transposed
    (``kernel (I, 4H)``, ``recurrent_kernel (H, 4H)``) and has a single bias ``(4H,)``, which goes into
    ``bias_ih`` with zeros in ``bias_hh`` (torch adds the two). A layer built with ``use_bias=False`` gets zero biases.
    ``unit_forget_bias``, ``dropout`` and ``recurrent_dropout`` only affect initialisation and training, not the
    function a trained layer computes, so they are ignored.

    For ``Bidirectional``, the forward layer fills the ``l{k}`` parameters and the backward layer the
    ``l{k}_reverse`` ones. The weights do not depend on ``merge_mode``; only ``merge_mode="concat"`` (the default)
    gives torch's output layout ``(B, T, 2*H)``. For the others, combine torch's output halves
    ``out[..., :H]`` and ``out[..., H:]`` yourself: sum (``"sum"``), mean (``"ave"``), product (``"mul"``) or the
    pair (``None``). Keras returns the final states as ``[h_fwd, c_fwd, h_bwd, c_bwd]``, torch as
    ``h_n[2*k], h_n[2*k+1]`` (and likewise ``c_n``).

    Args:
        layer: a built Keras ``LSTM``, ``RNN(LSTMCell)`` or ``Bidirectional`` of one of them, with
            ``activation="tanh"`` and ``recurrent_activation="sigmoid"`` (the defaults).
        module: if given, an LSTM module with torch's parameter names (``lstmkit.nn.LSTM``, ``torch.nn.LSTM``) whose
            layer ``layer_index`` receives the weights; its other layers are left as they are.
        layer_index: the layer ``k`` the weights are for: it names the keys ``*_l{k}`` and, with ``module``, picks the
            module's layer.

    Returns:
        Without ``module``: a dict of new tensors, ``weight_ih_l{k}`` ``(4H, I)``, ``weight_hh_l{k}`` ``(4H, H)``,
        ``bias_ih_l{k}``, ``bias_hh_l{k}`` ``(4H,)`` (plus the ``_reverse`` ones for ``Bidirectional``), in Keras's
        dtype, to pass to ``load_state_dict(..., strict=False)``. With ``module``: the module, loaded in place (the
        tensors are cast to its dtype and device).

    Raises:
        ValueError: if the layer is not a built Keras LSTM, uses other activations, or reads backwards on its own;
            if ``module`` differs from it in hidden size, input size, directions or bias, has no layer
            ``layer_index``, or that layer has a projection or other parameters Keras has no equivalent of.

    Example:
        >>> keras_lstm = keras.layers.LSTM(8, return_sequences=True)  # doctest: +SKIP
        >>> keras_lstm.build((None, None, 4))  # doctest: +SKIP
        >>> lstm = from_keras(keras_lstm, torch.nn.LSTM(4, 8, batch_first=True))  # doctest: +SKIP
    """
    k = layer_index
    state: dict[str, torch.Tensor] = {}
    for suffix, direction_layer, go_backwards in _keras_directions(layer):
        kernel, recurrent_kernel, bias = _read_keras_lstm(direction_layer, go_backwards)
        state[f"weight_ih_l{k}{suffix}"] = kernel.T.contiguous()  # (I, 4H) -> (4H, I)
        state[f"weight_hh_l{k}{suffix}"] = recurrent_kernel.T.contiguous()  # (H, 4H) -> (4H, H)
        state[f"bias_ih_l{k}{suffix}"] = bias  # (4H,) Keras's single bias; torch adds bias_ih + bias_hh
        state[f"bias_hh_l{k}{suffix}"] = torch.zeros_like(bias)  # (4H,)
    if module is None:
        return state
    return _load_layer(module, state, k, f"the Keras layer '{getattr(layer, 'name', type(layer).__name__)}'")


def to_keras(module: nn.Module, layer: Any, layer_index: int = 0) -> Any:
    """Writes layer ``layer_index`` of an LSTM module into a built Keras 3 ``LSTM`` (or ``Bidirectional(LSTM)``).

    The inverse of ``from_keras``: kernels are transposed to ``(I, 4H)`` and ``(H, 4H)``, and the Keras bias is
    ``bias_ih + bias_hh``. The forward direction goes to a ``Bidirectional`` layer's ``forward_layer``, the
    ``_reverse`` one to its ``backward_layer``; see ``from_keras`` for ``merge_mode`` and the order of the states.

    Args:
        module: an LSTM module with torch's parameter names (``lstmkit.nn.LSTM``, ``torch.nn.LSTM``).
        layer: a built Keras ``LSTM``, ``RNN(LSTMCell)`` or ``Bidirectional`` of one of them, with
            ``activation="tanh"`` and ``recurrent_activation="sigmoid"``, whose sizes match the module's layer:
            ``units == hidden_size`` and input size ``I`` (``D*H`` for layers above the first).
        layer_index: which of the module's layers to write.

    Returns:
        ``layer``, with its weights set (cast to the Keras weights' dtype).

    Raises:
        ValueError: if the module's layer has a projection (``proj_size > 0``; Keras has none) or other non-LSTM
            parameters; if the layer is not a built Keras LSTM, uses other activations, or differs from the module
            in sizes or directions; if the Keras layer has ``use_bias=False`` and the module's biases are nonzero.
    """
    k = layer_index
    keras_name = f"the Keras layer '{getattr(layer, 'name', type(layer).__name__)}'"
    _check_plain_lstm_layer(module, k, "Keras's LSTM")
    directions = _keras_directions(layer)
    module_is_bidirectional = getattr(module, f"weight_ih_l{k}_reverse", None) is not None
    if module_is_bidirectional != (len(directions) == 2):
        raise ValueError(
            f"Directions differ: the module's layer {k} is {'bi' if module_is_bidirectional else 'uni'}directional but "
            f"{keras_name} is "
            f"{'bi' if len(directions) == 2 else 'uni'}directional. "
            + (
                "Wrap the Keras LSTM in `keras.layers.Bidirectional`."
                if module_is_bidirectional
                else "Pass a plain LSTM."
            )
        )
    for suffix, direction_layer, go_backwards in directions:
        cell = _keras_cell(direction_layer, go_backwards)
        current = direction_layer.get_weights()  # [kernel (I, 4H), recurrent_kernel (H, 4H), bias (4H,)?]
        w_ih = getattr(module, f"weight_ih_l{k}{suffix}").detach()  # (4H, I)
        w_hh = getattr(module, f"weight_hh_l{k}{suffix}").detach()  # (4H, H)
        if tuple(current[1].shape) != tuple(w_hh.T.shape):
            raise ValueError(
                f"Hidden sizes differ: the module's layer {k} has hidden_size={w_hh.shape[1]} (`weight_hh_l{k}` is "
                f"{tuple(w_hh.shape)}), {keras_name} has units={current[1].shape[0]}. "
                f"Build the Keras layer with units={w_hh.shape[1]}."
            )
        if tuple(current[0].shape) != tuple(w_ih.T.shape):
            raise ValueError(
                f"Input sizes differ: the module's layer {k} takes {w_ih.shape[1]} input features (`weight_ih_l{k}` "
                f"is {tuple(w_ih.shape)}), {keras_name} takes {current[0].shape[0]}. "
                f"Build the Keras layer on inputs of {w_ih.shape[1]} features."
            )
        b_ih = getattr(module, f"bias_ih_l{k}{suffix}", None)
        b_hh = getattr(module, f"bias_hh_l{k}{suffix}", None)
        bias = (b_ih.detach() + b_hh.detach()) if b_ih is not None else torch.zeros(w_ih.shape[0])  # (4H,)
        new = [w_ih.T, w_hh.T]  # (I, 4H), (H, 4H)
        if cell.use_bias:
            new.append(bias)
        elif bool(bias.any()):
            raise ValueError(
                f"Biases differ: {keras_name} has use_bias=False but the module's layer {k} has nonzero biases. "
                f"Build the Keras layer with use_bias=True."
            )
        direction_layer.set_weights([_to_numpy(tensor, like) for tensor, like in zip(new, current, strict=True)])
    return layer


def _to_numpy(tensor: torch.Tensor, like: Any) -> Any:
    """A new numpy array with ``tensor``'s values in the dtype of the numpy array ``like``."""
    tensor = tensor.detach().cpu()
    if tensor.dtype == torch.bfloat16:  # numpy has no bfloat16
        tensor = tensor.float()
    return tensor.numpy().astype(like.dtype)  # astype copies, so Keras never shares memory with the module


# ----------------------------------------------------------------------------------------------------------------------
# ONNX


def to_onnx_lstm_weights(module: nn.Module, layer_index: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Layer ``layer_index`` of an LSTM module as the ``W``, ``R``, ``B`` inputs of ONNX's ``LSTM`` operator.

    ONNX stacks the gates as ``i, o, f, c`` (``c`` is lstmkit's ``g``) and has one tensor per kind for all
    directions, forward first. These inputs reproduce the module's layer with the operator's defaults
    (``activations`` sigmoid, tanh, tanh; no ``clip``; ``input_forget=0``; no peepholes ``P``). A module built with
    ``bias=False`` gives a zero ``B``. Only the weights are converted; writing the ONNX graph is up to the caller.

    Args:
        module: an LSTM module with torch's parameter names (``lstmkit.nn.LSTM``, ``torch.nn.LSTM``).
        layer_index: which of the module's layers to convert.

    Returns:
        ``(W, R, B)``: new tensors ``W (D, 4H, I)``, ``R (D, 4H, H)``, ``B (D, 8H)`` (``B[d] = [Wb, Rb]``, i.e.
        ``bias_ih`` then ``bias_hh``), in the module's dtype and device.

    Raises:
        ValueError: if the module has no layer ``layer_index``, or that layer has a projection (ONNX has none) or
            other non-LSTM parameters.
    """
    k = layer_index
    _check_plain_lstm_layer(module, k, "ONNX's LSTM operator")
    W, R, B = [], [], []
    for suffix in _DIRECTIONS:
        w_ih = getattr(module, f"weight_ih_l{k}{suffix}", None)
        if w_ih is None:  # unidirectional
            continue
        w_hh = getattr(module, f"weight_hh_l{k}{suffix}")
        b_ih = getattr(module, f"bias_ih_l{k}{suffix}", None)
        b_hh = getattr(module, f"bias_hh_l{k}{suffix}", None)
        if b_ih is None:  # module built with bias=False
            b_ih = b_hh = torch.zeros(w_ih.shape[0], dtype=w_ih.dtype, device=w_ih.device)
        W.append(reorder_gates(w_ih.detach(), "torch", "onnx"))  # (4H, I)
        R.append(reorder_gates(w_hh.detach(), "torch", "onnx"))  # (4H, H)
        Wb = reorder_gates(b_ih.detach(), "torch", "onnx")  # (4H,)
        Rb = reorder_gates(b_hh.detach(), "torch", "onnx")  # (4H,)
        B.append(torch.cat([Wb, Rb]))  # (8H,)
    return torch.stack(W), torch.stack(R), torch.stack(B)  # (D, 4H, I), (D, 4H, H), (D, 8H)


@overload
def from_onnx_lstm_weights(
    W: Any, R: Any, B: Any = None, *, module: None = None, layer_index: int = 0
) -> dict[str, torch.Tensor]: ...
@overload
def from_onnx_lstm_weights(W: Any, R: Any, B: Any = None, *, module: ModuleT, layer_index: int = 0) -> ModuleT: ...
def from_onnx_lstm_weights(
    W: Any, R: Any, B: Any = None, *, module: nn.Module | None = None, layer_index: int = 0
) -> dict[str, torch.Tensor] | nn.Module:
    """Converts the ``W``, ``R``, ``B`` inputs of ONNX's ``LSTM`` operator to torch's layout.

    The inverse of ``to_onnx_lstm_weights``. The operator must use its defaults (``activations`` sigmoid, tanh,
    tanh; no ``clip``; ``input_forget=0``; no peepholes ``P``) for torch's LSTM to compute the same function; those
    attributes are not weights and are not seen here, so check them on the node.

    Args:
        W: ``(D, 4H, I)`` input weights, gates ``i, o, f, c``, forward direction first (tensor or numpy array).
        R: ``(D, 4H, H)`` recurrent weights, same order.
        B: ``(D, 8H)`` biases, ``[Wb, Rb]`` per direction, or None for zeros (the operator's default).
        module: if given, an LSTM module with torch's parameter names whose layer ``layer_index`` receives the weights.
        layer_index: the layer ``k`` the weights are for: it names the keys ``*_l{k}`` and, with ``module``, picks the
            module's layer.

    Returns:
        Without ``module``: a dict of new tensors ``weight_ih_l{k}`` ``(4H, I)``, ``weight_hh_l{k}`` ``(4H, H)``,
        ``bias_ih_l{k}`` = ``Wb``, ``bias_hh_l{k}`` = ``Rb`` ``(4H,)``, plus the ``_reverse`` ones when ``D == 2``.
        With ``module``: the module, loaded in place.

    Raises:
        ValueError: if the shapes are not those above, or ``module`` differs from them in sizes, directions or bias
            (see ``from_keras``).
    """
    W, R = torch.as_tensor(W), torch.as_tensor(R)
    if W.dim() != 3 or W.shape[0] not in (1, 2) or W.shape[1] % 4 != 0:
        raise ValueError(f"`W` must have shape (D, 4*H, I) with D = 1 or 2, got {tuple(W.shape)}.")
    directions, hidden = W.shape[0], W.shape[1] // 4
    if tuple(R.shape) != (directions, 4 * hidden, hidden):
        raise ValueError(f"`R` must have shape (D, 4*H, H) = {(directions, 4 * hidden, hidden)}, got {tuple(R.shape)}.")
    B = torch.zeros(directions, 8 * hidden, dtype=W.dtype) if B is None else torch.as_tensor(B)
    if tuple(B.shape) != (directions, 8 * hidden):
        raise ValueError(f"`B` must have shape (D, 8*H) = {(directions, 8 * hidden)}, got {tuple(B.shape)}.")

    k = layer_index
    state: dict[str, torch.Tensor] = {}
    for d, suffix in zip(range(directions), _DIRECTIONS, strict=False):
        state[f"weight_ih_l{k}{suffix}"] = reorder_gates(W[d], "onnx", "torch")  # (4H, I)
        state[f"weight_hh_l{k}{suffix}"] = reorder_gates(R[d], "onnx", "torch")  # (4H, H)
        state[f"bias_ih_l{k}{suffix}"] = reorder_gates(B[d, : 4 * hidden], "onnx", "torch")  # (4H,) Wb
        state[f"bias_hh_l{k}{suffix}"] = reorder_gates(B[d, 4 * hidden :], "onnx", "torch")  # (4H,) Rb
    if module is None:
        return state
    return _load_layer(module, state, k, "the ONNX LSTM layer")
