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
  """Units per wall-clock second since the first update after a reset."""

  def __init__(self, name: str, **kwargs):
    super().__init__(name=name, **kwargs)
    self.total = self.add_weight('total', initializer='zeros',
                                 dtype=tf.float64)
    self.start_time = self.add_weight(
        'start_time', initializer='zeros', dtype=tf.float64,
        aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)

  def update_state(self, units, sample_weight=None):
    del sample_weight
    now = tf.timestamp()
    self.start_time.assign(
        tf.where(tf.equal(self.start_time, 0.0), now, self.start_time))
    self.total.assign_add(tf.cast(tf.reduce_sum(units), tf.float64))

  def result(self):
    elapsed = tf.timestamp() - self.start_time
    return tf.cast(tf.math.divide_no_nan(self.total, elapsed), tf.float32)
