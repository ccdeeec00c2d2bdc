"""A sweep's members laid out as packed streams: the host-side setup and the one-program trainer over them.

`packed_setup` groups members by batch stream (seed, n_train), plans each stream's slots and parts
(`ddjax.training.packed.layout`), packs every member's initial parameters into rows, and `packed_program` wraps the
per-stream functions of `ddjax.training.packed.streams` in the trainer (`ddjax.training.trainer.build_program`).
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax.numpy as jnp
import numpy as np

from ddjax.config import Config
from ddjax.data.datasets import Dataset, member_labels
from ddjax.models.registry import packed_form
from ddjax.training.packed.layout import (SLOT_AXES, balanced_parts, choose_slot_size, pack_params, part_layouts,
                                         row_learning_rates, slot_keys)
from ddjax.training.packed.streams import PackedModel, Stream, stream_init, stream_record, stream_step
from ddjax.training.trainer import TrainSpec, build_program


class PackedSetup(NamedTuple):
    """A sweep laid out as streams (seed, n_train, part) x slots (width, label noise, learning rate)."""

    model: PackedModel
    params: Any  # Packed parameters stacked over streams.
    streams: Stream
    stream_of: np.ndarray  # [member] stream index.
    slot_of: np.ndarray  # [member] member index within its stream.


def packed_setup(config: Config, dataset: Dataset, spec: TrainSpec, coords: dict[str, np.ndarray],
                 n_parts: int = 1) -> PackedSetup:
    """Lays out a cartesian sweep for the packed trainer: every batch stream holds the same slots, cut into
    `n_parts` parts of nearly equal units (`layout.balanced_parts`), one stream per batch stream and part."""
    stream_keys = batch_stream_keys(coords)
    member_slots = slot_keys(coords)
    batch_streams, slots = list(dict.fromkeys(stream_keys)), list(dict.fromkeys(member_slots))
    widths = np.array([key[0] for key in slots])
    rates, decays = (np.array([key[SLOT_AXES.index(axis)] for key in slots])
                     for axis in ("learning_rate", "weight_decay"))
    slot_size = choose_slot_size(widths, spec.input_dim, spec.n_classes)
    parts = balanced_parts(widths, slot_size, min(n_parts, len(slots)))
    layouts = part_layouts(widths, slot_size, parts)
    part_of, index_in_part = np.zeros(len(slots), np.int64), np.zeros(len(slots), np.int64)
    for p, part in enumerate(parts):
        part_of[part], index_in_part[part] = p, np.arange(len(part))
    slot_index = np.array([slots.index(key) for key in member_slots])  # [member] its slot key's index.
    stream_of = np.array([batch_streams.index(key) for key in stream_keys]) * len(parts) + part_of[slot_index]
    slot_of = index_in_part[slot_index]
    form = packed_form(config.model, config.depth)
    params, labels, row_rates, row_decays = [], [], [], []
    for seed, n_train in batch_streams:
        for part, layout in zip(parts, layouts):
            members = [spec.model.init(seed, w, w, spec.input_dim, spec.n_classes)["params"] for w in widths[part]]
            params.append(pack_params(members, layout, form.first_layer))
            train_labels = [member_labels(dataset, n_train, slots[k][1], seed, config.data_seed)[:max(config.n_train)]
                            for k in part]
            part_labels = [np.concatenate([member, dataset.y_test]) for member in train_labels]
            labels.append(part_labels + part_labels[:1] * (len(layout.widths) - len(part)))
            row_rates.append(row_learning_rates(layout, rates[part]))
            row_decays.append(row_learning_rates(layout, decays[part]))  # Extra members: 0 as well.
    n_streams = len(batch_streams) * len(parts)
    stream_data = Stream(seed=jnp.asarray(np.repeat([s for s, _ in batch_streams], len(parts)), jnp.uint32),
                         n_train=jnp.asarray(np.repeat([n for _, n in batch_streams], len(parts)), jnp.int32),
                         labels=jnp.asarray(np.array(labels), jnp.int32),
                         row_learning_rate=jnp.asarray(np.array(row_rates), jnp.float32),
                         row_weight_decay=(jnp.asarray(np.array(row_decays), jnp.float32) if spec.weight_decay
                                           else None),
                         part=jnp.asarray(np.arange(n_streams) % len(parts), jnp.int32))
    return PackedSetup(PackedModel(form, layouts, spec), np.stack(params), stream_data, stream_of, slot_of)


def batch_stream_keys(coords: dict[str, np.ndarray]) -> list[tuple[int, int]]:
    """Each member's batch stream: (seed, n_train), the pair that fixes its minibatches."""
    return list(zip(coords["seed"].tolist(), coords["n_train"].tolist()))


def packed_program(setup: PackedSetup):
    """The one-program trainer over the streams of `setup`."""
    functions = tuple(functools.partial(f, setup.model) for f in (stream_init, stream_step, stream_record))
    return build_program(setup.model.spec, functions=functions)
