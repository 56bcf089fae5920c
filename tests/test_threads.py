"""The run owns its BLAS threads: fit applies RunConfig.threads for the run's duration only,
and a run resumed under another OPENBLAS_NUM_THREADS gives the uninterrupted run's bits
(L-BFGS's too: full batch, its line searches and curvature pairs)."""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from threadpoolctl import threadpool_info

import purenet as pn
from purenet.train.config import default_threads

SMALL = [{"input_dim": 4, "output_dim": 16, "activation": "relu"},
         {"input_dim": 16, "output_dim": 1, "activation": "sigmoid"}]
WIDE = [{"input_dim": 784, "output_dim": 512, "activation": "relu"},
        {"input_dim": 512, "output_dim": 512, "activation": "relu"},
        {"input_dim": 512, "output_dim": 10, "activation": "softmax"}]


def blas_threads():
    return [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]


def test_the_default_rule_depends_on_the_run_alone():
    assert default_threads(pn.Architecture.from_dicts(SMALL), 64) == 1
    assert default_threads(pn.Architecture.from_dicts(WIDE), 256) == 2
    assert default_threads(pn.Architecture.from_dicts(WIDE), 32) == 1
    assert pn.RunConfig(WIDE, batch_size=256).threads == 2
    assert pn.RunConfig(WIDE, batch_size=256, threads=1).to_dict()["threads"] == 1


def test_bad_thread_counts_are_refused():
    for bad in (0, -1, 1.5, "2", True):
        with pytest.raises(pn.SettingError, match="threads"):
            pn.RunConfig(SMALL, threads=bad)


class SeenThreads(pn.Callback):
    def on_step_end(self, state, metrics):
        self.seen = blas_threads()


def test_fit_applies_the_run_setting_and_restores_the_callers():
    before = blas_threads()
    x = np.random.default_rng(0).normal(size=(32, 4))
    seen = SeenThreads()
    pn.fit(SMALL, x, (x[:, 0] > 0).astype(int), epochs=1, threads=3, callbacks=[seen],
           progress=False)
    assert set(seen.seen) == {3}
    assert blas_threads() == before


CHILD = textwrap.dedent("""
    import sys
    import numpy as np
    import purenet as pn
    from purenet.core.records import params_digest
    directory, phase, optimizer = sys.argv[1], sys.argv[2], sys.argv[3]
    rng = np.random.default_rng(0)
    x = rng.normal(size=(512, 256)).astype(np.float32)
    y = (x[:, :3].sum(axis=1) > 0).astype(int)
    arch = [{"input_dim": 256, "output_dim": 384, "activation": "relu"},
            {"input_dim": 384, "output_dim": 384, "activation": "tanh"},
            {"input_dim": 384, "output_dim": 1, "activation": "sigmoid"}]
    runs = {"adam": dict(optimizer=pn.optim.adam(1e-3), epochs=2, batch_size=128),
            "lbfgs": dict(optimizer=pn.optim.lbfgs(history_size=5), epochs=8, batch_size=None)}
    run = dict(runs[optimizer], threads=2, progress=False)   # 8 steps either way
    if phase == "whole":
        result = pn.fit(arch, x, y, **run)
    else:
        result = pn.fit(arch, x, y, checkpointer=pn.Checkpointer(directory, every_steps=1),
                        resume=phase == "resume", max_steps=3 if phase == "start" else None,
                        **run)
    print(result.state.step, params_digest(result.state.params))
""")


def child(tmp_path, phase, env_threads, optimizer="adam"):
    env = {**os.environ, "OPENBLAS_NUM_THREADS": str(env_threads), "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-c", CHILD, str(tmp_path / "ck"), phase, optimizer],
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


@pytest.mark.parametrize("optimizer", ["adam", "lbfgs"])
@pytest.mark.parametrize("first, second", [(2, 1), (1, 2)])
def test_resume_under_another_thread_count_equals_the_uninterrupted_run(tmp_path, first,
                                                                        second, optimizer):
    assert child(tmp_path, "start", first, optimizer)[0] == "3"
    resumed = child(tmp_path, "resume", second, optimizer)
    whole = child(tmp_path, "whole", second, optimizer)
    assert resumed == whole and resumed[0] == "8"
