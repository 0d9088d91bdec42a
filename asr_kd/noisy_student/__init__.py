"""Noisy Student Training: generations of pseudo-labeling and student training."""
