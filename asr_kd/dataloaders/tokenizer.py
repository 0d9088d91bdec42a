"""SentencePiece tokenizer that lives in the TF graph (tf.data, SavedModel).

The model is trained by `tfrecords_tools.train_tokenizer`; id 0 is the RNN-T
blank (SentencePiece's pad piece '<blank>', never produced for text), id 1 is
'<unk>'. Text is normalized with `asr_kd.text.normalization.normalize` before
tokenization, so `detokenize(tokenize(x)) == normalize(x)`.
"""

from typing import List, Optional, Union

import sentencepiece as spm
import tensorflow as tf
import tensorflow_text as tf_text

from asr_kd.text import normalization

BLANK_ID = 0
BLANK_PIECE = '<blank>'
UNK_ID = 1


class Tokenizer(tf.Module):
  """Tokenizes and detokenizes with a SentencePiece model, in graph ops.

  Attributes:
    model_bytes: the serialized SentencePiece model (for export).
    vocab_size: number of ids, blank included.
    blank_id: id of the RNN-T blank (0).
    id_to_piece: list mapping id -> piece string.
  """

  def __init__(self,
               model_path: Optional[str] = None,
               model_bytes: Optional[bytes] = None,
               name: str = 'tokenizer'):
    """Loads a model from a file or from its serialized bytes.

    Args:
      model_path: path of a `.model` file (any tf.io.gfile path).
      model_bytes: the serialized model; exactly one of the two is given.
      name: tf.Module name.

    Raises:
      ValueError: on a bad argument combination or a model whose id 0 is not
        the blank piece.
    """
    super().__init__(name=name)
    if (model_path is None) == (model_bytes is None):
      raise ValueError('Give exactly one of model_path or model_bytes.')
    if model_path is not None:
      if not tf.io.gfile.exists(model_path):
        raise ValueError(f'SentencePiece model not found: {model_path}')
      with tf.io.gfile.GFile(model_path, 'rb') as model_file:
        model_bytes = model_file.read()
    self.model_bytes = bytes(model_bytes)
    processor = spm.SentencePieceProcessor(model_proto=self.model_bytes)
    self.vocab_size = processor.get_piece_size()
    self.id_to_piece: List[str] = [
        processor.id_to_piece(i) for i in range(self.vocab_size)]
    if self.id_to_piece[BLANK_ID] != BLANK_PIECE:
      raise ValueError(
          f'Id {BLANK_ID} of the SentencePiece model is '
          f'{self.id_to_piece[BLANK_ID]!r}, expected {BLANK_PIECE!r}; train it '
          'with tfrecords_tools.train_tokenizer.')
    self.blank_id = BLANK_ID
    self._sentencepiece = tf_text.SentencepieceTokenizer(
        model=self.model_bytes, out_type=tf.int32)

  def tokenize(self, text: tf.Tensor,
               normalize: bool = True) -> Union[tf.Tensor, tf.RaggedTensor]:
    """Maps text to token ids.

    Args:
      text: tf.string scalar or [B].
      normalize: apply the project text normalization first (idempotent).

    Returns:
      int32 [U] for a scalar, int32 RaggedTensor [B, (U)] for a batch.
    """
    text = tf.convert_to_tensor(text, tf.string)
    if normalize:
      text = normalization.normalize(text)
    return self._sentencepiece.tokenize(text)

  def detokenize(self, ids: Union[tf.Tensor, tf.RaggedTensor]) -> tf.Tensor:
    """Maps token ids back to text, skipping blank / padding (id 0).

    Args:
      ids: int tensor [U], [B, U] (0-padded) or RaggedTensor [B, (U)].

    Returns:
      tf.string scalar for [U] input, [B] for batched input.
    """
    if isinstance(ids, tf.RaggedTensor):
      ids = tf.cast(ids, tf.int32)
      ids = tf.ragged.boolean_mask(ids, tf.not_equal(ids, self.blank_id))
    else:
      ids = tf.cast(tf.convert_to_tensor(ids), tf.int32)
      keep = tf.not_equal(ids, self.blank_id)
      if ids.shape.rank == 1:
        ids = tf.boolean_mask(ids, keep)
      else:
        ids = tf.ragged.boolean_mask(ids, keep)
    return self._sentencepiece.detokenize(ids)
