"""A package run with ``python -m pkg``."""
