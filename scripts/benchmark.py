"""Training speed of purenet against scikit-learn, PyTorch and the matrix-product floor.

Every contender does the same work: same data, layer sizes, batch size, number of steps,
learning rate, plain SGD (no momentum, no weight decay), no early stopping, the same BLAS
and OpenMP thread count (threadpoolctl; ``torch.set_num_threads`` to match). They run in
one process, alternating (the order rotates every repetition), after one small warm-up
each; the table gives medians over ``--repeats`` runs of wall time ("wall s") and of process
CPU time ("cpu s"); the ratios and us/step use the wall medians, or the CPU ones with
``--clock cpu`` (better when other processes share the CPUs: they inflate wall time). The
last column, training accuracy after the run, shows every contender really trained.

The process is pinned to as many CPUs as threads (``os.sched_setaffinity``): JAX's CPU
runtime starts threads that ``XLA_FLAGS`` does not limit, which made its one-thread wall
times two-thread ones. Threads default to 1: results then do not depend on how the machine
schedules threads
(on the 2-vCPU development VM, a 2-thread sgemm of 256x784 @ 784x512 took 11-22 ms against
3.3 ms on one thread, in both OpenBLAS and torch, with run-to-run spread of 10x), and
purenet's bit-identity is tied to the thread count anyway. ``--threads N`` to compare.

- purenet: ``purenet.fit(..., optimizer=sgd(lr), shuffle=True)``.
- scikit-learn: ``MLPClassifier(solver="sgd", momentum=0, alpha=0, tol=0, ...)``; it computes
  in the dtype of X, so float32 workloads pass float32 X.
- PyTorch: a plain loop over ``nn.Sequential`` + ``torch.optim.SGD`` with BCEWithLogits /
  CrossEntropy, minibatches gathered through ``torch.randperm``.
- JAX (if installed), two rows: ``jax``, a jit-compiled pure SGD step ``params -> params``
  (the batch gathered inside it) called from Python per batch; ``jax_scan``, JAX at its
  best on CPU: one jit-compiled epoch, the permutation drawn and the batches gathered and
  stepped through by ``jax.lax.scan`` inside the compiled program. Both over a list of
  ``(W, b)``, BCE from logits / log-softmax cross-entropy, CPU, float64 enabled for the
  seed workload; compiled during the untimed warm-up, so compile time is excluded;
  ``XLA_FLAGS`` limits its threads.
- floor: only the matrix products training needs, in NumPy, into preallocated arrays:
  forward ``A @ W`` per layer; backward ``dW = A_prev.T @ dZ`` per layer and
  ``dA_prev = dZ @ W.T`` for all but the first layer; same steps and batch shapes.

Full-batch workloads are not shuffled by anyone (a permutation of the whole batch changes
nothing but the summation order; purenet skips it by itself). Initialisations differ
(he_normal, Glorot uniform, Kaiming uniform): they do not change the amount of work.

Memory, per contender, in a fresh process that has imported its library, loaded the data
and done the warm-up run (none of which is counted; torch's first use alone adds ~80 MiB):
- "RSS+ MiB": growth of the peak resident set during training (VmHWM reset through
  /proc/self/clear_refs); the same method for every contender, torch included, and it
  includes library workspaces (BLAS buffers, allocator caches).
- "heap MiB": tracemalloc's peak, a second run in the same process: memory allocated
  through Python and NumPy (not BLAS, not torch; so "n/a" for torch).

Also: ``import purenet`` time in a fresh interpreter (median of runs, minus a bare ``python
-c pass``), and saving the 784-512-512-10 network with Adam state through purenet's checkpoint
functions vs ``np.save`` of the same arrays into one fsynced file (skipped if they do not
import). ``--quick`` (well under a minute): seed 20 steps, minibatch 2000 samples and wide
3000 samples for 1 epoch, no memory probes unless ``--memory``.

    python scripts/benchmark.py [--quick] [--repeats 3] [--workloads seed,minibatch,wide]
                                [--threads N] [--[no-]memory] [--clock wall|cpu]
                                [--json PATH]
    python scripts/benchmark.py --scaling [--repeats 5] [--workloads ...]   # 1 vs 2 threads
    python scripts/benchmark.py --only sklearn [--seeds 3] [--dtypes float32,float64]
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from typing import Callable, NamedTuple

import numpy as np

LR = 0.01
SEED = 0
PEERS = ("sklearn", "torch", "jax", "jax_scan")


class Workload(NamedTuple):
    name: str
    make: Callable[[bool], tuple]   # quick -> (x, y)
    hidden: tuple[int, ...]
    n_classes: int                  # 2: one sigmoid output; more: softmax
    batch: int | None               # None: the full batch
    epochs: int
    quick_epochs: int
    dtype: str


def _circles(quick: bool):
    from sklearn.datasets import make_circles
    from sklearn.model_selection import train_test_split
    x, y = make_circles(n_samples=1000, noise=0.1, factor=0.3, random_state=SEED)
    return train_test_split(x, y, test_size=0.1, random_state=42)[0::2]   # 900 samples


def _classification(n: int, quick_n: int, features: int, **kwargs):
    def make(quick: bool):
        from sklearn.datasets import make_classification
        x, y = make_classification(quick_n if quick else n, features, random_state=SEED, **kwargs)
        return x.astype(np.float32), y
    return make


WORKLOADS = {w.name: w for w in (
    Workload("seed", _circles, (50, 100, 200, 100, 50), 2, None, 1000, 20, "float64"),
    Workload("minibatch", _classification(20000, 2000, 100, n_informative=10),
             (256, 256), 2, 64, 3, 1, "float32"),
    Workload("wide", _classification(60000, 3000, 784, n_informative=50, n_classes=10),
             (512, 512), 10, 256, 1, 1, "float32"),
)}


def dims(w: Workload, x) -> list[int]:
    return [x.shape[1], *w.hidden, 1 if w.n_classes == 2 else w.n_classes]


def steps(w: Workload, n: int, epochs: int) -> int:
    return epochs * math.ceil(n / (w.batch or n))


def layer_dicts(d: list[int], n_classes: int) -> list[dict]:
    """purenet's (the tutorial's) architecture: relu layers, sigmoid or softmax output."""
    arch = [{"input_dim": i, "output_dim": o, "activation": "relu"} for i, o in zip(d, d[1:])]
    arch[-1]["activation"] = "sigmoid" if n_classes == 2 else "softmax"
    return arch


# --- contenders: each trains, and returns x -> predicted labels (called untimed) --------


def train_purenet(w: Workload, x, y, epochs: int):
    import purenet
    result = purenet.fit(layer_dicts(dims(w, x), w.n_classes), x, y,
                         optimizer=purenet.optim.sgd(LR), epochs=epochs, batch_size=w.batch,
                         seed=SEED, dtype=w.dtype, progress=False, shuffle=True,
                         threads=THREADS)   # the run owns its threads: the same as the peers'
    params = result.state.params
    if w.n_classes == 2:
        return lambda x: (purenet.predict(params, x)[:, 0] > 0.5).astype(int)
    return lambda x: purenet.predict(params, x).argmax(axis=1)


def train_sklearn(w: Workload, x, y, epochs: int):
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier
    model = MLPClassifier(
        hidden_layer_sizes=w.hidden, activation="relu", solver="sgd", momentum=0.0,
        nesterovs_momentum=False, learning_rate="constant", learning_rate_init=LR,
        batch_size=w.batch or len(x), max_iter=epochs, tol=0.0, n_iter_no_change=epochs + 1,
        early_stopping=False, alpha=0.0, shuffle=w.batch is not None, random_state=SEED)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(x, y)
    return model.predict


def train_torch(w: Workload, x, y, epochs: int):
    import torch
    from torch import nn
    torch.manual_seed(SEED)
    d = dims(w, x)
    layers = [m for i, o in zip(d, d[1:]) for m in (nn.Linear(i, o), nn.ReLU())][:-1]
    model = nn.Sequential(*layers).to(getattr(torch, w.dtype))
    X = torch.from_numpy(x)
    if w.n_classes == 2:
        Y, loss_fn = torch.from_numpy(y.astype(w.dtype)).reshape(-1, 1), nn.BCEWithLogitsLoss()
    else:
        Y, loss_fn = torch.from_numpy(y.astype(np.int64)), nn.CrossEntropyLoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=LR)
    n, batch = len(X), w.batch or len(X)
    generator = torch.Generator().manual_seed(SEED)
    for _ in range(epochs):
        order = torch.randperm(n, generator=generator) if w.batch else None
        for start in range(0, n, batch):
            if order is None:
                xb, yb = X[start:start + batch], Y[start:start + batch]
            else:
                idx = order[start:start + batch]
                xb, yb = X[idx], Y[idx]
            optimizer.zero_grad(set_to_none=True)
            loss_fn(model(xb), yb).backward()
            optimizer.step()

    def predict(x):
        with torch.no_grad():
            out = model(torch.from_numpy(x))
        return (out[:, 0] > 0).int().numpy() if w.n_classes == 2 else out.argmax(1).numpy()
    return predict


def train_floor(w: Workload, x, y, epochs: int):
    rng = np.random.default_rng(SEED)
    d, batch = dims(w, x), w.batch or len(x)
    Ws = [(rng.standard_normal((i, o)) * np.sqrt(2 / i)).astype(w.dtype) for i, o in zip(d, d[1:])]
    A = [np.empty((batch, o), w.dtype) for o in d[1:]]
    dZ = [rng.standard_normal((batch, o)).astype(w.dtype) for o in d[1:]]
    dW = [np.empty_like(W) for W in Ws]
    for _ in range(epochs):
        for start in range(0, len(x), batch):
            inputs = [x[start:start + batch]]
            m = len(inputs[0])
            for W, out in zip(Ws, A):
                inputs.append(np.matmul(inputs[-1], W, out=out[:m]))
            for i in range(len(Ws) - 1, -1, -1):
                np.matmul(inputs[i].T, dZ[i][:m], out=dW[i])
                if i:
                    np.matmul(dZ[i][:m], Ws[i].T, out=dZ[i - 1][:m])
    return None


def _jax_loss(n_classes: int):
    """The loss of a batch, ``(params, xb, yb) -> mean``: BCE from logits as
    BCEWithLogits, or log-softmax cross-entropy."""
    import jax
    import jax.numpy as jnp

    def loss(params, xb, yb):
        a = xb
        for W, b in params[:-1]:
            a = jax.nn.relu(a @ W + b)
        W, b = params[-1]
        z = a @ W + b
        if n_classes == 2:
            return jnp.mean(jnp.maximum(z, 0) - z * yb + jnp.log1p(jnp.exp(-jnp.abs(z))))
        return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(z), yb[:, None], axis=1))
    return loss


def _jax_sgd(n_classes: int):
    """``(params, X, Y, idx) -> params``: one SGD step on the rows ``idx``, gathered
    inside the traced function."""
    import jax
    import jax.numpy as jnp
    grad = jax.grad(_jax_loss(n_classes))

    def step(params, X, Y, idx):
        grads = grad(params, jnp.take(X, idx, axis=0), jnp.take(Y, idx, axis=0))
        return jax.tree_util.tree_map(lambda p, g: p - LR * g, params, grads)
    return step


def _jax_step(n_classes: int):
    """The jit-compiled pure SGD step ``(params, X, Y, idx) -> params``; one per output
    kind, compiled once per batch shape."""
    if n_classes not in _JAX_STEPS:
        import jax
        _JAX_STEPS[n_classes] = jax.jit(_jax_sgd(n_classes), donate_argnums=0)
    return _JAX_STEPS[n_classes]


def _jax_epoch(n_classes: int, n: int, batch: int, shuffle: bool):
    """One jit-compiled epoch ``(params, X, Y, key) -> params``: the permutation drawn,
    the full batches run by ``jax.lax.scan`` and the last partial one after it, all
    inside one compiled program (JAX's fastest form on CPU: no Python per step)."""
    key = (n_classes, n, batch, shuffle)
    if key not in _JAX_EPOCHS:
        import jax
        import jax.numpy as jnp
        step = _jax_sgd(n_classes)
        full, rest = divmod(n, batch)

        def epoch(params, X, Y, rng):
            order = (jax.random.permutation(rng, n) if shuffle else jnp.arange(n)).astype(jnp.int32)
            params, _ = jax.lax.scan(lambda p, idx: (step(p, X, Y, idx), None), params,
                                     order[:full * batch].reshape(full, batch))
            return step(params, X, Y, order[full * batch:]) if rest else params
        _JAX_EPOCHS[key] = jax.jit(epoch, donate_argnums=0)
    return _JAX_EPOCHS[key]


_JAX_STEPS: dict = {}
_JAX_EPOCHS: dict = {}


def _jax_setup(w: Workload, x, y):
    import jax
    import jax.numpy as jnp
    rng = np.random.default_rng(SEED)
    d = dims(w, x)
    params = [(jnp.asarray((rng.standard_normal((i, o)) * np.sqrt(2 / i)).astype(w.dtype)),
               jnp.zeros(o, w.dtype)) for i, o in zip(d, d[1:])]
    Y = y.astype(w.dtype).reshape(-1, 1) if w.n_classes == 2 else y.astype(np.int32)
    return jax, jnp, params, jnp.asarray(x), jnp.asarray(Y)


def compile_jax(w: Workload, x, y) -> None:
    """Compile the JAX step for every batch shape of the run, and the JAX epoch (untimed,
    like a warm-up)."""
    jax, jnp, params, X, Y = _jax_setup(w, x, y)
    batch = w.batch or len(x)
    for m in {batch, len(x) % batch or batch}:
        params = _jax_step(w.n_classes)(params, X, Y, jnp.asarray(np.arange(m, dtype=np.int32)))
    params = _jax_epoch(w.n_classes, len(x), batch, w.batch is not None)(
        params, X, Y, jax.random.PRNGKey(SEED))
    jax.block_until_ready(params)


def _jax_predict(params, w: Workload):
    import jax
    import jax.numpy as jnp

    def predict(x):
        a = jnp.asarray(x)
        for W, b in params[:-1]:
            a = jax.nn.relu(a @ W + b)
        z = np.asarray(a @ params[-1][0] + params[-1][1])
        return (z[:, 0] > 0).astype(int) if w.n_classes == 2 else z.argmax(axis=1)
    return predict


def train_jax(w: Workload, x, y, epochs: int):
    jax, jnp, params, X, Y = _jax_setup(w, x, y)
    step = _jax_step(w.n_classes)
    n, batch = len(x), w.batch or len(x)
    for epoch in range(epochs):
        order = (np.random.default_rng((SEED, epoch)).permutation(n) if w.batch else
                 np.arange(n)).astype(np.int32)
        for start in range(0, n, batch):
            params = step(params, X, Y, jnp.asarray(order[start:start + batch]))
    return _jax_predict(jax.block_until_ready(params), w)


def train_jax_scan(w: Workload, x, y, epochs: int):
    jax, jnp, params, X, Y = _jax_setup(w, x, y)
    epoch_of = _jax_epoch(w.n_classes, len(x), w.batch or len(x), w.batch is not None)
    rng = jax.random.PRNGKey(SEED)
    for epoch in range(epochs):
        params = epoch_of(params, X, Y, jax.random.fold_in(rng, epoch))
    return _jax_predict(jax.block_until_ready(params), w)


CONTENDERS = {"purenet": (train_purenet, "purenet"),
              "sklearn": (train_sklearn, "sklearn.neural_network"),
              "torch": (train_torch, "torch"), "jax": (train_jax, "jax"),
              "jax_scan": (train_jax_scan, "jax"),
              "floor": (train_floor, "numpy")}


def available() -> list[str]:
    """The contenders installed; JAX with its CPU thread count set first (XLA reads it
    when jax is imported, from ``XLA_FLAGS``)."""
    names = ["purenet", "sklearn", "floor"]
    for peer in ("torch", "jax"):
        try:
            import_peer(peer)
        except ImportError:
            continue
        names[-1:-1] = [peer, "jax_scan"] if peer == "jax" else [peer]
    return names


def import_peer(name: str) -> None:
    if name == "jax":
        os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " "
                                   "--xla_cpu_multi_thread_eigen=" +
                                   ("false" if THREADS == 1 else "true") +
                                   f" intra_op_parallelism_threads={THREADS}").strip()
    module = __import__(name)
    if name == "jax":
        module.config.update("jax_enable_x64", True)   # the seed workload is float64


# --- measurement --------------------------------------------------------------------


THREADS = 1   # every contender's thread count (set_threads); purenet's runs take it too


_CPUS = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []


def pin_to_cpus(threads: int) -> list[int] | None:
    """Run the process on ``threads`` CPUs alone (Linux): JAX's CPU runtime starts more
    threads than XLA_FLAGS allows (its CPU time ran to 1.5-1.8x its wall time with one
    thread asked for), so without pinning a one-thread comparison would not be one."""
    if not hasattr(os, "sched_setaffinity"):
        return None
    cpus = _CPUS[:threads]
    os.sched_setaffinity(0, cpus)
    return cpus


def set_threads(threads: int):
    """Limit BLAS and OpenMP pools to ``threads``; returns the limiter (None without
    threadpoolctl)."""
    global THREADS
    THREADS = threads
    pin_to_cpus(threads)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return None
    return threadpool_limits(limits=threads)


def warm_up(name: str, w: Workload, x, y) -> None:
    """One small run: lazy imports, thread pools, kernels chosen on first use; for JAX
    also the compilation for the run's batch shapes (compile time is not counted)."""
    CONTENDERS[name][0](w._replace(batch=w.batch and min(w.batch, 32)), x[:64], y[:64], 1)
    if name in ("jax", "jax_scan"):
        compile_jax(w, x, y)


def time_workload(w: Workload, x, y, names: list[str], repeats: int, epochs: int) -> dict:
    """Wall and process-CPU seconds of each contender, alternating; medians."""
    for name in names:
        warm_up(name, w, x, y)
    wall, cpu = {name: [] for name in names}, {name: [] for name in names}
    accuracy = {}
    for r in range(repeats):
        for name in names[r % len(names):] + names[:r % len(names)]:
            gc.collect()
            start, start_cpu = time.perf_counter(), time.process_time()
            predict = CONTENDERS[name][0](w, x, y, epochs)
            wall[name].append(time.perf_counter() - start)
            cpu[name].append(time.process_time() - start_cpu)
            if predict is not None:
                accuracy[name] = float(np.mean(predict(x) == y))
    return {name: {"wall": wall[name], "cpu": cpu[name],
                   "median_wall": statistics.median(wall[name]),
                   "median_cpu": statistics.median(cpu[name]),
                   "train_accuracy": accuracy.get(name)} for name in names}


def _proc_status_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(field + ":"))


def probe(name: str, workload: str, data: str, epochs: int, threads: int) -> None:
    """Memory of one contender in this fresh process; prints JSON (see the docstring)."""
    import importlib
    import tracemalloc
    w, train = WORKLOADS[workload], CONTENDERS[name][0]
    with np.load(data) as f:
        x, y = f["x"], f["y"]
    global THREADS
    THREADS = threads
    if CONTENDERS[name][1] == "jax":
        import_peer("jax")
    importlib.import_module(CONTENDERS[name][1])
    limiter = set_threads(threads)
    warm_up(name, w, x, y)
    gc.collect()
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")   # resets VmHWM to the current RSS
    base = _proc_status_kib("VmRSS")
    train(w, x, y, epochs)
    rss = (_proc_status_kib("VmHWM") - base) / 1024
    heap = None
    if CONTENDERS[name][1] not in ("torch", "jax"):
        tracemalloc.start()
        train(w, x, y, epochs)
        heap = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
    print(json.dumps({"rss_mib": rss, "heap_mib": heap}))
    del limiter


def memory(w: Workload, x, y, names: list[str], epochs: int, threads: int) -> dict:
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        data = os.path.join(tmp, "data.npz")
        np.savez(data, x=x, y=y)
        for name in names:
            cmd = [sys.executable, __file__, "--probe", name, w.name, data, str(epochs),
                   "--threads", str(threads)]
            run = subprocess.run(cmd, capture_output=True, text=True)
            out[name] = json.loads(run.stdout) if run.returncode == 0 else {
                "error": run.stderr.strip().splitlines()[-1:]}
    return out


def import_time(runs: int = 9) -> dict:
    """Median wall time of ``python -c "import purenet"`` minus ``python -c "pass"``."""
    walls = {"pass": [], "import purenet": []}
    for _ in range(runs):
        for code in walls:
            start = time.perf_counter()
            subprocess.run([sys.executable, "-c", code], check=True)
            walls[code].append(time.perf_counter() - start)
    heavy = ("scipy", "sklearn", "h5py", "matplotlib", "tqdm", "torch", "pandas")
    loaded = subprocess.run([sys.executable, "-c", "import purenet, sys; print(' '.join("
                             f"m for m in {heavy!r} if m in sys.modules))"],
                            capture_output=True, text=True, check=True).stdout.split()
    med = {k: statistics.median(v) for k, v in walls.items()}
    return {"seconds": med["import purenet"] - med["pass"], "heavy_modules_loaded": loaded}


def _filesystem(path: str) -> str:
    """The type of the file system holding ``path`` (from /proc/mounts), e.g. ext4, tmpfs."""
    try:
        with open("/proc/mounts") as f:
            mounts = [line.split()[1:3] for line in f]
    except OSError:
        return "unknown"
    path = os.path.realpath(path)
    best = max((m for m in mounts if path == m[0] or path.startswith(m[0].rstrip("/") + "/")),
               key=lambda m: len(m[0]), default=["", "unknown"])
    return best[1]


def _alternating(runs: dict[str, Callable[[int], None]], repeats: int) -> dict[str, float]:
    """The minimum wall time of each run over ``repeats`` rounds, the order rotating."""
    times = {name: [] for name in runs}
    names = list(runs)
    for r in range(repeats):
        for name in names[r % len(names):] + names[:r % len(names)]:
            gc.collect()
            start = time.perf_counter()
            runs[name](r)
            times[name].append(time.perf_counter() - start)
    return {name: min(t) for name, t in times.items()}


def checkpoint_time(repeats: int) -> dict:
    """The 784-512-512-10 network with Adam state (float32, 8 MB of arrays), side by side,
    alternating, minimum of ``repeats`` (at least 5) rounds: ``write_checkpoint`` (HDF5,
    digest, fsync, rename, fsync directory) and ``Checkpointer.save`` (that, plus reading
    the file back to check its digest, and retention) vs ``np.save`` of the same arrays
    into one file + fsync; ``read_checkpoint`` (digest, parse, validation) vs ``np.load``."""
    try:
        import attrs
        import purenet
        from purenet.checkpoint.format import read_checkpoint, write_checkpoint
        from purenet.checkpoint.policy import Checkpointer
        from purenet.core.records import tree_leaves
        from purenet.train.config import RunConfig
        from purenet.train.loop import initial_state_for
    except ImportError as error:
        return {"skipped": f"purenet.checkpoint.format does not import: {error}"}
    arch = purenet.Architecture.from_dicts(layer_dicts([784, 512, 512, 10], 10))
    spec = RunConfig(arch, purenet.optim.adam(1e-3), loss="categorical_crossentropy",
                     dtype="float32", seed=SEED, batch_size=256)
    rng = np.random.default_rng(SEED)
    state, _ = purenet.train_step(initial_state_for(spec), purenet.Batch(
        rng.standard_normal((256, 784)), rng.integers(0, 10, 256)), spec)
    arrays = [a for tree in (state.params, state.opt_state.mu, state.opt_state.nu)
              for a in tree_leaves(tree)]
    with tempfile.TemporaryDirectory() as tmp:
        def raw(r: int) -> None:
            with open(os.path.join(tmp, f"raw-{r}.npy"), "wb") as f:
                for a in arrays:
                    np.save(f, a)
                f.flush()
                os.fsync(f.fileno())

        def raw_load(r: int) -> None:
            with open(os.path.join(tmp, f"raw-{r}.npy"), "rb") as f:
                [np.load(f) for _ in arrays]

        checkpointer = Checkpointer(os.path.join(tmp, "ck"), keep=1)
        saves = {"np.save+fsync": raw,
                 "write_checkpoint": lambda r: write_checkpoint(
                     os.path.join(tmp, f"w-{r}.h5"), state, spec),
                 "Checkpointer.save": lambda r: checkpointer.save(
                     attrs.evolve(state, step=r + 1), spec)}
        try:
            times = _alternating(saves, max(repeats, 5))
            times |= _alternating({"np.load": raw_load, "read_checkpoint": lambda r: read_checkpoint(
                os.path.join(tmp, f"w-{r}.h5"))}, max(repeats, 5))
        except Exception as error:   # the checkpoint API is still moving
            return {"skipped": f"failed: {error!r}"}
        filesystem = _filesystem(tmp)
    return times | {"megabytes": sum(a.nbytes for a in arrays) / 1e6, "filesystem": filesystem,
                    "save_ratio": times["write_checkpoint"] / times["np.save+fsync"],
                    "checkpointer_save_ratio": times["Checkpointer.save"] / times["np.save+fsync"],
                    "load_ratio": times["read_checkpoint"] / times["np.load"]}


def checkpoint_overhead(repeats: int, quick: bool) -> dict:
    """``fit`` wall time with ``Checkpointer(every_steps=100)`` and ``every_steps=10``
    (background saves, on all CPUs) against the same fit without one: the minibatch workload
    (20000x100, 100-256-256-1, Adam, batch 64, 3 epochs; ``--quick``: 2000 samples, 1
    epoch), minimum of ``repeats`` (at least 3) alternating runs, checkpoints in a
    directory under the temp dir (its file system is reported: tmpfs would flatter)."""
    try:
        import purenet
        from purenet.checkpoint.policy import Checkpointer
    except ImportError as error:
        return {"skipped": f"purenet.checkpoint does not import: {error}"}
    w = WORKLOADS["minibatch"]
    x, y = w.make(quick)
    epochs = w.quick_epochs if quick else w.epochs
    arch = layer_dicts(dims(w, x), w.n_classes)
    # Every CPU, as a user's fit has: the background save runs beside the training thread.
    pin_to_cpus(len(_CPUS))

    with tempfile.TemporaryDirectory() as tmp:
        def run(every: int | None) -> Callable[[int], None]:
            def go(r: int) -> None:
                ck = None if every is None else Checkpointer(
                    os.path.join(tmp, f"every-{every}-{r}"), every_steps=every, keep=3)
                purenet.fit(arch, x, y, optimizer=purenet.optim.adam(1e-3), epochs=epochs,
                            batch_size=w.batch, seed=SEED, dtype=w.dtype, progress=False,
                            checkpointer=ck)
            return go
        runs = {"no checkpointer": run(None), "every_steps=100": run(100),
                "every_steps=10": run(10)}
        run(None)(-1)   # warm-up
        times = _alternating(runs, max(repeats, 3))
        filesystem = _filesystem(tmp)
    pin_to_cpus(THREADS)
    base = times["no checkpointer"]
    return times | {"steps": steps(w, len(x), epochs), "filesystem": filesystem,
                    "overhead_every_100": times["every_steps=100"] / base - 1,
                    "overhead_every_10": times["every_steps=10"] / base - 1}


def rewind_cost(repeats: int, quick: bool) -> dict:
    """``pn.state_at`` for a step 99 steps past a checkpoint against the 99 steps of
    training it replays (``fit`` from that checkpoint's state): the minibatch workload with
    Adam, a checkpoint every 100 steps, minimum of ``repeats`` (at least 3) alternating
    runs. The difference is reading checkpoints, the data's fingerprint and validation."""
    try:
        import purenet
        from purenet.checkpoint.policy import Checkpointer, load_checkpoint
    except ImportError as error:
        return {"skipped": f"purenet.checkpoint does not import: {error}"}
    w = WORKLOADS["minibatch"]
    x, y = w.make(quick)
    arch = layer_dicts(dims(w, x), w.n_classes)
    run = dict(optimizer=purenet.optim.adam(1e-3), epochs=1, batch_size=w.batch, seed=SEED,
               dtype=w.dtype, progress=False)
    if steps(w, len(x), 1) < 200:
        return {"skipped": "needs 200 steps an epoch (not with --quick)"}
    with tempfile.TemporaryDirectory() as tmp:
        purenet.fit(arch, x, y, checkpointer=Checkpointer(tmp, every_steps=100, keep=None),
                    **run)
        at_100 = load_checkpoint(os.path.join(tmp, "step-00000100.h5")).state
        times = _alternating({
            "state_at(199)": lambda r: purenet.state_at(tmp, 199, x, y),
            "fit 100->199": lambda r: purenet.fit(arch, x, y, initial_state=at_100,
                                                  max_steps=199, **run)}, max(repeats, 3))
    return times | {"ratio": times["state_at(199)"] / times["fit 100->199"]}


def thread_scaling(workloads: list[str], repeats: int, quick: bool) -> dict:
    """purenet's ``fit`` wall time with 1 and 2 BLAS threads per workload, alternating,
    medians and minima of ``repeats`` runs, and the count ``default_threads`` picks for it.
    Meaningful only on an otherwise idle machine: a busy core makes OpenBLAS's second
    thread wait (10x slowdowns seen on the shared development VM)."""
    import purenet
    from purenet.train.config import default_threads
    out = {}
    for name in workloads:
        w = WORKLOADS[name]
        x, y = w.make(quick)
        x = np.ascontiguousarray(x, dtype=w.dtype)
        epochs = w.quick_epochs if quick else w.epochs
        arch = layer_dicts(dims(w, x), w.n_classes)

        def run(threads: int) -> Callable[[int], None]:
            return lambda r: purenet.fit(arch, x, y, optimizer=purenet.optim.sgd(LR),
                                         epochs=epochs, batch_size=w.batch, seed=SEED,
                                         dtype=w.dtype, progress=False, threads=threads)
        run(1)(-1), run(2)(-1)   # warm-up: both pools started
        walls = {1: [], 2: []}
        for r in range(repeats):
            for threads in (1, 2) if r % 2 == 0 else (2, 1):
                start = time.perf_counter()
                run(threads)(r)
                walls[threads].append(time.perf_counter() - start)
        med = {t: statistics.median(v) for t, v in walls.items()}
        out[name] = {"walls": walls, "median_speedup": med[1] / med[2],
                     "min_speedup": min(walls[1]) / min(walls[2]),
                     "default_threads": default_threads(
                         purenet.Architecture.from_dicts(arch), w.batch or len(x))}
        print(f"{name:<10} 1 thread {med[1]:7.3f} s, 2 threads {med[2]:7.3f} s (medians of "
              f"{repeats}); speed-up {out[name]['median_speedup']:.2f} (of minima "
              f"{out[name]['min_speedup']:.2f}); default_threads picks "
              f"{out[name]['default_threads']}")
    return out


# --- report -------------------------------------------------------------------------


def environment(threads: int) -> dict:
    env = {"python": sys.version.split()[0], "numpy": np.__version__, "threads": threads,
           "cpus": os.cpu_count()}
    try:
        from threadpoolctl import threadpool_info
        env["pools"] = [f"{p['internal_api']} {p.get('version')} {p.get('architecture', '')} "
                        f"({p['prefix']}, {p['num_threads']} threads)" for p in threadpool_info()]
    except ImportError:
        env["pools"] = ["threadpoolctl not installed: threads not limited"]
    git = subprocess.run(["git", "describe", "--always", "--dirty"], capture_output=True,
                         text=True, cwd=os.path.dirname(os.path.abspath(__file__)))
    env["purenet_commit"] = git.stdout.strip()
    env["load_average"] = os.getloadavg()   # other processes slow every contender
    return env


def print_header(env: dict, args: argparse.Namespace, names: list[str]) -> None:
    print(f"purenet benchmark{' (QUICK: reduced samples and steps)' if args.quick else ''}; "
          f"{args.repeats} alternating repeats, medians; {env['threads']} thread(s) on "
          f"{env['cpus']} CPUs (load average {env['load_average'][0]:.2f} at start); numpy "
          f"{env['numpy']}, python {env['python']}, purenet {env['purenet_commit']}")
    print("\n".join("  pool: " + p for p in env["pools"]))
    for peer, label in (("torch", "PyTorch"), ("jax", "JAX")):
        if peer not in names:
            print(f"  {label} not installed: its rows are skipped")
    print(f"  wall s = median wall time; cpu s = median process CPU time (robust when other "
          f"processes share the CPUs);\n  vs peer, vs floor, us/step use the {args.clock} medians: "
          "time / fastest of scikit-learn, PyTorch and JAX, time / matrix products alone\n"
          "  RSS+ = peak resident-set growth while training (fresh process); "
          "heap = tracemalloc peak (Python+NumPy allocations, n/a for torch and jax)"
          + ("" if args.memory else "\n  memory not measured (--no-memory, or --quick)"))


def _cell(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}"


def print_workload(w: Workload, n: int, result: dict, mem: dict, epochs: int, x,
                   clock: str) -> None:
    n_steps = steps(w, n, epochs)
    print(f"\n== {w.name}: {n} x {x.shape[1]}, {'-'.join(map(str, dims(w, x)))}, batch "
          f"{w.batch or 'full'}, {epochs} epoch(s) = {n_steps} steps, {w.dtype}, lr {LR}")
    key = "median_" + clock
    best_peer = min((result[p][key] for p in PEERS if p in result), default=math.nan)
    floor = result["floor"][key]
    print(f"{'contender':<10}{'wall s':>8}{'(min-max)':>16}{'cpu s':>8}{'vs peer':>8}"
          f"{'vs floor':>9}{'us/step':>8}{'RSS+ MiB':>9}{'heap MiB':>9}{'train acc':>10}")
    for name, r in result.items():
        m, acc = mem.get(name, {}), r["train_accuracy"]
        print(f"{name:<10}{r['median_wall']:>8.3f}  ({min(r['wall']):.3f}-{max(r['wall']):.3f})"
              f"{r['median_cpu']:>8.3f}{r[key] / best_peer:>8.2f}{r[key] / floor:>9.2f}"
              f"{r[key] / n_steps * 1e6:>8.0f}{_cell(m.get('rss_mib')):>9}"
              f"{_cell(m.get('heap_mib')):>9}{'-' if acc is None else f'{acc:.3f}':>10}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small data, few steps (<1 min)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workloads", default=",".join(WORKLOADS))
    parser.add_argument("--threads", type=int, default=1,
                        help="BLAS/OpenMP/torch threads for every contender (default 1)")
    parser.add_argument("--memory", action=argparse.BooleanOptionalAction,
                        help="measure memory in fresh processes (default: on, off with --quick)")
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                        help="which median the ratios use (cpu: on a shared machine)")
    parser.add_argument("--json", help="also write the results to this file")
    parser.add_argument("--probe", nargs=4, help=argparse.SUPPRESS)
    parser.add_argument("--scaling", action="store_true",
                        help="only purenet's speed-up from a second BLAS thread per workload "
                             "(wall time; run it on an idle machine) and the default rule's "
                             "choice")
    parser.add_argument("--only", choices=["sklearn"],
                        help="run one section alone: sklearn = PureNetClassifier vs "
                             "MLPClassifier (scripts/benchmark_estimators.py; its own options, "
                             "e.g. --seeds 3, follow)")
    args, rest = parser.parse_known_args(argv)
    if args.only == "sklearn":
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        import benchmark_estimators
        return benchmark_estimators.main(rest)
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    if args.probe:
        name, workload, data, epochs = args.probe
        return probe(name, workload, data, int(epochs), args.threads)
    unknown = set(args.workloads.split(",")) - set(WORKLOADS)
    if unknown or args.repeats < 1:
        parser.error(f"unknown workloads {sorted(unknown)}; expected some of {list(WORKLOADS)}"
                     if unknown else "--repeats must be >= 1")
    if args.scaling:
        report = thread_scaling(args.workloads.split(","), args.repeats, args.quick)
        if args.json:
            with open(args.json, "w") as f:
                json.dump(report, f, indent=2)
        return None
    started = time.perf_counter()
    global THREADS
    THREADS = args.threads
    names = available()   # imports torch and jax, if installed, before threads are set
    limiter = set_threads(args.threads)
    if args.memory is None:
        args.memory = not args.quick
    env = environment(args.threads)
    print_header(env, args, names)
    report = {"environment": env, "quick": args.quick, "repeats": args.repeats,
              "threads": args.threads, "clock": args.clock, "workloads": {}}
    for wname in args.workloads.split(","):
        w = WORKLOADS[wname]
        x, y = w.make(args.quick)
        x = np.ascontiguousarray(x, dtype=w.dtype)
        epochs = w.quick_epochs if args.quick else w.epochs
        result = time_workload(w, x, y, names, args.repeats, epochs)
        mem = memory(w, x, y, names, epochs, args.threads) if args.memory else {}
        print_workload(w, len(x), result, mem, epochs, x, args.clock)
        report["workloads"][wname] = {"steps": steps(w, len(x), epochs), "n_samples": len(x),
                                      "timing": result, "memory": mem}
    report["import"] = import_time(5 if args.quick else 15)
    print(f"\nimport purenet: {report['import']['seconds'] * 1e3:.0f} ms over a bare interpreter; "
          f"heavy modules it loads: {report['import']['heavy_modules_loaded'] or 'none'}")
    report["checkpoint"] = ck = checkpoint_time(args.repeats)
    print("checkpoint, 784-512-512-10 + Adam state: " + (ck["skipped"] if "skipped" in ck else (
        f"{ck['megabytes']:.1f} MB of arrays on {ck['filesystem']}; save: write_checkpoint "
        f"{ck['write_checkpoint'] * 1e3:.1f} ms, Checkpointer.save "
        f"{ck['Checkpointer.save'] * 1e3:.1f} ms, np.save+fsync {ck['np.save+fsync'] * 1e3:.1f}"
        f" ms (ratios {ck['save_ratio']:.2f}x, {ck['checkpointer_save_ratio']:.2f}x); load: "
        f"read_checkpoint {ck['read_checkpoint'] * 1e3:.1f} ms, np.load "
        f"{ck['np.load'] * 1e3:.1f} ms (ratio {ck['load_ratio']:.2f}x)")))
    report["checkpoint_overhead"] = over = checkpoint_overhead(args.repeats, args.quick)
    print("fit overhead of checkpointing, minibatch + Adam: " + (over["skipped"] if "skipped" in
          over else (f"{over['steps']} steps on {over['filesystem']}; no checkpointer "
                     f"{over['no checkpointer']:.2f} s, every_steps=100 "
                     f"{over['every_steps=100']:.2f} s ({over['overhead_every_100']:+.1%}), "
                     f"every_steps=10 {over['every_steps=10']:.2f} s "
                     f"({over['overhead_every_10']:+.1%})")))
    report["rewind"] = rw = rewind_cost(args.repeats, args.quick)
    print("rewind, minibatch + Adam: " + (rw["skipped"] if "skipped" in rw else (
        f"state_at 99 steps past a checkpoint {rw['state_at(199)']:.3f} s, the same 99 steps "
        f"of fit {rw['fit 100->199']:.3f} s (ratio {rw['ratio']:.2f}x)")))
    report["total_seconds"] = time.perf_counter() - started
    print(f"total {report['total_seconds']:.1f} s; load average now {os.getloadavg()[0]:.2f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)
    del limiter


if __name__ == "__main__":
    main()
