"""A walk through purenet's functional API, one pure step at a time.

Architecture from the tutorial's list of dicts -> parameters -> (loss, grads) on a Batch
-> an optimizer's init / update / apply_updates -> a checkpoint written and read back,
checked equal by the parameters' digest. Every record is immutable: each step makes new
ones and leaves its inputs as they were.

    python scripts/functional_api.py [--steps 200] [--dir DIR]
"""

from __future__ import annotations

import argparse
import math
import os
import tempfile

import numpy as np
from sklearn.datasets import make_moons

import purenet as pn
from purenet.core.records import params_digest
from purenet.train.state import TrainState
from purenet.train.config import RunConfig

NN_ARCHITECTURE = [
    {"input_dim": 2, "output_dim": 16, "activation": "relu"},
    {"input_dim": 16, "output_dim": 16, "activation": "relu"},
    {"input_dim": 16, "output_dim": 1, "activation": "sigmoid"},
]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200, help="optimizer steps (default 200)")
    parser.add_argument("--dir", help="where to write the checkpoint (default: a temp dir)")
    args = parser.parse_args(argv)

    arch = pn.Architecture.from_dicts(NN_ARCHITECTURE)
    sizes = [arch.input_dim] + [layer.output_dim for layer in arch.layers]
    print(f"1. Architecture.from_dicts: {'-'.join(map(str, sizes))}, output "
          f"{arch.output_activation}")

    params = pn.init_params(arch, seed=0, init="he_normal", dtype="float64")
    print(f"2. init_params(seed=0): W shapes {[l.W.shape for l in params.layers]}, "
          f"digest {params_digest(params)[:16]}...")
    try:
        params.layers[0].W[0, 0] = 1.0
    except ValueError:
        print("   the arrays are read-only: params.layers[0].W[0, 0] = 1.0 raised ValueError")

    x, y = make_moons(n_samples=400, noise=0.1, random_state=0)
    batch = pn.Batch(x, y)
    loss, grads = pn.loss_and_grads(params, batch)
    print(f"3. loss_and_grads on a Batch of {len(x)} points: loss {loss:.4f}, "
          f"|dW0| = {np.linalg.norm(grads.layers[0].W):.4f}")
    again, _ = pn.loss_and_grads(params, batch)
    print(f"   pure: the same call again gives the same loss ({again == loss})")

    opt = pn.optim.adam(learning_rate=0.01)
    opt_state = opt.init(params)
    first, first_digest = params, params_digest(params)
    history = pn.History()   # what fit records: a full batch is one epoch a step
    for step in range(args.steps):
        loss, grads = pn.loss_and_grads(params, batch)
        history = history.append(epoch=step + 1, train_loss=float(loss),
                                 train_accuracy=pn.evaluate(params, x, y)["accuracy"],
                                 val_loss=math.nan, val_accuracy=math.nan)
        updates, opt_state = opt.update(grads, opt_state, params)
        params = pn.optim.apply_updates(params, updates)
    accuracy = pn.evaluate(params, x, y)["accuracy"]
    print(f"4. {args.steps} steps of adam (init / update / apply_updates): loss "
          f"{pn.loss_and_grads(params, batch)[0]:.4f}, accuracy {accuracy:.1%}; the initial "
          f"Params record is untouched ({params_digest(first) == first_digest})")

    directory = args.dir or tempfile.mkdtemp(prefix="purenet-functional-")
    # The loop's state as fit's full-batch run would hold it: a checkpoint must be a state
    # its run record could reach (each step an epoch, its history row, the updates counted).
    state = TrainState(step=args.steps, epoch=args.steps, batch_index=0, seed=0,
                       params=params, opt_state=opt_state, history=history)
    spec = RunConfig(arch, opt, loss="binary_crossentropy", dtype="float64", seed=0,
                     batch_size=None, epochs=args.steps)
    path = pn.Checkpointer(directory).save(state, spec)
    print(f"5. Checkpointer.save: {path} ({os.path.getsize(path)} bytes, written atomically "
          "and verified)")

    restored = pn.load_checkpoint(directory)
    same = params_digest(restored.state.params) == params_digest(params)
    print(f"6. load_checkpoint: step {restored.state.step}, digest "
          f"{restored.params_digest[:16]}... equal to the saved params: {same}")
    if not same:
        raise SystemExit("the checkpoint did not read back equal")


if __name__ == "__main__":
    main()
