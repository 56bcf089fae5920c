"""The compatibility contract (docs/compatibility.md): a format 3 file written by purenet 0.2
or later loads in every later version; what a later version added takes its default where
a file lacks it; a key, record, name, numerics or format version this version does not know
refuses the file as a newer purenet's, in one line. Every edited file is sealed again, so
only its content decides."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from _checkpoint_common import REPO, child_env
from _hostile_files import craft
from test_format_v1 import ARCH, assert_resumes_as_the_contract_says, settings, upgraded

import purenet as pn
from purenet.checkpoint.format import read_checkpoint

DATA = os.path.join(os.path.dirname(__file__), "data")
# Written by purenet 0.2.1 (commit ad87532) with the run of test_format_v1.py, to step 7:
# numpy 2.4.6, OpenBLAS 0.3.31's Haswell kernel, one BLAS thread. It has no numerics
# version and no crossings: 0.2 did not record them.
V021 = os.path.join(DATA, "v3-0.2.1-step-00000007.h5")
V1 = os.path.join(DATA, "v1-step-00000007.h5")
NEWER = r"was written by a newer purenet \(.*\); upgrade purenet to read it"


@pytest.fixture(scope="module")
def today(tmp_path_factory):
    """A checkpoint written by this version: step 7 of test_format_v1.py's run."""
    directory = tmp_path_factory.mktemp("today")
    x, y, run = settings()
    pn.fit(ARCH, x, y, validation_data=(x[:10], y[:10]), progress=False, max_steps=7,
           checkpointer=pn.Checkpointer(directory, every_steps=7, keep=1), **run)
    return str(directory / "step-00000007.h5")


# --- files of purenet 0.2 --------------------------------------------------------------


def test_a_file_of_purenet_0_2_loads_with_the_defaults_of_what_it_lacks(tmp_path):
    checkpoint = pn.load_checkpoint(V021)
    assert checkpoint.purenet_version == "0.2.1" and checkpoint.format_version == 3
    assert checkpoint.numerics == 1 and checkpoint.crossings == ()
    assert checkpoint.state.step == 7
    x, y, run = settings()
    assert checkpoint.config.differences(pn.RunConfig(ARCH, **run)) == []
    assert checkpoint.params_digest == pn.load_checkpoint(upgraded(V1, tmp_path)).params_digest


def test_a_file_of_purenet_0_2_resumes_as_the_contract_says(tmp_path):
    assert_resumes_as_the_contract_says(V021, tmp_path)


def test_a_file_written_today_records_its_numerics_and_no_crossing(today):
    checkpoint = pn.load_checkpoint(today)
    assert checkpoint.numerics == pn.NUMERICS_VERSION and checkpoint.crossings == ()
    assert checkpoint.scope["numerics"] == pn.NUMERICS_VERSION


# --- a key a later version added: absent means its default -------------------------------


def without(record, *keys):
    def edit(f):
        target = f.manifest if record == "manifest" else f.manifest[record] if record in (
            "config", "meta") else f.manifest["config"][record]
        for key in keys:
            target.pop(key)
    return edit


@pytest.mark.parametrize("record, keys", [
    ("config", ("label_smoothing", "drop_last", "shuffle", "init", "threads")),
    ("meta", ("numerics", "crossings")),
    ("optimizer", ("eps", "b2")),
])
def test_a_defaulted_key_removed_from_a_written_file_loads_with_its_default(today, tmp_path,
                                                                            record, keys):
    path = craft(today, tmp_path / "step-00000007.h5", without(record, *keys))
    checkpoint = read_checkpoint(path)
    assert checkpoint.config.to_dict() == read_checkpoint(today).config.to_dict()
    assert checkpoint.numerics == 1 and checkpoint.crossings == ()


def test_a_removed_setting_that_was_not_its_default_loads_and_resume_names_it(today, tmp_path):
    directory = tmp_path / "ck"
    directory.mkdir()
    craft(today, directory / "step-00000007.h5", without("config", "l2"))
    assert pn.load_checkpoint(directory).config.l2 == 0.0   # the default; the run had 1e-3
    x, y, run = settings()
    with pytest.raises(pn.CheckpointMismatchError, match="l2: this run has 0.001, the checkpoint 0.0"):
        pn.fit(ARCH, x, y, validation_data=(x[:10], y[:10]), progress=False,
               checkpointer=pn.Checkpointer(directory), resume=True, **run)


def test_a_key_no_version_ever_left_out_is_a_damaged_file(today, tmp_path):
    for record, key in (("meta", "step"), ("manifest", "arrays"), ("config", "layers")):
        path = craft(today, tmp_path / f"{record}.h5", without(record, key))
        with pytest.raises(pn.CorruptCheckpointError, match=path):
            read_checkpoint(path)


# --- what this version does not know: a newer purenet's file ------------------------------


@pytest.mark.parametrize("edit, words", [
    (lambda f: f.manifest["config"].update(future_setting=3), "future_setting"),
    (lambda f: f.manifest["config"]["optimizer"].update(amsgrad=True), "amsgrad"),
    (lambda f: f.manifest["config"]["layers"][0].update(use_bias=False), "use_bias"),
    (lambda f: f.manifest["config"]["layers"][0].update(activation="mish"), "mish"),
    (lambda f: f.manifest["config"]["optimizer"].update(name="lion"), "lion"),
    (lambda f: f.meta.update(signature="abc"), "meta has the key 'signature'"),
    (lambda f: f.meta["environment"].update(cpu="EPYC"), "meta.environment has the key 'cpu'"),
    (lambda f: f.meta["totals"].update(weight_sum=1.0), "meta.totals has the key 'weight_sum'"),
    (lambda f: f.manifest.update(signatures=[]), "manifest has the key 'signatures'"),
    (lambda f: f.meta["optimizer_state"]["states"][1].update(record="LionState"), "LionState"),
    (lambda f: f.meta.update(numerics=99), "numerics version 99"),
    (lambda f: f.meta.update(crossings=[{"step": 3, "changed": {"cpu": ["a", "b"]}}]),
     "a crossing of 'cpu'"),
])
def test_an_unknown_key_name_or_record_refuses_the_file_as_newer(today, tmp_path, edit, words):
    path = craft(today, tmp_path / "step-00000007.h5", edit)
    with pytest.raises(pn.NewerCheckpointError, match=NEWER) as info:
        read_checkpoint(path)
    message = str(info.value)
    assert words in message and path in message and "\n" not in message


def test_a_newer_format_version_is_refused_as_newer_whatever_version_the_file_claims(today,
                                                                                    tmp_path):
    with open(today, "rb") as fh:
        data = bytearray(fh.read())
    fields = pn.checkpoint.sealed.parse_header(today, bytes(data[:512]))
    path = str(tmp_path / "step-00000007.h5")
    with open(path, "wb") as fh:
        fh.write(pn.checkpoint.sealed.header(4, int(fields["manifest_length"]),
                                             len(data) - 512, fields["body_xxh3_128"]))
        fh.write(data[512:])
    with pytest.raises(pn.NewerCheckpointError, match=r"newer purenet \(checkpoint format "
                                                      r"version 4.*upgrade purenet"):
        read_checkpoint(path)


def test_a_directory_of_newer_files_is_skipped_file_by_file(today, tmp_path):
    shutil.copy(today, tmp_path / "step-00000007.h5")
    craft(today, tmp_path / "step-00000014.h5",
          lambda f: f.manifest["config"].update(future_setting=3) or f.meta.update(step=14))
    with pytest.warns(pn.CheckpointWarning, match="step-00000014.h5 was written by a newer"):
        assert pn.load_checkpoint(tmp_path).state.step == 7


# --- a later version, for real: this package with one more defaulted setting -------------

FUTURE_CHILD = r"""
import json, sys
import numpy as np
import purenet as pn
from test_format_v1 import ARCH, settings
old, directory = sys.argv[1], sys.argv[2]
loaded = pn.load_checkpoint(old)
x, y, run = settings()
pn.fit(ARCH, x, y, validation_data=(x[:10], y[:10]), progress=False, max_steps=7,
       future_setting=3, checkpointer=pn.Checkpointer(directory, every_steps=7), **run)
print(json.dumps({"future_setting": loaded.config.future_setting, "step": loaded.state.step,
                  "digest": loaded.params_digest}))
"""


def test_a_later_version_with_one_more_setting_reads_todays_files_and_is_refused_by_this_one(
        today, tmp_path):
    """A copy of this package whose RunConfig has one more defaulted field, as the next
    version that adds a setting would: it loads the files of 0.2 and of today, with the
    default, and this version refuses the files it writes with the setting, as newer."""
    future = tmp_path / "future"
    shutil.copytree(os.path.join(REPO, "purenet"), future / "purenet",
                    ignore=shutil.ignore_patterns("__pycache__"))
    config = future / "purenet" / "train" / "config.py"
    text = config.read_text()
    anchor = "    threads: int = attrs.field(default=None"
    assert anchor in text
    config.write_text(text.replace(anchor, "    future_setting: int = checks.field("
                                           "checks.integer(0), default=0)\n" + anchor, 1))
    env = {**child_env(), "PYTHONPATH": os.pathsep.join([str(future), os.path.join(REPO, "tests")])}
    for old in (V021, today):
        directory = tmp_path / f"written-{os.path.basename(os.path.dirname(old))}"
        proc = subprocess.run([sys.executable, "-c", FUTURE_CHILD, old, str(directory)],
                              env=env, cwd=tmp_path, capture_output=True, text=True,
                              timeout=120)
        assert proc.returncode == 0, proc.stderr[-3000:]
        report = json.loads(proc.stdout.splitlines()[-1])
        assert report == {"future_setting": 0, "step": 7,
                          "digest": pn.load_checkpoint(old).params_digest}
        with pytest.raises(pn.NewerCheckpointError, match=r"future_setting.*upgrade purenet"):
            read_checkpoint(directory / "step-00000007.h5")


# --- epochs: one rule for new runs, and what was stored before still loads --------------


def test_a_stored_run_of_zero_epochs_still_loads(today, tmp_path):
    def edit(f):
        f.manifest["config"]["epochs"] = 0
    assert read_checkpoint(craft(today, tmp_path / "step-00000007.h5", edit)).config.epochs == 0


@pytest.mark.parametrize("epochs", [0, -1])
def test_a_new_run_of_fewer_than_one_epoch_is_refused(epochs):
    x, y, run = settings(epochs=epochs)
    with pytest.raises(pn.SettingError, match=f"epochs must be an integer >= 1, got {epochs}"):
        pn.fit(ARCH, x, y, progress=False, **run)
    with pytest.raises(pn.SettingError, match="epochs must be an integer >= 1"):
        pn.RunConfig(ARCH, epochs=epochs)
    assert np.isfinite(pn.RunConfig(ARCH, epochs=1).epochs)


def test_epochs_0_is_refused_alike_in_the_file_in_set_and_on_the_command_line(tmp_path, capsys):
    from _sweep_common import write_experiment
    from purenet.cli import main

    path = write_experiment(tmp_path, name="zero", epochs=0, sweep=None)
    run_dir = str(tmp_path / "run")
    assert main(["train", path, "--run-dir", run_dir]) == 1
    assert "line 4: epochs: must be an integer >= 1, got 0" in capsys.readouterr().err
    good = write_experiment(tmp_path, name="one", epochs=1, sweep=None)
    assert main(["train", good, "--run-dir", run_dir, "--set", "epochs=0"]) == 1
    assert "epochs: must be an integer >= 1, got 0" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["train", good, "--run-dir", run_dir, "--epochs", "0"])
    assert "must be an integer >= 1" in capsys.readouterr().err
    assert not os.path.exists(run_dir)   # nothing written by any of them
