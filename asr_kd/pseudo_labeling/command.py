"""The command line of the labeling binaries, asr_kd.bin.pseudo_label and
asr_kd.bin.teacher_targets: one pipeline, two defaults (docs/data_tools.md,
docs/distillation.md)."""

import logging as std_logging
import os
import sys
from typing import List

from absl import flags
import tensorflow as tf

from asr_kd.corpus_io import beam_pipeline
from asr_kd.inference import model_loader
from asr_kd.pseudo_labeling import pipeline

DECODERS = ('beam',)


def define_flags(flag_values: flags.FlagValues = flags.FLAGS,
                 binary: str = 'pseudo_label') -> None:
  """Defines a binary's flags (only when run as one).

  Args:
    flag_values: where to define them.
    binary: 'pseudo_label' (labels only by default) or 'teacher_targets'
      (labels plus top-8 teacher targets, transcripts kept).
  """
  with_targets = binary == 'teacher_targets'
  # The teacher: --model_dir, --checkpoint, --experiment.
  model_loader.define_model_flags(flag_values)
  flags.DEFINE_string('input', None, 'Comma-separated TFRecord globs in the '
                      'corpus schema.', flag_values=flag_values)
  flags.DEFINE_string('output_dir', None, 'Folder for shards, rejects and '
                      'summary.', flag_values=flag_values)
  flags.DEFINE_string('output_prefix', 'pseudo', 'Shard file name prefix.',
                      flag_values=flag_values)
  flags.DEFINE_integer('num_shards', 1, 'Number of output shards.',
                       lower_bound=1, flag_values=flag_values)
  flags.DEFINE_enum('compression', 'none', ['none', 'gzip'],
                    'Output TFRecord compression.', flag_values=flag_values)
  flags.DEFINE_enum('decoder', 'beam', list(DECODERS),
                    'Decoder; beam search gives the confidence (posterior of '
                    'the hypothesis within the final beam).',
                    flag_values=flag_values)
  flags.DEFINE_integer('beam_size', 8, 'Beam width (>= 2 for a useful '
                       'confidence).', lower_bound=1, flag_values=flag_values)
  flags.DEFINE_integer('batch_size', 8, 'Most utterances decoded together.',
                       lower_bound=1, flag_values=flag_values)
  flags.DEFINE_bool('keep_transcripts', with_targets, 'Records that have a '
                    'transcript take it as their label (confidence 1, source '
                    '"transcript") instead of being decoded.',
                    flag_values=flag_values)
  flags.DEFINE_integer('top_k', 8 if with_targets else 0, 'Also store the '
                       'teacher\'s top-k tempered distributions on every '
                       'lattice node of each record\'s label (stored '
                       'teacher targets, docs/distillation.md); 0: labels '
                       'only.', lower_bound=0, flag_values=flag_values)
  flags.DEFINE_float('temperature', 1.0, 'Temperature of the stored '
                     'targets (the student\'s distillation.temperature).',
                     flag_values=flag_values)
  flags.DEFINE_integer('frame_ratio', 1, 'Teacher encoder frames averaged '
                       'into each stored frame: the student\'s subsampling '
                       'factor / the teacher\'s.', lower_bound=1,
                       flag_values=flag_values)
  flags.DEFINE_bool('strict', False, 'Exit non-zero if any input was '
                    'rejected (outputs are still written).',
                    flag_values=flag_values)


def _program(argv0: str) -> str:
  """'pseudo_label' for '.../asr_kd/bin/pseudo_label.py'."""
  return os.path.splitext(os.path.basename(argv0))[0]


def main(argv: List[str],
         flag_values: flags.FlagValues = flags.FLAGS) -> None:
  """Runs the pipeline; argv[1:] are Beam pipeline flags."""
  std_logging.getLogger('apache_beam').setLevel(std_logging.WARNING)
  program = _program(sys.argv[0])
  beam_pipeline.require_flags(flag_values, ('model_dir', 'input', 'output_dir'),
                              program)
  try:
    summary = pipeline.run_pseudo_labeling(
        flag_values.model_dir, flag_values.input, flag_values.output_dir,
        output_prefix=flag_values.output_prefix,
        num_shards=flag_values.num_shards,
        compression=flag_values.compression,
        beam_size=flag_values.beam_size, batch_size=flag_values.batch_size,
        checkpoint=flag_values.checkpoint,
        keep_transcripts=flag_values.keep_transcripts,
        experiment=flag_values.experiment, beam_args=argv[1:],
        targets=pipeline.TargetOptions(
            flag_values.top_k, flag_values.temperature,
            flag_values.frame_ratio) if flag_values.top_k else None)
  except model_loader.ModelLoadError as error:
    beam_pipeline.exit_with_error(program, str(error))
  except ValueError as error:  # --input matches nothing, bad --top_k.
    beam_pipeline.exit_with_error(program, str(error))
  except (tf.errors.OpError, OSError) as error:
    beam_pipeline.exit_with_error(
        program,
        f'cannot write to --output_dir={flag_values.output_dir!r}: {error}')
  beam_pipeline.finish_with_summary(summary, program, flag_values.strict)


def parse_flags(argv: List[str],
                flag_values: flags.FlagValues = flags.FLAGS) -> List[str]:
  return beam_pipeline.parse_known_flags(argv, flag_values,
                                         _program(argv[0]))
