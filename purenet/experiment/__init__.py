"""Experiment files: TOML into the run record, datasets, run directories, the runner."""
