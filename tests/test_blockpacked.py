"""The block-packed layout of deeper MLPs against the serial computation of the same members."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ddjax.config import replace
from ddjax.data.registry import load_dataset
from ddjax.runs.checkpoint import load_checkpoint, restore_state, save_checkpoint
from ddjax.sweep import run_sweep
from ddjax.training.blockpacked import layout as block_layout, model as blockpacked
from ddjax.training.blockpacked.layout import pack_params, part_layouts, plan_buckets, unpack_member, worthwhile_parts
from ddjax.training.blockpacked.model import block_setup
from ddjax.training.members import expand_members, shared_data, stack_members, train_spec
from ddjax.training.metrics import example_losses
from ddjax.training.spec import CURVES
from ddjax.training.streams import initial_states, packed_data, stream_program
from ddjax.training.trainer import build_program, train
from reference import assert_close, assert_same_curves


def _setup(config, n_parts=1):
    dataset = load_dataset(config)
    data, spec, coords = shared_data(dataset, config), train_spec(config, dataset), expand_members(config)
    return dataset, data, spec, coords, block_setup(config, dataset, spec, coords, n_parts)


# Packing sums in another order than serial mode (float reassociation only): the runs are compared in float64
# (tests/reference.py). Widths (1, 3, 9, 20, 21): buckets of several members, and with 3 parts extra (width 0) members.
@pytest.mark.usefixtures("tight_buckets")
@pytest.mark.parametrize("overrides, n_parts", [
    (dict(depth=2, learning_rate=(3e-3,)), 1),
    (dict(depth=3, optimizer="sgd", loss="squared", batch_size=0, n_train=(150, 200), label_noise=(0.0, 0.3),
          learning_rate=(1e-2, 3e-2)), 1),
    (dict(depth=2, optimizer="momentum", learning_rate=(1e-2,)), 3),
    (dict(depth=1, learning_rate=(3e-3,)), 2),
])
@pytest.mark.usefixtures("x64")
def test_block_packed_members_equal_serial_members(tiny_config, overrides, n_parts):
    config = replace(tiny_config, width=(1, 3, 9, 20, 21), precision="float64", **overrides)
    dataset, data, spec, coords, setup = _setup(config, n_parts)
    assert len(setup.model.layouts) == n_parts
    state = train(stream_program(setup.model), spec, (setup.params,), (setup.streams,), packed_data(data)).states[0]
    programs = {}
    for i in range(len(coords["width"])):
        s, k, width = setup.stream_of[i], setup.slot_of[i], int(coords["width"][i])
        params, members = jax.tree.map(lambda a: a[0], stack_members(coords, np.array([i]), dataset, config, spec,
                                                                     width))
        program = programs.setdefault(width, build_program(spec, batched=False))
        alone = train(program, spec, (params,), (members,), data).states[0]
        layout = setup.model.layouts[int(setup.streams.part[s])]
        assert layout.widths[k] == width
        packed = unpack_member(jax.tree.map(lambda a: np.asarray(a)[s], state.params), layout, k)
        for got, want in zip(jax.tree.leaves(packed), jax.tree.leaves(alone.params)):
            assert got.shape == want.shape and got.dtype == np.float64
            assert_close(got, want)
        curves = {name: state.curves[name][s, k] for name in CURVES}
        assert_same_curves(curves, alone.curves, int(coords["n_train"][i]), len(dataset.y_test))


@pytest.mark.usefixtures("tight_buckets")
def test_padded_units_get_exactly_zero_gradient(tiny_config):
    config = replace(tiny_config, width=(1, 3, 9, 20), seed=(0,), depth=3)
    dataset, data, spec, coords, setup = _setup(config, 2)
    model, stream = setup.model, jax.tree.map(lambda a: a[1], setup.streams)
    layout = model.layouts[1]
    rng = np.random.default_rng(0)
    # Nonzero values everywhere, padding included: the mask alone must keep padding out of every gradient.
    params = jax.tree.map(lambda a: jnp.asarray(rng.standard_normal(a.shape[1:]), jnp.float32), setup.params)
    x, y = packed_data(data).x_train[:16], stream.labels[:, :16]

    def loss(p):
        return jnp.sum(example_losses(model.logits(p, x, stream.part), y, "cross_entropy", axis=1))

    grads = jax.grad(loss)(params)
    pad = layout.unit_mask == 0
    assert pad.any()
    assert not np.asarray(grads["first"])[pad].any() and not np.asarray(grads["out"])[pad].any()
    assert np.asarray(grads["first"])[~pad].any()
    for layer in grads["hidden"]:
        for bucket, block in zip(layout.buckets, layer):
            for j in range(bucket.count):
                width = layout.widths[bucket.first + j]
                w, b = np.asarray(block["w"][j]), np.asarray(block["b"][j])
                assert not w[width:].any() and not w[:, width:].any() and not b[width:].any()


def test_buckets_hold_every_member_once_and_parts_have_equal_shapes():
    widths = np.array([1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 144, 233, 233])
    for n_parts in (1, 2, 3):
        buckets = plan_buckets(widths, depth=2, input_dim=40, n_classes=10, n_parts=n_parts, examples_per_step=128)
        assert sorted(np.concatenate(buckets).tolist()) == list(range(len(widths)))
        assert all(widths[a].max() <= widths[b].min() for a, b in zip(buckets, buckets[1:]))  # Contiguous.
        index, layouts = part_layouts(widths, buckets, n_parts)
        assert len({lay.buckets for lay in layouts}) == 1
        assert sorted(m for part in index for m in part if m >= 0) == list(range(len(widths)))
        for part, layout in zip(index, layouts):
            assert layout.unit_mask.sum() == widths[part[part >= 0]].sum()
            assert all(layout.widths[b.first:b.first + b.count].max() <= b.size for b in layout.buckets)
    # Where arithmetic dominates (many examples a step), the widest members, which dominate the cost of the
    # hidden-to-hidden layers, get tight buckets; where a bucket's fixed cost per step dominates, fewer buckets.
    large = plan_buckets(widths, depth=2, input_dim=40, n_classes=10, examples_per_step=4000)
    assert large[-1].tolist() == [11, 12]
    assert len(plan_buckets(widths, depth=2, input_dim=40, n_classes=10, examples_per_step=128)) < len(large)


def test_pack_and_unpack_are_inverse(tiny_config):
    config = replace(tiny_config, depth=3)
    dataset = load_dataset(config)
    spec = train_spec(config, dataset)
    widths = np.array([2, 5, 7])
    _, (layout,) = part_layouts(widths, plan_buckets(widths, depth=3, input_dim=8, n_classes=3, examples_per_step=16), 1)
    members = [spec.model.init(0, int(w), int(w), 8, 3)["params"] for w in layout.widths]
    packed = pack_params(members, layout)
    for k, member in enumerate(members):
        for got, want in zip(jax.tree.leaves(unpack_member(packed, layout, k)), jax.tree.leaves(member)):
            np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("optimizer", ["adam", "momentum", "sgd"])
def test_host_initial_states_equal_the_jitted_init(tiny_config, optimizer):
    config = replace(tiny_config, width=(2, 7), depth=2, optimizer=optimizer)
    _, _, _, _, setup = _setup(config)
    jitted = stream_program(setup.model).init((setup.params,), (setup.streams,))[0]
    host = initial_states(setup.model, setup.params, setup.streams)
    assert jax.tree.structure(host) == jax.tree.structure(jitted)
    for got, want in zip(jax.tree.leaves(host), jax.tree.leaves(jitted)):
        assert got.shape == want.shape and got.dtype == want.dtype
        np.testing.assert_array_equal(got, want)


@pytest.mark.usefixtures("tight_buckets")
def test_deeper_mlp_sweeps_take_the_block_packed_layout_and_compile_once(tiny_config):
    result = run_sweep(replace(tiny_config, width=(1, 2, 3, 5, 8, 13, 21, 34), seed=(0, 1, 2), depth=2))
    assert result.scheme == "blockpacked" and result.n_compiles == 1 and result.padding_efficiency > 0.5
    with pytest.raises(ValueError, match="needs an MLP"):
        run_sweep(replace(tiny_config, model="random_relu_features"), scheme="blockpacked")


@pytest.mark.usefixtures("tight_buckets")
def test_diverging_member_is_isolated_in_its_block(tiny_config):
    base = replace(tiny_config, width=(4, 12), seed=(0,), depth=2, optimizer="sgd", loss="squared",
                   learning_rate=(0.05,))
    alone = run_sweep(base, scheme="blockpacked")
    mixed = run_sweep(replace(base, learning_rate=(0.05, 1e6)), scheme="blockpacked")
    calm = mixed.coords["learning_rate"] == 0.05
    assert np.all(mixed.diverged_step[~calm] >= 0) and np.all(mixed.diverged_step[calm] == -1)
    for name in ("train_loss", "test_error"):
        np.testing.assert_array_equal(mixed.curves[name][calm], alone.curves[name])


@pytest.mark.usefixtures("tight_buckets")
def test_resumed_block_packed_sweep_gives_the_same_curves(tiny_config, tmp_path):
    config = replace(tiny_config, depth=3, learning_rate=(3e-3,))
    saved = []

    def on_chunk(step, states):
        if not saved:  # The first checkpoint, through the checkpoint file as a run folder's would go.
            save_checkpoint(tmp_path, step, states, config={})
            saved.append(step)

    whole = run_sweep(config, on_chunk=on_chunk)
    checkpoint = load_checkpoint(tmp_path)
    resumed = run_sweep(config, restore=lambda template: restore_state(checkpoint, template), start_step=saved[0])
    assert 0 < saved[0] < config.steps
    for name in CURVES:
        np.testing.assert_array_equal(resumed.curves[name], whole.curves[name])


@pytest.fixture
def tight_buckets(monkeypatch):
    """A small fixed cost per bucket (4000 multiply-accumulates per example at batch 16), so that even these tiny
    nets are cut into several buckets and the tests see the layout's seams (the real constant plans one bucket
    for them)."""
    monkeypatch.setattr(block_layout, "BUCKET_OVERHEAD_STEP_MACS", 4000 * 16)


def test_parts_are_cut_only_where_they_add_little_padding():
    shape = dict(depth=2, input_dim=40, n_classes=10, examples_per_step=4000)
    geometric = np.array([1, 2, 3, 4, 5, 7, 11, 16, 24, 35, 53, 78, 116, 172, 256])
    assert worthwhile_parts(geometric, 2, **shape) == 1  # Pairing 256 with 172 would execute 1.27x.
    assert worthwhile_parts(np.repeat(geometric, 2), 2, **shape) == 2  # Each width twice: equal pairs.
    assert worthwhile_parts(geometric, 1, **shape) == 1


@pytest.mark.usefixtures("tight_buckets")
def test_large_batches_go_through_in_chunks_with_the_same_logits(tiny_config, monkeypatch):
    config = replace(tiny_config, width=(2, 5, 9), seed=(0,), depth=2)
    _, data, _, _, setup = _setup(config)
    params = jax.tree.map(lambda a: jnp.asarray(a[0]), setup.params)
    x = packed_data(data).x_eval  # 280 rows: with chunks of 64, the fifth is padded.
    monkeypatch.setattr(blockpacked, "EXAMPLES_PER_PASS", 1000)
    whole = setup.model.logits(params, x, setup.streams.part[0])
    monkeypatch.setattr(blockpacked, "EXAMPLES_PER_PASS", 64)
    chunked = setup.model.logits(params, x, setup.streams.part[0])
    assert chunked.shape == whole.shape == (3, 3, 280)
    np.testing.assert_allclose(chunked, whole, rtol=1e-5, atol=1e-6)
