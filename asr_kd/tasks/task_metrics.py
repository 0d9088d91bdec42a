"""Keras metrics the tasks report: error rates and throughput."""

import tensorflow as tf
import tf_keras


class ErrorRate(tf_keras.metrics.Metric):
  """Corpus-level error rate: total edit errors / total reference units.

  Summing counts before dividing weights every word equally, which is how
  WER is defined (a mean of per-utterance rates is not).
  """

  def __init__(self, name: str, **kwargs):
    super().__init__(name=name, **kwargs)
    self.errors = self.add_weight('errors', initializer='zeros')
    self.reference_units = self.add_weight('reference_units',
                                           initializer='zeros')

  def update_state(self, errors, reference_units, sample_weight=None):
    del sample_weight
    self.errors.assign_add(tf.reduce_sum(tf.cast(errors, tf.float32)))
    self.reference_units.assign_add(
        tf.reduce_sum(tf.cast(reference_units, tf.float32)))

  def result(self):
    return tf.math.divide_no_nan(self.errors, self.reference_units)


class Throughput(tf_keras.metrics.Metric):
  """Units per wall-clock second since the first update after a reset.

  The clock starts at the `start_time` passed with the first update (the
  time the first step of a training loop began), or at that update itself
  when none is given. Under a distribution strategy `total` is summed over
  replicas and the clock is the first replica's.
  """

  def __init__(self, name: str, **kwargs):
    super().__init__(name=name, **kwargs)
    self.total = self.add_weight('total', initializer='zeros',
                                 dtype=tf.float64)
    self.start_time = self.add_weight(
        'start_time', initializer='zeros', dtype=tf.float64,
        aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)

  def update_state(self, units, start_time=None, sample_weight=None):
    """Adds `units` (summed if a tensor).

    Args:
      units: number of units (examples, audio seconds) processed.
      start_time: tf.timestamp() taken when the work began; used only by
        the first update after a reset.
      sample_weight: unused.
    """
    del sample_weight
    if start_time is None:
      start_time = tf.timestamp()
    # Epoch seconds need float64: a float32 step is about two minutes.
    if isinstance(start_time, (tf.Tensor, tf.Variable)):
      start_time = tf.cast(start_time, tf.float64)
    else:
      start_time = tf.constant(start_time, tf.float64)
    self.start_time.assign(
        tf.where(tf.equal(self.start_time, 0.0), start_time, self.start_time))
    self.total.assign_add(tf.cast(tf.reduce_sum(units), tf.float64))

  def result(self):
    elapsed = tf.timestamp() - self.start_time
    return tf.cast(tf.math.divide_no_nan(self.total, elapsed), tf.float32)
