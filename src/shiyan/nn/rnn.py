r"""Recurrent networks from their equations: the Elman RNN, LSTM and GRU, with backpropagation
through time left to autograd over the unrolled loop.

Weights follow PyTorch's layout and gate order so the two can be compared with copied weights:
``weight_ih`` (G·H, I), ``weight_hh`` (G·H, H), ``bias_ih`` and ``bias_hh`` (G·H), G gates.

Elman RNN (G = 1):
$$h_t = \tanh(W_{ih} x_t + b_{ih} + W_{hh} h_{t-1} + b_{hh})$$

LSTM (Hochreiter & Schmidhuber 1997; G = 4, order i, f, g, o):
$$i_t = \sigma(W_{ii}x_t + b_{ii} + W_{hi}h_{t-1} + b_{hi}),\quad
  f_t = \sigma(W_{if}x_t + b_{if} + W_{hf}h_{t-1} + b_{hf})$$
$$g_t = \tanh(W_{ig}x_t + b_{ig} + W_{hg}h_{t-1} + b_{hg}),\quad
  o_t = \sigma(W_{io}x_t + b_{io} + W_{ho}h_{t-1} + b_{ho})$$
$$c_t = f_t \odot c_{t-1} + i_t \odot g_t,\qquad h_t = o_t \odot \tanh(c_t)$$

GRU (Cho et al. 2014; G = 3, order r, z, n):
$$r_t = \sigma(W_{ir}x_t + b_{ir} + W_{hr}h_{t-1} + b_{hr}),\quad
  z_t = \sigma(W_{iz}x_t + b_{iz} + W_{hz}h_{t-1} + b_{hz})$$
$$n_t = \tanh\bigl(W_{in}x_t + b_{in} + r_t \odot (W_{hn}h_{t-1} + b_{hn})\bigr),\qquad
  h_t = (1 - z_t)\odot n_t + z_t \odot h_{t-1}$$

Why plain RNNs vanish or explode: $\partial h_T/\partial h_t = \prod_{k=t+1}^{T}
\mathrm{diag}(\tanh'(a_k))\,W_{hh}$, a product whose norm shrinks or grows geometrically with
$T - t$ (roughly as $\rho(W_{hh})^{T-t}$); the LSTM's additive cell path
$\partial c_T/\partial c_t = \prod f_k$ lets the network keep it near 1.
:func:`hidden_gradient_norms` measures $\lVert\partial h_T/\partial h_t\rVert$ directly.

Shapes: ``x`` (T, B, I) (time first, like torch's default), ``h`` (B, H); the multi-layer
wrappers return the top layer's outputs (T, B, H) and the last states per layer (L, B, H).
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import Tensor, nn

Kind = Literal["rnn", "lstm", "gru"]
_GATES = {"rnn": 1, "lstm": 4, "gru": 3}


def rnn_cell(x: Tensor, h: Tensor, w_ih: Tensor, w_hh: Tensor, b_ih: Tensor | None, b_hh: Tensor | None) -> Tensor:
    """One Elman step: (B, I), (B, H) -> (B, H)."""
    a = x @ w_ih.T + h @ w_hh.T  # (B, H)
    if b_ih is not None:
        a = a + b_ih + b_hh
    return torch.tanh(a)


def lstm_cell(
    x: Tensor, state: tuple[Tensor, Tensor], w_ih: Tensor, w_hh: Tensor, b_ih: Tensor | None, b_hh: Tensor | None
) -> tuple[Tensor, Tensor]:
    """One LSTM step: (B, I), ((B, H), (B, H)) -> (h, c)."""
    h, c = state
    gates = x @ w_ih.T + h @ w_hh.T  # (B, 4H)
    if b_ih is not None:
        gates = gates + b_ih + b_hh
    i, f, g, o = gates.chunk(4, dim=-1)  # 4 × (B, H)
    i, f, g, o = torch.sigmoid(i), torch.sigmoid(f), torch.tanh(g), torch.sigmoid(o)
    c = f * c + i * g
    h = o * torch.tanh(c)
    return h, c


def gru_cell(x: Tensor, h: Tensor, w_ih: Tensor, w_hh: Tensor, b_ih: Tensor | None, b_hh: Tensor | None) -> Tensor:
    """One GRU step: (B, I), (B, H) -> (B, H). The reset gate multiplies ``W_hn h + b_hn`` (torch's form)."""
    gi = x @ w_ih.T  # (B, 3H)
    gh = h @ w_hh.T  # (B, 3H)
    if b_ih is not None:
        gi, gh = gi + b_ih, gh + b_hh
    i_r, i_z, i_n = gi.chunk(3, dim=-1)
    h_r, h_z, h_n = gh.chunk(3, dim=-1)
    r = torch.sigmoid(i_r + h_r)
    z = torch.sigmoid(i_z + h_z)
    n = torch.tanh(i_n + r * h_n)
    return (1 - z) * n + z * h


class Recurrent(nn.Module):
    """A multi-layer RNN, LSTM or GRU unrolled over time (parameter names match ``torch.nn.LSTM``)."""

    def __init__(
        self,
        kind: Kind,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        *,
        generator: torch.Generator | None = None,
    ):
        super().__init__()
        if kind not in _GATES:
            raise ValueError(f"kind must be one of {', '.join(_GATES)}; got {kind!r}")
        for name, value in (("input_size", input_size), ("hidden_size", hidden_size), ("num_layers", num_layers)):
            if value < 1:
                raise ValueError(f"{name} must be >= 1; got {value}")
        self.kind, self.input_size, self.hidden_size, self.num_layers, self.bias = (
            kind,
            input_size,
            hidden_size,
            num_layers,
            bias,
        )
        G = _GATES[kind]
        bound = 1.0 / math.sqrt(hidden_size)  # torch's U(-1/sqrt(H), 1/sqrt(H)) for every weight
        for layer in range(num_layers):
            fan_in = input_size if layer == 0 else hidden_size
            shapes = {"weight_ih": (G * hidden_size, fan_in), "weight_hh": (G * hidden_size, hidden_size)}
            if bias:
                shapes |= {"bias_ih": (G * hidden_size,), "bias_hh": (G * hidden_size,)}
            for base, shape in shapes.items():
                w = torch.empty(shape).uniform_(-bound, bound, generator=generator)
                self.register_parameter(f"{base}_l{layer}", nn.Parameter(w))

    def _weights(self, layer: int) -> tuple[Tensor, Tensor, Tensor | None, Tensor | None]:
        get = lambda n: getattr(self, f"{n}_l{layer}", None)  # noqa: E731
        return get("weight_ih"), get("weight_hh"), get("bias_ih"), get("bias_hh")

    def forward(self, x: Tensor, state=None):
        """x (T, B, I) -> outputs (T, B, H), final state: h (L, B, H), or (h, c) for the LSTM."""
        if x.dim() != 3 or x.shape[-1] != self.input_size:
            raise ValueError(f"x must have shape (seq, batch, {self.input_size}); got {tuple(x.shape)}")
        T, B, _ = x.shape
        zeros = x.new_zeros(self.num_layers, B, self.hidden_size)
        if state is None:
            state = (zeros, zeros) if self.kind == "lstm" else zeros
        hs, cs = [], []
        out = x
        for layer in range(self.num_layers):
            w = self._weights(layer)
            if self.kind == "lstm":
                h, c = state[0][layer], state[1][layer]
            else:
                h = state[layer]
            steps = []
            for t in range(T):
                if self.kind == "lstm":
                    h, c = lstm_cell(out[t], (h, c), *w)
                elif self.kind == "gru":
                    h = gru_cell(out[t], h, *w)
                else:
                    h = rnn_cell(out[t], h, *w)
                steps.append(h)
            out = torch.stack(steps)  # (T, B, H)
            hs.append(h)
            if self.kind == "lstm":
                cs.append(c)
        h_n = torch.stack(hs)
        return out, ((h_n, torch.stack(cs)) if self.kind == "lstm" else h_n)


def hidden_gradient_norms(model: Recurrent, x: Tensor) -> Tensor:
    r"""$\lVert \partial\, \mathrm{sum}(h_T) / \partial h_t \rVert$ for every $t$ (single layer, batch mean).

    Measures how much the last state still depends on each earlier state: the vanishing /
    exploding-gradient picture of BPTT, read straight off autograd.
    """
    if model.num_layers != 1:
        raise ValueError(f"hidden_gradient_norms needs a one-layer model; got num_layers={model.num_layers}")
    T, B, _ = x.shape
    w = model._weights(0)
    h0 = x.new_zeros(B, model.hidden_size, requires_grad=True)
    c = x.new_zeros(B, model.hidden_size)
    chain = [h0]
    h = h0
    for t in range(T):
        if model.kind == "lstm":
            h, c = lstm_cell(x[t], (h, c), *w)
        elif model.kind == "gru":
            h = gru_cell(x[t], h, *w)
        else:
            h = rnn_cell(x[t], h, *w)
        h.retain_grad()
        chain.append(h)
    chain[-1].sum().backward()
    return torch.stack([s.grad.norm(dim=-1).mean() for s in chain[:-1]]).detach()
