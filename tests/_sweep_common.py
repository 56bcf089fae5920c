"""Small experiment and sweep files for the sweep, diff and verify tests."""

import json
import os

EXPERIMENT = """
name = "{name}"
seed = 0
epochs = {epochs}
batch_size = 16

[data]
source = "make_moons"
test_size = 0.25

[data.args]
n_samples = {samples}
noise = 0.2
random_state = 0

[[layers]]
input_dim = 2
output_dim = 16
activation = "relu"

[[layers]]
input_dim = 16
output_dim = 1
activation = "sigmoid"

[optimizer]
name = "adam"
learning_rate = 0.01

[checkpoint]
every_steps = {every}
keep = 2
"""

SIX_TRIALS = """
[sweep]
seed = [0, 1]
"optimizer.learning_rate" = [0.003, 0.01, 0.03]
"""


def write_experiment(directory, name="tiny", epochs=20, samples=200, every=50, sweep=SIX_TRIALS):
    """An experiment file (with ``sweep`` appended: a sweep file); returns its path."""
    path = os.path.join(directory, f"{name}.toml")
    with open(path, "w") as fh:
        fh.write(EXPERIMENT.format(name=name, epochs=epochs, samples=samples, every=every))
        fh.write(sweep or "")
    return path


def alone_digest(trial_dir, run_dir):
    """The params digest of the trial's experiment trained alone by the runner, as
    ``purenet train TRIAL/config.toml --run-dir RUN_DIR`` would."""
    from purenet.experiment.config import load_experiment
    from purenet.experiment.runner import run_experiment

    experiment = load_experiment(os.path.join(trial_dir, "config.toml"))
    return run_experiment(experiment, run_dir, progress=False)["params_digest"]


def summary(trial_dir):
    with open(os.path.join(trial_dir, "summary.json")) as fh:
        return json.load(fh)
