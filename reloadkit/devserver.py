"""The development server behind :func:`reloadkit.run_simple`: ``wsgiref`` on a socket that
is already listening (reloadkit's, or one of its own without the reloader).

Three ways to serve:

* one request at a time (the default);
* a thread per request (``threaded=True``);
* a forked process per request, at most ``processes`` at once (``processes=N``), as
  werkzeug's ``ForkingMixIn`` server does: each request sees the state the server had
  when it started, and a crash in one request cannot take the server down. While ``N``
  requests run, new connections wait in the listen queue.

A stop signal (``SIGTERM``, or ``SIGINT`` from Ctrl+C) stops accepting and lets the
requests in flight finish, so a reload fails no request; a second signal stops at once.
Forked request processes are killed with the server (``PR_SET_PDEATHSIG`` on Linux; a
kill on the way out everywhere), and they are in the child's process tree, which reloadkit
ends on every restart anyway.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import functools
import os
import selectors
import signal
import socket
import socketserver
import sys
import threading
import warnings
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any
from wsgiref.simple_server import ServerHandler, WSGIRequestHandler, WSGIServer

from reloadkit.child.notify import notify_ready
from reloadkit.child.sockets import sockets
from reloadkit.errors import NoSocketsError

if TYPE_CHECKING:
    import ssl

    from _typeshed.wsgi import WSGIApplication

__all__ = ["RequestHandler", "bind_spec", "serve"]

_PR_SET_PDEATHSIG = 1
_POLL_SECONDS = 0.5


# --- request handling --------------------------------------------------------------------


class _ServerHandler(ServerHandler):
    passthrough_errors = False

    def handle_error(self) -> None:
        """Log and answer 500, as wsgiref does; or let it propagate (``passthrough_errors``)."""
        if self.passthrough_errors:
            raise  # the application's exception, being handled by wsgiref's caller
        super().handle_error()


class RequestHandler(WSGIRequestHandler):
    """wsgiref's handler, telling the application the truth in ``wsgi.multithread`` and
    ``wsgi.multiprocess`` (wsgiref always says single-threaded)."""

    server: _DevServer

    def handle(self) -> None:
        self.raw_requestline = self.rfile.readline(65537)
        self.server.request_started(self.request)
        if len(self.raw_requestline) > 65536:
            self.requestline = ""
            self.request_version = ""
            self.command = ""
            self.send_error(414)
            return
        if not self.parse_request():
            return
        handler = _ServerHandler(
            self.rfile,
            self.wfile,  # type: ignore[arg-type]
            self.get_stderr(),
            self.get_environ(),
            multithread=self.server.multithread,
            multiprocess=self.server.multiprocess,
        )
        handler.passthrough_errors = self.server.passthrough_errors
        handler.request_handler = self  # type: ignore[attr-defined] # wsgiref's back pointer for logging
        handler.run(self.server.get_app())  # type: ignore[arg-type]


# --- the servers -------------------------------------------------------------------------


class _DevServer(WSGIServer):
    """wsgiref's server on a socket that is already listening (ours or reloadkit's).

    Its own loop instead of ``serve_forever``: a pipe written by the signal handler wakes
    it, so a stop is seen at once, and the listening socket is non-blocking (it is shared
    with the supervisor and, with ``--overlap``, with another generation that may take a
    connection first).
    """

    multithread = False

    def request_started(self, request: Any) -> None:
        """The request line has arrived: from now on a stop waits for this request."""
    multiprocess = False

    def __init__(
        self,
        listener: socket.socket,
        app: WSGIApplication,
        handler_class: type[WSGIRequestHandler] | None = None,
        *,
        passthrough_errors: bool = False,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        socketserver.BaseServer.__init__(self, listener.getsockname(), handler_class or RequestHandler)
        self.socket = listener
        self.address_family = listener.family
        self.server_name, self.server_port = _name_and_port(listener)
        self.passthrough_errors = passthrough_errors
        self.ssl_context = ssl_context
        self.setup_environ()
        if ssl_context is not None:
            self.base_environ["HTTPS"] = "on"
        self.set_app(app)
        self.stopping = False
        self.selector = selectors.DefaultSelector()
        self._wake_read, self._wake_write = os.pipe()
        os.set_blocking(self._wake_read, False)
        os.set_blocking(self._wake_write, False)
        self.selector.register(self._wake_read, selectors.EVENT_READ, self._drain_wake)
        self._listening = False

    # stopping

    def request_stop(self) -> None:
        """Stop accepting; what was accepted is finished. Safe in a signal handler."""
        self.stopping = True
        with contextlib.suppress(OSError):
            os.write(self._wake_write, b"\0")

    def _drain_wake(self) -> None:
        with contextlib.suppress(OSError):
            while os.read(self._wake_read, 512):
                pass

    # the loop

    def serve(self) -> None:
        """Serve until :meth:`request_stop`, then wait for the requests in flight."""
        self.socket.setblocking(False)
        while not self.stopping:
            self._listen(self.accepting())
            for key, _events in self.selector.select(_POLL_SECONDS):
                if self.stopping and key.data == self._accept:
                    continue
                key.data()
            self.service_actions()
        self._listen(False)
        self.finish_in_flight()

    def _listen(self, on: bool) -> None:
        if on and not self._listening:
            self.selector.register(self.socket, selectors.EVENT_READ, self._accept)
        elif not on and self._listening:
            self.selector.unregister(self.socket)
        self._listening = on

    def accepting(self) -> bool:
        """False while no more requests may start (at the process limit)."""
        return True

    def get_request(self) -> tuple[socket.socket, Any]:
        conn, address = self.socket.accept()
        conn.setblocking(True)  # BSD hands down the listener's O_NONBLOCK
        if not isinstance(address, tuple) or not address:
            address = ("unix", 0)  # wsgiref wants a (host, port) pair for REMOTE_ADDR
        if self.ssl_context is not None:
            conn = self.ssl_context.wrap_socket(conn, server_side=True, do_handshake_on_connect=False)
        return conn, address

    def _accept(self) -> None:
        try:
            request, client_address = self.get_request()
        except (BlockingIOError, InterruptedError):
            return  # another process took it
        except OSError as exc:
            if exc.errno not in (errno.ECONNABORTED, errno.EPROTO, errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                raise
            return
        try:
            self.process_request(request, client_address)
        except Exception:  # noqa: BLE001 - as socketserver does: log it, serve on
            self.handle_error(request, client_address)
            self.shutdown_request(request)
        except BaseException:
            self.shutdown_request(request)
            raise

    def finish_request(self, request: Any, client_address: Any) -> None:
        if self.ssl_context is not None:
            try:
                request.do_handshake()
            except OSError:
                return  # a client that does not speak TLS, or went away
        super().finish_request(request, client_address)

    def finish_in_flight(self) -> None:
        """Wait for the requests that run beside the loop (none here)."""

    def abort(self) -> None:
        """Stop now: the second signal."""

    def server_close(self) -> None:
        """Close what the server made; the listening socket belongs to whoever made it."""
        self.selector.close()
        for fd in (self._wake_read, self._wake_write):
            with contextlib.suppress(OSError):
                os.close(fd)


class _ThreadingDevServer(_DevServer):
    """A thread per request; a stop waits for them."""

    multithread = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._threads: set[threading.Thread] = set()
        self._waiting: set[socket.socket] = set()  # accepted, no request line yet
        self._lock = threading.Lock()

    def request_started(self, request: Any) -> None:
        with self._lock:
            self._waiting.discard(request)

    def process_request(self, request: Any, client_address: Any) -> None:
        thread = threading.Thread(
            target=self._run_request, args=(request, client_address), name="reloadkit-request", daemon=True
        )
        with self._lock:
            self._threads.add(thread)
            self._waiting.add(request)
        thread.start()

    def _run_request(self, request: Any, client_address: Any) -> None:
        try:
            self.finish_request(request, client_address)
        except Exception:  # noqa: BLE001 - as socketserver does: log it, serve on
            self.handle_error(request, client_address)
        finally:
            self.shutdown_request(request)
            with self._lock:
                self._threads.discard(threading.current_thread())

    def finish_in_flight(self) -> None:
        # A connection that never sent a request (a browser's preconnect, an idle client)
        # must not hold the stop up until the supervisor's timeout: end its read.
        with self._lock:
            waiting, self._waiting = list(self._waiting), set()
        for request in waiting:
            with contextlib.suppress(OSError):
                request.shutdown(socket.SHUT_RD)
        while True:
            with self._lock:
                threads = list(self._threads)
            if not threads:
                return
            for thread in threads:
                thread.join()


class _ForkingDevServer(_DevServer):
    """A forked process per request, at most ``max_children`` at once; a stop waits for them.

    Each request process holds the write end of a pipe; its end of file tells the server
    the process is gone (no ``waitpid(-1)``, which would reap the application's own
    subprocesses).
    """

    multiprocess = True

    def __init__(self, *args: Any, max_children: int = 1, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.max_children = max_children
        self.children: dict[int, int] = {}  # pid -> read end of its life pipe

    def accepting(self) -> bool:
        return len(self.children) < self.max_children

    def process_request(self, request: Any, client_address: Any) -> None:
        life_read, life_write = os.pipe()
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(AttributeError, OSError, ValueError):
                stream.flush()
        try:
            with warnings.catch_warnings():
                # 3.12+ warns about fork() with threads running; the request process only
                # handles its request and leaves with os._exit.
                warnings.simplefilter("ignore", DeprecationWarning)
                pid = os.fork()
        except BaseException:
            os.close(life_read)
            os.close(life_write)
            raise
        if pid == 0:  # pragma: no cover - the request process
            os.close(life_read)
            self._run_request(request, client_address)
        os.close(life_write)
        self.children[pid] = life_read
        self.selector.register(life_read, selectors.EVENT_READ, functools.partial(self._reap, pid))
        self.close_request(request)
        self._listen(self.accepting())

    def _run_request(self, request: Any, client_address: Any) -> None:  # pragma: no cover - forked
        status = 1
        try:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.default_int_handler)
            _die_with_parent()
            self.selector.close()
            for fd in (self._wake_read, self._wake_write, *self.children.values()):
                with contextlib.suppress(OSError):
                    os.close(fd)
            self.socket.close()  # our copy only: the supervisor keeps the listening socket
            self.finish_request(request, client_address)
            status = 0
        except BaseException:  # noqa: BLE001 - report, then leave this process
            with contextlib.suppress(BaseException):
                self.handle_error(request, client_address)
        finally:
            with contextlib.suppress(BaseException):
                self.shutdown_request(request)
            for stream in (sys.stdout, sys.stderr):
                with contextlib.suppress(BaseException):
                    stream.flush()
            os._exit(status)

    def _reap(self, pid: int) -> None:
        life_read = self.children.pop(pid, None)
        if life_read is None:
            return
        self.selector.unregister(life_read)
        os.close(life_read)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)

    def finish_in_flight(self) -> None:
        while self.children:
            for key, _events in self.selector.select(_POLL_SECONDS):
                key.data()

    def abort(self) -> None:
        for pid in list(self.children):
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
            self._reap(pid)


# --- helpers -----------------------------------------------------------------------------


def _die_with_parent() -> None:  # pragma: no cover - runs in forked request processes
    """Linux: a SIGKILL to this process when the server dies, however it dies."""
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)  # find_library would run /sbin/ldconfig
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def _name_and_port(listener: socket.socket) -> tuple[str, int]:
    address = listener.getsockname()
    if isinstance(address, tuple) and len(address) >= 2:
        return str(address[0]), int(address[1])
    return "localhost", 0


def bind_spec(hostname: str, port: int) -> str:
    """werkzeug's ``(hostname, port)`` as a ``--bind`` spec (``unix://PATH`` hosts too)."""
    if hostname.startswith("unix://"):
        return f"unix:{hostname[len('unix://'):]}"
    if ":" in hostname and not hostname.startswith("["):
        return f"[{hostname}]:{port}"
    return f"{hostname or '127.0.0.1'}:{port}"


def _bind_own(hostname: str, port: int) -> socket.socket:
    """Without a supervisor (``use_reloader=False``): bind the address ourselves."""
    if hostname.startswith("unix://"):
        path = hostname[len("unix://") :]
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.bind(path)
        sock.listen(socket.SOMAXCONN)
        return sock
    host = hostname.strip("[]") or "127.0.0.1"
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    return socket.create_server((host, port), family=family, backlog=socket.SOMAXCONN)


def _listener(hostname: str, port: int) -> tuple[socket.socket, bool]:
    """The first socket reloadkit passed this process, or one of our own; True if ours."""
    try:
        return sockets()[0], False
    except NoSocketsError:
        if os.environ.get("LISTEN_FDS") is not None:
            raise  # sockets for another process: binding the same address would fail anyway
        return _bind_own(hostname, port), True


@contextlib.contextmanager
def _stop_on_signals(server: _DevServer) -> Iterator[None]:
    """SIGTERM/SIGINT: the first stops gracefully, the second raises KeyboardInterrupt."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(_number: int, _frame: object) -> None:
        if server.stopping:
            raise KeyboardInterrupt
        server.request_stop()

    previous = {number: signal.signal(number, handler) for number in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for number, old in previous.items():
            signal.signal(number, old if old is not None else signal.SIG_DFL)


def serve(
    hostname: str,
    port: int,
    app: WSGIApplication,
    *,
    threaded: bool = False,
    processes: int = 1,
    request_handler: type[WSGIRequestHandler] | None = None,
    passthrough_errors: bool = False,
    ssl_context: ssl.SSLContext | None = None,
) -> None:
    """Serve ``app`` until a stop signal, on reloadkit's socket if there is one."""
    listener, own = _listener(hostname, port)
    options: dict[str, Any] = {"passthrough_errors": passthrough_errors, "ssl_context": ssl_context}
    server: _DevServer
    if processes > 1:
        server = _ForkingDevServer(listener, app, request_handler, max_children=processes, **options)
    elif threaded:
        server = _ThreadingDevServer(listener, app, request_handler, **options)
    else:
        server = _DevServer(listener, app, request_handler, **options)
    try:
        with _stop_on_signals(server):
            if own:
                scheme = "https" if ssl_context is not None else "http"
                shown = f"{scheme}://{bind_spec(server.server_name, server.server_port)}" if listener.family != socket.AF_UNIX else hostname
                sys.stderr.write(f" * Serving on {shown} (Ctrl+C to quit)\n")
            notify_ready()
            try:
                server.serve()
            except KeyboardInterrupt:
                server.abort()
    finally:
        server.server_close()
        if own:
            listener.close()
