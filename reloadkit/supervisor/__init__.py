"""The supervisor: decides when generations start and stop, and wires the parts."""
