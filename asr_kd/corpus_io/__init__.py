"""Reading speech corpora and writing TFRecord shards with Apache Beam.

Shared by the corpus converter (tfrecords_tools.convert) and the library's
own Beam jobs and binaries (pseudo-labeling, evaluation on manifests).
"""
