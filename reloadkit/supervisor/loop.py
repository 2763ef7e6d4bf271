"""The event loop: change batches, child exits, signals and readiness decide what happens.

Everything arrives through file descriptors watched by one ``selectors`` loop on the main
thread: signals through ``signal.set_wakeup_fd`` (the handlers themselves do nothing),
file changes through the watcher's fd, readiness through the notify socket. Nothing else
decides, so there are no races between handlers.
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
from dataclasses import dataclass, field

import psutil

from reloadkit.browser.errorpage import Browser
from reloadkit.child.notify import RELOAD_KEY, WATCH_KEY, NotifyListener, NotifyMessage
from reloadkit.child.sockets import CONTRACT_VARIABLES, Listener, adopt_activation, open_listeners
from reloadkit.config.envfiles import EnvFiles
from reloadkit.config.settings import Config
from reloadkit.errors import ConfigError, SpawnError
from reloadkit.net.drain import Drain
from reloadkit.net.handover import Handover
from reloadkit.net.readiness import Readiness, open_probe
from reloadkit.net.wrappers import WrapperCheck, socket_inodes
from reloadkit.proc import process
from reloadkit.proc.childenv import HOOK_DIR, child_environment, drop_stale_bytecode
from reloadkit.proc.output import StderrTees
from reloadkit.proc.process import Child, Guardian
from reloadkit.proc.terminal import Terminal
from reloadkit.proc.warm import WarmParent
from reloadkit.child.tracker import MODULE_KEY
from reloadkit.supervisor.policy import CrashBackoff, describe_changes, exit_status
from reloadkit.watch.debounce import DEFAULT_QUICK, Debouncer
from reloadkit.watch.filters import FilterRules
from reloadkit.watch.ignorefiles import IgnoreFiles
from reloadkit.watch.watcher import Watcher, create_watcher

__all__ = ["HOOK_DIR", "Supervisor", "child_environment", "drop_stale_bytecode", "supervise"]

RESTART_STATUS = 3
_DEBOUNCE_CAP = 1.0
_CTRL_C_GRACE = 1.0
_DRAIN_LIMIT = 1.0  # at most this much of the child's running time waiting for no request in flight
_HANDLED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGCHLD)


@dataclass
class _Stopping:
    child: Child
    kill_at: float
    nudge_at: float | None = None  # when to send the stop signal after a terminal's Ctrl+C
    drain: Drain | None = None  # waiting for no request in flight before the signal


@dataclass
class _Restart:
    reason: str
    changed: set[str] = field(default_factory=set)
    after_older: bool = False  # start only once every older generation is gone
    again: int | None = None  # the generation started once more (a retry), not a new one


class Supervisor:
    """Runs generations of the child on the held sockets until told to stop."""

    def __init__(
        self,
        config: Config,
        listeners: Sequence[Listener] = (),
        *,
        environ: Mapping[str, str] | None = None,
        log: Callable[[str], None] | None = None,
        env_files: EnvFiles | None = None,
    ) -> None:
        self.config = config
        self.env_files = env_files or EnvFiles(config.env_files, config.cwd)
        self.listeners = list(listeners)
        self.environ = dict(os.environ if environ is None else environ)
        self._write = log or _stderr_line
        self.cookie = secrets.token_hex(8)
        self.generation = -1
        self.current: Child | None = None
        self.pending: Child | None = None
        self.stopping: list[_Stopping] = []
        self.restart: _Restart | None = None
        self.restart_at: float | None = None
        self.shutdown_signal: int | None = None
        self.exit_code: int | None = None
        self.last_status: int | None = None
        self.last_stop_ms: float | None = None
        self.backoff = CrashBackoff()
        self.readiness = Readiness(config.effective_ready_after, timer_beside_probes=config.ready_after is not None)
        quiet = config.debounce_ms / 1000.0
        self.debouncer = Debouncer(quiet, max(_DEBOUNCE_CAP, quiet), quick=DEFAULT_QUICK)
        self.watcher: Watcher | None = None
        self.notifier: NotifyListener | None = None
        self.guardian: Guardian | None = None
        self.warm: WarmParent | None = None
        self.wrapper_check: WrapperCheck | None = None
        self.terminal = Terminal()
        self.selector = selectors.DefaultSelector()
        self.tees = StderrTees(self.selector, lambda pid: (child := self._find(pid)) is not None and child.alive)
        self.browser: Browser | None = None
        self.handover: Handover | None = None
        self.beside_stopping: dict[int, _Restart] = {}  # pid started while an older one stopped -> why
        self._signal_read = -1
        self._done = False

    # --- logging --------------------------------------------------------------------------

    def info(self, message: str) -> None:
        if self.config.verbosity >= 0:
            self._write(message)

    def debug(self, message: str) -> None:
        if self.config.verbosity > 0:
            self._write(message)

    def warn(self, message: str) -> None:
        self._write(message)

    # --- set-up and the loop --------------------------------------------------------------

    def run(self) -> int:
        """Serve until SIGINT/SIGTERM (or, with ``reload=False``, until the child exits)."""
        with contextlib.ExitStack() as stack:
            stack.enter_context(self._signals())
            process.become_subreaper()
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
            self.browser = stack.enter_context(Browser(
                self.config, self.selector, handover.successions, info=self.info, debug=self.debug,
                relay=lambda succession, conn, data: handover.relay(succession, conn, data, "held while down, to")))
            self.notifier = stack.enter_context(NotifyListener())
            self.selector.register(self.notifier, selectors.EVENT_READ, self._on_notify)
            self.warm = stack.enter_context(WarmParent.for_config(self.config, self.selector, self.environ, self.info, self.debug))
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
            self._start(None)
            while not self._done:
                timeout = self._timeout()
                for key, _events in self.selector.select(timeout):
                    key.data()
                self._run_timers()
        return self.exit_code if self.exit_code is not None else 0

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
        deadlines = [at for stop in self.stopping for at in (stop.kill_at, stop.nudge_at, stop.drain and stop.drain.next_at) if at]
        debounce = self.debouncer.deadline()
        if debounce is not None:
            deadlines.append(debounce)
        if self.restart_at is not None:
            deadlines.append(self.restart_at)
        for timer in (self.warm, self.readiness, self.wrapper_check):
            deadline = timer.deadline() if timer is not None else None
            if deadline is not None:
                deadlines.append(deadline)
        if not deadlines:
            return None
        return max(0.0, min(deadlines) - time.monotonic())

    def _run_timers(self) -> None:
        now = time.monotonic()
        if self.warm is not None:
            self.warm.tick(now)
        if self.wrapper_check is not None and (message := self.wrapper_check.tick(now)):
            self.warn(message)
        # The next generation first: a drain's look at the old one can take 10-20 ms.
        if self.debouncer.due(now) and not self._watch_pending():
            batch = self.debouncer.pop()
            if batch:
                self._request_restart(describe_changes(batch, self.config.cwd), set(batch))
        if self.restart_at is not None and now >= self.restart_at:
            self.restart_at = None
            restart, self.restart = self.restart, None
            self._start(restart)
        for pid, how in self.readiness.check(now):
            child = self._find(pid)
            if child is not None and child.alive:
                self._mark_ready(child, how)
        for stop in list(self.stopping):
            if stop.drain is not None and stop.drain.next_at is not None and now >= stop.drain.next_at:
                if self._start_is_near(stop):
                    stop.drain.next_at = self.debouncer.deadline()
                else:
                    self._step_drain(stop)
            if stop.nudge_at is not None and now >= stop.nudge_at:
                # A child that caught the terminal's Ctrl+C (pdb does) and went on.
                stop.nudge_at = None
                self.debug(f"pid {stop.child.pid} is still running after Ctrl+C; sending {self.config.stop_signal.name}")
                stop.child.signal(self.config.stop_signal)
            if now >= stop.kill_at and stop.child.alive:
                self.warn(
                    f"pid {stop.child.pid} did not stop within {self.config.stop_timeout:g} s; killing its process tree"
                )
                stop.child.kill_tree()
                stop.kill_at = now + 3600  # killed; wait for the reap

    def _start_is_near(self, stop: _Stopping) -> bool:
        """A burst is settling and the next generation need not wait for ``stop``'s: its
        start comes first, the look at the old one after."""
        return bool(self.debouncer) and not self.config.strict_order and not self._on_the_address(stop.child)

    def _watch_pending(self) -> bool:
        """Changes not read yet (the loop was busy): they belong to the batch that is due."""
        return self.watcher is not None and bool(select.select([self.watcher.fileno()], [], [], 0)[0])

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
                self._shutdown(number)
            elif number == signal.SIGHUP:
                self._request_restart("SIGHUP", set(), now=True)
        self._reap()

    def _on_watch(self) -> None:
        assert self.watcher is not None and self.browser is not None
        changed = self.browser.split_changes(self.watcher.read())
        if changed and self.shutdown_signal is None:
            self.debug(f"changed: {', '.join(sorted(changed)[:5])}{' ...' if len(changed) > 5 else ''}")
            writing = bool(self.watcher.writing() & (changed | self.debouncer.pending))
            self.debouncer.add(changed, time.monotonic(), writing=writing)
            if (
                not self.config.overlap
                and self.restart is None
                and self.current is not None
                and self.current.alive
            ):
                # Every change that passed the filters restarts: stop the old child now,
                # while the burst settles, instead of after the quiet window. The new child
                # starts once both are done; the batch gives the reason.
                self.restart = _Restart("")
                self._begin_stop(self.current, self.config.stop_signal, drain=bool(self.listeners))
                self.current = None

    def _on_notify(self) -> None:
        assert self.notifier is not None
        for message in self.notifier.receive():
            child = self._owner(message)
            if child is None:
                self.debug(f"ignored a notify message from pid {message.pid}: not in a child's tree")
                continue
            self._handle_notify(child, message)

    def _owner(self, message: NotifyMessage) -> Child | None:
        candidates = [child for child in (self.pending, self.current) if child is not None and child.alive]
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
                self._mark_ready(child, how)
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
            self._request_restart("reload requested by the child", set(), now=True)

    # --- decisions ------------------------------------------------------------------------

    def _request_restart(self, reason: str, changed: set[str], *, now: bool = False) -> None:
        if self.shutdown_signal is not None:
            return
        if self.restart is not None:  # a restart is under way: fold this change into it
            self.restart.changed |= changed
            self.restart.reason = self.restart.reason or reason
            if self.restart_at is not None and now:
                self.restart_at = time.monotonic()
            self._start_when_settled()
            return
        restart = _Restart(reason, set(changed))
        if self.config.overlap and self.current is not None and self.current.alive:
            if self.pending is not None:
                self.info(f"replacing pid {self.pending.pid}, which was not ready yet")
                self._begin_stop(self.pending, self.config.stop_signal)
                self.pending = None
            self._start(restart)
            return
        self.restart = restart
        if self.current is not None and self.current.alive:
            self._begin_stop(self.current, self.config.stop_signal, drain=bool(self.listeners))
            self.current = None
        self._start_when_settled()

    def _start_when_settled(self) -> None:
        """Start the pending restart once no burst is settling and no older generation is
        in the way: one still on the address (it was not moved) or, with strict order or
        for a retry, any that has not exited."""
        restart = self.restart
        if (
            restart is not None
            and self.restart_at is None
            and not self.debouncer
            and not (self.current is not None and self.current.alive)
            and not any(
                self.config.strict_order or restart.after_older or self._on_the_address(stop.child)
                for stop in self.stopping
            )
        ):
            self.restart = None
            self._start(restart)

    def _on_the_address(self, child: Child) -> bool:
        return self.handover is not None and self.handover.on_the_address(child.pid)

    def _start(self, restart: _Restart | None) -> None:
        if self.shutdown_signal is not None:
            return
        if restart is None or restart.again != self.generation:
            self.generation += 1
        changed = sorted(restart.changed) if restart else []
        drop_stale_bytecode(changed)
        if restart is not None:
            self.env_files.refresh(self.warn)
        assert self.browser is not None
        self.browser.starting(changed)
        env = child_environment(
            self.env_files.environment(self.environ),
            self.listeners,
            notify_address=self.notifier.address if self.notifier else "",
            generation=self.generation,
            cookie=self.cookie,
            changed=changed,
            through_wrapper=self.config.through_wrapper,
            imports=self.config.imports,
            import_excludes=self.config.exclude,
            report_modules=self.warm is not None and self.warm.reporting,
        ) | self.browser.child_environment()
        beside = self.current if self.config.overlap and self.current is not None and self.current.alive else None
        # Beside a running child, the new one gets sockets of its own, which receive nothing
        # until it is ready (handover.py); otherwise the current ones.
        assert self.handover is not None
        socks = self.handover.sockets_for_new(beside=beside is not None)
        if not self._live_children():
            # A server that set O_NONBLOCK on the shared socket set it for the next generation
            # too; give each a socket as fresh as a new one. (Not while another child runs:
            # an asyncio server there relies on the flag.)
            for sock in socks:
                os.set_blocking(sock.fileno(), True)
        tee = self.tees.open() if self.config.overlap or self.browser.wants_stderr else None
        fds, own_group, stderr_fd = [sock.fileno() for sock in socks], not self.terminal.foreground, tee.write_fd if tee else None
        try:
            child = (self.warm and self.warm.spawn(
                env, fds, generation=self.generation, own_group=own_group, stderr_fd=stderr_fd
            )) or process.spawn(self.config.command, env, fds, generation=self.generation, own_group=own_group,
                                stderr_fd=stderr_fd, listen_pid=not self.config.through_wrapper)
        except SpawnError as exc:
            if tee:
                tee.close()
            self._release_unheld()
            if self.generation == 0 or not self.config.reload:
                raise  # with --no-reload no change will come: exit (everything is ended on the way out)
            self.warn(f"{exc}; waiting for a change")
            self.browser.down(None, (), error=str(exc))
            return
        self.handover.give(child.pid, socks)
        if self.stopping and beside is None:
            self.beside_stopping[child.pid] = restart or _Restart("")
        self._watch_readiness(child)
        if self.generation == 0 and socks and not self.config.through_wrapper:
            self.wrapper_check = WrapperCheck(child.pid, child.started, socket_inodes(socks))
        if tee is not None:
            self.tees.attach(child.pid, tee)
        if restart is None:
            self.info(f"started pid {child.pid} (generation {child.generation})")
        else:
            detail = f", stop took {self.last_stop_ms:.0f} ms" if self.last_stop_ms is not None and beside is None else ""
            if child.pid in self.beside_stopping:
                detail = f" while pid {', '.join(str(stop.child.pid) for stop in self.stopping)} stops"
            where = f" beside pid {beside.pid}" if beside is not None else ""
            self.info(f"restarting ({restart.reason}): started pid {child.pid} (generation {child.generation}){where}{detail}")
        self.last_stop_ms = None
        if beside is not None:
            self.pending = child
        else:
            self.current = child

    def _watch_readiness(self, child: Child) -> None:
        """Probe each socket only this child holds (on a shared one, another might take it)."""
        assert self.handover is not None
        own = self.handover.own(child.pid)
        probes = [probe for succession, sock in own if (probe := open_probe(sock, functools.partial(succession.connect_to, sock)))]
        self.readiness.watch(child.pid, child.started, probes)

    def _mark_ready(self, child: Child, how: str) -> None:
        if child.ready_at is not None:
            return
        child.ready_at = time.monotonic()
        elapsed = (child.ready_at - child.started) * 1000
        self.info(f"ready in {elapsed:.0f} ms ({how}; pid {child.pid})")
        if child is self.pending:
            old = self.current
            self.current, self.pending = child, None
            if self.handover is not None:
                self.handover.switch_to(child.pid)
            if old is not None and old.alive:
                self._begin_stop(old, self.config.stop_signal, drain=bool(self.listeners))
        if child is self.current:
            self._tell_pages_ready()  # after the switch: a reload must reach the new one

    def _tell_pages_ready(self) -> None:
        """Pages reload once the current generation is ready and no older one still runs: a
        browser's kept-alive connection could reach one that is stopping (and answer old code)."""
        child = self.current
        if self.browser is None or child is None or not child.alive or child.ready_at is None:
            return
        if not any(stop.child.generation < child.generation for stop in self.stopping):
            self.browser.ready(child.generation)

    def _release_unheld(self) -> None:
        if self.handover is not None:
            self.handover.release(child.pid for child in self._live_children())

    def _begin_stop(self, child: Child, number: int, *, send: bool = True, drain: bool = False) -> None:
        """Stop ``child``; with ``drain``, move its addresses to new sockets first and send
        the signal when it serves no request (looks driven by the loop, see drain.py)."""
        child.stop_sent_at = time.monotonic()
        self.readiness.forget(child.pid)
        self.debug(f"stopping pid {child.pid}" + (f" with {signal.Signals(number).name}" if send else ""))
        nudge = None if send else child.stop_sent_at + min(_CTRL_C_GRACE, self.config.stop_timeout)
        stop = _Stopping(child, child.stop_sent_at + self.config.stop_timeout, nudge)
        self.stopping.append(stop)
        if send and drain and child.alive:
            handover = self.handover
            assert handover is not None
            handover.move_away(child.pid)
            ports, paths = handover.served_addresses()
            stop.drain = Drain(child.pid, number, ports, paths, _DRAIN_LIMIT, before_signal=lambda: handover.relay_queued(child.pid))
            stop.kill_at = float("inf")  # counted from the signal; the first look is on the loop
        elif send:
            child.signal(number)
            self._signalled(stop)

    def _step_drain(self, stop: _Stopping) -> None:
        assert stop.drain is not None
        if stop.drain.step():
            if stop.drain.waited >= 0.005:
                self.debug(f"waited {stop.drain.waited * 1000:.0f} ms for pid {stop.child.pid} to finish the requests in flight")
            stop.drain = None
            stop.kill_at = time.monotonic() + self.config.stop_timeout
            self._signalled(stop)

    def _signalled(self, stop: _Stopping) -> None:
        stop.child.snapshot()  # after the signal: a stop must not wait for a walk of /proc
        if self.config.stop_timeout == 0:
            stop.child.kill_tree()

    def _shutdown(self, number: int) -> None:
        if self.shutdown_signal is not None:
            self.warn("second signal: killing everything now")
            for child in self._live_children():
                child.kill_tree()
            return
        self.shutdown_signal = number
        self.restart = None
        self.restart_at = None
        # From the terminal, Ctrl+C already reached a child in our process group.
        send = not (number == signal.SIGINT and self.terminal.foreground)
        for stop in self.stopping:
            if stop.drain is not None:  # a shutdown waits for no request
                stop.drain.signal()
                stop.drain = None
                stop.kill_at = time.monotonic() + self.config.stop_timeout
        for child in self._live_children():
            if child not in [stop.child for stop in self.stopping]:
                self._begin_stop(child, number, send=send)
        self._maybe_finish()

    def _live_children(self) -> list[Child]:
        children = [stop.child for stop in self.stopping]
        for child in (self.current, self.pending):
            if child is not None and child not in children:
                children.append(child)
        return [child for child in children if child.alive]

    def _maybe_finish(self) -> None:
        if self.shutdown_signal is None or self._live_children():
            return
        if self.current is not None and self.current.returncode is not None:
            self.exit_code = self.current.returncode
        elif self.last_status is not None and not self.config.reload:
            self.exit_code = self.last_status
        else:
            self.exit_code = 128 + self.shutdown_signal
        self._done = True

    # --- child exits ----------------------------------------------------------------------

    def _reap(self) -> None:
        exited: list[tuple[Child, int]] = []
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            child = self._find(pid)
            if child is not None:
                exited.append((child, exit_status(status)))
        # Newest first: a new child that failed while an old one stopped sees it stopping.
        for child, code in sorted(exited, key=lambda item: -item[0].generation):
            self._on_exit(child, code)

    def _find(self, pid: int) -> Child | None:
        for child in (self.current, self.pending, *[stop.child for stop in self.stopping]):
            if child is not None and child.pid == pid:
                return child
        return None

    def _on_exit(self, child: Child, code: int) -> None:
        child.returncode = code
        self.readiness.forget(child.pid)
        lifetime = time.monotonic() - child.started
        try:
            self._after_exit(child, code, lifetime)
        finally:
            self.beside_stopping.pop(child.pid, None)
            # After the next child started: its start must not wait for this sweep.
            self._end_tree(child)
            self._release_unheld()

    def _after_exit(self, child: Child, code: int, lifetime: float) -> None:
        tail = self.tees.exited(child.pid)
        stop = next((stop for stop in self.stopping if stop.child is child), None)
        if not self._live_children():
            self.terminal.restore()
        if stop is not None:
            self.stopping.remove(stop)
            assert child.stop_sent_at is not None
            self.last_stop_ms = (time.monotonic() - child.stop_sent_at) * 1000
            self.debug(f"pid {child.pid} stopped with status {code} in {self.last_stop_ms:.0f} ms")
            if self.current is not None and child.generation < self.current.generation:
                self._tell_pages_ready()
            if self.shutdown_signal is not None:
                self._maybe_finish()
            else:
                self._start_when_settled()
            return
        if self.shutdown_signal is not None:
            self._maybe_finish()
            return
        self.last_status = code
        if child is self.current and self._retry_beside_stopping(child, code):
            return
        if child is self.pending:
            self.pending = None
            shown = "\n".join(f"  | {line}" for line in tail[-20:])
            serving = f"; pid {self.current.pid} keeps serving" if self.current and self.current.alive else ""
            self.warn(f"new pid {child.pid} exited with status {code} before it was ready{serving}" + (f"\n{shown}" if shown else ""))
            if self.current is not None and self.current.alive and self.browser is not None:
                self.browser.ready(self.current.generation)  # pages stay with the one that serves
            return
        if child is not self.current:
            return
        if not self.config.reload:
            self.current = child
            self.shutdown_signal = 0
            self.exit_code = code
            self._done = not self._live_children()
            return
        if code == RESTART_STATUS:
            delay = self.backoff.next_delay(lifetime)
            self.restart = _Restart(f"pid {child.pid} exited with status 3")
            self.current = None
            if delay:
                self.warn(f"pid {child.pid} asked for a restart right after starting; waiting {delay:g} s")
            self.restart_at = time.monotonic() + delay
            return
        self.warn(f"pid {child.pid} exited with status {code}; waiting for a change")
        self.current = None
        if self.browser is not None:  # a stopping child, if any, holds other sockets (the hand-over)
            self.browser.down(code, tail)

    def _retry_beside_stopping(self, child: Child, code: int) -> bool:
        """A child that failed before it was ready while an older generation was stopping
        (an app that cannot run twice: a port of its own, a lock file) gets one more start
        once that one is gone, without a crash report or a backoff."""
        if child.pid not in self.beside_stopping or code in (0, RESTART_STATUS) or child.ready_at is not None:
            return False
        if not any(stop.child.generation < child.generation for stop in self.stopping):
            return False  # the older ones are gone: a failure of its own
        self.info(f"pid {child.pid} exited with status {code} while an older generation was stopping;"
                  " starting it again once that one is gone")
        self.current = None
        why = self.beside_stopping[child.pid]
        self.restart = _Restart(why.reason, set(why.changed), after_older=True, again=child.generation)
        self._start_when_settled()
        return True

    def _end_tree(self, child: Child) -> None:
        """Kill what the child left: descendants seen earlier and orphans re-parented to us."""
        child.kill_tree()
        process.kill_processes(self._orphans_of(child.generation))

    def _orphans_of(self, generation: int) -> list[psutil.Process]:
        mine = {c.pid for c in self._live_children()}
        if self.guardian is not None:
            mine.add(self.guardian.pid)
        if self.warm is not None:
            mine |= self.warm.pids()
        found: list[psutil.Process] = []
        direct = [pid for pid in process.direct_children(os.getpid()) if pid not in mine]
        for pid in direct:
            try:
                proc = psutil.Process(pid)
                if proc.status() == psutil.STATUS_ZOMBIE:
                    continue  # already dead, waiting to be reaped
                owner = proc.environ().get("RELOADKIT_GENERATION")
            except (psutil.Error, OSError):
                continue
            if owner is None or owner == str(generation):
                found.append(proc)
                for below in process.descendants([pid]):
                    with contextlib.suppress(psutil.Error):
                        found.append(psutil.Process(below))
        return found

    def _end_everything(self) -> None:
        """Last resort on any exit path (an exception included): nothing may survive us."""
        for child in self._live_children():
            child.kill_tree()
        deadline = time.monotonic() + 2.0
        while self._live_children() and time.monotonic() < deadline:
            self._reap()
            time.sleep(0.002)
        try:
            leftovers = [proc for proc in psutil.Process().children(recursive=True)
                         if self.guardian is None or proc.pid != self.guardian.pid]
        except psutil.Error:
            leftovers = []
        process.kill_processes(leftovers)
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


def supervise(config: Config, environ: Mapping[str, str] | None = None) -> int:
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
        return Supervisor(config, listeners, environ=env, env_files=env_files).run()
