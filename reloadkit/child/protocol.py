"""The names both sides of the supervisor/child contract spell: one definition each.

Standard library only and import-free (it defines strings), so that the child's side can use
it at no cost. Two child modules cannot import it: :mod:`reloadkit.child.tracker` and
:mod:`reloadkit.child.warm_imports` (the warm parent's) are loaded by path into the user's interpreter, where the
package may not be importable. They keep a copy, and ``tests/unit/test_architecture.py``
fails when a copy and the definition here differ.
"""

from __future__ import annotations

__all__ = [
    "CONTRACT_VARIABLES",
    "ENVIRON_COPIES",
    "FIRST_FD",
    "GENERATION_VARIABLES",
    "RELOAD_KEY",
    "URL_VARIABLE",
    "WATCH_KEY",
]

#: The first inherited listening socket's fd (systemd's ``SD_LISTEN_FDS_START``).
FIRST_FD = 3
#: Variables of the fd contract; removed from a child once it has taken its sockets.
CONTRACT_VARIABLES = (
    "LISTEN_FDS",
    "LISTEN_PID",
    "LISTEN_FDNAMES",
    "LISTEN_FDS_FIRST_FD",
    "WERKZEUG_SERVER_FD",
    "WERKZEUG_RUN_MAIN",
)

#: reloadkit's own notify keys, beside systemd's READY/STATUS/STOPPING/EXTEND_TIMEOUT_USEC:
#: "watch this file too" (a path per line) and "restart me".
WATCH_KEY = "RELOADKIT_WATCH"
RELOAD_KEY = "RELOADKIT_RELOAD"

#: Where the live-reload script connects (set by the supervisor with ``--livereload``; the
#: middleware injects nothing where it is unset).
URL_VARIABLE = "RELOADKIT_LIVERELOAD_URL"

#: Variables whose value differs in each generation of the server (a module that reads one
#: when imported by a warm parent would keep the parent's value, not the generation's).
GENERATION_VARIABLES = (
    "LISTEN_PID",
    "RELOADKIT_PID",
    "RELOADKIT_GENERATION",
    "RELOADKIT_CHANGED",
    "RELOADKIT_BINDS_HELD",  # the inodes of the sockets this generation was given (bind adoption)
    "RELOADKIT_BINDS_LEARN",
)

#: Modules that copy the whole environment when imported (wsgiref's handlers, runserver's
#: request environ): left out of the installed-modules parent, held by the project
#: checkpoint, and the copy corrected in each generation (child/warm_imports.py: SNAPSHOTS).
ENVIRON_COPIES = ("wsgiref.handlers",)
