"""Watching files: backends behind one interface, filters, ignore files, mounts, debounce."""
