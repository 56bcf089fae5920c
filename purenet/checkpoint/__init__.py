"""Checkpoints: the sealed file, its HDF5 format, and the policy of when to save and what
to keep. Importing this package loads h5py."""

from purenet.checkpoint.format import Checkpoint, read_checkpoint, summarize, write_checkpoint
from purenet.checkpoint.policy import Checkpointer, load_checkpoint
from purenet.checkpoint.upgrade import Upgrade, upgrade_checkpoint

__all__ = ["Checkpoint", "Checkpointer", "Upgrade", "load_checkpoint", "read_checkpoint",
           "summarize", "upgrade_checkpoint", "write_checkpoint"]
