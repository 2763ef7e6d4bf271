"""``run_simple``: a small WSGI development server on the standard library, under the reloader.

For programs without a framework server: :func:`run_simple` serves a WSGI application with
``wsgiref`` on the socket reloadkit holds (:mod:`reloadkit.devserver`), and restarts it when
its code changes, taking werkzeug's ``run_simple`` arguments and every option of
``reloadkit run``. This module turns werkzeug's arguments into an application (static files,
the debugger) and a TLS context, and hands the rest to :func:`reloadkit.run_with_reloader`.
"""

from __future__ import annotations

import functools
import mimetypes
import os
from collections.abc import Callable, Iterable, Mapping
from email.utils import formatdate
from typing import TYPE_CHECKING

from reloadkit.devserver import bind_spec, serve
from reloadkit.errors import ConfigError
from reloadkit.reloader import run_with_reloader, under_supervisor

if TYPE_CHECKING:
    import ssl
    from wsgiref.simple_server import WSGIRequestHandler

    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment
    from typing_extensions import Unpack

    from reloadkit.config.options import RunOptions

__all__ = ["bind_spec", "run_simple"]


def make_ssl_context(value: ssl.SSLContext | tuple[str, str] | str | None) -> ssl.SSLContext | None:
    """werkzeug's ``ssl_context``: a context, a ``(cert_file, key_file)`` pair, or ``"adhoc"``."""
    if value is None:
        return None
    import ssl

    if isinstance(value, ssl.SSLContext):
        return value
    if isinstance(value, tuple) and len(value) == 2:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        try:
            context.load_cert_chain(value[0], value[1])
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(f"cannot load the certificate {value[0]} / {value[1]}: {exc}") from None
        return context
    if value == "adhoc":
        try:
            from werkzeug.serving import generate_adhoc_ssl_context
        except ImportError:
            raise ConfigError('ssl_context="adhoc" needs werkzeug and cryptography installed') from None
        return generate_adhoc_ssl_context()
    raise ConfigError("ssl_context must be an ssl.SSLContext, a (cert_file, key_file) pair or 'adhoc'")


def _static_app(app: WSGIApplication, exports: Mapping[str, str | tuple[str, str]]) -> WSGIApplication:
    """werkzeug's ``static_files``: URL prefix → directory or file; ``(package, path)`` too."""
    mounts: list[tuple[str, str]] = []
    for prefix, target in exports.items():
        if isinstance(target, tuple):
            import importlib

            package = importlib.import_module(target[0])
            base = os.path.dirname(os.path.abspath(package.__file__ or ""))
            target = os.path.join(base, target[1])
        mounts.append(("/" + prefix.strip("/"), os.path.abspath(target)))
    mounts.sort(key=lambda mount: len(mount[0]), reverse=True)

    def find(path_info: str) -> str | None:
        for prefix, target in mounts:
            if path_info != prefix and not path_info.startswith(prefix.rstrip("/") + "/"):
                continue
            rest = path_info[len(prefix) :].strip("/")
            parts = [part for part in rest.split("/") if part not in ("", ".")]
            if ".." in parts or any(os.sep in part or (os.altsep and os.altsep in part) for part in parts):
                return None
            candidate = os.path.join(target, *parts) if parts else target
            return candidate if os.path.isfile(candidate) else None
        return None

    def static(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        path = find(environ.get("PATH_INFO", "") or "/")
        if path is None or environ.get("REQUEST_METHOD") not in ("GET", "HEAD"):
            return app(environ, start_response)
        with open(path, "rb") as handle:
            body = handle.read()
        kind = mimetypes.guess_type(path)[0] or "application/octet-stream"
        start_response(
            "200 OK",
            [
                ("Content-Type", kind),
                ("Content-Length", str(len(body))),
                ("Last-Modified", formatdate(os.path.getmtime(path), usegmt=True)),
            ],
        )
        return [] if environ.get("REQUEST_METHOD") == "HEAD" else [body]

    return static


def _wrap(
    application: WSGIApplication,
    *,
    use_debugger: bool,
    use_evalex: bool,
    static_files: Mapping[str, str | tuple[str, str]] | None,
) -> WSGIApplication:
    app = application
    if static_files:
        app = _static_app(app, static_files)
    if use_debugger:
        try:
            from werkzeug.debug import DebuggedApplication
        except ImportError:
            raise ConfigError("use_debugger needs werkzeug installed (its debugger is used)") from None
        app = DebuggedApplication(app, evalex=use_evalex)
    return app


def run_simple(
    hostname: str,
    port: int,
    application: WSGIApplication,
    *,
    use_reloader: bool = True,
    use_debugger: bool = False,
    use_evalex: bool = True,
    extra_files: Iterable[str] | None = None,
    exclude_patterns: Iterable[str] | None = None,
    reloader_interval: float = 1.0,
    reloader_type: str = "auto",
    threaded: bool = False,
    processes: int = 1,
    request_handler: type[WSGIRequestHandler] | None = None,
    static_files: Mapping[str, str | tuple[str, str]] | None = None,
    passthrough_errors: bool = False,
    ssl_context: ssl.SSLContext | tuple[str, str] | str | None = None,
    **options: Unpack[RunOptions],
) -> None:
    """Serve a WSGI application for development, restarted when its code changes.

    werkzeug's ``run_simple`` arguments, on the standard library (``wsgiref``): one request
    at a time, a thread per request (``threaded=True``) or a forked process per request, at
    most ``processes`` at once. With ``use_reloader`` (the default) the calling process
    becomes the supervisor, binds ``hostname:port`` (or ``bind``: any ``--bind`` specs; the
    first is served) and runs this program again as the child that serves. Every option of
    ``reloadkit run`` is a keyword, as for :func:`reloadkit.run_with_reloader` (``warm``,
    ``poll``, ``livereload``, ...). Without the reloader, it serves here on its own socket
    until Ctrl+C, or on reloadkit's socket when started by ``reloadkit run``.

    ``use_debugger``/``use_evalex`` wrap the application in werkzeug's debugger (werkzeug must
    be installed); ``static_files`` maps URL prefixes to directories or files;
    ``passthrough_errors`` lets application errors propagate instead of answering 500;
    ``ssl_context`` is an ``ssl.SSLContext``, a ``(cert_file, key_file)`` pair or ``"adhoc"``
    (werkzeug's). ``request_handler`` is a subclass of ``wsgiref``'s ``WSGIRequestHandler``
    (werkzeug's handler class cannot be used here).
    """
    if threaded and processes > 1:
        raise ValueError("cannot have a multi-thread and multi-process server")
    if processes < 1:
        raise ValueError("processes must be at least 1")
    if processes > 1 and not hasattr(os, "fork"):
        raise ValueError("processes > 1 needs os.fork(), which this platform does not have")
    context = make_ssl_context(ssl_context)
    app = _wrap(application, use_debugger=use_debugger, use_evalex=use_evalex, static_files=static_files)
    target: Callable[[], None] = functools.partial(
        serve,
        hostname,
        port,
        app,
        threaded=threaded,
        processes=processes,
        request_handler=request_handler,
        passthrough_errors=passthrough_errors,
        ssl_context=context,
    )
    if options and not under_supervisor():  # a misspelt keyword, named as ours, with or without the reloader
        from reloadkit.config.options import from_keywords

        from_keywords(options, function="run_simple")
    if not use_reloader:
        target()
        return
    if options.get("bind") is None:
        options["bind"] = bind_spec(hostname, port)
    run_with_reloader(
        target,
        extra_files=extra_files,
        exclude_patterns=exclude_patterns,
        interval=reloader_interval,
        reloader_type=reloader_type,
        **options,
    )
