r"""TensorFlow's `saved_model_cli`, with the ops our SavedModels use.

  python -m asr_kd.bin.saved_model_cli run --dir=EXPORT_DIR --tag_set=serve \
      --signature_def=transcribe_encoded --inputs='audio=files.npy'

Exported models hold TensorFlow Text's SentencePiece ops and
tensorflow-io's audio decoders (the `transcribe_encoded` signature), which
the stock `saved_model_cli` does not register. This registers both, then
runs it with the same commands and flags (`show`, `run`, ...;
docs/export.md).
"""

import sys

import tensorflow_text  # pylint: disable=unused-import  (SentencePiece ops)
from tensorflow.python.tools import saved_model_cli

from asr_kd.export import encoded_audio


def main() -> None:
  encoded_audio.register_ops()
  sys.argv[0] = 'saved_model_cli'
  saved_model_cli.main()


if __name__ == '__main__':
  main()
