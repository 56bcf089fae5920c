"""fit's step engine (purenet.train.engine) against the pure functions, bit for bit, and
the proof that the arrays it reuses never belong to a record anyone can see."""

from __future__ import annotations

import attrs
import numpy as np
import pytest

import purenet as pn
from purenet import optim
from purenet.core.activations import ACTIVATIONS
from purenet.core.losses import normalised_weights
from purenet.core.records import Dense, Grads, params_digest, tree_leaves
from purenet.core.validate import check_targets
from purenet.core.workspace import FRESH, Pool
from purenet.train.config import RunConfig
from purenet.train.data import batch_indices, epoch_order
from purenet.train.loop import initial_state_for
from purenet.train.step import take_step

N, FEATURES, BATCH = 37, 3, 16    # batches of 16, 16 and 5: a full and a partial shape


class Recorder(pn.Callback):
    """Keeps every state fit shows, with the digests of its arrays at that moment."""

    def __init__(self) -> None:
        self.states, self.digests, self.metrics = [], [], []

    def on_step_end(self, state, metrics) -> None:
        self.states.append(state)
        self.digests.append(state_digest(state))
        self.metrics.append(metrics)


def state_digest(state) -> list[str]:
    return [params_digest(tree) for tree in (state.params, *_grads_trees(state.opt_state))]


def arrays_of(state) -> list[np.ndarray]:
    return [a for tree in (state.params, *_grads_trees(state.opt_state))
            for a in tree_leaves(tree)]


def _grads_trees(opt_state) -> list:
    """The Grads trees of an optimizer state (moments, traces), chains included."""
    if isinstance(opt_state, optim.ChainState):
        return [t for inner in opt_state.states for t in _grads_trees(inner)]
    return [getattr(opt_state, f.name) for f in attrs.fields(type(opt_state))
            if hasattr(getattr(opt_state, f.name), "layers")]


def data(output: str, loss: str, n: int = N, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, FEATURES))
    if loss == "categorical_crossentropy":
        return x, rng.integers(0, 3, n)
    if loss in ("binary_crossentropy", "multilabel_log_loss"):
        return x, rng.integers(0, 2, (n, 3)).astype(float)
    if loss == "poisson":
        return x, rng.poisson(1.0, (n, 3)).astype(float)
    return x, rng.normal(size=(n, 3))


def arch(hidden: str, output: str, dropout: float = 0.0) -> list[dict]:
    return [{"input_dim": FEATURES, "output_dim": 6, "activation": hidden, "dropout": dropout},
            {"input_dim": 6, "output_dim": 5, "activation": hidden},
            {"input_dim": 5, "output_dim": 3, "activation": output}]


def pure_states(config: RunConfig, x, y, weights=None) -> tuple[list, list]:
    """Every state of the run, each from the one before by the pure step (fresh arrays),
    and every step's metrics (the batch's loss and correct count)."""
    x = np.asarray(x, dtype=config.np_dtype)
    y = check_targets(y, len(x), config.loss, config.architecture, config.np_dtype)
    w = normalised_weights(weights, len(x), config.np_dtype)
    state, states, metrics = initial_state_for(config), [], []
    n_batches = -(-len(x) // config.batch_size)
    for epoch in range(config.epochs):
        order = epoch_order(config.seed, epoch, len(x), config.shuffle)
        for b in range(n_batches):
            idx = batch_indices(order, b, config.batch_size)
            state, step_metrics = take_step(state, x[idx], y[idx], config,
                                            None if w is None else w[idx], FRESH)
            states.append(state)
            metrics.append(step_metrics)
            if b == n_batches - 1:
                state = attrs.evolve(state, epoch=state.epoch + 1, batch_index=0)
    return states, metrics


def assert_bit_identical(got: tuple[list, list], want: tuple[list, list]) -> None:
    """The same parameters and optimizer state after every step (np.array_equal and the
    same dtype), and the same metrics (the batch loss and accuracy, exactly)."""
    (got, got_metrics), (want, want_metrics) = got, want
    assert got_metrics == want_metrics
    assert len(got) == len(want)
    for step, (a, b) in enumerate(zip(got, want)):
        left, right = arrays_of(a), arrays_of(b)
        assert len(left) == len(right)
        for p, q in zip(left, right):
            assert p.dtype == q.dtype and np.array_equal(p, q), f"step {step + 1} differs"


def engine_states(config: RunConfig, x, y, weights=None) -> tuple[list, list]:
    recorder = Recorder()
    pn.fit(config, x, y, callbacks=[recorder], progress=False, sample_weight=weights)
    return recorder.states, recorder.metrics


HEADS = [("sigmoid", "binary_crossentropy"), ("softmax", "categorical_crossentropy"),
         ("identity", "mean_squared_error"), ("identity", "mean_absolute_error"),
         ("identity", "huber"), ("tanh", "mean_squared_error"),
         ("sigmoid", "mean_squared_error"), ("softmax", "mean_squared_error"),
         ("sigmoid", "multilabel_log_loss"), ("identity", "half_squared_error"),
         ("exp", "poisson")]
# exp is the Poisson loss's output; stacked as a hidden activation it overflows.
HIDDEN = sorted(set(ACTIVATIONS) - {"exp"})


@pytest.mark.parametrize("output,loss", HEADS)
@pytest.mark.parametrize("hidden", HIDDEN)
def test_the_engine_gives_the_pure_steps_bits_for_every_activation_and_loss(hidden, output,
                                                                            loss):
    x, y = data(output, loss)
    config = RunConfig(arch(hidden, output), optim.sgd(0.05), epochs=2, batch_size=BATCH,
                       loss=loss, dtype="float64", seed=3)
    assert_bit_identical(engine_states(config, x, y), pure_states(config, x, y))


OPTIMIZERS = {
    "sgd": lambda: optim.sgd(0.05),
    "sgd with a schedule": lambda: optim.sgd(optim.schedules.exponential_decay(0.1, 0.5, 2)),
    "momentum": lambda: optim.momentum(0.05, 0.9),
    "nesterov": lambda: optim.momentum(0.05, 0.8, nesterov=True),
    "adam": lambda: optim.adam(0.01),
    "adamw": lambda: optim.adamw(0.01, weight_decay=0.1),
    "rmsprop": lambda: optim.rmsprop(0.01),
    "adagrad": lambda: optim.adagrad(0.05),
    "clipped adam": lambda: optim.chain(optim.clip_by_global_norm(0.1), optim.adam(0.01)),
    "clipped momentum": lambda: optim.chain(optim.clip_by_value(0.01),
                                            optim.momentum(0.05)),
}


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_the_engine_gives_the_pure_steps_bits_for_every_optimizer(name, dtype):
    x, y = data("softmax", "categorical_crossentropy")
    config = RunConfig(arch("relu", "softmax"), OPTIMIZERS[name](), epochs=2,
                       batch_size=BATCH, dtype=dtype, seed=1)
    assert_bit_identical(engine_states(config, x, y), pure_states(config, x, y))


@pytest.mark.parametrize("hidden", ["relu", "tanh", "elu", "sigmoid"])
def test_the_engine_gives_the_pure_steps_bits_with_dropout_l2_and_sample_weights(hidden):
    x, y = data("softmax", "categorical_crossentropy")
    weights = np.random.default_rng(4).uniform(0, 2, N)
    config = RunConfig(arch(hidden, "softmax", dropout=0.3), optim.adam(0.01), epochs=2,
                       batch_size=BATCH, l2=0.01, dtype="float32", seed=2)
    assert_bit_identical(engine_states(config, x, y, weights),
                         pure_states(config, x, y, weights))


def test_the_pure_train_step_is_the_kernel_with_fresh_arrays():
    x, y = data("sigmoid", "binary_crossentropy")
    config = RunConfig(arch("relu", "sigmoid", dropout=0.2), optim.adam(0.01),
                       batch_size=BATCH, dtype="float64")
    state = initial_state_for(config)
    via_train_step, m1 = pn.train_step(state, pn.Batch(x[:BATCH], y[:BATCH]), config)
    via_pool, m2 = take_step(state, x[:BATCH], y[:BATCH], config, None, Pool())
    assert_bit_identical(([via_pool], [m2]), ([via_train_step], [m1]))


# --- no record anyone can see ever changes -----------------------------------------------


@pytest.mark.parametrize("name", ["sgd", "momentum", "adam", "rmsprop"])
def test_no_state_a_callback_kept_changes_after_it_was_shown(name):
    x, y = data("softmax", "categorical_crossentropy", n=64)
    recorder = Recorder()
    result = pn.fit(arch("relu", "softmax"), x, y, optimizer=OPTIMIZERS[name](), epochs=3,
                    batch_size=8, callbacks=[recorder], progress=False)
    assert [state_digest(s) for s in recorder.states] == recorder.digests
    assert state_digest(result.state) == recorder.digests[-1]
    for state in recorder.states:
        assert not any(a.flags.writeable for a in arrays_of(state))


class ViewKeeper(pn.Callback):
    """Keeps views into the parameters of every other step, and copies of their values."""

    def __init__(self) -> None:
        self.views, self.copies = [], []

    def on_step_end(self, state, metrics) -> None:
        if state.step % 2:
            view = state.params.layers[1].W[1:, :2]
            self.views.append(view)
            self.copies.append(view.copy())


def test_a_view_into_a_state_keeps_its_values_after_the_state_is_gone():
    x, y = data("softmax", "categorical_crossentropy", n=64)
    keeper = ViewKeeper()
    pn.fit(arch("relu", "softmax"), x, y, optimizer=optim.momentum(0.05), epochs=2,
           batch_size=8, callbacks=[keeper], progress=False)
    assert len(keeper.views) == 8
    for view, copy in zip(keeper.views, keeper.copies):
        assert np.array_equal(view, copy)


@pytest.mark.parametrize("name", ["sgd", "adam"])
def test_a_plain_fit_recycles_its_arrays_instead_of_allocating_every_step(name, monkeypatch):
    from purenet.train import engine
    pools = []

    class CountingPool(Pool):
        def __init__(self) -> None:
            super().__init__()
            pools.append(self)

    monkeypatch.setattr(engine, "Pool", CountingPool)
    x, y = data("softmax", "categorical_crossentropy", n=64)
    for epochs in (2, 6):
        pn.fit(arch("relu", "softmax"), x, y, optimizer=OPTIMIZERS[name](), epochs=epochs,
               batch_size=8, progress=False)
    short, long = (pool.made for pool in pools)
    assert short == long < 8 * 6    # 16 or 48 steps: the same few arrays of each shape


def _written(pool, like):
    tree = pool.tree(like)
    for leaf in tree.leaves:
        leaf[...] = 1.0
    return tree.record()


def _holders(record):
    """Every way of holding on to a tree's numbers, short of the whole record."""
    layer = record.layers[1]
    return {"the record": record, "its layers": record.layers, "a layer": layer,
            "an array": layer.W, "a view of an array": layer.W[1:], "the transpose": layer.b.T,
            "the flat array under it": layer.W.base}


@pytest.mark.parametrize("holder", list(_holders(Grads((
    Dense(np.zeros((2, 2)), np.zeros(2)), Dense(np.zeros((2, 2)), np.zeros(2)))))))
def test_the_pool_hands_out_only_trees_nobody_else_holds(holder):
    like = Grads((Dense(np.zeros((3, 2)), np.zeros(2)), Dense(np.zeros((2, 1)), np.zeros(1))))
    pool = Pool()
    first = _written(pool, like)
    held = _holders(first)[holder]
    values = np.array(held, copy=True) if isinstance(held, np.ndarray) else None
    del first
    for _ in range(3):    # the pool has nothing free: every tree is new
        other = _written(pool, like)
        assert all(a.base is not b.base for a, b in zip(tree_leaves(other), _leaves_of(held)))
        del other
    if values is not None:
        assert np.array_equal(held, values) and not held.flags.writeable
    made = pool.made
    del held
    _written(pool, like)
    assert pool.made == made     # now it is recycled


def _leaves_of(held):
    if isinstance(held, np.ndarray):
        return [held]
    if isinstance(held, Dense):
        return [held.W, held.b]
    if isinstance(held, tuple):
        return [a for layer in held for a in (layer.W, layer.b)]
    return tree_leaves(held)


def test_a_recycled_tree_is_the_same_record_over_new_numbers():
    like = Grads((Dense(np.zeros((3, 2)), np.zeros(2)),))
    pool = Pool()
    first = _written(pool, like)
    ident = id(first)
    del first
    tree = pool.tree(like)
    assert tree.flat is not None and all(leaf.flags.writeable for leaf in tree.leaves)
    assert tree.flat.flags.writeable and all(leaf.base is tree.flat.base for leaf in tree.leaves)
    record = tree.record()
    assert id(record) == ident and pool.made == 1
    assert not any(a.flags.writeable for a in tree_leaves(record))
    assert pool.scratch("Z", (4,), np.dtype(np.float32)) is pool.scratch(
        "Z", (4,), np.dtype(np.float32))


@pytest.mark.parametrize("name", ["sgd", "nesterov", "adam", "adamw"])
def test_after_its_first_step_a_fit_updates_whole_flat_arrays(name, monkeypatch):
    # The first step reads the initial parameters and state (separate arrays); every
    # step after it reads only trees the engine made, each one flat array.
    from purenet.optim import kernel
    modes = []

    class Watched(kernel.Trees):
        def __init__(self, workspace, *trees) -> None:
            super().__init__(workspace, *trees)
            modes.append(self.flat)

    monkeypatch.setattr(kernel, "Trees", Watched)
    x, y = data("softmax", "categorical_crossentropy", n=64)
    pn.fit(arch("relu", "softmax"), x, y, optimizer=OPTIMIZERS[name](), epochs=2,
           batch_size=8, progress=False)
    assert modes == [False] + [True] * 15


def test_no_array_a_record_shows_can_be_made_writeable():
    x, y = data("softmax", "categorical_crossentropy", n=64)
    recorder = Recorder()
    pn.fit(arch("relu", "softmax"), x, y, optimizer=optim.adam(0.01), epochs=1,
           batch_size=8, callbacks=[recorder], progress=False)
    for array in arrays_of(recorder.states[-1]):
        for target in (array, array[1:], array.T):
            with pytest.raises(ValueError, match="WRITEABLE"):
                target.setflags(write=True)
        assert array.base is None or not array.base.flags.writeable


def test_the_fresh_workspace_never_reuses():
    like = Grads((Dense(np.zeros((3, 2)), np.zeros(2)),))
    first, second = FRESH.tree(like), FRESH.tree(like)
    assert first.flat is None and not set(map(id, first.leaves)) & set(map(id, second.leaves))
    assert FRESH.flat_of(first.record()) is None
    assert FRESH.scratch("Z", (2,), np.dtype(np.float64)) is not FRESH.scratch(
        "Z", (2,), np.dtype(np.float64))


def test_checkpoints_written_in_the_background_hold_the_pure_steps_bits(tmp_path):
    from purenet.checkpoint.policy import Checkpointer, load_checkpoint
    x, y = data("softmax", "categorical_crossentropy")
    config = RunConfig(arch("relu", "softmax"), optim.adam(0.01), epochs=2, batch_size=BATCH,
                       dtype="float32", seed=5)
    pn.fit(config, x, y, checkpointer=Checkpointer(tmp_path, every_steps=1, keep=None),
           progress=False)
    want, _ = pure_states(config, x, y)
    got = [load_checkpoint(tmp_path / f"step-{k:08d}.h5").state for k in range(1, len(want) + 1)]
    assert_bit_identical((got, []), (want, []))


def test_early_stopping_restores_best_params_that_were_never_overwritten():
    x, y = data("softmax", "categorical_crossentropy", n=64)
    early = pn.EarlyStopping(monitor="train_loss", patience=1, restore_best=True)
    config = RunConfig(arch("relu", "softmax"), optim.sgd(3.0), epochs=30, batch_size=8,
                       early_stopping=early, dtype="float64", seed=0)
    recorder = Recorder()

    class EpochEnds(pn.Callback):
        def __init__(self) -> None:
            self.params = []

        def on_epoch_end(self, state) -> None:
            self.params.append((state.epoch - 1, params_digest(state.params)))

    ends = EpochEnds()
    result = pn.fit(config, x, y, callbacks=[recorder, ends], progress=False)
    assert result.state.stopped
    best = result.state.early_stopping.best_epoch
    assert params_digest(result.state.params) == dict(ends.params[:best + 1])[best]


@pytest.mark.parametrize("name,make", [("sgd", lambda: optim.sgd(10.0)),
                                       ("momentum", lambda: optim.momentum(5.0, 0.9))])
def test_the_guard_reports_divergence_alike_with_or_without_a_kernel(name, make):
    # With a kernel (update_into) the gradients are checked after the update, without one
    # before it: the same run must stop at the same step, with the same message, and keep
    # the state before that step intact.
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 3)) * 100
    y = x @ np.array([1.0, -2.0, 3.0])
    arch = [{"input_dim": 3, "output_dim": 16, "activation": "relu"},
            {"input_dim": 16, "output_dim": 1, "activation": "identity"}]
    outcomes = []
    for optimizer in (make(), optim.chain(make())):
        assert (optimizer.update_into is None) == (optimizer.name == "chain")
        recorder = Recorder()
        with pytest.raises(pn.NonFiniteError, match=r"diverged in step \d+") as info:
            pn.fit(arch, x, y, optimizer=optimizer, epochs=50, batch_size=8, dtype="float64",
                   callbacks=[recorder], progress=False)
        assert [state_digest(s) for s in recorder.states] == recorder.digests
        outcomes.append((str(info.value), recorder.digests[-1] if recorder.digests else None))
    assert outcomes[0] == outcomes[1]


def test_a_step_too_large_to_represent_is_named_alike_with_or_without_a_kernel():
    # Finite gradients, but updates that overflow float32: the new parameters fail.
    x, y = data("softmax", "categorical_crossentropy")
    messages = []
    for optimizer in (optim.sgd(3e38), optim.chain(optim.sgd(3e38))):
        config = RunConfig(arch("relu", "softmax"), optimizer, batch_size=BATCH,
                           dtype="float32")
        state = initial_state_for(config)
        with pytest.raises(pn.NonFiniteError) as info:
            pn.train_step(state, pn.Batch(x * 100, y), config)
        messages.append(str(info.value))
    assert "the updated parameters of layer" in messages[0]
    assert "the gradient" not in messages[0]
    assert messages[0] == messages[1]
