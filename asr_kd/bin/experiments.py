r"""The soft- vs hard-target comparison on the demo corpus (`make experiments`).

  python -m asr_kd.bin.experiments --work_dir=demo_run --seeds=0,1,2 \
      [--train_steps=N] [--generations=2] [--probe_seeds=0] \
      [--results=docs/experiments.json]

Needs the demo's tokenizer, feature statistics and TFRecords (`make demo`,
or `python -m asr_kd.bin.demo --data_only` for those alone).
The design (docs/distillation.md, "make experiments"):

  data: the demo's training TFRecords split by a hash of the utterance id
    into a labeled fifth and an unlabeled pool 4x its size
    (WORK_DIR/experiments/data/, asr_kd.bin.split_labeled).
  (a) a full-context teacher more than 3x the student's size
    (kd_demo_big_teacher, trained once on the labeled subset; every row
    shares its checkpoint) -> the small streaming student: no distillation
    (the labeled subset alone), hard targets, soft targets (full vocabulary,
    3 classes). Hard and soft rows train on the same records: the labeled
    subset with its transcripts and the pool with the teacher's hypotheses
    (asr_kd.bin.pseudo_label); soft rows add the KL on each record's label
    lattice, online, or from the teacher's top-8 distributions stored in
    the same records (asr_kd.bin.teacher_targets; the stored row).
  probe: the full-vocabulary soft row at each teacher_right_shift x alpha
    (--probe_right_shifts x --probe_alphas), and with the stored row's
    top-8 KL computed online (task.distillation.online_top_k), on
    --probe_seeds.
  (b) self-training, same size: generation 0 is the no-distillation run of
    the seed; generation g's student (task.seed = seed + 100 g, never its
    teacher's) learns from generation g-1's model, hard or soft, for
    --generations generations.

Every student row has the same steps and batches (its config's, or
--train_steps). Each run is trained, evaluated (beam search, width 4) on
the test, ood and dev splits there are records of, and appended to the
results JSON (--results) with its WERs, steps, wall time and the commit it
ran at; the markdown table (--markdown) and the figure (--figure) are
redrawn from it after every run (python -m asr_kd.bin.experiments_report
redraws them alone). A run whose record file exists in its folder is
skipped, so an interrupted comparison continues where it stopped; so is a
run recorded in --results whose model no stage left to run reads, so it
continues on a new machine too. The models other runs read (the big
teacher, self-training generations) are kept in --model_store as inference
copies, to be committed with the results: training does not reproduce
across machines, so a new machine restores them instead of training them
again. Each run prints one progress line with an ETA.
"""

import glob
import json
import os
import shutil
import sys
import time
from typing import Dict, List, NamedTuple, Optional, Set, Tuple

from absl import app
from absl import flags
import yaml

from official.core import exp_factory
from official.modeling import hyperparams

from asr_kd.configs import registered_experiments  # pylint: disable=unused-import
from asr_kd.experiments import data_split
from asr_kd.experiments import progress
from asr_kd.experiments import report_files
from asr_kd.experiments import results
from asr_kd.experiments import rows as rows_lib
from asr_kd.experiments import stages
from asr_kd.inference import weights_copy

FLAGS = flags.FLAGS
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))


def define_flags(flag_values: flags.FlagValues = FLAGS):
  flags.DEFINE_string('work_dir', 'demo_run', 'The demo folder (make demo).',
                      flag_values=flag_values)
  flags.DEFINE_list('seeds', ['0', '1', '2'], 'Seeds of the repetitions of '
                    '(a) and (b) (task.seed; the data seed follows it).',
                    flag_values=flag_values)
  flags.DEFINE_list('probe_seeds', None, 'Seeds of the probe rows '
                    '(default: the first of --seeds).',
                    flag_values=flag_values)
  flags.DEFINE_list('rows', None, 'Only these rows (default: all), e.g. '
                    'kd_demo_student_hard,kd_demo_self_soft; "probe" for '
                    'every probe row. Runs they depend on still run.',
                    flag_values=flag_values)
  flags.DEFINE_integer('train_steps', None, 'Override every student run\'s '
                       'trainer.train_steps.', flag_values=flag_values)
  flags.DEFINE_integer('teacher_train_steps', None, 'Override the big '
                       'teacher\'s trainer.train_steps.',
                       flag_values=flag_values)
  flags.DEFINE_integer('teacher_cpu_replicas', 2, 'On a host without '
                       'GPU/TPU, train the big teacher with train '
                       '--cpu_replicas=N (1: one device).',
                       flag_values=flag_values)
  flags.DEFINE_integer('generations', 2, 'Self-training generations (b).',
                       lower_bound=1, flag_values=flag_values)
  flags.DEFINE_list('probe_right_shifts', ['0', '1', '2', '4'],
                    'teacher_right_shift values of the probe.',
                    flag_values=flag_values)
  flags.DEFINE_list('probe_alphas', ['0.001', '0.01', '0.1'],
                    'alpha values of the probe.', flag_values=flag_values)
  flags.DEFINE_float('labeled_fraction', 0.2, 'Share of the training '
                     'utterances that keep their transcripts (the rest is '
                     'the unlabeled pool).', flag_values=flag_values)
  flags.DEFINE_integer('beam_size', 8, 'Beam width of the pseudo-labeler '
                       '(beam search makes the hard targets).',
                       flag_values=flag_values)
  flags.DEFINE_string('results', 'docs/experiments.json', 'The results '
                      'JSON (one record per run; kept and updated).',
                      flag_values=flag_values)
  flags.DEFINE_string('markdown', 'docs/experiments.md', 'The table drawn '
                      'from --results.', flag_values=flag_values)
  flags.DEFINE_string('figure', 'docs/experiments.png', 'The figure drawn '
                      'from --results.', flag_values=flag_values)
  flags.DEFINE_string('model_store', 'experiment_models', 'Where the '
                      'models that other runs read (the big teacher, '
                      'self-training generations) are kept, as inference '
                      'copies, to be committed beside --results: training '
                      'does not reproduce across machines, so a new '
                      'machine continues from these. Empty: none kept.',
                      flag_values=flag_values)


PROBE = 'probe'
# A self-training student's task.seed: its teacher's plus this, so no
# generation shares a seed (initialization, data order, augmentation) with
# the model that labels it or teaches it.
SELF_TRAINING_SEED_STRIDE = 100
# Written in a run's folder once it is trained, evaluated and recorded: the
# run's done marker and its results record.
RECORD_FILE = 'experiment_record.json'
TIME_FILE = 'run_time.json'


class Run(NamedTuple):
  row: rows_lib.Row
  seed: int  # The repetition: the report pairs runs of the same seed.
  generation: Optional[int]
  task_seed: Optional[int]  # None: the config's (the big teacher).
  model_dir: str
  teacher_dir: Optional[str]  # Online teacher (soft) / labeler (hard).
  labels_dir: Optional[str]  # Labeled subset + pseudo-labeled pool
  # (with the teacher's stored targets for a 'stored' row).


class PlannedStage(NamedTuple):
  stage: stages.Stage
  run: Optional[Run]  # None for data and pseudo-label stages.
  # What the stage makes (a model dir, a labels or data dir) and what it
  # reads that other stages make (stages_to_run).
  makes: str = ''
  loads: Tuple[str, ...] = ()


def experiments_dir(work_dir: str) -> str:
  return os.path.join(work_dir, 'experiments')


def data_dir(work_dir: str) -> str:
  return os.path.join(experiments_dir(work_dir), 'data')


def run_dir(work_dir: str, row: str, seed: int,
            generation: Optional[int] = None) -> str:
  path = os.path.join(experiments_dir(work_dir), row, f'seed{seed}')
  return path if generation is None else os.path.join(path,
                                                      f'gen{generation}')


def pseudo_label_dir(work_dir: str, teacher_dir: str) -> str:
  """Where `teacher_dir`'s labels of the subset and pool go."""
  name = os.path.relpath(teacher_dir, experiments_dir(work_dir))
  return os.path.join(experiments_dir(work_dir), 'pseudo_labels', name)


def teacher_targets_dir(work_dir: str, teacher_dir: str) -> str:
  """Where `teacher_dir`'s labels and stored targets go."""
  name = os.path.relpath(teacher_dir, experiments_dir(work_dir))
  return os.path.join(experiments_dir(work_dir), 'teacher_targets', name)


def self_training_seed(seed: int, generation: int) -> int:
  """task.seed of generation `generation` (0: the teacher) of `seed`."""
  return seed + SELF_TRAINING_SEED_STRIDE * generation


def config_file(row: rows_lib.Row) -> str:
  return f'configs/experiments/{row.experiment}.yaml'


def _format_number(value: str) -> str:
  return format(float(value), 'g')


def probe_rows(right_shifts: List[str],
               alphas: List[str]) -> List[rows_lib.Row]:
  """The soft full-vocabulary row at each right shift x alpha, then the
  same row with the online top-k KL (rows_lib.SOFT_ONLINE_TOP_K).

  The cell with the row's own settings is the row itself, not rerun.
  """
  distillation = hyperparams.override_params_dict(
      exp_factory.get_exp_config(rows_lib.SOFT_FULL),
      os.path.join(REPO_ROOT, config_file(rows_lib.ROWS_A[2])),
      is_strict=True).task.distillation
  rows = []
  for shift in right_shifts:
    for alpha in alphas:
      if (int(shift) == distillation.teacher_right_shift and
          float(alpha) == distillation.alpha):
        continue
      rows.append(rows_lib.Row(
          f'{rows_lib.SOFT_FULL}_shift{int(shift)}_'
          f'alpha{_format_number(alpha)}', rows_lib.SOFT_FULL,
          f'probe: full vocabulary, right shift {int(shift)}, '
          f'alpha {_format_number(alpha)}', PROBE, 'soft', rows_lib.BASELINE,
          f'task.distillation.teacher_right_shift={int(shift)},'
          f'task.distillation.alpha={float(alpha)}'))
  return rows + [rows_lib.SOFT_ONLINE_TOP_K]


def train_overrides(work_dir: str, run: Run) -> str:
  """--params_override of a run: the comparison's data, teacher and seed."""
  if run.labels_dir:
    # The labeled subset (transcripts copied as labels) and the pool
    # (teacher hypotheses), both read as pseudo-labels.
    train_input = f'{run.labels_dir}/*.tfrecord*'
  else:
    train_input = (f'{data_dir(work_dir)}/{data_split.LABELED_PREFIX}-'
                   '*.tfrecord*')
  overrides = [part for part in stages.data_overrides(work_dir).split(',')
               if not part.startswith('task.train_data.input_path=')]
  overrides.append(f'task.train_data.input_path={train_input}')
  if run.labels_dir:
    overrides.append('task.train_data.label_source=pseudo_label')
  if run.row.targets == 'soft':
    overrides.append(f'task.teacher_model_dir={run.teacher_dir}')
  if run.row.targets == 'stored':
    # The targets ride in the records; the teacher is not loaded. The
    # student's recipe has a start offset (followed) and no speed
    # perturbation (which stored targets refuse).
    overrides.append(f'task.distillation.top_k={rows_lib.STORED_TOP_K}')
  if run.task_seed is not None:
    overrides.append(f'task.seed={run.task_seed}')
  if run.row.overrides:
    overrides.append(run.row.overrides)
  return ','.join(overrides)


def evaluated_splits(records_dir: str) -> List[str]:
  """The evaluation splits there are TFRecords of."""
  return [split for split in results.EVAL_SPLITS
          if glob.glob(os.path.join(records_dir, f'{split}-*'))]


def run_stage(work_dir: str, run: Run,
              options: flags.FlagValues) -> PlannedStage:
  records = os.path.join(work_dir, 'tfrecords')
  is_teacher = run.row.comparison == 'teacher'

  def commands():
    train = stages.train_command(
        run.row.experiment, config_file(run.row), run.model_dir,
        train_overrides(work_dir, run),
        options.teacher_train_steps if is_teacher else options.train_steps,
        options.teacher_cpu_replicas
        if is_teacher and stages.cpu_only_host() else 1)
    return [train] + [stages.evaluate_command(run.model_dir, records, split)
                      for split in evaluated_splits(records)]

  generation = (f' generation {run.generation}'
                if run.generation is not None else '')
  # Soft rows load their teacher online; every row reads its labels (or
  # the labeled subset).
  loads = ((run.labels_dir or data_dir(work_dir),) +
           ((run.teacher_dir,) if run.row.targets == 'soft' else ()))
  return PlannedStage(
      stages.Stage(f'{run.row.name} seed {run.seed}{generation}',
                 os.path.join(run.model_dir, RECORD_FILE), commands,
                 time_file=os.path.join(run.model_dir, TIME_FILE)), run,
      run.model_dir, loads)


def pseudo_label_stage(work_dir: str, teacher_dir: str,
                       options: flags.FlagValues) -> PlannedStage:
  """The teacher's labels: transcripts kept on the subset, pool decoded."""
  output_dir = pseudo_label_dir(work_dir, teacher_dir)

  def label(prefix: str, *extra: str) -> List[str]:
    return stages.python_module(
        'asr_kd.bin.pseudo_label', f'--model_dir={teacher_dir}',
        f'--input={data_dir(work_dir)}/{prefix}-*',
        f'--output_dir={output_dir}', f'--output_prefix={prefix}',
        '--num_shards=8', '--decoder=beam', f'--beam_size={options.beam_size}',
        *extra)

  return PlannedStage(stages.Stage(
      f'Pseudo-label the pool with {os.path.relpath(teacher_dir, work_dir)}',
      os.path.join(output_dir, f'{data_split.POOL_PREFIX}.summary.json'),
      lambda: [label(data_split.LABELED_PREFIX, '--keep_transcripts'),
               label(data_split.POOL_PREFIX)]), None, output_dir,
      (teacher_dir, data_dir(work_dir)))


def teacher_targets_stage(work_dir: str, teacher_dir: str,
                          options: flags.FlagValues) -> PlannedStage:
  """The teacher's labels as `pseudo_label_stage` makes them, plus its
  stored top-k targets on each record's label lattice."""
  output_dir = teacher_targets_dir(work_dir, teacher_dir)

  def label(prefix: str) -> List[str]:
    return stages.python_module(
        'asr_kd.bin.teacher_targets', f'--model_dir={teacher_dir}',
        f'--input={data_dir(work_dir)}/{prefix}-*',
        f'--output_dir={output_dir}', f'--output_prefix={prefix}',
        '--num_shards=8', f'--beam_size={options.beam_size}',
        f'--top_k={rows_lib.STORED_TOP_K}')

  return PlannedStage(stages.Stage(
      f'Store the targets of {os.path.relpath(teacher_dir, work_dir)}',
      os.path.join(output_dir, f'{data_split.POOL_PREFIX}.summary.json'),
      lambda: [label(data_split.LABELED_PREFIX),
               label(data_split.POOL_PREFIX)]), None, output_dir,
      (teacher_dir, data_dir(work_dir)))


def split_stage(work_dir: str, options: flags.FlagValues) -> PlannedStage:
  records = os.path.join(work_dir, 'tfrecords')
  return PlannedStage(stages.Stage(
      'Split the training audio into a labeled subset and a pool',
      os.path.join(data_dir(work_dir), data_split.SUMMARY_FILE),
      lambda: [stages.python_module(
          'asr_kd.bin.split_labeled', f'--input={records}/train-*',
          f'--output_dir={data_dir(work_dir)}',
          f'--labeled_fraction={options.labeled_fraction}')]), None,
      data_dir(work_dir))


def selected(row: rows_lib.Row, options: flags.FlagValues) -> bool:
  wanted = options.rows
  return not wanted or row.name in wanted or (
      row.comparison == PROBE and PROBE in wanted)


def build_plan(work_dir: str,
               options: flags.FlagValues = FLAGS) -> List[PlannedStage]:
  """Every stage in dependency order; a model trains before it teaches."""
  seeds = [int(seed) for seed in options.seeds]
  probe_seeds = [int(seed) for seed in (options.probe_seeds or seeds[:1])]
  probes = probe_rows(options.probe_right_shifts, options.probe_alphas)
  rows_a = [row for row in rows_lib.ROWS_A if selected(row, options)]
  probes = [row for row in probes if selected(row, options)]
  rows_b = [row for row in rows_lib.ROWS_B if selected(row, options)]
  plan = [split_stage(work_dir, options)]
  planned_markers = set()

  def add(planned: PlannedStage):
    if planned.stage.done_marker not in planned_markers:
      planned_markers.add(planned.stage.done_marker)
      plan.append(planned)

  needs_teacher = any(row.targets != 'none' for row in rows_a + probes)
  teacher_dir = os.path.join(experiments_dir(work_dir),
                             rows_lib.BIG_TEACHER.name)
  teacher_labels = pseudo_label_dir(work_dir, teacher_dir)
  if needs_teacher:
    add(run_stage(work_dir, Run(rows_lib.BIG_TEACHER, 0, None, None,
                                teacher_dir, None, None), options))
    if any(row.targets in ('hard', 'soft') for row in rows_a + probes):
      add(pseudo_label_stage(work_dir, teacher_dir, options))
    if any(row.targets == 'stored' for row in rows_a):
      add(teacher_targets_stage(work_dir, teacher_dir, options))

  def student(row: rows_lib.Row, seed: int) -> Run:
    uses_teacher = row.targets != 'none'
    labels = (teacher_targets_dir(work_dir, teacher_dir)
              if row.targets == 'stored' else teacher_labels)
    return Run(row, seed, None, seed, run_dir(work_dir, row.name, seed),
               teacher_dir if uses_teacher else None,
               labels if uses_teacher else None)

  baseline_row = rows_lib.ROWS_A[0]
  for seed in seeds:
    if rows_b and baseline_row not in rows_a:
      add(run_stage(work_dir, student(baseline_row, seed), options))
    for row in rows_a:
      add(run_stage(work_dir, student(row, seed), options))
  for seed in probe_seeds:
    for row in probes:
      add(run_stage(work_dir, student(row, seed), options))
  for seed in seeds:
    for row in rows_b:
      teacher = run_dir(work_dir, baseline_row.name, seed)
      for generation in range(1, options.generations + 1):
        labels = pseudo_label_dir(work_dir, teacher)
        add(pseudo_label_stage(work_dir, teacher, options))
        run = Run(row, seed, generation,
                  self_training_seed(seed, generation),
                  run_dir(work_dir, row.name, seed, generation), teacher,
                  labels)
        add(run_stage(work_dir, run, options))
        teacher = run.model_dir
  return plan


def _read_json(path: str) -> Optional[Dict]:
  if not os.path.exists(path):
    return None
  with open(path) as json_file:
    return json.load(json_file)


def collect_record(run: Run, commit: str) -> Dict:
  """The results record of a trained and evaluated run."""
  wers = {}
  for split in results.EVAL_SPLITS:
    summary = _read_json(stages.summary_path(run.model_dir, split))
    wers[split] = 100.0 * summary['wer'] if summary else None
  with open(os.path.join(run.model_dir, 'params.yaml')) as params_file:
    params = yaml.safe_load(params_file)
  run_time = _read_json(os.path.join(run.model_dir, TIME_FILE)) or {}
  return results.make_record(
      row=run.row.name, seed=run.seed, generation=run.generation,
      task_seed=params['task']['seed'], description=run.row.description,
      comparison=run.row.comparison, baseline=run.row.baseline, wer=wers,
      train_steps=params['trainer']['train_steps'],
      wall_seconds=run_time.get('seconds'),
      cpu_seconds=run_time.get('cpu_seconds'), commit=commit,
      model_dir=run.model_dir)


def run_key(run: Run) -> Tuple:
  """The key of `run`'s record (results.run_key)."""
  return (run.row.name, run.generation, run.seed)


def stages_to_run(plan: List[PlannedStage],
                  recorded: Set[Tuple]) -> Set[str]:
  """Done markers of the stages that must run: of those not done, the runs
  not recorded in the results and whatever a stage that runs reads.

  So a comparison continues on a new machine from its results file alone: a
  recorded student is not trained again, but a recorded teacher is when
  there is something left for it to label or teach.
  """
  loaded, to_run = set(), set()
  for planned in reversed(plan):  # Stages come after what they read.
    if os.path.exists(planned.stage.done_marker):
      continue
    run = planned.run
    if run:
      needed = run_key(run) not in recorded or planned.makes in loaded
    else:
      needed = not planned.makes or planned.makes in loaded
    if needed:
      to_run.add(planned.stage.done_marker)
      loaded.update(planned.loads)
  return to_run


class NotReproducedError(RuntimeError):
  """A recorded run trained again gave other WERs than its record."""


def _recorded(records: List[Dict], run: Run) -> Optional[Dict]:
  return next((record for record in records
               if results.run_key(record) == run_key(run)), None)


def _wers(record: Dict) -> str:
  return ' '.join(f'{split} {value:.2f}%' for split, value in
                  record['wer'].items() if value is not None)


def check_reproduced(previous: Dict, record: Dict, results_path: str):
  """Raises NotReproducedError unless `record` has `previous`'s WERs.

  A recorded model is trained again only when something left to run reads
  it; if it came out different, those runs would not pair with the
  recorded runs it labeled or taught.
  """
  if record['wer'] == previous['wer']:
    return
  raise NotReproducedError(
      f'{record["row"]} seed {record["seed"]}, trained again because runs '
      f'left to do read it, gives {_wers(record)} (commit '
      f'{record["commit"][:7]}) where its record in {results_path} has '
      f'{_wers(previous)} (commit {previous["commit"][:7]}): training did '
      'not reproduce here (another commit, or a CPU whose kernels round '
      'differently), so the runs it labels or teaches would not pair with '
      'the recorded ones. Its record is unchanged; its new run is in '
      f'{record["model_dir"]}. Continue where the '
      'recorded runs were made, or remove the records of the rows that '
      'read it to run them all again.')


def stored_model_dir(model_store: str, run: Run) -> str:
  """Where --model_store keeps `run`'s model: ROW/seedS[/genG]."""
  path = os.path.join(model_store, run.row.name, f'seed{run.seed}')
  return path if run.generation is None else os.path.join(
      path, f'gen{run.generation}')


def restore_stored_model(planned: PlannedStage, model_store: str,
                         records: List[Dict], results_path: str) -> bool:
  """Copies a kept model into its run folder when that lacks its record.

  Raises:
    NotReproducedError: --results records another model for the run (the
      store and the results must come from the same runs).
  """
  run = planned.run
  stored = stored_model_dir(model_store, run)
  stored_record = _read_json(os.path.join(stored, RECORD_FILE))
  if not stored_record or os.path.exists(planned.stage.done_marker):
    return False
  previous = _recorded(records, run)
  if previous and previous['wer'] != stored_record['wer']:
    raise NotReproducedError(
        f'{stored} holds {run.row.name} seed {run.seed} at '
        f'{_wers(stored_record)} (commit {stored_record["commit"][:7]}) '
        f'where {results_path} records {_wers(previous)} (commit '
        f'{previous["commit"][:7]}): they hold different models. Keep the '
        'store and the results of the same runs.')
  shutil.copytree(stored, run.model_dir, dirs_exist_ok=True)
  return True


def keep_model(planned: PlannedStage, model_store: str):
  """Writes a done run's inference copy to the store if it lacks one."""
  run = planned.run
  stored = stored_model_dir(model_store, run)
  if (os.path.exists(os.path.join(stored, RECORD_FILE)) or
      not os.path.exists(planned.stage.done_marker)):
    return
  summaries = [os.path.basename(stages.summary_path(run.model_dir, split))
               for split in results.EVAL_SPLITS]
  # The record last: it marks a complete copy.
  weights_copy.write_inference_copy(run.model_dir, stored, summaries)
  shutil.copyfile(planned.stage.done_marker,
                  os.path.join(stored, RECORD_FILE))
  print(f'{planned.stage.name}: model kept in {stored}', flush=True)


def run_plan(plan: List[PlannedStage], results_path: str, markdown_path: str,
             figure_path: str, commit_dir: str = REPO_ROOT,
             model_store: str = '') -> List[Dict]:
  """Runs the stages not done yet; records, reports and prints each run.

  Records of the results file are kept; a finished run's record (from its
  folder) is added when the file lacks it. A run whose model other stages
  read is kept in `model_store` once done, and restored from there where
  its folder lacks it. A run recorded in the results is not run again
  unless a stage that runs loads its model (`stages_to_run`) and the store
  lacks it; then it must reproduce its record (`check_reproduced`).
  """
  records = results.load(results_path)
  runs = [planned.run for planned in plan if planned.run]
  read_by_others = {path for planned in plan for path in planned.loads}
  kept = [planned for planned in plan if model_store and planned.run and
          planned.makes in read_by_others]
  for planned in kept:
    if restore_stored_model(planned, model_store, records, results_path):
      print(f'{planned.stage.name}: restored from {model_store}',
            flush=True)
  known = {results.run_key(record) for record in records}
  for planned in plan:
    run = planned.run
    if run and os.path.exists(planned.stage.done_marker):
      record = _read_json(planned.stage.done_marker)
      if results.run_key(record) not in known:
        records = results.upsert(records, record)
  if records:
    results.save(results_path, records)
  to_run = stages_to_run(plan, {results.run_key(record)
                                for record in records})

  def eta() -> Optional[float]:
    """Mean wall time of the plan's finished runs x its runs left."""
    keys = {run_key(run) for run in runs}
    walls = [record['wall_seconds'] for record in records
             if results.run_key(record) in keys and record['wall_seconds']]
    left = sum(planned.stage.done_marker in to_run and
               not os.path.exists(planned.stage.done_marker)  # Run since.
               for planned in plan if planned.run)
    return progress.eta_seconds(walls, left)

  number = 0
  start = time.time()
  for planned in plan:
    stage, run = planned.stage, planned.run
    if run:
      number += 1
    if stage.done_marker not in to_run:
      if planned in kept:
        keep_model(planned, model_store)
      if run:
        done = os.path.exists(stage.done_marker)
        record = (_read_json(stage.done_marker) if done else
                  _recorded(records, run))
        where = 'done already' if done else 'recorded already'
        print(progress.progress_line(
            number, len(runs), f'{stage.name} ({where})',
            record['wer'], record['wall_seconds'] or 0.0, eta()), flush=True)
      elif os.path.exists(stage.done_marker):
        print(f'{stage.name}: done already ({stage.done_marker})',
              flush=True)
      else:
        print(f'{stage.name}: not needed (all that reads it is recorded)',
              flush=True)
      continue
    print(f'{stage.name} ({time.time() - start:.0f} s elapsed)', flush=True)
    commit = results.git_commit(commit_dir)
    stages.run_stage(stage)
    if not run:
      continue
    record = collect_record(run, commit)
    previous = _recorded(records, run)
    if previous:  # The record stays: its run taught the recorded runs.
      check_reproduced(previous, record, results_path)
    else:
      records = results.upsert(records, record)
      results.save(results_path, records)
    with open(stage.done_marker, 'w') as record_file:
      json.dump(record, record_file, indent=1)
    if planned in kept:
      keep_model(planned, model_store)
    report_files.write_report(records, results_path, markdown_path,
                                    figure_path)
    print(progress.progress_line(
        number, len(runs), stage.name, record['wer'],
        record['wall_seconds'] or 0.0, eta()), flush=True)
  report_files.write_report(records, results_path, markdown_path,
                                  figure_path)
  return records


def main(argv):
  del argv
  work_dir = FLAGS.work_dir
  if not os.path.exists(os.path.join(work_dir, 'tokenizer', 'spm.model')):
    raise app.UsageError(f'no demo data in {work_dir}: run `make demo` (or '
                         'python -m asr_kd.bin.demo --data_only, which '
                         'skips the demo\'s own models) first.')
  known_rows = {row.name for row in rows_lib.ROWS_A + rows_lib.ROWS_B} | {
      PROBE} | {row.name for row in probe_rows(FLAGS.probe_right_shifts,
                                               FLAGS.probe_alphas)}
  unknown = set(FLAGS.rows or []) - known_rows
  if unknown:
    raise app.UsageError(f'unknown --rows {sorted(unknown)}; rows: '
                         f'{sorted(known_rows)}')
  start = time.time()
  try:
    run_plan(build_plan(work_dir), FLAGS.results, FLAGS.markdown,
             FLAGS.figure, model_store=FLAGS.model_store)
  except NotReproducedError as error:
    sys.exit(f'experiments: {error}')
  print(f'experiments: finished in {progress.duration(time.time() - start)};'
        f' {FLAGS.results}, {FLAGS.markdown}, {FLAGS.figure}', flush=True)


if __name__ == '__main__':
  define_flags()
  app.run(main)
