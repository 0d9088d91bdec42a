"""Splits long audio into segments a model takes whole, at quiet points.

A full-context encoder attends over the whole input, so its memory grows
with the square of the audio's length, and it never saw inputs longer than
its training batches allowed. A long recording is therefore cut into
segments no longer than `max_samples`; each cut falls in the quietest 10 ms
frame of the last `search_samples` before the limit, where a pause between
words most likely is, so few words are split. The segments are slices: no
sample is copied.
"""

from typing import List, Tuple

import numpy as np

# Energy is compared over frames of this many samples (10 ms at 16 kHz).
FRAME_SAMPLES = 160


def segment_bounds(samples: np.ndarray, max_samples: int,
                   search_samples: int) -> List[Tuple[int, int]]:
  """[(start, end)) bounds that tile `samples`, each at most max_samples.

  Args:
    samples: 1-D audio (any numeric dtype).
    max_samples: the longest segment.
    search_samples: how far before the limit a cut may fall (clipped to
      max_samples); larger finds quieter cuts, smaller keeps segments long.

  Returns:
    Contiguous bounds from 0 to len(samples); one pair for short audio.

  Raises:
    ValueError: max_samples or search_samples below one frame.
  """
  if max_samples < FRAME_SAMPLES or search_samples < FRAME_SAMPLES:
    raise ValueError(f'max_samples ({max_samples}) and search_samples '
                     f'({search_samples}) must be at least {FRAME_SAMPLES}')
  search_samples = min(search_samples, max_samples)
  num_samples = len(samples)
  bounds = []
  start = 0
  while num_samples - start > max_samples:
    window_start = start + max_samples - search_samples
    num_frames = search_samples // FRAME_SAMPLES
    window = np.asarray(
        samples[window_start:window_start + num_frames * FRAME_SAMPLES],
        np.float64).reshape(num_frames, FRAME_SAMPLES)
    # The quietest frame nearest the limit, cut after it (segments stay
    # long when the window is uniformly quiet or loud).
    energy = np.sum(window * window, axis=1)
    quietest = num_frames - 1 - int(np.argmin(energy[::-1]))
    cut = window_start + (quietest + 1) * FRAME_SAMPLES
    bounds.append((start, cut))
    start = cut
  bounds.append((start, num_samples))
  return bounds
