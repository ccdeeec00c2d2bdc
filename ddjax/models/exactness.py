"""Whether padding a module's members is exact: checked, not assumed.

`numerical_check` compares, in float64, members padded into a wider module with the same members at their true
widths: outputs (in evaluation and training mode), raw gradients, and three training steps under SGD and under
Adam (whose first step is nearly sign(g), which would hide a constant-factor error), BatchNorm statistics
included, with the padded entries' updates masked as the engine masks them. Padding reorders float sums, so the
tolerance comes from the dtype: `TOLERANCE` relative to each compared array's scale. Where a comparison fails it
names the first module, in call order, whose output differs.

`structural_check` looks, in the traced program at two widths, for what no numerical check can see: a maximum,
minimum, argmax, sort or top-k over an axis that grows with the width (a padded 0 stays invisible while the real
activations are non-negative, and wins once one is negative), and random operations (members get no key).
"""

from __future__ import annotations

import functools
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

# Reassociating sums of up to ~10^4 terms moves a float64 result by at most ~10^4 ulps.
TOLERANCE = 1e4 * float(np.finfo(np.float64).eps)
STEPS = 3
RATES = {"sgd": 0.05, "adam": 0.01}
ADAM_EPSILON = 1e-4
NOT_SUMS = ("reduce_max", "reduce_min", "argmax", "argmin", "reduce_prod", "sort", "top_k", "cummax", "cummin",
            "reduce_and", "reduce_or")
RANDOM = ("random_bits", "random_seed", "random_wrap", "random_unwrap", "random_split", "random_fold_in",
          "threefry2x32", "rng_bit_generator", "rng_uniform")


def true_part(padded: Any, true: Any) -> Any:
    """The leading block of each padded array in the shape of the matching true one."""
    return jax.tree.map(lambda p, t: p[tuple(slice(0, n) for n in np.shape(t))], padded, true)


def close(got: Any, want: Any) -> bool:
    """Every array of `got` within `TOLERANCE` of `want`, relative to the largest magnitude in either tree (an entry
    that is exactly 0 alone may be a rounding's 1e-16 padded)."""
    pairs = [(np.asarray(g, np.float64), np.asarray(w, np.float64))
             for g, w in zip(jax.tree.leaves(got), jax.tree.leaves(want))]
    if any(g.shape != w.shape for g, w in pairs):
        return False
    scale = max([float(np.max(np.abs(a), initial=0.0)) for pair in pairs for a in pair] + [1e-300])
    return all(np.all(np.abs(g - w) <= TOLERANCE * scale) for g, w in pairs)


def numerical_check(pairs, *, init: Callable, apply_true: Callable, apply_padded: Callable, pad: Callable,
                    mask: Callable, calls: Callable, x: jax.Array, loss: Callable, stateful: bool) -> str | None:
    """None if every (w, W) of `pairs` is exact, else where and how padding changes the member (one phrase).

    Args:
      init(w): the float64 variables {"params", "batch_stats"?} of a member of width w.
      apply_true(w, variables, x, train) / apply_padded(W, w, variables, x, train): (logits, new batch_stats or
        None) of a member of width w, alone or held in a module of width W.
      pad(variables, W): the variables embedded in width W's shapes; mask(params, w): 1.0 on true entries.
      calls(apply): [(module path, output)] of every module called while apply() runs, in call order.
      loss(logits): the training loss of a batch.

    A member alone and padded each run as one compiled program (`_probe`), once per optimizer.
    """
    for w, big in pairs:
        probe_true = _compiled(functools.partial(_probe, lambda: init(w), lambda v, t: apply_true(w, v, x, t), loss,
                                                 lambda p: jax.tree.map(jnp.ones_like, p)), True)
        probe_padded = _compiled(functools.partial(_probe, lambda: pad(init(w), big),
                                                   lambda v, t: apply_padded(big, w, v, x, t), loss,
                                                   lambda p: mask(p, w)), True)
        for adam in (False, True):
            want = jax.tree.map(np.asarray, probe_true(adam))
            got = jax.tree.map(np.asarray, probe_padded(adam))
            for what in [k for k in want if k.startswith("outputs")] + ["gradients", "steps"]:
                if not close(true_part(got[what], want[what]), want[what]):
                    if what.startswith("outputs"):
                        train = what.endswith("True)")
                        true, padded = want["variables"], got["variables"]
                        return _where(calls, lambda: apply_true(w, true, x, train),
                                      lambda: apply_padded(big, w, padded, x, train), w, big)
                    name = f"{STEPS} {'adam' if adam else 'sgd'} steps" if what == "steps" else what
                    return f"the {name} of a width-{w} member padded to {big}"
    return None


def _compiled(function: Callable, *example) -> Callable:
    """`function` jitted and compiled for `example`'s shapes. (XLA:CPU's lowest backend optimization level compiles
    these programs twice as fast but computed a float64 gradient 1e-8 off; not used.)"""
    return jax.jit(function).lower(*example).compile()


def _probe(variables: Callable, apply: Callable, loss: Callable, mask: Callable, adam) -> dict:
    """What `numerical_check` compares of one member: its outputs (in evaluation mode, and in training mode with
    its new BatchNorm statistics), its raw gradients, and its variables after `STEPS` steps of SGD (`adam` False)
    or Adam, each update multiplied by `mask(params)`; and its initial `variables()`."""
    variables = variables()
    has_stats = "batch_stats" in variables
    mask = mask(variables["params"])

    def batch_loss(params, stats):
        logits, new_stats = apply({"params": params, **({"batch_stats": stats} if has_stats else {})}, True)
        return loss(logits), new_stats

    out = {"variables": variables, "outputs (train=False)": apply(variables, False)[0]}
    if has_stats:
        out["outputs (train=True)"] = apply(variables, True)
    # Adam's decays; its epsilon raised from 1e-8 so that a rounding's 1e-16 of gradient, where a member alone
    # has exactly 0 (a dead unit), does not become a visible step; real gradients still take nearly sign steps.
    b1, b2, eps = 0.9, 0.999, ADAM_EPSILON

    def step(carry, t):
        params, first, second, stats = carry
        (_, new_stats), grads = jax.value_and_grad(batch_loss, has_aux=True)(params, stats)
        first = jax.tree.map(lambda m, g: b1 * m + (1 - b1) * g, first, grads)
        second = jax.tree.map(lambda v, g: b2 * v + (1 - b2) * g * g, second, grads)
        count = t + 1

        def update(p, g, m, v, k):
            adam_step = RATES["adam"] * (m / (1 - b1**count)) / (jnp.sqrt(v / (1 - b2**count)) + eps)
            return p - k * jnp.where(adam, adam_step, RATES["sgd"] * g)

        params = jax.tree.map(update, params, grads, first, second, mask)
        return (params, first, second, new_stats if has_stats else stats), grads

    zeros = jax.tree.map(jnp.zeros_like, variables["params"])
    (params, _, _, stats), grads = jax.lax.scan(step, (variables["params"], zeros, zeros,
                                                       variables.get("batch_stats")), jnp.arange(STEPS))
    out["gradients"] = jax.tree.map(lambda g: g[0], grads)  # The raw gradients at the initial variables.
    out["steps"] = {"params": params, **({"batch_stats": stats} if has_stats else {})}
    return out


def _where(calls, run_true, run_padded, w, big) -> str:
    """The first module, in call order, whose output differs between a member alone and padded."""
    for (path, want), (_, got) in zip(calls(run_true), calls(run_padded)):
        if not close(true_part(got, want), want):
            return f"`{path or 'the module'}` (a width-{w} member padded to {big})"
    return f"the outputs of a width-{w} member padded to {big}"


def structural_check(jaxpr_at: Callable[[int], Any], small: int, large: int) -> str | None:
    """None if the programs of widths `small` and `large` (`jaxpr_at(w)`: a ClosedJaxpr of one member's forward
    pass) have the same structure and reduce no width-growing axis but by sums, and use no random operation; else
    why (one phrase)."""
    return _compare(jaxpr_at(small).jaxpr, jaxpr_at(large).jaxpr)


def _compare(a, b) -> str | None:
    if len(a.eqns) != len(b.eqns):
        return "its program changes with the width"
    for ea, eb in zip(a.eqns, b.eqns):
        name = ea.primitive.name
        if name != eb.primitive.name:
            return "its program changes with the width"
        if name in RANDOM:
            return "it draws random numbers (members get no key)"
        if name in NOT_SUMS and _grows(ea, eb):
            return f"a {name.replace('reduce_', '')} over an axis that grows with the width ({_source(ea)})"
        for pa, pb in zip(_inner(ea), _inner(eb)):
            reason = _compare(pa, pb)
            if reason:
                return reason
    return None


def _grows(ea, eb) -> bool:
    """Whether an equation reduces (or sorts) along an axis whose size differs between the two widths."""
    sa, sb = np.shape(ea.invars[0].aval), np.shape(eb.invars[0].aval)
    if "axes" in ea.params:
        axes = ea.params["axes"]
    elif "dimension" in ea.params:
        axes = (ea.params["dimension"],)
    else:
        axes = (len(sa) - 1,)
    return any(sa[axis] != sb[axis] for axis in axes)


def _inner(equation):
    """The jaxprs nested in an equation's parameters (jit, custom derivatives, scan, cond, ...)."""
    for param in equation.params.values():
        for value in param if isinstance(param, (tuple, list)) else (param,):
            inner = getattr(value, "jaxpr", value)
            if hasattr(inner, "eqns"):
                yield inner


def _source(equation) -> str:
    try:
        from jax._src import source_info_util

        return source_info_util.summarize(equation.source_info)
    except Exception:  # The location is a courtesy; an older or newer jax may not have it.
        return "in the module"
