"""Sockets and hand-over: moving an address between generations, readiness, drain, relays."""
