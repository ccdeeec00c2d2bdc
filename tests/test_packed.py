"""The packed fast path against the serial computation of the same members."""

import jax
import numpy as np
import pytest

from ddjax.config import geometric_widths, replace
from ddjax.data.registry import load_dataset
from ddjax.models.registry import packed_form
from ddjax.sweep import run_sweep
from ddjax.training.members import expand_members, shared_data, stack_members, train_spec
from ddjax.training.packed.layout import balanced_parts, choose_slot_size, make_layout, part_layouts, unpack_member
from ddjax.training.packed.model import packed_setup, slot_readout
from ddjax.training.spec import CURVES
from ddjax.training.streams import initial_states, packed_data, stream_program
from ddjax.training.trainer import build_program, train
from reference import assert_close, assert_same_curves, assert_same_errors


def _serial_state(config, dataset, data, spec, coords, i, programs):
    width = int(coords["width"][i])
    params, members = jax.tree.map(lambda a: a[0], stack_members(coords, np.array([i]), dataset, config, spec, width))
    program = programs.setdefault(width, build_program(spec, batched=False))
    return train(program, spec, (params,), (members,), data).states[0]


# Packing sums a member's read-out slot by slot, so results differ from serial by float reassociation only: the
# runs are compared in float64 (tests/reference.py).
# n_parts=3 cuts the 4 widths into parts [20], [9], [1, 3]: padding slots and an extra (width 0) member.
@pytest.mark.parametrize("overrides, n_parts", [
    (dict(learning_rate=(3e-3,)), 1),
    (dict(optimizer="sgd", loss="squared", batch_size=0, n_train=(150, 200), label_noise=(0.0, 0.3),
          learning_rate=(1e-2, 3e-2)), 1),
    (dict(model="random_fourier_features", loss="squared", optimizer="momentum", learning_rate=(0.1,)), 1),
    (dict(learning_rate=(3e-3,)), 3),
    (dict(model="random_relu_features", loss="squared", optimizer="sgd", learning_rate=(0.1,),
          label_noise=(0.0, 0.3)), 2),
])
@pytest.mark.usefixtures("x64")
def test_packed_members_equal_serial_members(tiny_config, overrides, n_parts):
    config = replace(tiny_config, width=(1, 3, 9, 20), precision="float64", **overrides)
    dataset = load_dataset(config)
    data, spec, coords = shared_data(dataset, config), train_spec(config, dataset), expand_members(config)
    setup = packed_setup(config, dataset, spec, coords, n_parts)
    assert len(setup.model.layouts) == n_parts and len(setup.params) == n_parts * len(config.seed) * len(config.n_train)
    state = train(stream_program(setup.model), spec, (setup.params,), (setup.streams,), packed_data(data)).states[0]
    feature, programs = packed_form(config.model).first_layer, {}
    for i in range(len(coords["width"])):
        s, k = setup.stream_of[i], setup.slot_of[i]
        alone = _serial_state(config, dataset, data, spec, coords, i, programs)
        packed = unpack_member(state.params[s], setup.model.layouts[int(setup.streams.part[s])], k, spec.n_classes)
        first = alone.params[feature][0] if feature == "hidden" else alone.params[feature]
        for got, want in [(packed["first_w"], first["w"]), (packed["first_b"], first["b"]),
                          (packed["out_w"], alone.params["out"]["w"]), (packed["out_b"], alone.params["out"]["b"])]:
            assert got.dtype == np.float64
            assert_close(got, want)
        curves = {name: state.curves[name][s, k] for name in CURVES}
        assert_same_curves(curves, alone.curves, int(coords["n_train"][i]), len(dataset.y_test))


def test_layout_pads_each_member_to_whole_slots():
    layout = make_layout(np.array([1, 5, 8, 9]), slot_size=4)
    assert list(layout.slot_member) == [0, 1, 1, 2, 2, 3, 3, 3]
    assert layout.n_units == 32 and layout.unit_mask.sum() == 23


def test_slot_size_is_the_cheapest_that_keeps_padding_efficiency_at_least_0_8():
    # Cost = units * (inputs + classes) + 16 * slots * classes (MNIST-1D: 40 inputs, 10 classes).
    # Doubling widths 1..256: slots of 8 cost 528 * 50 + 16 * 66 * 10 = 36960, of 16: 560 * 50 + 16 * 35 * 10 = 33600;
    # slots of 32 would waste too much (efficiency 0.798).
    assert choose_slot_size(np.array([1, 2, 4, 8, 16, 32, 64, 128, 256]), 40, 10) == 16
    widths = np.array(geometric_widths(1, 256, 15))  # The benchmark's grid: slots of 16, efficiency 0.86.
    assert choose_slot_size(widths, 40, 10) == 16 and round(make_layout(widths, 16).efficiency, 2) == 0.86
    assert choose_slot_size(np.array([64, 128]), 40, 10) == 64  # No padding at any size: fewest slots.
    assert choose_slot_size(np.array([1, 2, 3]), 40, 10) == 4  # No size reaches 0.8: the smallest slots.


def test_parts_hold_every_member_once_with_nearly_equal_slots():
    widths = np.array([1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 144, 233])
    for n_parts in (2, 3, 5):
        parts = balanced_parts(widths, 8, n_parts)
        assert sorted(np.concatenate(parts).tolist()) == list(range(len(widths)))
        slots = [sum(-(-w // 8) for w in widths[part]) for part in parts]
        assert max(slots) - min(slots) <= max(-(-w // 8) for w in widths)  # Within one member of each other.
        layouts = part_layouts(widths, 8, parts)
        assert len({(lay.n_units, len(lay.slot_member), len(lay.widths)) for lay in layouts}) == 1
        for part, layout in zip(parts, layouts):
            assert layout.unit_mask.sum() == widths[part].sum()  # Padding slots are masked out.
            assert list(layout.widths[:len(part)]) == list(widths[part]) and not layout.widths[len(part):].any()
            assert np.all(np.diff(layout.slot_member) >= 0)  # Sorted, as the segment sum is told.
    assert [len(part) for part in balanced_parts(np.array([256, 1, 2]), 16, 2)] == [1, 2]


@pytest.mark.usefixtures("x64")
def test_cut_into_parts_is_still_one_compile_and_ignores_extra_members(tiny_config):
    config = replace(tiny_config, width=(1, 3, 9, 20), seed=(0,), learning_rate=(3e-3,), precision="float64")
    dataset = load_dataset(config)
    data, spec, coords = shared_data(dataset, config), train_spec(config, dataset), expand_members(config)
    whole = run_sweep(config, scheme="packed")
    setup = packed_setup(config, dataset, spec, coords, 3)
    program = stream_program(setup.model)
    state = train(program, spec, (setup.params,), (setup.streams,), packed_data(data)).states[0]
    assert program.trace_count() == 1
    curves = {name: np.asarray(state.curves[name])[setup.stream_of, setup.slot_of] for name in CURVES}
    assert_same_curves(curves, whole.curves, 200, len(dataset.y_test))
    # 3 parts of 4 members: one part holds 2, the others 1 and an extra member that must never train.
    extra = np.asarray(setup.streams.learning_rate) == 0
    assert extra.sum() == 2


@pytest.mark.parametrize("widths", [(2, 5), (1, 2, 3, 5, 8, 13, 21, 34)])
def test_packed_sweep_compiles_once(tiny_config, widths):
    result = run_sweep(replace(tiny_config, width=widths, seed=(0, 1, 2)), scheme="packed")
    assert result.n_compiles == 1 and result.scheme == "packed" and result.padding_efficiency > 0.5


def test_diverging_member_is_isolated_in_the_packed_layer(tiny_config):
    base = replace(tiny_config, width=(4, 12), seed=(0,), optimizer="sgd", loss="squared", learning_rate=(0.05,))
    alone = run_sweep(base, scheme="packed")
    mixed = run_sweep(replace(base, learning_rate=(0.05, 1e6)), scheme="packed")
    calm = mixed.coords["learning_rate"] == 0.05
    assert np.all(mixed.diverged_step[~calm] >= 0) and np.all(mixed.diverged_step[calm] == -1)
    for name in ("train_loss", "test_error"):
        np.testing.assert_array_equal(mixed.curves[name][calm], alone.curves[name])


@pytest.mark.parametrize("optimizer", ["adam", "momentum", "sgd"])
def test_host_initial_states_equal_the_jitted_init(tiny_config, optimizer):
    config = replace(tiny_config, width=(2, 7), seed=(0, 1), optimizer=optimizer)
    dataset = load_dataset(config)
    spec, coords = train_spec(config, dataset), expand_members(config)
    setup = packed_setup(config, dataset, spec, coords)
    jitted = stream_program(setup.model).init((setup.params,), (setup.streams,))[0]
    host = initial_states(setup.model, setup.params, setup.streams)
    assert jax.tree.structure(host) == jax.tree.structure(jitted)
    for got, want in zip(jax.tree.leaves(host), jax.tree.leaves(jitted)):
        assert got.shape == want.shape and got.dtype == want.dtype
        np.testing.assert_array_equal(got, want)


def test_slot_readout_and_its_gradient_equal_a_plain_einsum():
    rng = np.random.default_rng(0)
    h, out_w, cotangent = (rng.standard_normal(shape).astype(np.float32) for shape in
                           ((5, 4, 7), (5, 4, 3), (5, 3, 7)))

    def reference(h, out_w):
        return jax.numpy.einsum("nsb,nsc->ncb", h, out_w)

    np.testing.assert_allclose(slot_readout(h, out_w), reference(h, out_w), rtol=1e-5, atol=1e-5)
    grads = jax.vjp(slot_readout, h, out_w)[1](cotangent)
    expected = jax.vjp(reference, h, out_w)[1](cotangent)
    for grad, want in zip(grads, expected):
        np.testing.assert_allclose(grad, want, rtol=1e-5, atol=1e-5)
