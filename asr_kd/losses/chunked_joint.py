"""Losses of a joint network's logits, computed one time chunk at a time.

The RNN-T loss and the soft-target KL both reduce the joint's
[B, T, U+1, V] logits over V node by node and have analytic logit gradients.
`fused_losses` evaluates any number of such terms from the joint's inputs
without keeping the full logits: the forward pass runs `joint_fn` once per
chunk of `time_chunk_size` frames (in a `tf.while_loop`) and hands the
chunk's logits to every term; the backward pass (a `tf.custom_gradient`)
recomputes each chunk's logits once under a GradientTape, adds the terms'
logit gradients and back-propagates their sum in one `tape.gradient` into
encoder_out, predictor_out and the variables `joint_fn` reads. Peak memory
is a few [B, Tc, U+1, V] tensors plus the joint's activations for one chunk.

A term implements `Term`: it reduces each chunk's logits to per-frame
[B, Tc, U+1] and per-example [B] float32 values, turns their totals into its
[B] output, and gives each chunk's gradient w.r.t. its logits.
"""

import numbers
from typing import Callable, List, NamedTuple, Sequence, Tuple

import tensorflow as tf

JointFn = Callable[[tf.Tensor, tf.Tensor], tf.Tensor]


class Chunk(NamedTuple):
  """One chunk of frames, as a term sees it."""
  index: tf.Tensor  # int32 scalar, 0 .. num_chunks - 1.
  start: tf.Tensor  # int32 scalar, the chunk's first frame.
  size: int  # Tc; the last chunk is zero-padded past T.
  logits: tf.Tensor  # [B, Tc, U+1, V], joint_fn's output.


class Term:
  """A loss of the joint's logits, reduced chunk by chunk.

  Subclasses set how many per-frame and per-example values `reduce_chunk`
  returns (the loop's TensorArrays and sums are built before it runs).
  """
  num_frame_values = 0
  num_example_values = 0

  def reduce_chunk(self, chunk: Chunk
                   ) -> Tuple[Sequence[tf.Tensor], Sequence[tf.Tensor]]:
    """(per-frame [B, Tc, U+1] values, per-example [B] values), float32."""
    raise NotImplementedError

  def output(self, frame_values: List[tf.Tensor],
             example_totals: List[tf.Tensor], vocab_size) -> tf.Tensor:
    """The term's [B] output.

    Args:
      frame_values: the per-frame values, stitched to [B, T, U+1].
      example_totals: the per-example values summed over the chunks.
      vocab_size: V, a scalar int32 tensor.
    """
    raise NotImplementedError

  def logits_gradient_fn(self, upstream: tf.Tensor,
                         split: Callable[[tf.Tensor], tf.Tensor]
                        ) -> Callable[[Chunk], tf.Tensor]:
    """Returns chunk -> float32 upstream-weighted d output / d chunk.logits.

    Called once per backward pass, after `output`: work over the whole
    lattice goes here, outside the loop; `split` maps a [B, T, ...] tensor
    to [num_chunks, B, Tc, ...] (zero-padded), to be indexed by chunk.index.
    """
    raise NotImplementedError


def check_time_chunk_size(time_chunk_size) -> int:
  """Returns time_chunk_size as an int; ValueError unless an integer >= 1."""
  if (isinstance(time_chunk_size, bool) or
      not isinstance(time_chunk_size, numbers.Integral) or
      time_chunk_size < 1):
    raise ValueError('time_chunk_size must be an integer >= 1, got '
                     f'{time_chunk_size!r}.')
  return int(time_chunk_size)


class _Layout:
  """Frame chunks of one batch: padding, slicing and stitching."""

  def __init__(self, encoder_out, predictor_out, time_chunk_size):
    self.size = time_chunk_size
    self.batch = tf.shape(encoder_out)[0]
    self.num_frames = tf.shape(encoder_out)[1]
    self.num_chunks = (self.num_frames + self.size - 1) // self.size
    self.padded_frames = self.num_chunks * self.size
    self.lattice_shape = tf.TensorShape(
        [encoder_out.shape[0], self.size, predictor_out.shape[1]])
    self.encoder_chunk_shape = tf.TensorShape(
        [encoder_out.shape[0], self.size, encoder_out.shape[2]])

  def pad(self, frames):
    """[B, T, ...] -> [B, num_chunks * Tc, ...], zeros (or False) past T."""
    padding = [[0, 0], [0, self.padded_frames - self.num_frames]]
    return tf.pad(frames, padding + [[0, 0]] * (frames.shape.rank - 2))

  def slice(self, padded_encoder, index):
    # tf.slice with a static size compiles to an XLA dynamic slice; a strided
    # slice with dynamic bounds would lose the chunk's size.
    return tf.slice(padded_encoder, [0, index * self.size, 0],
                    [-1, self.size, -1])

  def split(self, frames):
    """[B, T, ...] -> [num_chunks, B, Tc, ...]."""
    rank = frames.shape.rank
    shape = tf.concat([[self.batch, self.num_chunks, self.size],
                       tf.shape(frames)[2:]], 0)
    return tf.transpose(tf.reshape(self.pad(frames), shape),
                        [1, 0] + list(range(2, rank + 1)))

  def stitch(self, chunks):
    """[num_chunks, B, Tc, ...] -> [B, T, ...]."""
    rank = chunks.shape.rank
    merged = tf.transpose(chunks, [1, 0] + list(range(2, rank)))
    shape = tf.concat([[self.batch, self.padded_frames], tf.shape(chunks)[3:]],
                      0)
    return tf.reshape(merged, shape)[:, :self.num_frames]


def _run_joint(joint_fn, encoder_chunk, predictor_out):
  return joint_fn(encoder_chunk[:, :, tf.newaxis, :],
                  predictor_out[:, tf.newaxis, :, :])


def _forward(layout, joint_fn, terms, encoder_out, predictor_out):
  """One joint_fn call per chunk; returns the terms' outputs."""
  padded_encoder = layout.pad(encoder_out)
  arrays = [tf.TensorArray(tf.float32, size=layout.num_chunks,
                           element_shape=layout.lattice_shape)
            for term in terms for _ in range(term.num_frame_values)]
  totals = [tf.zeros([layout.batch])
            for term in terms for _ in range(term.num_example_values)]

  def body(index, vocab_size, arrays, totals):
    del vocab_size  # Each chunk's logits give it again.
    logits = _run_joint(joint_fn, layout.slice(padded_encoder, index),
                        predictor_out)
    chunk = Chunk(index, index * layout.size, layout.size, logits)
    frame_values, example_values = [], []
    for term in terms:
      frames, examples = term.reduce_chunk(chunk)
      frame_values += frames
      example_values += examples
    arrays = [array.write(index, value)
              for array, value in zip(arrays, frame_values)]
    totals = [total + value for total, value in zip(totals, example_values)]
    return index + 1, tf.shape(logits)[-1], arrays, totals

  # V is only known once joint_fn has run; the loop carries it out.
  _, vocab_size, arrays, totals = tf.while_loop(
      lambda index, *_: index < layout.num_chunks, body,
      (tf.constant(0), tf.constant(0), arrays, totals),
      maximum_iterations=layout.num_chunks)
  frame_values = [layout.stitch(array.stack()) for array in arrays]
  outputs = []
  for term in terms:
    outputs.append(term.output(frame_values[:term.num_frame_values],
                               totals[:term.num_example_values], vocab_size))
    frame_values = frame_values[term.num_frame_values:]
    totals = totals[term.num_example_values:]
  return outputs


def _backward(layout, joint_fn, gradient_fns, encoder_out, predictor_out,
              variables):
  """One joint_fn call and one tape.gradient per chunk.

  Returns:
    ([d encoder_out, d predictor_out], d variables), None for a variable
    that joint_fn does not read (e.g. the teacher's, read in the forward).
  """
  padded_encoder = layout.pad(encoder_out)
  # Which variables joint_fn reads is only known once the body is traced.
  unread = set()

  def body(index, encoder_grads, predictor_grad, variable_grads):
    encoder_chunk = layout.slice(padded_encoder, index)
    with tf.GradientTape() as tape:
      tape.watch([encoder_chunk, predictor_out])
      logits = _run_joint(joint_fn, encoder_chunk, predictor_out)
    chunk = Chunk(index, index * layout.size, layout.size, logits)
    logits_grad = tf.add_n([gradient_fn(chunk) for gradient_fn in gradient_fns])
    grads = tape.gradient(
        logits, [encoder_chunk, predictor_out] + variables,
        output_gradients=tf.cast(logits_grad, logits.dtype))
    encoder_grad, step_predictor_grad = [
        tf.zeros_like(x) if g is None else g
        for x, g in zip((encoder_chunk, predictor_out), grads[:2])]
    new_variable_grads = []
    for position, (grad, total) in enumerate(zip(grads[2:], variable_grads)):
      if grad is None:
        unread.add(position)
        new_variable_grads.append(total)
      else:
        new_variable_grads.append(total + tf.convert_to_tensor(grad))
    return (index + 1, encoder_grads.write(index, encoder_grad),
            predictor_grad + step_predictor_grad, new_variable_grads)

  _, encoder_grads, predictor_grad, variable_grads = tf.while_loop(
      lambda index, *_: index < layout.num_chunks, body,
      (tf.constant(0),
       tf.TensorArray(encoder_out.dtype, size=layout.num_chunks,
                      element_shape=layout.encoder_chunk_shape),
       tf.zeros_like(predictor_out),
       [tf.zeros_like(variable) for variable in variables]),
      maximum_iterations=layout.num_chunks)
  variable_grads = [None if position in unread else grad
                    for position, grad in enumerate(variable_grads)]
  return [layout.stitch(encoder_grads.stack()), predictor_grad], variable_grads


def fused_losses(encoder_out: tf.Tensor, predictor_out: tf.Tensor,
                 joint_fn: JointFn, terms: Sequence[Term],
                 time_chunk_size: int) -> List[tf.Tensor]:
  """Evaluates `terms` on joint_fn's logits, one chunk of frames at a time.

  Args:
    encoder_out: float [B, T, D_enc].
    predictor_out: float [B, U+1, D_pred].
    joint_fn: callable(encoder_chunk [B, Tc, 1, D_enc],
      predictor_out [B, 1, U+1, D_pred]) -> logits [B, Tc, U+1, V]; a pure
      function of its inputs and tf.Variables (no dropout: the backward pass
      calls it again and needs the same logits).
    terms: the losses; each chunk's logits are computed once for all of them.
    time_chunk_size: Tc, frames per joint_fn call.

  Returns:
    One [B] tensor per term, differentiable w.r.t. encoder_out,
    predictor_out and the variables joint_fn reads (others get None).
  """
  time_chunk_size = check_time_chunk_size(time_chunk_size)
  encoder_out = tf.convert_to_tensor(encoder_out)
  predictor_out = tf.convert_to_tensor(predictor_out)
  layout = _Layout(encoder_out, predictor_out, time_chunk_size)
  terms = list(terms)

  @tf.custom_gradient
  def evaluate(encoder_out, predictor_out):
    # Gradients come from grad_fn only; cut the inputs so that an eager tape
    # does not record the forward chunks (it still records the joint's
    # variable reads: the O(chunk) memory bound holds inside tf.function).
    encoder_out = tf.stop_gradient(encoder_out)
    predictor_out = tf.stop_gradient(predictor_out)
    outputs = _forward(layout, joint_fn, terms, encoder_out, predictor_out)

    def grad_fn(*upstreams, variables=None):
      gradient_fns = [
          term.logits_gradient_fn(
              tf.zeros_like(output) if upstream is None else
              tf.cast(upstream, tf.float32), layout.split)
          for term, output, upstream in zip(terms, outputs, upstreams)]
      input_grads, variable_grads = _backward(
          layout, joint_fn, gradient_fns, encoder_out, predictor_out,
          list(variables or []))
      # custom_gradient passes `variables` only when the forward read some.
      if variables is None:
        return input_grads
      return input_grads, variable_grads

    return outputs, grad_fn

  return list(evaluate(encoder_out, predictor_out))
