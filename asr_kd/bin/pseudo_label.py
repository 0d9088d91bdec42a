r"""Labels audio with a teacher's beam-search hypotheses (hard targets).

  python -m asr_kd.bin.pseudo_label --model_dir=runs/teacher \
      --input='demo_run/tfrecords/unlabeled-*.tfrecord' \
      --output_dir=runs/pseudo --decoder=beam --beam_size=8 --num_shards=4

Writes `<output_dir>/<prefix>-SSSSS-of-NNNNN.tfrecord[.gz]` in the corpus
schema (the original transcript kept, the hypothesis, its confidence and
the teacher's id in the `pseudo_label/*` fields), `<prefix>.rejects.tsv`
and `<prefix>.summary.json` (inputs = written + rejected). Train on them
with `task.train_data.label_source=pseudo_label` and optionally
`task.train_data.min_pseudo_label_confidence`. Flags this binary does not
define are Beam pipeline options (e.g. --runner=DataflowRunner ...); the
default is the DirectRunner with one worker process per CPU.
"""

from absl import app

from asr_kd.pseudo_labeling import command

if __name__ == '__main__':
  command.define_flags(binary='pseudo_label')
  app.run(command.main, flags_parser=command.parse_flags)
