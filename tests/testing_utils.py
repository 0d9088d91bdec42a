"""Shared fixtures: a tiny synthetic speech corpus and task configs for it."""

import os
import subprocess
import sys
import tempfile

from absl import flags
import numpy as np
import tensorflow as tf

from official.core import config_definitions as cfg

from asr_kd.configs import conformer_config
from asr_kd.configs import data_config
from asr_kd.configs import rnnt_config
from asr_kd.configs import rnnt_experiments
from asr_kd.dataloaders import tfrecord_schema
from tfrecords_tools import compute_feature_stats
from tfrecords_tools import demo_sentences
from tfrecords_tools import espeak_synth
from tfrecords_tools import train_tokenizer

def write_tiny_corpus(directory: str, num_utterances: int = 12,
                      seed: int = 0, vocab_size: int = 40) -> dict:
  """Synthesizes short sentences into TFRecords, a tokenizer and stats.

  Returns:
    dict with 'tfrecords' (glob), 'tokenizer', 'feature_stats', 'texts'.
  """
  os.makedirs(directory, exist_ok=True)
  rng = np.random.default_rng(seed)
  short = [s for s in demo_sentences.load_pool('wordnet')
           if len(demo_sentences.words(s)) <= 5]
  synthesizer = espeak_synth.EspeakSynthesizer.get()
  texts = [short[i] for i in rng.choice(len(short), num_utterances,
                                        replace=False)]
  record_path = os.path.join(directory, 'tiny-00000-of-00001.tfrecord')
  with tf.io.TFRecordWriter(record_path) as writer:
    for index, text in enumerate(texts):
      samples = synthesizer.synthesize(
          text, espeak_synth.VoiceSettings(rate=220))
      writer.write(tfrecord_schema.make_example(
          f'utt{index:03d}', samples, transcript=text,
          speaker='0').SerializeToString())
  tokenizer_path = train_tokenizer.train_sentencepiece(
      sorted(texts), os.path.join(directory, 'spm'), vocab_size=vocab_size)
  stats_path = os.path.join(directory, 'feature_stats.json')
  compute_feature_stats.compute_and_save(record_path, stats_path)
  return {'tfrecords': record_path, 'tokenizer': tokenizer_path,
          'feature_stats': stats_path, 'texts': texts}

def tiny_data_config(corpus: dict, is_training: bool,
                     batch_size: int = 4) -> data_config.AsrDataConfig:
  return data_config.AsrDataConfig(
      input_path=corpus['tfrecords'], is_training=is_training,
      global_batch_size=batch_size, shuffle_buffer_size=16,
      drop_remainder=is_training, seed=1, deterministic=True,
      bucket_boundaries=[400, 800], label_length_multiple=8,
      max_label_length=64,
      spec_augment=data_config.SpecAugmentConfig(enabled=is_training))

def tiny_model_config(causal: bool = False
                     ) -> rnnt_config.RnntModelConfig:
  return rnnt_config.RnntModelConfig(
      encoder=conformer_config.ConformerEncoderConfig(
          subsampling_factor=4, subsampling_filters=8, model_dim=16,
          num_layers=1, num_heads=2, conv_kernel_size=3, dropout_rate=0.0,
          attention_dropout_rate=0.0, causal=causal, chunk_size=4,
          left_chunks=2, conv_norm='layer_norm', max_relative_position=16),
      prediction=rnnt_config.PredictionNetworkConfig(
          embedding_dim=8, lstm_units=16, dropout_rate=0.0),
      joint=rnnt_config.JointNetworkConfig(joint_dim=16))

def tiny_experiment(corpus: dict, train_steps: int = 4,
                    causal: bool = False) -> cfg.ExperimentConfig:
  """rnnt_demo_teacher shrunk to seconds on CPU."""
  config = rnnt_experiments.rnnt_demo_teacher()
  config.task.tokenizer_model_path = corpus['tokenizer']
  config.task.model = tiny_model_config(causal)
  config.task.model.feature_stats_file = corpus['feature_stats']
  config.task.train_data = tiny_data_config(corpus, is_training=True)
  config.task.validation_data = tiny_data_config(corpus, is_training=False)
  config.task.loss.time_chunk_size = 4
  config.task.decoding.max_symbols_per_frame = 2
  config.trainer.train_steps = train_steps
  config.trainer.steps_per_loop = 2
  config.trainer.summary_interval = 2
  config.trainer.checkpoint_interval = 2
  config.trainer.validation_interval = train_steps
  config.trainer.validation_steps = 2
  config.trainer.optimizer_config.warmup.linear.warmup_steps = 2
  return config


def parsed_flags(define_flags, program: str, *args: str) -> flags.FlagValues:
  """A binary's flags, defined on a fresh FlagValues and parsed from args."""
  flag_values = flags.FlagValues()
  define_flags(flag_values)
  flag_values([program, *args])
  return flag_values


_REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Imports what every binary imports, then forks one child per module that
# runs it as `MODULE --helpfull` into its own file: the children share the
# parent's seconds of importing TensorFlow instead of repeating them.
_HELP_RUNNER = r"""
import os, runpy, sys
import tensorflow, apache_beam, official.core.exp_factory
out_dir, modules = sys.argv[1], sys.argv[2:]
for index, module in enumerate(modules):
  pid = os.fork()
  if pid == 0:
    with open(os.path.join(out_dir, str(index)), 'w') as out:
      os.dup2(out.fileno(), 1)
      os.dup2(out.fileno(), 2)
      sys.argv = [module, '--helpfull']
      try:
        runpy.run_module(module, run_name='__main__', alter_sys=True)
      except BaseException:
        pass
      sys.stdout.flush()
      sys.stderr.flush()
    os._exit(0)
  os.waitpid(pid, 0)
"""


def help_texts(modules):
  """{module: output of `python -m module --helpfull`}."""
  with tempfile.TemporaryDirectory() as out_dir:
    subprocess.run([sys.executable, '-c', _HELP_RUNNER, out_dir, *modules],
                   cwd=_REPO_ROOT, check=True, timeout=600)
    texts = {}
    for index, module in enumerate(modules):
      with open(os.path.join(out_dir, str(index))) as out:
        texts[module] = out.read()
    return texts
