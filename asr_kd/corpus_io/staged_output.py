"""Output names of the record writers, and committing their output as a unit.

The converter and the pseudo-labeler write shards, a rejects file and a
summary into one folder. A run writes all of them first into a staging
folder, `<output_dir>/.<prefix>.staging/`, whose name no documented shard
glob (`<prefix>-*`, `<prefix>-*.tfrecord*`, `*.tfrecord*`) matches, so a
run killed at any point leaves nothing that training reads. At the end,
`StagedOutput.commit` moves the finished set into place:

1. remove `<prefix>.summary.json` (a folder without it holds no finished
   run, whatever else it holds) and the earlier `<prefix>.rejects.tsv`;
2. remove the earlier runs' files that the new set does not overwrite:
   shards of another shard count or compression, and the `.part-*` /
   `.incomplete-*` files that runs killed before staging existed left
   beside the shards (the `<prefix>-*.tfrecord*` glob read those twice);
3. rename the new shards and rejects file into place;
4. rename the summary, which lists the committed files, into place last.

A kill during the commit leaves no summary; rerunning commits again. Each
run starts by deleting what a killed run left in the staging folder, so
one prefix in one folder takes one run at a time.
"""

import json
import os
import re
from typing import Dict, List

import tensorflow as tf

from asr_kd.dataloaders import tfrecord_schema


def output_paths(output_dir: str, output_prefix: str,
                 compression: str) -> Dict[str, str]:
  """Names of everything a run writes into `output_dir`.

  Args:
    output_dir: destination folder.
    output_prefix: shard name prefix.
    compression: 'none' or 'gzip'.

  Returns:
    Dict with 'shard_prefix', 'shard_suffix', 'shard_pattern' (a glob),
    'rejects', 'summary' and 'stats' (a file the pipeline reads back).
  """
  base = os.path.join(output_dir, output_prefix)
  suffix = '.tfrecord' + (tfrecord_schema.GZIP_SUFFIX if compression == 'gzip'
                          else '')
  return {
      'shard_prefix': base,
      'shard_suffix': suffix,
      'shard_pattern': f'{base}-?????-of-?????{suffix}',
      'rejects': base + '.rejects.tsv',
      'summary': base + '.summary.json',
      'stats': base + '.stats.json',
  }


def staging_dir(output_dir: str, output_prefix: str) -> str:
  return os.path.join(output_dir, f'.{output_prefix}.staging')


def _is_earlier_run_file(name: str, output_prefix: str) -> bool:
  """Whether `name` is a shard (any count or compression), a shard's
  part or temporary file, or the stats file of a run of this prefix."""
  shard = (re.escape(output_prefix) + r'-\d{5,}-of-\d{5,}\.tfrecord'
           f'({re.escape(tfrecord_schema.GZIP_SUFFIX)})?'
           r'(\.(part|incomplete)-[0-9a-f]+)?')
  return (re.fullmatch(shard, name) is not None
          or name == output_prefix + '.stats.json')


def _files_below(directory: str) -> List[str]:
  return sorted(os.path.join(folder, name)
                for folder, _, names in tf.io.gfile.walk(directory)
                for name in names)


class StagedOutput:
  """One run's output: written under `staged` names, then `commit`ted.

  Attributes:
    final: `output_paths` in the output folder.
    staged: `output_paths` in the staging folder (what the pipeline writes).
  """

  def __init__(self, output_dir: str, output_prefix: str, compression: str):
    self._output_dir = output_dir
    self._output_prefix = output_prefix
    self._staging_dir = staging_dir(output_dir, output_prefix)
    self.final = output_paths(output_dir, output_prefix, compression)
    self.staged = output_paths(self._staging_dir, output_prefix, compression)
    self._removed: List[str] = []

  def begin(self) -> None:
    """Creates an empty staging folder, deleting a killed run's leftovers."""
    if tf.io.gfile.exists(self._staging_dir):
      self._removed = [os.path.relpath(path, self._output_dir)
                       for path in _files_below(self._staging_dir)]
      tf.io.gfile.rmtree(self._staging_dir)
    tf.io.gfile.makedirs(self._staging_dir)

  def commit(self, summary: dict) -> dict:
    """Replaces the folder's earlier output with the staged one.

    Args:
      summary: the run's summary; 'shard_pattern' and 'rejects_file' are
        set to their final paths here.

    Returns:
      The summary as written to `<prefix>.summary.json`, with
      'output_files' (the committed shards and rejects file, names in the
      output folder) and 'removed_files' (earlier runs' files deleted,
      including a killed run's staging leftovers).
    """
    committed = [os.path.basename(path) for path in
                 sorted(tf.io.gfile.glob(self.staged['shard_pattern']))]
    committed.append(os.path.basename(self.final['rejects']))
    earlier = sorted(
        name for name in tf.io.gfile.listdir(self._output_dir)
        if _is_earlier_run_file(name, self._output_prefix)
        and name not in committed)
    summary = dict(summary, shard_pattern=self.final['shard_pattern'],
                   rejects_file=self.final['rejects'],
                   output_files=committed,
                   removed_files=self._removed + earlier)
    with tf.io.gfile.GFile(self.staged['summary'], 'w') as summary_file:
      summary_file.write(json.dumps(summary, indent=2))

    for path in (self.final['summary'], self.final['rejects']):
      if tf.io.gfile.exists(path):
        tf.io.gfile.remove(path)
    for name in earlier:
      tf.io.gfile.remove(os.path.join(self._output_dir, name))
    for name in committed:
      tf.io.gfile.rename(os.path.join(self._staging_dir, name),
                         os.path.join(self._output_dir, name), overwrite=True)
    tf.io.gfile.rename(self.staged['summary'], self.final['summary'],
                       overwrite=True)
    tf.io.gfile.rmtree(self._staging_dir)
    return summary
