"""Hard targets: a teacher's beam-search hypotheses written as TFRecords."""
