"""The one-program trainer: members stacked with vmap, steps in `lax.scan`, evaluation at log-spaced steps.

Everything here is written for one member (`member_step`, `member_eval`); `Program` lifts it over a stacked
member axis with `jax.vmap` (or leaves it alone in serial mode) and runs any number of groups of members, each
padded to its own width, inside a single jitted chunk of steps. The Python loop in `train` only walks chunks, so
training can be checkpointed and resumed at chunk boundaries; given several devices, `train` splits every
group's member axis over them (`ddjax.training.sharding`).
"""

from __future__ import annotations

import functools
import math
import time
from typing import Any, Callable, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax

from ddjax.data.augment import ImageSpec, standardize, training_inputs
from ddjax.data.sampling import sample_batch
from ddjax.models.family import Family, ModelState, Params, Variables
from ddjax.training import hosts, sharding
from ddjax.training.schedules import learning_rate_factor

CURVES = ("train_error", "test_error", "train_loss", "test_loss")
# Recorded when members hold out validation examples (`TrainSpec.validation`, config `validation_fraction`).
VALIDATION_CURVES = ("val_error", "val_loss")


class Members(NamedTuple):
    """What distinguishes members of one group; every field has a leading member axis when stacked."""

    width: jax.Array  # int32: true width.
    n_train: jax.Array  # int32: the member trains on the first n_train samples.
    learning_rate: jax.Array  # float32
    seed: jax.Array  # uint32: batch order (members with the same seed draw the same batches).
    labels: jax.Array  # int32 [N]: the member's (noisy) training labels.
    # int32: the rows n_train .. n_train + n_val - 1 after the trained ones, held out for validation (with
    # `TrainSpec.validation`); None: none.
    n_val: jax.Array | None = None
    # float32: the L2 strength lambda (`add_weight_decay`); None where the spec has no weight decay, so that
    # programs without it are exactly what they were.
    weight_decay: jax.Array | None = None


class SharedData(NamedTuple):
    """Device-resident data shared by all members: batches are index gathers into it.

    Inputs are float32 [n, features], or stored images (uint8 [n, H, W, C]) that `model_inputs` and
    `training_batch` standardize and flatten on the fly.
    """

    x_train: jax.Array
    x_test: jax.Array
    y_test: jax.Array


class MemberState(NamedTuple):
    """Training state of one member (stacked: a leading member axis on every leaf)."""

    params: Params
    opt_state: Any
    diverged_step: jax.Array  # int32: -1 while finite, else the step whose update went non-finite.
    curves: dict[str, jax.Array]  # name -> float32 [n_eval_steps]
    # Mutable model state (BatchNorm running statistics; {} for stateless families), stacked like params.
    model_state: ModelState = {}


class TrainSpec(NamedTuple):
    """The static description of how every member trains."""

    model: Family
    optimizer: str
    momentum: float
    loss: str
    batch_size: int  # 0 means full batch.
    steps: int
    eval_steps: tuple[int, ...]  # Ascending; 0 is the initial evaluation.
    chunk_steps: int
    input_dim: int  # Features a flat model reads (H * W * C for images).
    n_classes: int
    sampling: str = "replacement"  # See `ddjax.data.sampling.sample_batch`.
    image: ImageSpec | None = None  # Image inputs (kept as stored, standardized on the fly); None: flat float data.
    # "bfloat16": the model computes on bfloat16 copies (`compute_cast`); "float64": everything is stored and
    # computed in double precision (`stored_dtype`), the reference for equivalence checks.
    precision: str = "float32"
    eval_batch: int = 0  # > 0: evaluate in chunks of this many rows (`lax.map`); 0: all rows as one batch.
    lr_schedule: str = "constant"  # See `ddjax.training.schedules`.
    lr_schedule_steps: int = 512
    validation: bool = False  # Members hold out `Members.n_val` rows: record VALIDATION_CURVES too.
    weight_decay: bool = False  # Some member has weight decay > 0: the step adds lambda * params (`add_weight_decay`).


def curve_names(spec: TrainSpec) -> tuple[str, ...]:
    """The curves every member records: CURVES, then VALIDATION_CURVES when members hold out validation rows."""
    return CURVES + VALIDATION_CURVES if spec.validation else CURVES


def log_spaced_steps(steps: int, n_evals: int) -> tuple[int, ...]:
    """Step 0 plus up to `n_evals` distinct log-spaced steps in [1, steps], always including `steps`."""
    spaced = np.unique(np.round(np.geomspace(1, steps, n_evals)).astype(int))
    return (0, *sorted(set(spaced.tolist()) | {steps}))


def make_optimizer(name: str, learning_rate: Any, momentum: float) -> optax.GradientTransformation:
    """SGD, SGD with momentum or Adam, with the learning rate held in the state (so it may differ per member)."""
    if name == "sgd":
        return optax.inject_hyperparams(optax.sgd)(learning_rate=learning_rate)
    if name == "momentum":
        return optax.inject_hyperparams(optax.sgd)(learning_rate=learning_rate, momentum=momentum)
    if name == "adam":
        return optax.inject_hyperparams(optax.adam)(learning_rate=learning_rate)
    raise ValueError(f"unknown optimizer {name!r}; allowed: sgd, momentum, adam")


def example_losses(logits: jax.Array, labels: jax.Array, loss: str, axis: int = -1) -> jax.Array:
    """Per-example loss over the class `axis`: softmax cross-entropy, or half the squared distance to one-hot."""
    axis = axis % logits.ndim
    classes = jnp.arange(logits.shape[axis]).reshape([-1] + [1] * (logits.ndim - 1 - axis))
    one_hot = jnp.expand_dims(jnp.broadcast_to(labels, logits.shape[:axis] + logits.shape[axis + 1:]), axis) == classes
    if loss == "cross_entropy":
        return softmax_cross_entropy(logits, one_hot, axis)
    return 0.5 * jnp.sum((logits - one_hot) ** 2, axis=axis)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def softmax_cross_entropy(logits: jax.Array, one_hot: jax.Array, axis: int) -> jax.Array:
    """Cross-entropy of softmax(logits) against a boolean one-hot target, reduced over `axis`.

    Its gradient is written out (softmax minus target), which keeps the compiled step a few kernels smaller
    than differentiating logsumexp.
    """
    return _cross_entropy_forward(logits, one_hot, axis)[0]


def _cross_entropy_forward(logits, one_hot, axis):
    shifted = logits - jnp.max(logits, axis=axis, keepdims=True)
    exp = jnp.exp(shifted)
    total = jnp.sum(exp, axis=axis, keepdims=True)
    loss = jnp.log(jnp.squeeze(total, axis)) - jnp.sum(jnp.where(one_hot, shifted, 0.0), axis=axis)
    return loss, (exp / total, one_hot)


def _cross_entropy_backward(axis, residuals, grad):
    probabilities, one_hot = residuals
    return jnp.expand_dims(grad, axis) * (probabilities - one_hot), None


softmax_cross_entropy.defvjp(_cross_entropy_forward, _cross_entropy_backward)


def stored_dtype(precision: str) -> jnp.dtype:
    """The dtype of stored parameters, optimizer state, inputs and losses: float64 for `precision="float64"`
    (JAX's 64-bit mode must be on), else float32 (bfloat16 is a compute dtype only)."""
    return jnp.dtype(jnp.float64 if precision == "float64" else jnp.float32)


def to_stored_dtype(precision: str, tree: Any) -> Any:
    """`tree` with its float32 leaves (host or device) in `stored_dtype(precision)`; a no-op unless float64.

    Double precision is the reference for equivalence checks: float reassociation (another CPU's vector width,
    another layout's sum order) is ~1e-16 relative there, which stays far below any tolerance even after training
    amplifies it, where in float32 (~1e-7) it need not.
    """
    if precision != "float64":
        return tree
    return jax.tree.map(lambda a: a.astype(jnp.float64) if getattr(a, "dtype", None) == jnp.float32 else a, tree)


def compute_cast(precision: str, tree: Any) -> Any:
    """`tree` with its floating leaves in the compute dtype of `precision`; float32 and float64 leave it untouched.

    Mixed precision as on TPUs: the stored parameters, the optimizer state and the loss stay float32; the model
    reads bfloat16 copies, so its matmuls (and convolutions) take bfloat16 operands. The cast is differentiable,
    so gradients arrive in float32.
    """
    if precision in ("float32", "float64"):
        return tree
    dtype = jnp.dtype(precision)
    return jax.tree.map(lambda a: a.astype(dtype) if jnp.issubdtype(a.dtype, jnp.floating) else a, tree)


def _logits(spec: TrainSpec, params: Params, model_state: ModelState, width, x: jax.Array, *, train: bool,
            example_mask: jax.Array | None = None) -> tuple[jax.Array, ModelState]:
    """Logits [B, C] of one member on a batch of model inputs, and its new model state, in the precision of
    `spec` (`compute_cast`)."""
    if spec.precision in ("float32", "float64"):  # Nothing inserted: float32 programs are exactly what they were.
        return spec.model.apply(params, model_state, width, x, train, example_mask)
    params, x = compute_cast(spec.precision, (params, x))
    logits, model_state = spec.model.apply(params, model_state, width, x, train, example_mask)
    return logits.astype(jnp.float32), model_state


def _eval_logits(spec: TrainSpec, params, model_state, width, stored: jax.Array) -> jax.Array:
    """Evaluation logits of one member on stored inputs: all rows as one batch, or (`spec.eval_batch` > 0, the
    convolutional families) chunks of that many rows (`lax.map`), so no activation of the whole split is held."""
    if not spec.eval_batch:
        return _logits(spec, params, model_state, width, model_inputs(spec, stored), train=False)[0]
    n = stored.shape[0]
    size = min(spec.eval_batch, n)
    n_chunks = -(-n // size)
    padded = jnp.concatenate([stored, jnp.zeros((n_chunks * size - n, *stored.shape[1:]), stored.dtype)])

    def chunk_logits(rows):
        return _logits(spec, params, model_state, width, model_inputs(spec, rows), train=False)[0]

    logits = jax.lax.map(chunk_logits, padded.reshape(n_chunks, size, *stored.shape[1:]))
    return logits.reshape(n_chunks * size, -1)[:n]


def train_weights(n_rows: int, n_train: jax.Array) -> jax.Array:
    """Weight 1 / n_train on the first n_train of `n_rows` training rows and 0 after: a mean over the subsample."""
    return (jnp.arange(n_rows) < n_train) / n_train


def model_inputs(spec: TrainSpec, x: jax.Array) -> jax.Array:
    """Stored inputs as a flat model reads them, without augmentation (evaluation): images standardized and
    flattened; flat data as it is."""
    return x if spec.image is None else standardize(x, spec.image, stored_dtype(spec.precision))


def training_batch(spec: TrainSpec, data: SharedData, seed: jax.Array, n_train: jax.Array, step):
    """Model inputs, row index (None: every row) and per-row loss weights of update `step` for a batch stream.

    Images are augmented (if `spec.image.augment`) by batch position, standardized and flattened here.
    """
    if spec.batch_size:
        index, weights = sample_batch(spec.sampling, seed, step, spec.batch_size, n_train)
        x = data.x_train[index]
    else:
        x, index, weights = data.x_train, None, train_weights(data.x_train.shape[0], n_train)
    if spec.image is not None:
        x = training_inputs(spec.image, x, seed, step, stored_dtype(spec.precision))
    return x, index, weights


def member_init(spec: TrainSpec, initial: Variables, member: Members) -> MemberState:
    """Initial training state of one member from its (padded) initial variables as the family's `init` gave them:
    parameters and model state."""
    params, model_state = initial["params"], initial["model_state"]
    opt_state = make_optimizer(spec.optimizer, member.learning_rate, spec.momentum).init(params)
    curves = {name: jnp.full(len(spec.eval_steps), jnp.nan, stored_dtype(spec.precision))
              for name in curve_names(spec)}
    return MemberState(params, opt_state, jnp.int32(-1), curves, model_state)


def add_weight_decay(grads: Any, params: Any, strength: Any) -> Any:
    """The gradient of loss + (strength / 2) |params|^2: `grads + strength * params`, leaf by leaf.

    L2 in the loss, not decoupled decay (AdamW): the regularized objective, and so its minimizer, is the same
    whatever the optimizer and learning rate, it is the ridge objective of the closed form (`method=min_norm`,
    same lambda), and for SGD the two forms coincide. Every layout adds it to the loss gradient before its
    optimizer, with `strength` broadcast to the parameters of each member. Padded units stay zero (zero weights,
    zero gradient).
    """
    return jax.tree.map(lambda g, p: g + jnp.asarray(strength, g.dtype) * p, grads, params)


def member_step(spec: TrainSpec, state: MemberState, member: Members, data: SharedData, step) -> MemberState:
    """One optimizer step of one member; a member whose update goes non-finite stops updating."""
    x, index, weights = training_batch(spec, data, member.seed, member.n_train, step)
    y = member.labels if index is None else member.labels[index]

    def batch_loss(params):
        # Rows of weight 0 (an epoch's partial last batch) are left out of BatchNorm's statistics too.
        logits, model_state = _logits(spec, params, state.model_state, member.width, x, train=True,
                                      example_mask=weights > 0)
        return jnp.sum(weights * example_losses(logits, y, spec.loss)), model_state

    (loss, model_state), grads = jax.value_and_grad(batch_loss, has_aux=True)(state.params)
    if spec.weight_decay:
        grads = add_weight_decay(grads, state.params, member.weight_decay)
    optimizer = make_optimizer(spec.optimizer, 0.0, spec.momentum)  # The real rate lives in opt_state.
    updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
    factor = learning_rate_factor(spec.lr_schedule, spec.lr_schedule_steps, step)
    if factor is not None:
        updates = jax.tree.map(lambda u: u * factor.astype(u.dtype), updates)
    params = optax.apply_updates(state.params, updates)
    finite = jnp.isfinite(loss)
    for leaf in jax.tree.leaves((params, model_state)):
        finite &= jnp.all(jnp.isfinite(leaf))
    alive = state.diverged_step < 0
    keep_new = finite & alive
    params, opt_state, model_state = jax.tree.map(lambda new, old: jnp.where(keep_new, new, old),
                                                  (params, opt_state, model_state),
                                                  (state.params, state.opt_state, state.model_state))
    diverged_step = jnp.where(alive & ~finite, step, state.diverged_step).astype(jnp.int32)
    return MemberState(params, opt_state, diverged_step, state.curves, model_state)


def member_eval(spec: TrainSpec, params: Params, member: Members, data: SharedData,
                model_state: ModelState = {}) -> dict[str, jax.Array]:
    """Error and mean loss of one member on its own training labels and on the clean test set (a stateful family
    in evaluation mode: BatchNorm reads its running statistics), and on its validation rows if it holds some."""
    train_logits = _eval_logits(spec, params, model_state, member.width, data.x_train)
    in_train = train_weights(data.x_train.shape[0], member.n_train)
    test_logits = _eval_logits(spec, params, model_state, member.width, data.x_test)
    wrong = train_logits.argmax(-1) != member.labels
    losses = example_losses(train_logits, member.labels, spec.loss)
    values = {
        "train_error": jnp.sum(in_train * wrong),
        "train_loss": jnp.sum(in_train * losses),
        "test_error": jnp.mean(test_logits.argmax(-1) != data.y_test),
        "test_loss": jnp.mean(example_losses(test_logits, data.y_test, spec.loss)),
    }
    if spec.validation:  # The held-out rows, with the member's own (noisy) labels, as carved from its training set.
        rows = jnp.arange(data.x_train.shape[0])
        held_out = ((rows >= member.n_train) & (rows < member.n_train + member.n_val)) / member.n_val
        values.update(val_error=jnp.sum(held_out * wrong), val_loss=jnp.sum(held_out * losses))
    return values


def member_record(spec: TrainSpec, state: MemberState, member: Members, data: SharedData, index) -> MemberState:
    """Writes the member's current evaluation into column `index` of its curves (NaN once diverged)."""
    values = member_eval(spec, state.params, member, data, state.model_state)
    diverged = state.diverged_step >= 0
    curves = {k: state.curves[k].at[index].set(jnp.where(diverged, jnp.nan, values[k])) for k in curve_names(spec)}
    return state._replace(curves=curves)


class Program(NamedTuple):
    """Jitted init and chunk functions for a tuple of member groups; `trace_count()` counts chunk traces."""

    init: Callable[[tuple[Any, ...], tuple[Members, ...]], tuple[MemberState, ...]]
    run_chunk: Callable[[tuple[MemberState, ...], tuple[Members, ...], SharedData, Any], tuple[MemberState, ...]]
    trace_count: Callable[[], int]
    executables: dict  # Compiled `run_chunk`, keyed by the shapes and dtypes of its arguments.

    def compiled_chunk(self, *args):
        """The compiled `run_chunk` for these arguments' shapes, compiling (and tracing) only on first use."""
        signature = str(jax.tree.map(lambda a: (jnp.shape(a), jnp.result_type(a), getattr(a, "sharding", None)),
                                     args))
        if signature not in self.executables:
            self.executables[signature] = self.run_chunk.lower(*args).compile()
        return self.executables[signature]


def build_program(spec: TrainSpec, *, batched: bool = True, functions: tuple[Callable, ...] | None = None) -> Program:
    """Compile-once functions that train a tuple of member groups side by side.

    With `batched=True` each group's fields carry a leading member axis and the member functions are vmapped;
    with `batched=False` (serial mode) each group is a single member without that axis. `functions` replaces the
    per-member (init, step, record) functions, e.g. by the per-stream ones of the packed layout. A chunk runs steps
    `start .. start + chunk_steps - 1`; step t first records the evaluation "after t steps" if t is an eval step,
    then (if t < steps) applies update t, so `steps + 1` loop steps complete a run.
    """
    lift = jax.vmap if batched else (lambda f, **_: f)
    eval_steps = jnp.asarray(spec.eval_steps)
    traces = [0]
    init_one, step_one, record_one = functions or (functools.partial(f, spec) for f in (member_init, member_step,
                                                                                         member_record))

    def init(initial, groups):
        return tuple(lift(init_one)(v, m) for v, m in zip(initial, groups))

    def run_chunk(states, groups, data, start):
        traces[0] += 1
        step_fn = lift(step_one, in_axes=(0, 0, None, None))
        record_fn = lift(record_one, in_axes=(0, 0, None, None))

        def record_all(states, index):
            return tuple(record_fn(s, m, data, index) for s, m in zip(states, groups))

        def step_all(states, step):
            return tuple(step_fn(s, m, data, step) for s, m in zip(states, groups))

        def body(states, step):
            index = jnp.sum(eval_steps < step)  # A vector compare: compiles smaller than searchsorted's loop.
            is_eval = jnp.any(eval_steps == step)
            # One cond per phase for all groups: the predicates are shared by every member, so they stay real
            # branches under vmap, and a single branch per phase keeps compile time flat in the group count.
            states = jax.lax.cond(is_eval, lambda s: record_all(s, index), lambda s: s, states)
            states = jax.lax.cond(step < spec.steps, lambda s: step_all(s, step), lambda s: s, states)
            return states, None

        states, _ = jax.lax.scan(body, states, start + jnp.arange(spec.chunk_steps))
        return states

    # CPU buffers cannot be donated; asking would only print a warning.
    donate = () if jax.default_backend() == "cpu" else (0,)
    return Program(jax.jit(init), jax.jit(run_chunk, donate_argnums=donate), lambda: traces[0], {})


class TrainOutcome(NamedTuple):
    """Final states of every group, timings, and the number of devices the member axis was split over."""

    states: tuple[MemberState, ...]
    compile_seconds: float
    run_seconds: float
    n_devices: int = 1


def train(program: Program, spec: TrainSpec, initial: tuple[Any, ...] | None, groups: tuple[Members, ...],
          data: SharedData, *, states: tuple[MemberState, ...] | None = None, start_step: int = 0,
          on_chunk: Callable[[int, tuple[MemberState, ...]], None] | None = None,
          progress: Any = None, devices: Sequence[jax.Device] | None = None) -> TrainOutcome:
    """Runs `program` from `start_step` to the end, chunk by chunk, from `states` or from `initial` values.

    Args:
      initial: per group, the stacked initial values its init function takes: the family's variables
        (`member_init`), or a layout's packed parameters.
      on_chunk: called as on_chunk(next_step, states) after every chunk, e.g. to checkpoint.
      progress: a tqdm-like bar to advance by the steps of each chunk, or None.
      devices: batched programs only: split every group's member axis over (up to) these devices.
    """
    t0 = time.perf_counter()
    initial, groups, data, states = to_stored_dtype(spec.precision, (initial, groups, data, states))
    sizes = [sharding.leading_size(group) for group in groups] if devices else []
    mesh = sharding.member_mesh(devices, max(sizes)) if devices else None
    if mesh is not None:  # Each group's member axis is padded and split on its own; the data is replicated.
        groups, data = sharding.spread_each(groups, mesh), sharding.replicate(data, mesh)
        if states is None:  # Only what init reads is placed: given states, the initial values are not used.
            initial = sharding.spread_each(initial, mesh)
        else:
            states = sharding.spread_each(states, mesh)

    def unpadded(states):
        # A multi-host job first gathers every host's members (on every host: it is a collective).
        states = hosts.gather(states)
        return states if mesh is None else tuple(sharding.unpad(s, n) for s, n in zip(states, sizes))

    if states is None:
        states = program.init(initial, groups)
    if mesh is not None:  # Pins every state leaf (the chunk's input and output) to the member split.
        states = sharding.split(states, mesh)
    start = jnp.int32(start_step)
    run_chunk = program.compiled_chunk(states, groups, data, start)
    jax.block_until_ready(states)
    compile_seconds = time.perf_counter() - t0
    t1 = time.perf_counter()
    for chunk_start in range(start_step, spec.steps + 1, spec.chunk_steps):
        states = run_chunk(states, groups, data, jnp.int32(chunk_start))
        if mesh is not None:
            states = sharding.split(states, mesh)
        next_step = min(chunk_start + spec.chunk_steps, spec.steps + 1)
        if progress is not None:
            jax.block_until_ready(states)
            progress.update(min(next_step, spec.steps) - min(chunk_start, spec.steps))
        if on_chunk is not None:
            on_chunk(next_step, unpadded(states))
    jax.block_until_ready(states)
    return TrainOutcome(unpadded(states), compile_seconds, time.perf_counter() - t1, mesh.size if mesh else 1)


def chunk_steps(steps: int, n_chunks: int) -> int:
    """Loop steps per chunk so that `n_chunks` chunks cover the `steps + 1` loop steps (extra ones are no-ops)."""
    return math.ceil((steps + 1) / min(n_chunks, steps + 1))
