"""Tests for asr_kd.dataloaders.features against a float64 NumPy reference."""

import os

import numpy as np
import tensorflow as tf

from asr_kd.configs import data_config
from asr_kd.dataloaders import features


def _hz_to_mel(hertz):
  return 1127.0 * np.log1p(np.asarray(hertz) / 700.0)


def _reference_mel_matrix(num_mel_bins, fft_length, sample_rate, lower_hz,
                          upper_hz):
  """HTK-mel triangles over FFT bin centers; the DC bin gets no weight."""
  bin_hertz = np.linspace(0.0, sample_rate / 2.0, fft_length // 2 + 1)
  bin_mel = _hz_to_mel(bin_hertz)[:, None]
  edges = np.linspace(_hz_to_mel(lower_hz), _hz_to_mel(upper_hz),
                      num_mel_bins + 2)
  left, center, right = edges[:-2], edges[1:-1], edges[2:]
  rising = (bin_mel - left) / (center - left)
  falling = (right - bin_mel) / (right - center)
  weights = np.maximum(0.0, np.minimum(rising, falling))
  weights[0, :] = 0.0
  return weights


def _reference_log_mel(waveform, config):
  """float64 log-mel power of a 1-D waveform, no padding."""
  frame_length = int(config.sample_rate * config.frame_length_ms / 1000)
  frame_step = int(config.sample_rate * config.frame_step_ms / 1000)
  count = max(0, 1 + (len(waveform) - frame_length) // frame_step)
  window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(frame_length) /
                              frame_length)
  frames = np.stack([waveform[i * frame_step:i * frame_step + frame_length]
                     for i in range(count)]) * window
  power = np.abs(np.fft.rfft(frames, n=config.fft_length, axis=-1))**2
  mel = power @ _reference_mel_matrix(
      config.num_mel_bins, config.fft_length, config.sample_rate,
      config.lower_edge_hertz, config.upper_edge_hertz)
  return np.log(np.maximum(mel, config.log_floor)), mel


class FeaturesTest(tf.test.TestCase):

  def setUp(self):
    super().setUp()
    self.config = data_config.FeatureConfig()
    self.rng = np.random.RandomState(1234)

  def _random_waveform(self, num_samples):
    time = np.arange(num_samples) / 16000.0
    tone = 0.3 * np.sin(2 * np.pi * self.rng.uniform(100, 4000) * time)
    return (tone + 0.05 * self.rng.randn(num_samples)).astype(np.float32)

  def test_log_mel_matches_float64_reference(self):
    for num_samples in (400, 1234, 4000):
      waveform = self._random_waveform(num_samples)
      expected, mel_energy = _reference_log_mel(waveform.astype(np.float64),
                                                self.config)
      significant = mel_energy > 1e-3
      self.assertGreater(significant.mean(), 0.9)
      # Both ways of projecting onto the mel bins (the export's broadcast
      # multiply-and-sum and the matmul).
      for mel_as_matmul in (True, False):
        actual = features.log_mel(waveform, self.config,
                                  mel_as_matmul=mel_as_matmul).numpy()
        self.assertEqual(actual.shape, expected.shape)
        relative = (np.abs(actual - expected) /
                    np.maximum(np.abs(expected), 1.0))
        self.assertLess(relative[significant].max(), 1e-4, mel_as_matmul)

  def test_batched_input_matches_per_utterance(self):
    batch = np.stack([self._random_waveform(2000) for _ in range(3)])
    batched = features.log_mel(batch, self.config).numpy()
    self.assertEqual(batched.shape, (3, features.num_frames(2000), 80))
    for row, waveform in enumerate(batch):
      self.assertAllClose(batched[row],
                          features.log_mel(waveform, self.config), atol=1e-5)

  def test_num_frames_formula_numpy_and_tensor(self):
    for num_samples in (0, 1, 399, 400, 559, 560, 16000, 16001):
      expected = max(0, 1 + (num_samples - 400) // 160)
      self.assertEqual(int(features.num_frames(num_samples)), expected)
      self.assertEqual(int(features.num_frames(tf.constant(num_samples))),
                       expected)
      if num_samples:
        waveform = self.rng.uniform(-1, 1, num_samples).astype(np.float32)
        self.assertEqual(features.log_mel(waveform).shape[0], expected)

  def test_chunked_stream_equals_full_utterance(self):
    waveform = self._random_waveform(16000)
    full = features.log_mel(waveform, self.config).numpy()
    overlap = 400 - 160
    chunks, carried, start = [], np.zeros(0, np.float32), 0
    while start < len(waveform):
      size = int(self.rng.randint(100, 3000))
      stream_input = np.concatenate([carried, waveform[start:start + size]])
      chunk_frames = int(features.num_frames(len(stream_input)))
      chunks.append(features.log_mel(stream_input, self.config).numpy())
      # Keep whatever the emitted frames have not fully consumed.
      carried = stream_input[chunk_frames * 160:] if chunk_frames else (
          stream_input)
      start += size
      self.assertLessEqual(len(carried), max(overlap + 160, 399))
    streamed = np.concatenate(chunks, axis=0)
    self.assertEqual(streamed.shape, full.shape)
    self.assertAllClose(streamed, full, atol=1e-5)

  def test_waveform_to_float_scale(self):
    samples = np.array([-32768, -1, 0, 1, 32767], np.int16)
    self.assertAllClose(features.waveform_to_float(samples),
                        samples.astype(np.float64) / 32768.0)

  def test_feature_stats_and_normalization(self):
    utterances = [self.rng.randn(length, 4).astype(np.float32) * 3 + 1
                  for length in (5, 9, 2)]
    dataset = tf.data.Dataset.from_generator(
        lambda: iter(utterances),
        output_signature=tf.TensorSpec([None, 4], tf.float32))
    mean, stddev = features.compute_feature_stats(dataset, max_utterances=2)
    stacked = np.concatenate(utterances[:2]).astype(np.float64)
    self.assertAllClose(mean, stacked.mean(0), rtol=1e-5)
    self.assertAllClose(stddev, stacked.std(0), rtol=1e-5)
    path = os.path.join(self.get_temp_dir(), 'stats.json')
    features.save_feature_stats(path, mean, stddev)
    loaded_mean, loaded_stddev = features.load_feature_stats(path)
    self.assertAllClose(loaded_mean, mean)
    normalized = features.normalize_features(
        tf.constant(utterances[2]), loaded_mean, loaded_stddev)
    self.assertAllClose(normalized, (utterances[2] - mean) / stddev,
                        rtol=1e-5, atol=1e-6)

  def test_subtract_utterance_mean_matches_numpy(self):
    lengths = np.array([7, 3, 1], np.int32)
    batch = self.rng.randn(3, 9, 4).astype(np.float32) * 2 + 5
    result = features.subtract_utterance_mean(tf.constant(batch),
                                              tf.constant(lengths)).numpy()
    for b, length in enumerate(lengths):
      valid = batch[b, :length].astype(np.float64)
      self.assertAllClose(result[b, :length], valid - valid.mean(0),
                          rtol=1e-5, atol=1e-5)
      self.assertAllEqual(result[b, length:], np.zeros_like(batch[b, length:]))

  def test_converts_to_tflite_builtins(self):

    @tf.function(input_signature=[tf.TensorSpec([1, None], tf.float32)])
    def frontend(waveform):
      return features.log_mel(waveform, self.config)

    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [frontend.get_concrete_function()], frontend)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    interpreter = tf.lite.Interpreter(model_content=converter.convert())
    waveform = self._random_waveform(2345)[np.newaxis]
    input_index = interpreter.get_input_details()[0]['index']
    interpreter.resize_tensor_input(input_index, list(waveform.shape))
    interpreter.allocate_tensors()
    interpreter.set_tensor(input_index, waveform)
    interpreter.invoke()
    output = interpreter.get_tensor(
        interpreter.get_output_details()[0]['index'])
    self.assertAllClose(output, frontend(waveform), atol=1e-4)


if __name__ == '__main__':
  tf.test.main()
