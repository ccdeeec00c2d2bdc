"""The block-packed layout for MLPs of any depth: width buckets of block-diagonal layers
(`ddjax.training.blockpacked.model`), streams cut into parts and programs by `ddjax.training.layouts.streams`."""

from __future__ import annotations

from ddjax.models.registry import model_info
from ddjax.training.blockpacked.layout import part_layouts, plan_buckets
from ddjax.training.blockpacked.model import block_setup, examples_per_step, useful_parts
from ddjax.training.layouts.base import Context, Layout, Plan, method_refusal
from ddjax.training.layouts.streams import first_parts, plan_parts, stream_plan
from ddjax.training.streams import slot_widths


def _refusal(config) -> str | None:
    if not model_info(config.model).block_packed:
        return f"scheme 'blockpacked' needs an MLP, not {config.model}"
    return method_refusal(config, "blockpacked")


def plan_blockpacked(context: Context) -> Plan:
    """Buckets planned per part count, parts cut only where they add little padding (`useful_parts`)."""
    config, spec, needs = context.config, context.spec, context.memory[0]
    widths = slot_widths(context.coords)

    def part_load(n_parts):
        buckets = plan_buckets(widths, depth=config.depth, input_dim=spec.input_dim, n_classes=spec.n_classes,
                               n_parts=n_parts, examples_per_step=examples_per_step(spec, config))
        layout = part_layouts(widths, buckets, n_parts)[1][0]
        return (sum(b.count * needs.member_bytes(b.size) for b in layout.buckets),
                sum(b.count for b in layout.buckets))

    first = useful_parts(config, spec, context.coords, first_parts(context, len(widths)))
    n_parts, n_programs = plan_parts(context, len(widths), first, part_load)
    setup = block_setup(config, context.dataset, spec, context.coords, n_parts)
    return stream_plan(context, setup, n_programs, tuple(b.size for b in setup.model.layout.buckets))


BLOCKPACKED = Layout("blockpacked", _refusal, plan_blockpacked)
