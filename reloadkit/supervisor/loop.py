"""The event loop: turns what happens into the machine's events and performs its actions.

Everything arrives through file descriptors watched by one ``selectors`` loop on the main
thread: signals through ``signal.set_wakeup_fd`` (the handlers themselves do nothing),
file changes through the watcher's fd, readiness through the notify socket. Each becomes an
event for :class:`~reloadkit.supervisor.machine.Machine`, which alone decides; this module
only performs its actions (spawn, signal, drain, hand the address over, tell the pages), so
there are no races between handlers.
"""

from __future__ import annotations

import contextlib
import functools
import os
import secrets
import select
import selectors
import signal
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from reloadkit.browser.errorpage import Browser
from reloadkit.browser.tracebacks import load_failure
from reloadkit.child.adopt import Address
from reloadkit.child.protocol import CONTRACT_VARIABLES, RELOAD_KEY, WATCH_KEY
from reloadkit.child.tracker import MODULE_KEY
from reloadkit.config.envfiles import EnvFiles
from reloadkit.config.settings import Config
from reloadkit.errors import ConfigError, SpawnError
from reloadkit.net.adoption import AdoptService, held_address
from reloadkit.net.bindcheck import BindCheck
from reloadkit.net.binding import Listener, adopt_activation, contract_environment, open_listeners
from reloadkit.net.drain import Drain
from reloadkit.net.handover import Handover, Succession
from reloadkit.net.kept import KeepAlive
from reloadkit.net.notifications import NotifyListener, NotifyMessage
from reloadkit.net.readiness import HttpProbe, Probe, Readiness, open_http_probe, open_probe
from reloadkit.net.takeover import exit_kind
from reloadkit.net.wrappers import WrapperCheck, socket_inodes
from reloadkit.proc import process
from reloadkit.proc.checkpoint import WarmParents
from reloadkit.proc.childenv import HOOK_DIR, child_environment, drop_stale_bytecode
from reloadkit.proc.output import StderrTees
from reloadkit.proc.process import Child, Guardian
from reloadkit.proc.terminal import Terminal
from reloadkit.proc.warmplan import warm_unsupported
from reloadkit.supervisor.adopting import Adopter
from reloadkit.supervisor.children import Children
from reloadkit.supervisor.events import (
    Action,
    AppBroken,
    Begin,
    Changed,
    Drained,
    DrainNow,
    Event,
    Exited,
    Fail,
    Finish,
    KillTree,
    Log,
    LookAhead,
    PagesDown,
    PagesReady,
    Ready,
    RestartAsked,
    RestoreTerminal,
    Shutdown,
    Signal,
    Spawned,
    SpawnFailed,
    Start,
    StepDrain,
    Stop,
    SwitchTo,
    Tick,
    WarmFailed,
)
from reloadkit.supervisor.machine import Machine
from reloadkit.supervisor.policy import speaks_restart_protocol
from reloadkit.supervisor.state import rules_for
from reloadkit.watch.base import Watcher
from reloadkit.watch.factory import create_watcher
from reloadkit.watch.filters import FilterRules
from reloadkit.watch.ignorefiles import IgnoreFiles

__all__ = ["HOOK_DIR", "Supervisor", "child_environment", "drop_stale_bytecode", "supervise"]

_DRAIN_LIMIT = 1.0  # at most this much of the child's running time waiting for no request in flight
_HANDLED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGCHLD)


class Supervisor:
    """Runs generations of the child on the held sockets until told to stop.

    The decisions are :class:`~reloadkit.supervisor.machine.Machine`'s; this class turns what
    happens (signals, file changes, notify messages, exits, timers) into its events and
    performs the actions it returns.
    """

    def __init__(
        self,
        config: Config,
        listeners: Sequence[Listener] = (),
        *,
        environ: Mapping[str, str] | None = None,
        log: Callable[[str], None] | None = None,
        env_files: EnvFiles | None = None,
        restart_protocol: bool = False,
    ) -> None:
        self.config = config
        self.restart_protocol = restart_protocol  # run_with_reloader's children: status 3 is "restart me"
        self.env_files = env_files or EnvFiles(config.env_files, config.cwd)
        self.listeners = list(listeners)
        self.environ = dict(os.environ if environ is None else environ)
        self._write = log or _stderr_line
        self.cookie = secrets.token_hex(8)
        self.machine = Machine(rules_for(config, drain=bool(self.listeners)), self, time.monotonic)
        self.children = Children(self._our_helpers)
        self.drains: dict[int, Drain] = {}
        self.readiness = Readiness(config.effective_ready_after, timer_beside_probes=config.ready_after is not None)
        self._said: set[str] = set()  # messages said once
        self.watcher: Watcher | None = None
        self.notifier: NotifyListener | None = None
        self.guardian: Guardian | None = None
        self.warm: WarmParents | None = None
        self.wrapper_check: WrapperCheck | None = None
        self.terminal = Terminal()
        self.selector = selectors.DefaultSelector()
        self.tees = StderrTees(self.selector, self.children.alive, self._on_stderr_error)
        self.browser: Browser | None = None
        self.handover: Handover | None = None
        self.keepalive: KeepAlive | None = None
        self._killed: set[int] = set()  # generations killed by us: their connections close
        self.adopter: Adopter | None = None
        self.bind_check = BindCheck(config.command)
        self._bind_failed: str | None = None  # why the generation that just exited failed, if it could not bind
        self.exit_code: int | None = None
        self._spawn_error: SpawnError | None = None
        self._signal_read = -1
        self._done = False
        self._performers: dict[type[Action], Callable[[Any], object]] = {
            Log: self._log,
            Start: self._perform_start,
            Fail: self._fail,
            Stop: self._perform_stop,
            StepDrain: self._step_drain,
            DrainNow: self._drain_now,
            Signal: lambda action: self._child(action.pid).signal(action.number),
            KillTree: self._kill_tree,
            SwitchTo: lambda action: self._handover.switch_to(action.pid),
            PagesReady: lambda action: self._browser.ready(action.generation),
            PagesDown: lambda action: self._browser.down(action.code, action.tail, error=action.error,
                                                         bind_failed=self._bind_failed),
            RestoreTerminal: lambda _action: self.terminal.restore(),
            Finish: self._finish,
            WarmFailed: self._warm_failed,
            LookAhead: self._look_ahead,
        }

    # --- logging --------------------------------------------------------------------------

    def info(self, message: str) -> None:
        if self.config.verbosity >= 0:
            self._write(message)

    def debug(self, message: str) -> None:
        if self.config.verbosity > 0:
            self._write(message)

    def warn(self, message: str) -> None:
        self._write(message)

    # --- what the machine may ask (Facts) ---------------------------------------------------

    def on_the_address(self, pid: int) -> bool:
        return self.handover is not None and self.handover.on_the_address(pid)

    def changes_unread(self) -> bool:
        """Changes not read yet (the loop was busy): they belong to the batch that is due."""
        return self.watcher is not None and bool(select.select([self.watcher.fileno()], [], [], 0)[0])

    # --- set-up and the loop --------------------------------------------------------------

    def run(self) -> int:
        """Serve until SIGINT/SIGTERM (or, with ``reload=False``, until the child exits)."""
        with contextlib.ExitStack() as stack:
            stack.enter_context(self._signals())
            subreaper = process.become_subreaper()
            unix_files = [
                (name, listener.unix_inode)
                for listener in self.listeners
                for name in (listener.unix_path, listener.bound_path)
                if name is not None and listener.unix_inode is not None
            ]
            self.guardian = Guardian(self.cookie, unix_files)
            stack.callback(self.guardian.close)
            self.handover = Handover(self.listeners, self.selector, self.warn, self.debug, self.guardian.add_unix_file)
            stack.callback(self.handover.close)
            handover = self.handover
            self.keepalive = KeepAlive(handover.successions, self.selector, self.debug)
            stack.callback(self.keepalive.close)
            self.browser = stack.enter_context(Browser(
                self.config, self.selector, handover.successions, info=self.info, debug=self.debug,
                relay=lambda succession, conn, data: handover.relay(succession, conn, data, "held while down, to")))
            self.adopter = self._open_adopter(stack)
            self.notifier = stack.enter_context(NotifyListener())
            self.selector.register(self.notifier, selectors.EVENT_READ, self._on_notify)
            self.warm = stack.enter_context(WarmParents.for_config(self.config, self.selector, self.environ, self.info, self.debug,
                                                                  unsupported=warm_unsupported(subreaper=subreaper)))
            if self.config.reload:
                self.watcher = stack.enter_context(
                    _make_watcher(self.config, self.env_files.paths, self.warn, self.browser.watch_patterns))
                self.selector.register(self.watcher.fileno(), selectors.EVENT_READ, self._on_watch)
            stack.callback(self._end_everything)
            stack.callback(self.readiness.close)
            for listener in self.listeners:
                self.info(f"listening on {listener.display()} (fd {self._fd_of(listener)})")
            if self.config.config_file:
                self.debug(f"settings from [tool.reloadkit] in {self.config.config_file}")
            if self.watcher is not None:
                self.debug(f"watching with {self.watcher.backend}: {', '.join(self.config.watch_roots) or '(imports only)'}")
            self._feed(Begin())
            while not self._done:
                timeout = self._timeout()
                for key, _events in self.selector.select(timeout):
                    key.data()
                self._run_timers()
        return self.exit_code if self.exit_code is not None else 0

    def _open_adopter(self, stack: contextlib.ExitStack) -> Adopter | None:
        """Bind adoption (child/adopt.py): a Python child's bind() to a held address takes the
        held socket; without --bind, the first generation's binds are learned and held."""
        if not self.config.adopt:
            return None
        assert self.handover is not None
        try:
            service = stack.enter_context(AdoptService())
        except OSError as exc:
            self.debug(f"not adopting the child's binds: {exc.strerror or exc}")
            return None
        owner = self._owner
        adopter = Adopter(
            service, self.listeners, self.handover, backlog=self.config.backlog,
            owner=lambda pid: (child.pid if (child := owner(NotifyMessage(pid, ()))) is not None else None),
            on_learned=self._learned, info=self.info, debug=self.debug,
        )
        self.selector.register(service, selectors.EVENT_READ, adopter.on_requests)
        return adopter

    def _learned(self, succession: Succession) -> None:
        """The command bound an address that is held from now on: stops drain and move it, the
        error page answers there, and the next generations (and the warm parent they fork
        from) get it at fd 3.."""
        assert self.browser is not None
        self.machine.rules = rules_for(self.config, drain=True)
        self.browser.learned(succession)
        if self.warm is not None:
            self.warm.expect(contract_environment(self.listeners))

    def _look_where_it_listens(self, now: float) -> None:
        """A generation not ready a while after its start, with sockets held: is it listening
        elsewhere (another port than the held one)? Said once (bindcheck.py)."""
        for pid in self.bind_check.due(now):
            child = self.children.get(pid)
            if child is None or not child.alive or self.readiness.is_ready(pid) or self.handover is None:
                continue
            inodes = socket_inodes([sock for s in self.handover.successions for sock in (s.current, *s.others)])
            message = self.bind_check.look(pid, child.tree_pids(), self._held(), inodes)
            if message:
                self.warn(message)
                # Requests to the held address would wait for nothing: the page answers them.
                self._browser.down(None, (), error="listens elsewhere than the address reloadkit holds",
                                   bind_failed=message)

    def _held(self) -> list[Address]:
        return [address for listener in self.listeners if (address := held_address(listener)) is not None]

    def _fd_of(self, listener: Listener) -> int:
        return self.listeners.index(listener) + 3

    @contextlib.contextmanager
    def _signals(self) -> Iterator[None]:
        read_fd, write_fd = os.pipe()
        os.set_blocking(read_fd, False)
        os.set_blocking(write_fd, False)
        previous = {number: signal.getsignal(number) for number in _HANDLED_SIGNALS}
        old_wakeup = signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
        try:
            for number in _HANDLED_SIGNALS:
                signal.signal(number, _ignore_in_handler)
            self._signal_read = read_fd
            self.selector.register(read_fd, selectors.EVENT_READ, self._on_signals)
            yield
        finally:
            signal.set_wakeup_fd(old_wakeup)
            for number, handler in previous.items():
                signal.signal(number, handler if handler is not None else signal.SIG_DFL)
            os.close(read_fd)
            os.close(write_fd)

    def _timeout(self) -> float | None:
        deadlines = [self.machine.deadline()]
        for timer in (self.warm, self.readiness, self.wrapper_check, self.bind_check, self.keepalive):
            deadlines.append(timer.deadline() if timer is not None else None)
        due = [at for at in deadlines if at is not None]
        if not due:
            return None
        return max(0.0, min(due) - time.monotonic())

    def _run_timers(self) -> None:
        now = time.monotonic()
        if self.warm is not None:
            self.warm.tick(now)
        if self.keepalive is not None:
            self.keepalive.tick(now, self.children.alive)
        if self.wrapper_check is not None and (message := self.wrapper_check.tick(now)):
            self.warn(message)
        ready = [(pid, how) for pid, how in self.readiness.check(now) if self.children.alive(pid)]
        self._look_where_it_listens(now)
        self._feed(Tick(tuple(ready)))

    # --- events in, actions out -----------------------------------------------------------

    def _on_stderr_error(self, pid: int, lines: list[str]) -> None:
        """A running child printed an error: if its app cannot load, the machine hears it."""
        if self.browser is None or self.browser.error_page is None:
            return
        reason = load_failure(lines, self.browser.changed, self.config.watch_roots, self.config.cwd)
        if reason is not None:
            self._feed(AppBroken(pid, reason))

    def _feed(self, event: Event) -> None:
        for action in self.machine.handle(event):
            self._performers[type(action)](action)

    def _child(self, pid: int) -> Child:
        return self.children[pid]

    @property
    def _browser(self) -> Browser:
        assert self.browser is not None  # set before the first event
        return self.browser

    @property
    def _handover(self) -> Handover:
        assert self.handover is not None  # set before the first event
        return self.handover

    def _log(self, action: Log) -> None:
        {"info": self.info, "debug": self.debug}.get(action.level, self.warn)(action.text)

    def _look_ahead(self, _action: LookAhead) -> None:
        if self.warm is not None:
            self.warm.look_ahead(time.monotonic())

    def _warm_failed(self, action: WarmFailed) -> None:
        if self.warm is not None:
            self.warm.failed(action.generation, off=action.off)

    def _finish(self, action: Finish) -> None:
        self.exit_code = action.code
        self._done = True

    def _fail(self, _action: Fail) -> None:
        assert self._spawn_error is not None
        raise self._spawn_error

    # --- sources --------------------------------------------------------------------------

    def _on_signals(self) -> None:
        try:
            data = os.read(self._signal_read, 512)
        except BlockingIOError:
            return
        if self.notifier is not None:
            self._on_notify()  # what a child sent before it died is still its own
        for number in data:
            if number == signal.SIGCHLD:
                self._reap()
            elif number in (signal.SIGINT, signal.SIGTERM):
                self._feed(Shutdown(number, foreground=self.terminal.foreground))
            elif number == signal.SIGHUP:
                self._feed(RestartAsked("SIGHUP"))
        self._reap()

    def _on_watch(self) -> None:
        assert self.watcher is not None and self.browser is not None
        changed = self.browser.split_changes(self.watcher.read())
        if changed:
            self._feed(Changed(frozenset(changed), frozenset(self.watcher.writing())))

    def _on_notify(self) -> None:
        assert self.notifier is not None
        for message in self.notifier.receive():
            child = self._owner(message)
            if child is None and message.pid in self.children:  # a stopping generation (gunicorn 27 goes on sending STATUS=)
                said = f"ignored notify messages from pid {message.pid}: it is stopping"
                if said not in self._said:
                    self._said.add(said)
                    self.debug(said)
                continue
            if child is None:
                self.debug(f"ignored a notify message from pid {message.pid}: not in a child's tree")
                continue
            self._handle_notify(child, message)

    def _owner(self, message: NotifyMessage) -> Child | None:
        candidates = [self.children[gen.pid] for gen in self.machine.candidates() if gen.pid in self.children]
        if message.pid is None:  # no credentials on this platform: trust the newest child
            return candidates[0] if candidates else None
        for child in candidates:
            if message.pid == child.pid:
                return child
        for child in candidates:
            if message.pid in child.tree_pids():
                return child
        return None

    def _handle_notify(self, child: Child, message: NotifyMessage) -> None:
        if message.get("READY") == "1":
            how = self.readiness.notified(child.pid, time.monotonic())
            if how is not None:
                self._feed(Ready(child.pid, how))
        status = message.get("STATUS")
        if status:
            self.debug(f"pid {child.pid}: {status}")
        extend = message.get("EXTEND_TIMEOUT_USEC")
        if extend and extend.isdigit():
            self.readiness.extend(child.pid, (time.monotonic() - child.started) + int(extend) / 1e6)
        if self.warm is not None:
            self.warm.learn(message.values(MODULE_KEY))
        watch = message.values(WATCH_KEY)
        if watch and self.watcher is not None:
            self.watcher.add_files(watch)
        if message.get(RELOAD_KEY) == "1":
            self._feed(RestartAsked("reload requested by the child"))

    # --- starting -------------------------------------------------------------------------

    def _perform_start(self, action: Start) -> None:
        changed = list(action.changed)
        drop_stale_bytecode(changed)
        if action.restart:
            self.env_files.refresh(self.warn)
        assert self.browser is not None and self.handover is not None
        self.browser.starting(changed)
        env = child_environment(
            self.env_files.environment(self.environ),
            self.listeners,
            notify_address=self.notifier.address if self.notifier else "",
            generation=action.generation,
            cookie=self.cookie,
            changed=changed,
            through_wrapper=self.config.through_wrapper,
            one_reloader=self.config.reload,
            imports=self.config.imports,
            import_excludes=self.config.exclude,
            report_modules=self.warm is not None and self.warm.reporting,
        ) | self.browser.child_environment()
        beside = action.beside is not None
        # Beside a running child, the new one gets sockets of its own, which receive nothing
        # until it is ready (handover.py); otherwise the current ones.
        socks = self.handover.sockets_for_new(beside=beside)
        learn = self.adopter is not None and self.adopter.learning()
        if self.adopter is not None:
            env = self.adopter.environment(socks, learn=learn, base=env)
        if not self.children.live():
            # A server that set O_NONBLOCK on the shared socket set it for the next generation
            # too; give each a socket as fresh as a new one. (Not while another child runs:
            # an asyncio server there relies on the flag.)
            for sock in socks:
                os.set_blocking(sock.fileno(), True)
        tee = self.tees.open() if self.config.overlap or self.browser.wants_stderr else None
        fds, own_group, stderr_fd = [sock.fileno() for sock in socks], not self.terminal.foreground, tee.write_fd if tee else None
        if action.cold and self.warm is not None:
            self.warm.drop_spare()
        try:
            warm = not action.cold and self.warm and self.warm.spawn(env, fds, generation=action.generation, own_group=own_group, stderr_fd=stderr_fd,
                                                                                       changed=changed)
            child = warm or process.spawn(self.config.command, env, fds, generation=action.generation, own_group=own_group,
                                          stderr_fd=stderr_fd, listen_pid=not self.config.through_wrapper)
        except SpawnError as exc:
            if tee:
                tee.close()
            self._release_unheld()
            self._spawn_error = exc
            self._feed(SpawnFailed(action.generation, str(exc)))
            return
        self.children.add(child)
        self.handover.give(child.pid, socks)
        if self.adopter is not None:
            self.adopter.started(child.pid, learn=learn)
        self.bind_check.started(child.pid, child.started)
        self._watch_readiness(child)
        if action.generation == 0 and socks and not self.config.through_wrapper:
            self.wrapper_check = WrapperCheck(child.pid, child.started, socket_inodes(socks))
        if tee is not None:
            self.tees.attach(child.pid, tee)
        speaks = speaks_restart_protocol(env, library=self.restart_protocol)
        self._feed(Spawned(action.generation, child.pid, child.started, speaks_restart=speaks, warm=bool(warm)))

    def _watch_readiness(self, child: Child) -> None:
        """Probe each socket only this child holds (on a shared one, another might take it)."""
        assert self.handover is not None
        own = self.handover.own(child.pid)
        probes: list[Probe | HttpProbe] = []
        if self.config.ready_path is not None:  # an HTTP answer below 500, not an accept
            connects = [functools.partial(succession.connect_to, sock) for succession, sock in own]
            probes += [probe for connect in connects if (probe := open_http_probe(connect, self.config.ready_path))]
            message = "--ready-path: this child's socket cannot be reached alone; its readiness is its accept()"
            if not probes and own and message not in self._said:
                self._said.add(message)
                self.warn(message)
        if not probes:
            probes += [accept for succession, sock in own if (accept := open_probe(sock, functools.partial(succession.connect_to, sock)))]
        self.readiness.watch(child.pid, child.started, probes)

    def _release_unheld(self) -> None:
        if self.handover is not None:
            self.handover.release(child.pid for child in self.children.live())

    # --- stopping -------------------------------------------------------------------------

    def _perform_stop(self, action: Stop) -> None:
        """Stop a child; with ``drain``, move its addresses to new sockets first and send the
        signal when it serves no request (the machine times the looks, see drain.py)."""
        child = self._child(action.pid)
        self.readiness.forget(child.pid)
        if action.number is None:
            return
        if action.drain:
            handover, keepalive = self.handover, self.keepalive
            assert handover is not None and keepalive is not None
            handover.move_away(child.pid)
            ports, paths = handover.served_addresses()

            def before_signal() -> None:  # frozen: take its connections (kept.py), then its queue
                keepalive.take(child.pid, child.tree_pids())
                handover.relay_queued(child.pid)

            self.drains[child.pid] = Drain(child.pid, action.number, ports, paths, _DRAIN_LIMIT, before_signal=before_signal,
                                           boundaries=keepalive.available,
                                           hold=functools.partial(keepalive.hold_idle, child.pid))
            return
        child.signal(action.number)
        child.snapshot()  # after the signal: a stop must not wait for a walk of /proc

    def _step_drain(self, action: StepDrain) -> None:
        drain = self.drains.get(action.pid)
        if drain is None:
            return
        done = drain.step()
        if done:
            del self.drains[action.pid]
            self._child(action.pid).snapshot()  # after the signal: a stop must not wait for a walk of /proc
        self._feed(Drained(action.pid, done, drain.next_at, drain.waited))

    def _drain_now(self, action: DrainNow) -> None:
        drain = self.drains.pop(action.pid, None)
        if self.keepalive is not None:
            self.keepalive.enabled = False  # a shutdown: no next generation to keep them for
        if drain is not None:
            drain.signal()

    def _kill_tree(self, action: KillTree) -> None:
        self._killed.add(action.pid)
        self._child(action.pid).kill_tree()

    # --- child exits ----------------------------------------------------------------------

    def _reap(self) -> None:
        for child, code in self.children.reap():
            if self.machine.find(child.pid) is not None:
                self._on_exit(child, code)

    def _on_exit(self, child: Child, code: int) -> None:
        if self.keepalive is not None:
            self.keepalive.exited(child.pid, exit_kind(code, child.pid in self._killed))
        self._killed.discard(child.pid)
        self.readiness.forget(child.pid)
        self.bind_check.forget(child.pid)
        self.drains.pop(child.pid, None)
        tail = tuple(self.tees.exited(child.pid))
        self._bind_failed = self.bind_check.exited(code, tail, self._held())
        if self._bind_failed:
            self.warn(self._bind_failed)
        try:
            self._feed(Exited(child.pid, code, tail))
        finally:
            self._bind_failed = None
            # After the next child started: its start must not wait for this sweep.
            self.children.end_tree(child)
            self._release_unheld()
            self.children.forget(child.pid)

    def _our_helpers(self) -> set[int]:
        """Our own processes among our direct children: not a generation's orphans."""
        pids = {self.guardian.pid} if self.guardian is not None else set()
        return pids | (self.warm.pids() if self.warm is not None else set())

    def _end_everything(self) -> None:
        """Last resort on any exit path (an exception included): nothing may survive us."""
        self.children.end_everything(self.guardian.pid if self.guardian is not None else None)
        self.tees.close()
        self.terminal.restore()


def _make_watcher(config: Config, env_files: Sequence[str], warn: Callable[[str], None], static: Sequence[str]) -> Watcher:
    """The watcher the options ask for: roots, globs (and live reload's static files), ignore
    files, polling, exact files."""
    return create_watcher(
        config.watch_roots,
        FilterRules.build(include=(*config.include, *static), exclude=config.exclude, ext=config.ext),
        poll_interval=config.poll,
        files=(*config.extra_files, *env_files),
        on_warning=warn,
        ignore=IgnoreFiles(config.watch_roots) if config.ignore_vcs else None,
    )


def _ignore_in_handler(_number: int, _frame: object) -> None:
    """Signals are read from the wakeup fd by the loop; the handler only has to exist."""


def _stderr_line(message: str) -> None:
    try:
        sys.stderr.write(f"reloadkit: {message}\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass


def supervise(config: Config, environ: Mapping[str, str] | None = None, *, restart_protocol: bool = False) -> int:
    """Check the input, bind every socket, then supervise; raises :class:`ReloadkitError`.

    Nothing is spawned before the command, the watch paths and every socket are known good.
    With no ``--bind``, sockets handed to this process by systemd socket activation (or
    systemfd) are adopted and passed on.
    """
    env = dict(os.environ if environ is None else environ)
    process.resolve_command(config.command, env)
    for root in config.watch_roots:
        if not os.path.exists(root):
            raise ConfigError(f"watch path not found: {root}")
    for path in config.extra_files:
        if not os.path.exists(path):
            raise ConfigError(f"extra file not found: {path}")
    env_files = EnvFiles(config.env_files, config.cwd)  # an unreadable or malformed one ends us here
    with open_listeners(config.binds, config.backlog) as listeners:
        if not config.binds:
            listeners.extend(adopt_activation(os.environ))
            env = {key: value for key, value in env.items() if key not in CONTRACT_VARIABLES}
        return Supervisor(config, listeners, environ=env, env_files=env_files, restart_protocol=restart_protocol).run()
