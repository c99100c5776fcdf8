"""The from-scratch cells against their torch twins: same outputs, same gradients.

Weights are copied between the two (scratch -> torch for the cells, torch -> scratch for the
sequence module, so load_state_dict is exercised both ways), then the same random weighting of
every output and final state is backpropagated and every gradient compared: each parameter's,
the input's and the initial state's. Everything runs in float32, the dtype the toolkit ships with.
"""

import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from nmt.models.cells import (
    CELLS,
    GRUCell,
    LSTMCell,
    RNNCell,
    ScratchRNN,
    reverse_within_length,
)

ATOL = 1e-5
MODES = ["lstm", "gru", "rnn"]
BATCH, SEQ, INPUT, HIDDEN = 5, 7, 4, 6
LENGTHS = torch.tensor([4, SEQ, 1, 6, 3])  # unsorted, with a length-1 and a full-length row
TORCH_CELLS = {"lstm": nn.LSTMCell, "gru": nn.GRUCell, "rnn": nn.RNNCell}
TORCH_RNNS = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}


def assert_close(actual, expected, what):
    assert actual.shape == expected.shape, f"{what}: shape {tuple(actual.shape)} != {tuple(expected.shape)}"
    diff = (actual - expected).abs().max().item()
    assert diff <= ATOL, f"{what}: max difference {diff:.2e} > {ATOL}"


def flatten(result):
    """h, (h, c), (outputs, h_n) or (outputs, (h_n, c_n)) -> a flat list of tensors."""
    if isinstance(result, torch.Tensor):
        return [result]
    return [t for part in result for t in flatten(part)]


def forward_backward(module, call, x, state, weights=None):
    """Run ``call(module, x, hx)``, backpropagate ``weights`` (random if None) times the
    results, and return the results, every gradient by name, and the weights used."""
    module.zero_grad()
    x = x.clone().requires_grad_(True)
    state = [s.clone().requires_grad_(True) for s in state]
    hx = None if not state else tuple(state) if len(state) == 2 else state[0]
    results = flatten(call(module, x, hx))
    weights = weights or [torch.randn_like(t) for t in results]
    sum((r * w).sum() for r, w in zip(results, weights)).backward()
    grads = {name: p.grad for name, p in module.named_parameters()}
    grads["x"] = x.grad
    grads.update({f"initial state {i}": s.grad for i, s in enumerate(state)})
    return results, grads, weights


def assert_same_outputs_and_gradients(scratch, reference, call, x, state, output_names):
    theirs, their_grads, weights = forward_backward(reference, call, x, state)
    ours, our_grads, _ = forward_backward(scratch, call, x, state, weights)
    assert len(ours) == len(theirs) == len(output_names)
    for name, a, b in zip(output_names, ours, theirs):
        assert_close(a, b, name)
    assert our_grads.keys() == their_grads.keys()
    for name in their_grads:
        assert_close(our_grads[name], their_grads[name], f"grad of {name}")


def cell_state(mode, with_state, *leading):
    """[] for a zero state, else random h (and c for the LSTM) of shape (*leading, batch, hidden)."""
    return [torch.randn(*leading, BATCH, HIDDEN) for _ in range(2 if mode == "lstm" else 1)] if with_state else []


def call_cell(cell, x, hx):
    return cell(x, hx)


def assert_cell_matches_torch(scratch, mode, with_state):
    reference = TORCH_CELLS[mode](INPUT, HIDDEN)
    reference.load_state_dict(scratch.state_dict())
    names = ["h'", "c'"] if mode == "lstm" else ["h'"]
    x = torch.randn(BATCH, INPUT)
    assert_same_outputs_and_gradients(scratch, reference, call_cell, x, cell_state(mode, with_state), names)


@pytest.mark.parametrize("with_state", [False, True], ids=["zero-state", "given-state"])
@pytest.mark.parametrize("mode", MODES)
def test_scratch_cell_matches_torch_outputs_and_gradients(mode, with_state):
    assert_cell_matches_torch(CELLS[mode](INPUT, HIDDEN), mode, with_state)


def test_cells_return_torch_types():
    x = torch.randn(BATCH, INPUT)
    h, c = LSTMCell(INPUT, HIDDEN)(x)
    assert h.shape == c.shape == (BATCH, HIDDEN)
    assert GRUCell(INPUT, HIDDEN)(x).shape == (BATCH, HIDDEN)
    assert RNNCell(INPUT, HIDDEN)(x).shape == (BATCH, HIDDEN)


@pytest.mark.parametrize("mode", MODES)
def test_scratch_initialisation_is_uniform_within_one_over_sqrt_hidden(mode):
    hidden = 100
    bound = 1 / math.sqrt(hidden)
    for module in (CELLS[mode](INPUT, hidden), ScratchRNN(mode, INPUT, hidden, bidirectional=True)):
        for name, p in module.named_parameters():
            assert p.abs().max() <= bound, name
            assert p.abs().max() > 0.9 * bound, f"{name} is not spread over the whole range"
            assert p.std().item() == pytest.approx(bound / math.sqrt(3), rel=0.2), name  # std of uniform(-b, b)


class SigmoidCandidateLSTMCell(LSTMCell):
    """The bug a popular tutorial shipped: the candidate squashed by sigmoid instead of tanh.
    Training still runs and the loss still falls, so only a comparison with torch gives it away."""

    @staticmethod
    def step(x, state, weight_ih, weight_hh, bias_ih, bias_hh):
        h, c = state
        i, f, g, o = (F.linear(x, weight_ih, bias_ih) + F.linear(h, weight_hh, bias_hh)).chunk(4, dim=1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.sigmoid(g)
        return torch.sigmoid(o) * torch.tanh(c), c


def test_comparison_catches_sigmoid_in_the_lstm_candidate_gate():
    with pytest.raises(AssertionError, match="h': max difference"):
        assert_cell_matches_torch(SigmoidCandidateLSTMCell(INPUT, HIDDEN), "lstm", with_state=True)


def run_torch_packed(module, x, lengths, hx, batch_first=True):
    packed = pack_padded_sequence(x, lengths, batch_first=batch_first, enforce_sorted=False)
    outputs, final = module(packed, hx)
    outputs, _ = pad_packed_sequence(outputs, batch_first=batch_first)
    return outputs, final


def call_rnn(module, x, hx):
    if isinstance(module, ScratchRNN):
        return module(x, LENGTHS, hx)
    return run_torch_packed(module, x, LENGTHS, hx)


@pytest.mark.parametrize("with_state", [False, True], ids=["zero-state", "given-state"])
@pytest.mark.parametrize("num_layers", [1, 3])
@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("mode", MODES)
def test_scratch_rnn_matches_torch_packed_outputs_and_gradients(mode, bidirectional, num_layers, with_state):
    kwargs = dict(num_layers=num_layers, bidirectional=bidirectional)
    reference = TORCH_RNNS[mode](INPUT, HIDDEN, batch_first=True, **kwargs)
    scratch = ScratchRNN(mode, INPUT, HIDDEN, **kwargs)
    scratch.load_state_dict(reference.state_dict())
    x = torch.randn(BATCH, SEQ, INPUT)
    state = cell_state(mode, with_state, num_layers * (2 if bidirectional else 1))
    names = ["outputs", "h_n", "c_n"] if mode == "lstm" else ["outputs", "h_n"]
    assert_same_outputs_and_gradients(scratch, reference, call_rnn, x, state, names)


@pytest.mark.parametrize("mode", MODES)
def test_scratch_rnn_outputs_are_zero_at_padding(mode):
    outputs, _ = ScratchRNN(mode, INPUT, HIDDEN, bidirectional=True)(torch.randn(BATCH, SEQ, INPUT), LENGTHS)
    padding = torch.arange(SEQ)[None, :] >= LENGTHS[:, None]  # (batch, seq)
    assert padding.any()
    assert outputs[padding].eq(0).all()
    assert outputs[~padding].ne(0).all()


@pytest.mark.parametrize("mode", MODES)
def test_scratch_rnn_state_dict_has_torch_names_and_shapes(mode):
    kwargs = dict(num_layers=2, bidirectional=True)
    scratch = ScratchRNN(mode, INPUT, HIDDEN, **kwargs).state_dict()
    reference = TORCH_RNNS[mode](INPUT, HIDDEN, **kwargs).state_dict()
    assert list(scratch) == list(reference)
    assert [t.shape for t in scratch.values()] == [t.shape for t in reference.values()]


def test_scratch_rnn_output_is_as_long_as_the_longest_sequence_like_pad_packed():
    reference = nn.GRU(INPUT, HIDDEN, batch_first=True, bidirectional=True)
    scratch = ScratchRNN("gru", INPUT, HIDDEN, bidirectional=True)
    scratch.load_state_dict(reference.state_dict())
    x = torch.randn(BATCH, SEQ + 3, INPUT)  # three columns of padding beyond the longest row
    with torch.no_grad():
        ours, h_ours = scratch(x, LENGTHS)
        theirs, h_theirs = run_torch_packed(reference, x, LENGTHS, None)
    assert ours.shape == theirs.shape == (BATCH, SEQ, 2 * HIDDEN)
    assert_close(ours, theirs, "outputs")
    assert_close(h_ours, h_theirs, "h_n")


def test_scratch_rnn_is_time_major_when_not_batch_first():
    reference = nn.LSTM(INPUT, HIDDEN, num_layers=2, bidirectional=True)
    scratch = ScratchRNN("lstm", INPUT, HIDDEN, num_layers=2, bidirectional=True, batch_first=False)
    scratch.load_state_dict(reference.state_dict())
    x = torch.randn(SEQ, BATCH, INPUT)  # (seq, batch, input)
    with torch.no_grad():
        ours, (h_ours, c_ours) = scratch(x, LENGTHS)
        theirs, (h_theirs, c_theirs) = run_torch_packed(reference, x, LENGTHS, None, batch_first=False)
    assert_close(ours, theirs, "outputs")
    assert_close(h_ours, h_theirs, "h_n")
    assert_close(c_ours, c_theirs, "c_n")


def test_reverse_within_length_reverses_real_tokens_and_keeps_padding_in_place():
    x = torch.tensor([[1, 2, 3, 0], [1, 2, 0, 0], [1, 2, 3, 4]])[:, :, None]
    reversed_x = reverse_within_length(x, torch.tensor([3, 2, 4]))
    assert reversed_x[:, :, 0].tolist() == [[3, 2, 1, 0], [2, 1, 0, 0], [4, 3, 2, 1]]


def test_dropout_between_layers_but_not_after_the_last():
    x = torch.randn(BATCH, SEQ, INPUT)
    one_layer = ScratchRNN("lstm", INPUT, HIDDEN, dropout=0.5).train()
    out_train, _ = one_layer(x, LENGTHS)
    out_eval, _ = one_layer.eval()(x, LENGTHS)
    assert torch.equal(out_train, out_eval), "a single layer has no layer after it to drop out for"

    two_layers = ScratchRNN("lstm", INPUT, HIDDEN, num_layers=2, dropout=0.5).train()
    out_train, _ = two_layers(x, LENGTHS)
    out_eval, _ = two_layers.eval()(x, LENGTHS)
    assert not torch.allclose(out_train, out_eval, atol=ATOL), "dropout between layers changes the output"
