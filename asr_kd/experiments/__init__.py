"""The comparison of `make experiments`: data split, results, report and figure."""
