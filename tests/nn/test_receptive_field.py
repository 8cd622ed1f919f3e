"""Receptive field: published values, top-down = bottom-up, and closed form = gradient support."""

from __future__ import annotations

import random
from collections import OrderedDict

import pytest
import torch
from torch import nn

from shiyan.nn.receptive_field import (
    LayerSpec,
    alexnet_specs,
    empirical_receptive_field,
    layer_specs,
    measurement_copy,
    receptive_field,
    receptive_field_top_down,
    resnet50_specs,
    specs_to_module,
    vgg16_specs,
)


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny tensors: one thread avoids OpenMP contention on a busy machine (restored afterwards)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


# --- published values -----------------------------------------------------------------------------


def test_alexnet_pool5_is_195():
    rows = receptive_field(alexnet_specs(), (227, 227))
    assert [r.rf[0] for r in rows] == [11, 19, 51, 67, 99, 131, 163, 195]
    assert rows[-1].jump == (32, 32)
    assert rows[-1].size == (6, 6)  # torchvision: 224 -> 6x6 before the adaptive pool (227 too)


def test_vgg16_pool5_is_212():
    rows = receptive_field(vgg16_specs(), (224, 224))
    by_name = {r.name: r.rf[0] for r in rows}
    assert by_name["conv1_2"] == 5 and by_name["pool1"] == 6 and by_name["pool2"] == 16
    assert by_name["pool3"] == 44 and by_name["pool4"] == 100 and by_name["pool5"] == 212
    assert rows[-1].size == (7, 7) and rows[-1].jump == (32, 32)


def test_resnet50_final_is_427():
    rows = receptive_field(resnet50_specs(), (224, 224))
    assert rows[-1].rf == (427, 427)
    assert rows[-1].jump == (32, 32)
    assert rows[-1].size == (7, 7)
    by_name = {r.name: r.rf[0] for r in rows}
    assert by_name["maxpool"] == 11 and by_name["layer1.2.conv3"] == 35 and by_name["layer2.3.conv3"] == 91


@pytest.mark.parametrize("specs", [alexnet_specs, vgg16_specs, resnet50_specs])
def test_top_down_recursion_agrees(specs):
    assert receptive_field_top_down(specs()) == receptive_field(specs(), 512)[-1].rf[0]


# --- torchvision-like modules built here -----------------------------------------------------------


def _alexnet(width: int = 2) -> nn.Sequential:
    c = width
    return nn.Sequential(
        nn.Conv2d(3, c, 11, 4, 2),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(3, 2),
        nn.Conv2d(c, c, 5, padding=2),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(3, 2),
        nn.Sequential(  # nested on purpose
            nn.Conv2d(c, c, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(c, c, 3, padding=1),
            nn.ReLU(inplace=True),
        ),
        nn.Conv2d(c, c, 3, padding=1),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(3, 2),
    )


def _vgg16(width: int = 1) -> nn.Sequential:
    layers: list[nn.Module] = []
    c_in = 3
    for n_convs in (2, 2, 3, 3, 3):
        for _ in range(n_convs):
            layers += [nn.Conv2d(c_in, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU()]
            c_in = width
        layers.append(nn.MaxPool2d(2, 2))
    return nn.Sequential(*layers)


def test_module_walk_matches_published_values_and_shapes():
    for model, size, expected in ((_alexnet(), 224, 195), (_vgg16(), 224, 212)):
        rows = receptive_field(model, (size, size))
        assert rows[-1].rf == (expected, expected)
        out = model.eval()(torch.zeros(1, 3, size, size))
        assert tuple(out.shape[2:]) == rows[-1].size


@pytest.mark.parametrize("model,expected", [(_alexnet(), 195), (_vgg16(), 212)])
def test_empirical_field_of_published_networks(model, expected):
    rows = receptive_field(model, (240, 240))
    # the first unit whose field lies inside the image, so that nothing is clipped
    u = next(u for u in range(rows[-1].size[0]) if rows[-1].field_of((u, u))[0][0] >= 0)
    unit = (u, u)
    emp = empirical_receptive_field(measurement_copy(model), (240, 240), in_channels=3, unit=unit)
    (lo, hi), _ = rows[-1].field_of(unit)
    assert hi <= 239
    assert emp.size == (expected, expected)
    assert emp.low[0] == lo and emp.high[0] == hi


class _Bottleneck(nn.Module):
    """torchvision's Bottleneck (v1.5: the stride on the 3x3 conv), batch norm left out."""

    def __init__(self, c_in: int, mid: int, c_out: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, mid, 1, bias=False)
        self.conv2 = nn.Conv2d(mid, mid, 3, stride, 1, bias=False)
        self.conv3 = nn.Conv2d(mid, c_out, 1, bias=False)
        self.down = nn.Conv2d(c_in, c_out, 1, stride, bias=False) if stride != 1 or c_in != c_out else None

    def forward(self, x):
        shortcut = x if self.down is None else self.down(x)
        h = torch.relu(self.conv1(x))
        h = torch.relu(self.conv2(h))
        return torch.relu(self.conv3(h) + shortcut)


def _resnet50(width: int = 1) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv2d(3, width, 7, 2, 3, bias=False), nn.ReLU(), nn.MaxPool2d(3, 2, 1)]
    c = width
    for n_blocks, stride in ((3, 1), (4, 2), (6, 2), (3, 2)):
        for b in range(n_blocks):
            layers.append(_Bottleneck(c, width, 2 * width, stride if b == 0 else 1))
            c = 2 * width
    return nn.Sequential(*layers)


def test_resnet50_empirical_field_is_427():
    """A real residual network (shortcuts included): the gradient support of one output unit is the
    427-pixel square the main-path layer list predicts."""
    model = measurement_copy(_resnet50())
    rows = receptive_field(resnet50_specs(), (448, 448))
    unit = (7, 7)
    (lo, hi), _ = rows[-1].field_of(unit)
    assert 0 <= lo and hi <= 447
    emp = empirical_receptive_field(model, (448, 448), in_channels=3, unit=unit)
    assert emp.size == (427, 427)
    assert (emp.low[0], emp.high[0]) == (lo, hi)
    out = model(torch.zeros(1, 3, 448, 448, dtype=torch.float64))
    assert tuple(out.shape[2:]) == rows[-1].size


# --- random stacks: closed form = gradient support -------------------------------------------------


def _random_stack(rng: random.Random, max_rf: int) -> list[LayerSpec]:
    """A random conv/pool stack whose receptive field is at most ``max_rf`` (redrawn until it is)."""
    while True:
        specs = []
        for _ in range(rng.randint(1, 6)):
            kind = rng.choice(["conv", "conv", "maxpool", "avgpool"])
            k = rng.randint(1, 5)
            d = rng.randint(1, 3) if kind != "avgpool" else 1
            p = rng.randint(0, k) if kind == "conv" else rng.randint(0, k // 2)  # torch: pool pad <= k/2
            ceil = kind != "conv" and rng.random() < 0.5
            specs.append(LayerSpec(kind, k, rng.randint(1, 3), p, d, ceil_mode=ceil))
        if receptive_field_top_down(specs) <= max_rf:
            return specs


@pytest.mark.parametrize("seed", range(16))
def test_closed_form_equals_empirical_field_on_random_stacks(seed):
    rng = random.Random(seed)
    ndim = 2 if seed % 2 else 1
    specs = _random_stack(rng, max_rf=45 if ndim == 2 else 300)
    rf = receptive_field_top_down(specs)
    size = (rf + rng.randint(20, 60),) * ndim
    rows = receptive_field(specs, size)
    model = measurement_copy(specs_to_module(specs, ndim=ndim, channels=2))
    out = model(torch.ones(1, 2, *size, dtype=torch.float64))
    last = rows[-1]
    assert tuple(out.shape[2:]) == last.size  # output sizes, ceil_mode included
    assert last.rf == (rf,) * ndim
    n_out = last.size[0]
    inside = [
        u for u in range(n_out) if last.field_of((u,) * ndim)[0][0] >= 0 and last.field_of((u,) * ndim)[0][1] < size[0]
    ]
    assert inside, "the input was chosen large enough for some field to fit"
    for u in {inside[0], inside[len(inside) // 2], inside[-1]}:
        unit = (u,) * ndim
        emp = empirical_receptive_field(model, size, in_channels=2, unit=unit)
        assert emp.size == last.rf, (specs, unit)
        assert emp.low == tuple(int(lo) for lo, _ in last.field_of(unit))
    for u in {0, n_out - 1} - set(inside):  # fields cut by the border: the support stays inside the box
        unit = (u,) * ndim
        (lo, hi), *_ = last.field_of(unit)
        try:
            emp = empirical_receptive_field(model, size, in_channels=2, unit=unit)
        except ValueError as err:  # every pixel of the field that is inside the image is a hole or padding
            assert "zero gradient" in str(err)
            continue
        assert all(lo <= emp.low[a] and emp.high[a] <= hi for a in range(ndim))


def test_max_pooling_with_random_weights_sees_at_most_the_theoretical_field():
    torch.manual_seed(0)
    specs = [
        LayerSpec("conv", 3, 1, 1),
        LayerSpec("maxpool", 3, 2),
        LayerSpec("conv", 3, 1, 1),
        LayerSpec("maxpool", 3, 2),
    ]
    model = specs_to_module(specs, ndim=2, channels=1).double()
    with torch.no_grad():  # positive weights and inputs: no dead ReLU, only the max pools drop pixels
        for m in model.modules():
            if isinstance(m, nn.Conv2d):
                m.weight.abs_()
                m.bias.zero_()
    size = (40, 40)
    last = receptive_field(specs, size)[-1]
    unit = tuple((n - 1) // 2 for n in last.size)
    x = torch.rand(1, 1, *size, dtype=torch.float64, generator=torch.Generator().manual_seed(1)) + 0.1
    emp_max = empirical_receptive_field(model, size, unit=unit, x=x)
    emp_avg = empirical_receptive_field(measurement_copy(model), size, unit=unit)
    (lo, hi), _ = last.field_of(unit)
    assert emp_avg.size == last.rf
    assert lo <= emp_max.low[0] and emp_max.high[0] <= hi
    assert int((emp_max.grad > 0).sum()) < int((emp_avg.grad > 0).sum())  # arg-max routing drops pixels


# --- module walking and errors ---------------------------------------------------------------------


def test_pointwise_layers_pass_through_and_nesting_is_flattened():
    plain = nn.Sequential(nn.Conv2d(1, 1, 3, 2), nn.MaxPool2d(2), nn.Conv2d(1, 1, 5, dilation=2))
    busy = nn.Sequential(
        nn.Conv2d(1, 1, 3, 2),
        nn.BatchNorm2d(1),
        nn.Dropout2d(0.1),
        nn.Sequential(nn.GELU(), nn.MaxPool2d(2), nn.Identity()),
        nn.Sequential(nn.Sequential(nn.Conv2d(1, 1, 5, dilation=2))),
        nn.LeakyReLU(),
    )
    geometry = [(r.kind, r.size, r.rf, r.jump, r.start) for r in receptive_field(plain, (64, 64))]
    assert [(r.kind, r.size, r.rf, r.jump, r.start) for r in receptive_field(busy, (64, 64))] == geometry
    assert [s.kind for s in layer_specs(busy)] == ["conv", "maxpool", "conv"]
    assert tuple(busy.eval()(torch.zeros(1, 1, 64, 64)).shape[2:]) == geometry[-1][1]


def test_conv1d_same_padding_and_1d_input():
    model = nn.Sequential(nn.Conv1d(1, 1, 5, padding="same"), nn.Conv1d(1, 1, 3, stride=2, padding="valid"))
    rows = receptive_field(model, 50)
    assert rows[0].start == (0.0,) and rows[0].size == (50,)
    assert rows[1].rf == (7,) and rows[1].size == (24,)
    assert model(torch.zeros(1, 1, 50)).shape[-1] == 24


def test_unsupported_layers_are_named():
    with pytest.raises(TypeError, match="Flatten"):
        receptive_field(nn.Sequential(nn.Conv2d(1, 1, 3), nn.Flatten(), nn.Linear(4, 2)), (8, 8))
    with pytest.raises(TypeError, match="'head' of type Linear"):
        receptive_field(nn.Sequential(OrderedDict(conv=nn.Conv1d(1, 1, 3), head=nn.Linear(4, 2))), 8)
    with pytest.raises(TypeError, match="AdaptiveAvgPool2d"):
        receptive_field(nn.Sequential(nn.Conv2d(1, 1, 3), nn.AdaptiveAvgPool2d(1)), (8, 8))
    with pytest.raises(TypeError, match="_Bottleneck"):
        receptive_field(_resnet50(), (224, 224))


@pytest.mark.parametrize(
    "kwargs,field",
    [
        (dict(kind="deconv", kernel=3), "kind"),
        (dict(kind="conv", kernel=0), "kernel"),
        (dict(kind="conv", kernel=3, stride=0), "stride"),
        (dict(kind="conv", kernel=3, padding=-1), "padding"),
        (dict(kind="conv", kernel=3, dilation=(1, 0)), "dilation"),
    ],
)
def test_bad_layer_specs_raise(kwargs, field):
    with pytest.raises(ValueError, match=field):
        LayerSpec(**kwargs)


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="too small"):
        receptive_field(alexnet_specs(), (32, 32))
    with pytest.raises(ValueError, match="input_size"):
        receptive_field(alexnet_specs(), (0, 10))
    with pytest.raises(ValueError, match="spatial axes"):
        receptive_field([LayerSpec("conv", (3, 3))], (10, 10, 10))
    with pytest.raises(TypeError, match="LayerSpec"):
        receptive_field([("conv", 3)], 10)
    with pytest.raises(ValueError, match="unit"):
        empirical_receptive_field(specs_to_module([LayerSpec("conv", 3)]), (8, 8), unit=(9, 0))
    with pytest.raises(ValueError, match="weight"):
        measurement_copy(nn.Conv2d(1, 1, 3), weight=-1.0)
