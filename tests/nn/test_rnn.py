"""RNN/LSTM/GRU from the equations against torch.nn with copied weights (outputs and gradients)."""

import pytest
import torch
from torch import nn

from shiyan.nn.rnn import Recurrent, hidden_gradient_norms

TORCH = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("layers, bias", [(1, True), (3, True), (2, False)])
def test_equals_torch_with_copied_weights(kind, layers, bias):
    g = torch.Generator().manual_seed(0)
    ours = Recurrent(kind, 5, 7, layers, bias, generator=g).double()
    ref = TORCH[kind](5, 7, layers, bias=bias).double()
    ref.load_state_dict(ours.state_dict())
    x = torch.randn(6, 3, 5, dtype=torch.float64, generator=g, requires_grad=True)
    out, state = ours(x)
    ref_out, ref_state = ref(x)
    torch.testing.assert_close(out, ref_out)
    if kind == "lstm":
        torch.testing.assert_close(state[0], ref_state[0])
        torch.testing.assert_close(state[1], ref_state[1])
    else:
        torch.testing.assert_close(state, ref_state)
    w = torch.randn_like(out)
    grads = torch.autograd.grad((out * w).sum(), [x, *ours.parameters()])
    ref_grads = torch.autograd.grad((ref_out * w).sum(), [x, *ref.parameters()])
    for a, b in zip(grads, ref_grads):
        torch.testing.assert_close(a, b)


def test_initial_state_is_used():
    g = torch.Generator().manual_seed(1)
    ours = Recurrent("lstm", 2, 3, 2, generator=g)
    ref = nn.LSTM(2, 3, 2)
    ref.load_state_dict(ours.state_dict())
    x = torch.randn(4, 2, 2, generator=g)
    h0, c0 = torch.randn(2, 2, 3, generator=g), torch.randn(2, 2, 3, generator=g)
    torch.testing.assert_close(ours(x, (h0, c0))[0], ref(x, (h0, c0))[0])


def test_vanilla_rnn_gradients_vanish_with_small_weights_and_lstm_keeps_them():
    g = torch.Generator().manual_seed(2)
    x = torch.randn(40, 4, 3, generator=g)
    rnn = Recurrent("rnn", 3, 16, generator=g)
    with torch.no_grad():
        rnn.weight_hh_l0.mul_(0.5)
    norms = hidden_gradient_norms(rnn, x)
    assert norms[0] < 1e-6 * norms[-1]  # geometric decay over 40 steps
    lstm = Recurrent("lstm", 3, 16, generator=g)
    with torch.no_grad():
        lstm.bias_ih_l0[16:32] = 5.0  # forget gate ~1: the cell path carries the gradient
    lstm_norms = hidden_gradient_norms(lstm, x)
    assert lstm_norms[0] > 1e3 * norms[0]


def test_bad_input_names_the_argument():
    with pytest.raises(ValueError, match="kind"):
        Recurrent("transformer", 2, 2)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="hidden_size"):
        Recurrent("gru", 2, 0)
    with pytest.raises(ValueError, match=r"x must have shape \(seq, batch, 2\)"):
        Recurrent("gru", 2, 3)(torch.zeros(4, 3))
