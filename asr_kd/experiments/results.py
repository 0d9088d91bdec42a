"""The comparison's results file: one JSON record per finished run.

    {"runs": [
      {"row": "kd_demo_student_hard", "generation": null, "seed": 1,
       "task_seed": 1, "description": "...", "comparison": "a",
       "baseline": "kd_demo_student_none",
       "wer": {"test": 12.3, "ood": 20.1, "dev": 11.8},   # percent; null
                                                          # if not evaluated
       "train_steps": 2000, "wall_seconds": 2112.0, "cpu_seconds": 3950.0,
       "commit": "0123abc...", "model_dir": "demo_run/experiments/..."},
      ...]}

A run is identified by (row, generation, seed); `seed` is the repetition
(the pairing key of the report), `task_seed` the task.seed it trained with
(a self-training student's differs from its teacher's). `baseline` names the
row whose run with the same seed (and generation null) it is compared with;
null for a baseline. `wall_seconds` and `cpu_seconds` (user + system of the
run's commands) add up every session the run was resumed in; `cpu_seconds` is
null in records written before it was measured. No TensorFlow here: the report reads this file alone.
"""

import json
import os
import subprocess
from typing import Dict, List, Optional, Tuple

# Written when the run's folder is not a git checkout (or git is missing).
UNKNOWN_COMMIT = 'unknown'
# Splits every model is scored on: test and ood (other texts and voices) are
# reported, dev is for tuning.
EVAL_SPLITS = ('test', 'ood', 'dev')
REPORTED_SPLITS = ('test', 'ood')


def run_key(record: Dict) -> Tuple:
  return (record['row'], record.get('generation'), record['seed'])


def load(path: str) -> List[Dict]:
  """The records of `path`; [] when it does not exist yet."""
  if not os.path.exists(path):
    return []
  with open(path) as results_file:
    return json.load(results_file)['runs']


def save(path: str, records: List[Dict]):
  """Writes the records (through a temporary file: a kill leaves the old)."""
  os.makedirs(os.path.dirname(path) or '.', exist_ok=True)
  with open(path + '.tmp', 'w') as results_file:
    json.dump({'runs': records}, results_file, indent=1)
    results_file.write('\n')
  os.replace(path + '.tmp', path)


def upsert(records: List[Dict], record: Dict) -> List[Dict]:
  """`records` with `record` replacing the run of the same key, or added."""
  key = run_key(record)
  updated = [record if run_key(old) == key else old for old in records]
  if key not in {run_key(old) for old in records}:
    updated.append(record)
  return updated


def git_commit(directory: str = '.') -> str:
  """`git rev-parse HEAD` in `directory`, or UNKNOWN_COMMIT."""
  try:
    result = subprocess.run(['git', 'rev-parse', 'HEAD'], cwd=directory,
                            capture_output=True, text=True, timeout=30,
                            check=False)
  except (OSError, subprocess.SubprocessError):
    return UNKNOWN_COMMIT
  commit = result.stdout.strip()
  return commit if result.returncode == 0 and commit else UNKNOWN_COMMIT


def make_record(row: str, seed: int, generation: Optional[int],
                task_seed: int, description: str, comparison: str,
                baseline: Optional[str], wer: Dict[str, Optional[float]],
                train_steps: Optional[int], wall_seconds: Optional[float],
                commit: str, model_dir: str,
                cpu_seconds: Optional[float] = None) -> Dict:
  """One run's record (module docstring); WERs in percent."""
  return {
      'row': row, 'generation': generation, 'seed': seed,
      'task_seed': task_seed, 'description': description,
      'comparison': comparison, 'baseline': baseline, 'wer': dict(wer),
      'train_steps': train_steps, 'wall_seconds': wall_seconds,
      'cpu_seconds': cpu_seconds, 'commit': commit, 'model_dir': model_dir,
  }
