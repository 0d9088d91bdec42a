"""Restoring trained models and running them on audio (evaluate, transcribe)."""
