"""Maps a function over tasks in worker processes, surviving native crashes.

eSpeak NG segfaults on a few (text, voice) pairs (one utterance in the
48,000 of `make_demo_corpus --num_train=48000`). A crash kills the worker
process; `multiprocessing.Pool` then waits forever for the lost chunk, and a
crash in the calling process would end the whole run. Here a dead worker
breaks a `ProcessPoolExecutor`, which raises `BrokenProcessPool` in the
caller; the tasks that did not finish are run again, the suspects one at a
time in a one-worker pool, so the task that kills its process is named and
every other task still runs.

The suspects are the first unfinished chunks in submission order: the
executor hands chunks to its workers in that order through a queue of
`max_workers + 1` items, so a chunk that was running or queued when the pool
broke precedes every chunk still waiting.
"""

import concurrent.futures
from concurrent.futures import process
import multiprocessing
from typing import Any, Callable, Iterator, Sequence, Tuple

# Returned instead of a result for a task whose process died twice running it.
CRASHED = object()


def _run_chunk(fn: Callable[[Any], Any], chunk: Sequence[Tuple[int, Any]]):
  return [(index, fn(task)) for index, task in chunk]


def _new_pool(num_workers: int) -> concurrent.futures.ProcessPoolExecutor:
  # spawn: workers start without the caller's state (eSpeak, TF threads).
  return concurrent.futures.ProcessPoolExecutor(
      num_workers, mp_context=multiprocessing.get_context('spawn'))


def _parallel_pass(fn, chunks, num_workers, unfinished):
  """Yields the results of chunks until the pool breaks.

  Chunks that did not finish are appended to `unfinished`, in order.
  """
  pool = _new_pool(num_workers)
  try:
    futures = []
    for chunk in chunks:
      try:
        futures.append(pool.submit(_run_chunk, fn, chunk))
      except process.BrokenProcessPool:
        break  # A worker died before every chunk was submitted.
    for chunk, future in zip(chunks, futures):
      try:
        yield from future.result()
      except process.BrokenProcessPool:
        unfinished.append(chunk)
    unfinished.extend(chunks[len(futures):])
  finally:
    # On an error or interrupt here, do not wait for the queued chunks.
    pool.shutdown(cancel_futures=True)


def _isolating_pass(fn, tasks):
  """Yields the results of tasks run one at a time in a one-worker pool.

  A task whose worker dies is run once more in a new worker; CRASHED if that
  one dies too.
  """
  pool = _new_pool(1)
  try:
    for index, task in tasks:
      for attempt in range(2):
        try:
          yield index, pool.submit(fn, task).result()
          break
        except process.BrokenProcessPool:
          pool.shutdown()
          pool = _new_pool(1)
          if attempt == 1:
            yield index, CRASHED
  finally:
    pool.shutdown(cancel_futures=True)


def map_isolating_crashes(fn: Callable[[Any], Any], tasks: Sequence[Any],
                          num_workers: int,
                          chunk_size: int = 8) -> Iterator[Tuple[int, Any]]:
  """Yields (task index, fn(task) or CRASHED) for every task, in no order.

  Args:
    fn: A picklable (module-level) function of one task.
    tasks: Picklable tasks.
    num_workers: Worker processes (>= 1); the caller's process never runs
      `fn`.
    chunk_size: Tasks sent to a worker at a time.

  Yields:
    One pair per task. CRASHED marks a task whose worker died both times it
    ran it (a Python exception in `fn` is raised here, not marked).
  """
  indexed = list(enumerate(tasks))
  # Chunks that may have been running or queued when a pool broke.
  num_suspect_chunks = 2 * num_workers + 1
  while indexed:
    chunks = [indexed[start:start + chunk_size]
              for start in range(0, len(indexed), chunk_size)]
    unfinished = []
    yield from _parallel_pass(fn, chunks, num_workers, unfinished)
    yield from _isolating_pass(
        fn, [item for chunk in unfinished[:num_suspect_chunks]
             for item in chunk])
    indexed = [item for chunk in unfinished[num_suspect_chunks:]
               for item in chunk]
