"""Evaluation metrics (offline reimplementations of official scripts)."""
