"""The packed layout for one-hidden-layer families: every member of a batch stream in one wide layer
(`ddjax.training.packed.model`), streams cut into parts and programs by `ddjax.training.layouts.streams`."""

from __future__ import annotations

from ddjax.models.registry import packed_form
from ddjax.training.layouts.base import Context, Layout, Plan, method_refusal
from ddjax.training.layouts.streams import first_parts, plan_parts, stream_plan
from ddjax.training.packed.layout import balanced_parts, choose_slot_size
from ddjax.training.packed.model import packed_setup
from ddjax.training.streams import slot_widths


def _refusal(config) -> str | None:
    if not packed_form(config.model, config.depth):
        return f"scheme 'packed' needs a one-hidden-layer model, not {config.model} of depth {config.depth}"
    return method_refusal(config, "packed")


def plan_packed(context: Context) -> Plan:
    """Slots of one size for every member, the members of a stream cut into parts of nearly equal units."""
    spec, needs = context.spec, context.memory[0]
    widths = slot_widths(context.coords)
    slot_size = choose_slot_size(widths, spec.input_dim, spec.n_classes)

    def part_load(n_parts):
        parts = balanced_parts(widths, slot_size, n_parts)
        return (max(sum(needs.member_bytes(-(-int(w) // slot_size) * slot_size) for w in widths[part])
                    for part in parts), max(len(part) for part in parts))

    n_parts, n_programs = plan_parts(context, len(widths), first_parts(context, len(widths)), part_load)
    setup = packed_setup(context.config, context.dataset, spec, context.coords, n_parts)
    return stream_plan(context, setup, n_programs, (setup.model.layout.n_units,))


PACKED = Layout("packed", _refusal, plan_packed)
