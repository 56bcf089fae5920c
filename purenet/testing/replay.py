"""The deterministic-replay assertion: a run stopped after any step, saved to a real
checkpoint, read back and resumed, ends bit for bit where the uninterrupted run ends."""

from __future__ import annotations

import tempfile
from typing import Any

from purenet.testing.trees import assert_records_equal


def assert_resumes_exactly(config: Any, x: Any, y: Any, at_step: int,
                           validation_data: tuple[Any, Any] | None = None,
                           sample_weight: Any = None) -> Any:
    """Assert that the run ``config`` (a ``RunConfig``) on ``(x, y)``, stopped after
    ``at_step`` steps, checkpointed to a file, loaded and resumed, reaches the uninterrupted
    run's final state bit for bit (parameters, optimizer state, history, counters), and
    that the checkpoint held the stopped state exactly.

    Returns:
        The final ``TrainState``.

    Raises:
        AssertionError: naming every field where the resumed run differs.
    """
    from purenet.checkpoint.policy import Checkpointer, load_checkpoint
    from purenet.train.loop import fit

    run = dict(validation_data=validation_data, sample_weight=sample_weight, progress=False)
    whole = fit(config, x, y, **run).state
    with tempfile.TemporaryDirectory(prefix="purenet-replay-") as directory:
        stopped = fit(config, x, y, max_steps=at_step, **run,
                      checkpointer=Checkpointer(directory, every_epochs=10**9)).state
        assert stopped.step == min(at_step, whole.step), (
            f"the run stopped at step {stopped.step}, not {at_step}")
        assert_records_equal(load_checkpoint(directory).state, stopped)
        resumed = fit(config, x, y, resume=True, **run,
                      checkpointer=Checkpointer(directory, every_epochs=10**9)).state
    try:
        assert_records_equal(resumed, whole)
    except AssertionError as error:
        raise AssertionError(f"resuming after step {at_step} did not reach the uninterrupted "
                             f"run's state: {error}") from None
    return resumed
