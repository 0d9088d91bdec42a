r"""Labels audio and stores the teacher's top-k lattice distributions.

  python -m asr_kd.bin.teacher_targets --model_dir=demo_run/teacher \
      --input='demo_run/tfrecords/train-*,demo_run/tfrecords/unlabeled-*' \
      --output_dir=demo_run/teacher_targets --top_k=8 [--temperature=1] \
      [--frame_ratio=1]

`asr_kd.bin.pseudo_label` with other defaults: records keep their
transcript as their label (--keep_transcripts), unlabeled ones get the
teacher's beam-search hypothesis, and every record also stores the
teacher's top --top_k tempered log-probs (and ids, and the rest mass) on
each lattice node of that label, computed in the same pass from the
unaugmented audio (docs/tfrecord_schema.md, docs/distillation.md "Stored
teacher targets"). Train a student on them with
`task.distillation.targets=stored` and
`task.train_data.label_source=pseudo_label`. Flags this binary does not
define are Beam pipeline options.
"""

from absl import app

from asr_kd.pseudo_labeling import command

if __name__ == '__main__':
  command.define_flags(binary='teacher_targets')
  app.run(command.main, flags_parser=command.parse_flags)
