"""The comparison's rows: which experiment each trains, what it is compared
with, and which pairs of rows test the paper's two findings."""

from typing import NamedTuple, Optional, Tuple


class Row(NamedTuple):
  name: str  # Results key, folder under WORK_DIR/experiments, --rows key.
  experiment: str  # exp_factory name; configs/experiments/<experiment>.yaml.
  description: str
  comparison: str  # 'teacher', 'a', 'probe' or 'b'.
  targets: str  # 'none' (transcripts), 'hard', 'soft' or 'stored'.
  baseline: Optional[str]  # Row compared with, seed by seed.
  overrides: str = ''  # Extra --params_override of the row.


BIG_TEACHER = Row('kd_demo_big_teacher', 'kd_demo_big_teacher',
                  '(a) full-context teacher (labeled subset)', 'teacher',
                  'none', None)
BASELINE = 'kd_demo_student_none'
SOFT_FULL = 'kd_demo_student_soft_full'
SOFT_STORED = 'kd_demo_student_soft_stored'
STORED_TOP_K = 8
ROWS_A = (
    Row(BASELINE, BASELINE, '(a) streaming student, no distillation', 'a',
        'none', None),
    Row('kd_demo_student_hard', 'kd_demo_student_hard',
        '(a) hard targets', 'a', 'hard', BASELINE),
    Row(SOFT_FULL, SOFT_FULL, '(a) soft targets, full vocabulary', 'a',
        'soft', BASELINE),
    Row('kd_demo_student_soft_3class', 'kd_demo_student_soft_3class',
        '(a) soft targets, 3 classes', 'a', 'soft', BASELINE),
    # The full-vocabulary row on the teacher's stored top-8 targets of the
    # same records (asr_kd.bin.teacher_targets) instead of online.
    Row(SOFT_STORED, SOFT_FULL, '(a) soft targets, full vocabulary, '
        'stored top-8', 'a', 'stored', BASELINE,
        'task.distillation.targets=stored'),
)
# Stored targets are judged against the online row they replace.
STORED_AGAINST_ONLINE = (SOFT_STORED, SOFT_FULL)
# A probe: the stored row's top-k KL, computed from the live teacher in each
# step. Against the stored row it isolates storage and batch order; against
# the online row, the grouping of all but the top k into one class.
SOFT_ONLINE_TOP_K = Row(
    f'{SOFT_FULL}_online_top{STORED_TOP_K}', SOFT_FULL,
    f'probe: full vocabulary, online top-{STORED_TOP_K}', 'probe', 'soft',
    BASELINE, f'task.distillation.online_top_k={STORED_TOP_K}')
ROWS_B = (
    Row('kd_demo_self_hard', 'kd_demo_self_hard',
        '(b) self-training, hard targets', 'b', 'hard', BASELINE),
    Row('kd_demo_self_soft', 'kd_demo_self_soft',
        '(b) self-training, soft targets', 'b', 'soft', BASELINE),
)


class Finding(NamedTuple):
  """One of the paper's findings, as a head-to-head of hard and soft rows."""
  claim: str
  better: str  # 'hard' or 'soft': the targets the paper found better.
  hard_row: str
  soft_rows: Tuple[str, ...]


FINDINGS = (
    Finding('(a) a big full-context teacher distills a small streaming '
            'student better with hard targets', 'hard',
            ROWS_A[1].name, (ROWS_A[2].name, ROWS_A[3].name)),
    Finding('(b) self-training works better with soft targets', 'soft',
            ROWS_B[0].name, (ROWS_B[1].name,)),
)
