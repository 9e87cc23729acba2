"""Executing work on hosts: backends, strategies, stage pipeline, checks and git."""
