"""Tests for the long-time-lag task generators, their baselines and success criteria
(lstmkit.tasks.long_lag.problems)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from lstmkit.tasks.long_lag import problems as lld
from lstmkit.tasks.long_lag.problems import (
    IGNORE_INDEX,
    REBER_SYMBOLS,
    TASKS,
    adding,
    copy,
    embedded_reber_string,
    get_task,
    is_reber,
    make_batch,
    noise_free_lag,
    reber_legal_next,
    reber_string,
    temporal_order,
)

SMALL_LENGTH = {
    "adding": 30,
    "adding_1997": 40,
    "copy": 15,
    "temporal_order": 40,
    "temporal_order_3": 40,
    "embedded_reber": 30,
    "noise_free_lag": 12,
}


def seeded(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def perfect_prediction(name: str, batch: dict) -> torch.Tensor:
    """The outputs of a model that has solved the task, in the layout `success` takes."""
    spec = TASKS[name]
    if spec.kind == "regression":
        return batch["y"].clone()  # (B, 1)
    if name == "embedded_reber":
        return batch["legal"].float() * 20.0  # (B, T, 7): a legal symbol is always the argmax
    num_classes = spec.sizes(batch["x"].shape[1] if name == "noise_free_lag" else None)[1]
    return F.one_hot(batch["y"], num_classes).float() * 30.0  # (B, T, K) or (B, K) logits


def baseline_prediction(name: str, batch: dict) -> torch.Tensor:
    """The outputs of the task's documented baseline predictor."""
    batch_size, steps = batch["x"].shape[:2]
    if name == "adding":
        return torch.ones(batch_size, 1)  # always 1
    if name == "adding_1997":
        return torch.full((batch_size, 1), 0.5)  # constant 0.5
    if name == "copy":
        logits = torch.full((batch_size, steps, 9), -30.0)
        logits[:, :, lld.COPY_BLANK] = 30.0  # blanks, certain ...
        logits[:, steps - 10 :, :] = 0.0
        logits[:, steps - 10 :, lld.COPY_BLANK] = -30.0  # ... then uniform over the 8 symbols
        return logits
    if name in ("temporal_order", "temporal_order_3"):
        logits = torch.zeros(batch_size, TASKS[name].output_size)
        logits[:, 0] = 30.0  # the best constant: always class 0, right for 1/K of the sequences
        return logits
    if name == "embedded_reber":
        # legal everywhere, except the second-to-last step: always guess T (wrong for the P strings)
        pred = batch["legal"].float() * 20.0
        last = batch["lengths"] - 2  # the step that predicts the repeated T/P
        rows = torch.arange(batch_size)
        pred[rows, last] = 0.0
        pred[rows, last, REBER_SYMBOLS.index("T")] = 20.0
        return pred
    if name == "noise_free_lag":
        logits = torch.full((batch_size, steps + 1), -30.0)
        logits[:, :2] = 0.0  # p(x) = p(y) = 1/2
        return logits
    raise AssertionError(name)


# --- registry, shapes, dtypes, seeding --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(TASKS))
def test_shapes_and_dtypes(name):
    spec = TASKS[name]
    length = SMALL_LENGTH[name]
    batch = make_batch(name, 5, length, seeded())
    x, y, lengths, mask = batch["x"], batch["y"], batch["lengths"], batch["mask"]
    input_size, output_size = spec.sizes(length)
    assert x.dtype == torch.float32 and x.dim() == 3
    assert x.shape[0] == 5 and x.shape[2] == input_size
    steps = x.shape[1]
    assert mask.dtype == torch.bool and mask.shape == (5, steps)
    if spec.kind == "regression":
        assert y.dtype == torch.float32 and y.shape == (5, 1)
    elif spec.kind == "classification at end":
        assert y.dtype == torch.int64 and y.shape == (5,)
        assert int(y.min()) >= 0 and int(y.max()) < output_size
    else:
        assert y.dtype == torch.int64 and y.shape == (5, steps)
        assert int(y[mask].min()) >= 0 and int(y[mask].max()) < output_size
    if spec.kind != "classification per step":
        assert torch.equal(mask.sum(1), torch.ones(5, dtype=torch.long))  # one loss step per sequence
    if lengths is not None:
        assert lengths.dtype == torch.int64 and lengths.shape == (5,)
        assert int(lengths.max()) <= steps
        assert not x[torch.arange(steps) >= lengths[:, None]].any()  # zero past each length
    if spec.kind != "classification per step":
        last = lengths - 1 if lengths is not None else torch.full((5,), steps - 1)
        assert torch.equal(mask.nonzero()[:, 1], last)


@pytest.mark.parametrize("name", sorted(TASKS))
def test_same_seed_same_batch_different_seed_different_batch(name):
    first = make_batch(name, 8, SMALL_LENGTH[name], seeded(123))
    again = make_batch(name, 8, SMALL_LENGTH[name], seeded(123))
    other = make_batch(name, 8, SMALL_LENGTH[name], seeded(124))
    assert first.keys() == again.keys()
    for key in first:
        if first[key] is None:
            assert again[key] is None
        else:
            assert torch.equal(first[key], again[key]), key
    assert not torch.equal(first["x"], other["x"])


def test_default_length_and_spec_method_match_make_batch():
    spec = get_task("copy")
    batch = make_batch(spec, 2, generator=seeded(1))
    assert batch["x"].shape == (2, spec.default_length + 20, 10)
    assert torch.equal(spec.make_batch(2, generator=seeded(1))["x"], batch["x"])
    assert TASKS["noise_free_lag"].sizes(10) == (11, 11)
    assert TASKS["noise_free_lag"].sizes() == (101, 101)


def test_unknown_task_lists_the_valid_names():
    with pytest.raises(ValueError, match="Unknown task 'addding'.*adding, adding_1997, copy"):
        make_batch("addding", 2, 10)


@pytest.mark.parametrize(
    ("name", "length", "message"),
    [
        ("adding", 1, "`length` must be >= 2"),
        ("adding_1997", 19, "`length` must be >= 20"),
        ("copy", 0, "`length` must be >= 1"),
        ("temporal_order", 9, "`length` must be >= 10"),
        ("embedded_reber", 7, "`length` must be >= 8"),
        ("noise_free_lag", 0, "`length` must be >= 1"),
        ("adding", 10.0, "must be an integer"),
    ],
)
def test_invalid_length_is_a_clear_error(name, length, message):
    with pytest.raises(ValueError, match=message):
        make_batch(name, 2, length, seeded())


def test_invalid_batch_size_and_options():
    with pytest.raises(ValueError, match="`batch_size` must be >= 1"):
        make_batch("adding", 0, 10)
    with pytest.raises(ValueError, match="Unknown adding form 'uRNN'"):
        adding(2, 10, seeded(), form="uRNN")
    with pytest.raises(ValueError, match="`num_positions` must be 2"):
        temporal_order(2, 100, seeded(), num_positions=4)


# --- adding ---------------------------------------------------------------------------------------------------------


def test_adding_one_marker_per_half_and_target_is_the_marked_sum():
    batch = adding(256, 40, seeded(2))
    values, markers = batch["x"][..., 0], batch["x"][..., 1]  # (B, T)
    assert ((values >= 0) & (values <= 1)).all()
    assert set(markers.unique().tolist()) == {0.0, 1.0}
    assert (markers[:, :20].sum(1) == 1).all() and (markers[:, 20:].sum(1) == 1).all()
    torch.testing.assert_close(batch["y"][:, 0], (values * markers).sum(1))


def test_adding_odd_and_minimal_lengths():
    for length in (2, 3, 7):
        markers = adding(64, length, seeded(3))["x"][..., 1]
        half = length // 2
        assert (markers[:, :half].sum(1) == 1).all() and (markers[:, half:].sum(1) == 1).all()


def test_adding_constant_predictor_matches_baseline():
    batch = adding(20_000, 20, seeded(4))
    mse = float(((batch["y"] - 1.0) ** 2).mean())
    assert abs(mse - 1 / 6) < 0.006  # standard error ≈ 0.0014
    assert TASKS["adding"].baseline() == pytest.approx(1 / 6)


def test_adding_1997_layout():
    length = 100
    batch = adding(512, length, seeded(5), form="1997")
    lengths, values, markers = batch["lengths"], batch["x"][..., 0], batch["x"][..., 1]  # (B,), (B, T_max), (B, T_max)
    assert batch["x"].shape[1] == 110
    assert int(lengths.min()) >= length and int(lengths.max()) <= length + length // 10
    assert len(lengths.unique()) > 5  # lengths really vary
    valid = torch.arange(110) < lengths[:, None]
    assert (values[valid].abs() <= 1).all() and values[valid].min() < -0.9
    marked = markers == 1.0
    assert (marked.sum(1) == 2).all()
    positions = marked.nonzero()[:, 1].view(-1, 2)  # (B, 2) sorted
    assert (positions[:, 0] < 10).all()  # X1 among the first 10 pairs
    assert (positions[:, 1] <= length // 2 - 1).all()  # X2 among the first T/2 - 1 unmarked pairs
    rows = torch.arange(512)
    assert (markers[rows, lengths - 1] == -1.0).all()  # the last pair
    first_unmarked = markers[:, 0] != 1.0
    assert (markers[first_unmarked, 0] == -1.0).all()  # the first pair, unless it is marked
    assert (values[~first_unmarked, 0] == 0.0).all()  # "we set X1 to zero"
    assert ((markers == -1.0).sum(1) == 1 + first_unmarked.long()).all()  # no other -1 markers
    torch.testing.assert_close(batch["y"][:, 0], 0.5 + (values * marked).sum(1) / 4)
    assert ((batch["y"] >= 0) & (batch["y"] <= 1)).all()


def test_adding_1997_constant_predictor_matches_baseline():
    batch = adding(40_000, 100, seeded(6), form="1997")
    wrong = float(((batch["y"] - 0.5).abs() >= 0.04).float().mean())
    assert abs(wrong - TASKS["adding_1997"].baseline(100)) < 0.01  # standard error ≈ 0.002
    # by hand at T = 100: q = 1/10 + (9/10)/49 = 0.118367; 1 - (0.881633 * 0.1536 + 0.118367 * 0.16) = 0.845642
    assert TASKS["adding_1997"].baseline(100) == pytest.approx(0.845642, abs=1e-6)


# --- copy -----------------------------------------------------------------------------------------------------------


def test_copy_layout():
    lag = 15
    batch = copy(32, lag, seeded(7))
    x, y = batch["x"], batch["y"]
    assert x.shape == (32, lag + 20, 10)
    assert (x.sum(-1) == 1).all()  # one-hot at every step
    inputs = x.argmax(-1)  # (B, T + 20)
    symbols = inputs[:, :10]
    assert (symbols < 8).all()
    assert (inputs[:, 10 : 10 + lag - 1] == 8).all()  # T - 1 blanks
    assert (inputs[:, 10 + lag - 1] == 9).all()  # the delimiter
    assert (inputs[:, 10 + lag :] == 8).all()  # 10 blanks
    assert (y[:, : lag + 10] == 8).all()  # T + 10 blank targets
    assert torch.equal(y[:, lag + 10 :], symbols)  # then the 10 symbols
    assert batch["mask"].all() and batch["lengths"] is None


def test_copy_baseline_formula_matches_an_empirical_memoryless_predictor():
    lag = 30
    steps = lag + 20
    # A memoryless predictor knows the position, not the symbols: fit the target distribution per position ...
    fit = copy(20_000, lag, seeded(8))["y"]  # (N, T + 20)
    counts = F.one_hot(fit, 9).sum(0).float() + 1e-3  # (T + 20, 9), smoothed
    log_p = (counts / counts.sum(-1, keepdim=True)).log()
    # ... and score it on fresh data.
    test = copy(20_000, lag, seeded(9))["y"]
    cross_entropy = float(-log_p[torch.arange(steps), test].mean())
    expected = 10 * math.log(8) / (lag + 20)
    assert TASKS["copy"].baseline(lag) == pytest.approx(expected)
    assert cross_entropy == pytest.approx(expected, rel=0.01)


# --- temporal order -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("num_positions", [2, 3])
def test_temporal_order_class_matches_the_symbols(num_positions):
    batch = temporal_order(256, 100, seeded(10), num_positions=num_positions)
    x, lengths = batch["x"], batch["lengths"]
    assert int(lengths.min()) >= 100 and int(lengths.max()) <= 110
    symbols = x.argmax(-1)  # (B, T_max)
    windows = [(10, 20), (50, 60)] if num_positions == 2 else [(10, 20), (33, 43), (66, 76)]
    for row in range(256):
        n = int(lengths[row])
        seq = "".join("abcdEBXY"[int(s)] for s in symbols[row, :n])
        assert seq[0] == "E" and seq[-1] == "B"
        assert set(seq[1:-1]) <= set("abcdXY")
        positions = [t for t, s in enumerate(seq) if s in "XY"]
        assert len(positions) == num_positions
        assert all(lo <= t <= hi for t, (lo, hi) in zip(positions, windows, strict=True))
        label = int("".join("01"[s == "Y"] for s in (seq[t] for t in positions)), 2)
        assert int(batch["y"][row]) == label
    assert len(batch["y"].unique()) == 2**num_positions


def test_temporal_order_classes_are_named_as_in_the_paper():
    batch = temporal_order(64, 100, seeded(11))
    symbols = batch["x"].argmax(-1)
    names = {"XX": 0, "XY": 1, "YX": 2, "YY": 3}  # Q, R, S, U
    for row in range(64):
        pattern = "".join("abcdEBXY"[int(s)] for s in symbols[row] if int(s) >= 6)
        assert names[pattern[:2]] == int(batch["y"][row])


# --- embedded Reber -------------------------------------------------------------------------------------------------


def test_reber_strings_are_accepted_by_the_grammar():
    g = seeded(12)
    for _ in range(200):
        plain = reber_string(g)
        embedded = embedded_reber_string(g)
        assert is_reber(plain, embedded=False)
        assert is_reber(embedded)
        assert embedded[1] == embedded[-2] and is_reber(embedded[2:-2], embedded=False)


def test_reber_rejects_strings_outside_the_grammar():
    assert not is_reber("BTSSXXTVVE")  # plain, not embedded
    assert not is_reber("BTBTXSEPE")  # T ... P: the long-lag symbols do not match
    assert not is_reber("BTXXE", embedded=False)
    assert not is_reber("BTXS", embedded=False)  # stops before E
    with pytest.raises(ValueError, match="'V' at position 2 is illegal"):
        reber_legal_next("BTVVE", embedded=False)


def test_reber_legal_next_symbols_on_a_hand_worked_string():
    legal = reber_legal_next("BTBTSSXXTVVETE")
    expected = [
        "TP",  # after B: the embedding branch
        "B",  # after B T: the inner string starts
        "TP",  # after inner B
        "SX",  # node 2
        "SX",  # S loops on node 2
        "SX",
        "XS",  # X -> node 4
        "TV",  # X -> node 3
        "TV",  # T loops on node 3
        "PV",  # V -> node 5
        "E",  # V -> node 6
        "T",  # after the inner E: the T remembered from step 1
        "E",
    ]
    assert [set(s) for s in legal] == [set(s) for s in expected]
    assert [set(s) for s in reber_legal_next("BPVVE", embedded=False)] == [{"T", "P"}, {"T", "V"}, {"P", "V"}, {"E"}]


def test_embedded_reber_batch_encodes_the_strings():
    batch = make_batch("embedded_reber", 64, 30, seeded(13))
    x, y, lengths, legal, mask = batch["x"], batch["y"], batch["lengths"], batch["legal"], batch["mask"]
    for row in range(64):
        n = int(lengths[row])
        string = "".join(REBER_SYMBOLS[int(i)] for i in x[row, :n].argmax(-1)) + REBER_SYMBOLS[int(y[row, n - 1])]
        assert is_reber(string)
        assert "".join(REBER_SYMBOLS[int(i)] for i in y[row, :n]) == string[1:]
        for t, allowed in enumerate(reber_legal_next(string)):
            assert {REBER_SYMBOLS[i] for i in legal[row, t].nonzero()[:, 0].tolist()} == allowed
    assert (y[~mask] == IGNORE_INDEX).all() and not legal[~mask].any()
    assert legal[mask].gather(-1, y[mask].unsqueeze(-1)).all()  # every target is legal
    assert int(lengths.min()) >= 8 and int(lengths.max()) <= 30


# --- noise-free lag -------------------------------------------------------------------------------------------------


def test_noise_free_lag_sequences():
    p = 12
    batch = noise_free_lag(64, p, seeded(14))
    symbols = batch["x"].argmax(-1)  # (B, p)
    assert batch["x"].shape == (64, p, p + 1) and (batch["x"].sum(-1) == 1).all()
    assert torch.equal(symbols[:, 0], batch["y"])  # the last symbol repeats the first
    assert torch.equal(symbols[:, 1:], torch.arange(2, p + 1).expand(64, -1))  # a1 .. a_{p-1}
    assert set(batch["y"].tolist()) == {0, 1}


# --- success criteria -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(TASKS))
def test_success_is_true_for_perfect_and_false_for_baseline_predictions(name):
    spec = TASKS[name]
    length = SMALL_LENGTH[name]
    batch = make_batch(name, 512, length, seeded(15))
    solved, value = spec.success(perfect_prediction(name, batch), batch)
    assert solved, (name, value)
    solved, value = spec.success(baseline_prediction(name, batch), batch)
    assert not solved, (name, value)
    assert value == pytest.approx(spec.baseline(length), abs=0.06), name


def test_success_accepts_full_sequence_outputs_and_probabilities():
    batch = make_batch("temporal_order", 64, 20, seeded(16))
    steps = batch["x"].shape[1]
    full = torch.zeros(64, steps, 4)  # (B, T, K): a model's output at every step
    full[batch["mask"]] = F.one_hot(batch["y"], 4).float() * 30.0
    assert TASKS["temporal_order"].success(full, batch) == (True, 0.0)
    probabilities = F.one_hot(batch["y"], 4).float() * 0.8 + 0.05  # sigmoid-style outputs, all errors <= 0.2
    assert TASKS["temporal_order"].success(probabilities, batch, scores="probabilities").solved
    assert not TASKS["temporal_order"].success(probabilities * 0.5, batch, scores="probabilities").solved
    with pytest.raises(ValueError, match="`scores` must be 'logits' or 'probabilities'"):
        TASKS["temporal_order"].success(probabilities, batch, scores="softmax")


def test_success_thresholds():
    batch = make_batch("adding", 1000, 10, seeded(17))
    near = batch["y"] + 0.1  # MSE 0.01 <= 0.1 / 6
    far = batch["y"] + 0.15  # MSE 0.0225 > 0.1 / 6
    assert TASKS["adding"].success(near, batch) == (True, pytest.approx(0.01))
    assert not TASKS["adding"].success(far, batch).solved
    batch = make_batch("adding_1997", 2560, 20, seeded(18))
    pred = batch["y"].clone()
    pred[0] += 0.05  # 1 of 2,560 wrong, as in the paper: solved
    assert TASKS["adding_1997"].success(pred, batch) == (True, pytest.approx(1 / 2560))
    pred[1] -= 0.05  # 2 of 2,560: not
    assert not TASKS["adding_1997"].success(pred, batch).solved


def test_success_rejects_mismatched_predictions():
    batch = make_batch("adding", 8, 10, seeded(19))
    with pytest.raises(ValueError, match="Expected predictions of shape"):
        TASKS["adding"].success(torch.zeros(7, 1), batch)
    batch = make_batch("copy", 4, 5, seeded(20))
    with pytest.raises(ValueError, match="Expected 9 class scores"):
        TASKS["copy"].success(torch.zeros(4, 25, 10), batch)
