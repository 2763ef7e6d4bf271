"""Processes: spawn, stop, process trees, the terminal, output, the warm parent."""
