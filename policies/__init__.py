"""Training, evaluation, export and classical baselines."""
