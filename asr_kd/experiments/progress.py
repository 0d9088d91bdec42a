"""One progress line per finished run, with an ETA for the rest."""

from typing import Dict, Optional, Sequence


def duration(seconds: float) -> str:
  """'42 s', '35.2 min' or '3h10m'."""
  if seconds < 60:
    return f'{seconds:.0f} s'
  if seconds < 3600:
    return f'{seconds / 60:.1f} min'
  hours, minutes = divmod(int(round(seconds / 60)), 60)
  return f'{hours}h{minutes:02d}m'


def eta_seconds(finished_wall_seconds: Sequence[float],
                remaining_runs: int) -> Optional[float]:
  """Mean wall time of the finished runs times the runs left; None if none."""
  if not finished_wall_seconds:
    return None
  return (sum(finished_wall_seconds) / len(finished_wall_seconds) *
          remaining_runs)


def progress_line(number: int, total: int, label: str,
                  wer: Dict[str, Optional[float]], wall_seconds: float,
                  eta: Optional[float]) -> str:
  """e.g. `[7/42] kd_demo_student_hard seed 1: test 12.3% ood 20.1%
  (35.2 min); ETA 3h10m`."""
  wers = ' '.join(f'{split} {value:.1f}%' for split, value in wer.items()
                  if value is not None) or 'no WER'
  remaining = ('done' if number == total or eta == 0 else
               f'ETA {duration(eta)}' if eta is not None else 'ETA unknown')
  return (f'[{number}/{total}] {label}: {wers} ({duration(wall_seconds)}); '
          f'{remaining}')
