"""A trained model_dir's inference copy: its config and model weights only.

A training checkpoint also holds the optimizer's slots (Adam's two moments,
Muon's momentum), more than the model itself. What reads a trained model
(evaluation, pseudo-labeling, an online teacher) restores the model's
variables only (`model_loader`), so a copy without the slots serves them
all at less than half the size (the comparison's big teacher: 21 MB against
46 MB), e.g. to keep that teacher in the repository (docs/distillation.md,
`make experiments`).
"""

import os
from typing import Iterable

import tensorflow as tf

from asr_kd.inference import model_loader


def write_inference_copy(model_dir: str, output_dir: str,
                         extra_files: Iterable[str] = ()) -> str:
  """Writes `model_dir`'s latest model weights and config to `output_dir`.

  Args:
    model_dir: a folder written by `asr_kd.bin.train`.
    output_dir: created (or emptied of an earlier copy) and filled with
      params.yaml, experiment.txt (where model_dir has it), the checkpoint
      `ckpt-STEP` holding the model's variables alone, and `extra_files`.
    extra_files: names of further files of model_dir to copy (e.g.
      evaluation summaries); a missing one is skipped.

  Returns:
    The prefix of the checkpoint written.

  Raises:
    model_loader.ModelLoadError: model_dir has no loadable model.
  """
  loaded = model_loader.load_model(model_dir)
  step = int(loaded.checkpoint_path.rsplit('-', 1)[1])
  if tf.io.gfile.exists(output_dir):
    tf.io.gfile.rmtree(output_dir)
  tf.io.gfile.makedirs(output_dir)
  names = [model_loader.PARAMS_FILE, model_loader.EXPERIMENT_FILE,
           *extra_files]
  for name in names:
    source = os.path.join(model_dir, name)
    if tf.io.gfile.exists(source):
      tf.io.gfile.copy(source, os.path.join(output_dir, name))
  manager = tf.train.CheckpointManager(
      tf.train.Checkpoint(model=loaded.model), output_dir, max_to_keep=1)
  return manager.save(checkpoint_number=step)
