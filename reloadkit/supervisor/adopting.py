"""The supervisor's wiring of bind adoption: answering the children's requests, learning
addresses, and each generation's variables (the parts are :mod:`reloadkit.net.adoption`
and :mod:`reloadkit.child.adopt`)."""

from __future__ import annotations

import errno
import socket
from collections.abc import Callable

from reloadkit.child.adopt import Address
from reloadkit.net.adoption import AdoptRequest, AdoptService, adopt_environment, bind_learned, held_address, match
from reloadkit.net.binding import Listener, default_backlog
from reloadkit.net.handover import Handover, Succession
from reloadkit.proc.childenv import with_hook

__all__ = ["Adopter"]


class Adopter:
    """Which generations learn addresses, and what each request is answered.

    A generation started while nothing is held (no ``--bind``) learns: each TCP address its
    processes bind is bound by the supervisor, held from then on, and handed back; so is, in
    any generation, another address on a held port (a server that binds ``0.0.0.0`` and ``::``
    both). Every other request gets the asking generation's own socket of a held address, or
    a refusal.
    """

    def __init__(
        self,
        service: AdoptService,
        listeners: list[Listener],
        handover: Handover,
        *,
        backlog: int | None,
        owner: Callable[[int | None], int | None],
        on_learned: Callable[[Succession], None],
        info: Callable[[str], None],
        debug: Callable[[str], None],
    ) -> None:
        self.service = service
        self.listeners = listeners  # the supervisor's own list: learned ones are appended
        self.handover = handover
        self.backlog = backlog or default_backlog()
        self.owner = owner  # a pid -> the pid of the generation whose tree it is in
        self.on_learned = on_learned
        self.info = info
        self.debug = debug
        self.learners: set[int] = set()  # generations started while nothing was held

    def learning(self) -> bool:
        """Whether the next generation learns (nothing is held yet)."""
        return not self.listeners

    def environment(self, socks: list[socket.socket], *, learn: bool, base: dict[str, str]) -> dict[str, str]:
        """The generation's environment with adoption's variables (and the hook) added."""
        env = base | adopt_environment(self.service.address, self.listeners, socks, learn=learn)
        return with_hook(env)

    def started(self, pid: int, *, learn: bool) -> None:
        if learn:
            self.learners.add(pid)

    def on_requests(self) -> None:
        for request in self.service.receive():
            self.service.answer(request, self._decide(request))

    def _decide(self, request: AdoptRequest) -> socket.socket | None:
        address = request.address
        generation = self.owner(request.pid)
        if address is None or generation is None:
            self.debug(f"bind adoption: refused pid {request.pid} (not in a generation's tree, or a bad request)")
            return None
        index = match(self.listeners, address)
        if index is not None:
            given = self.handover.held.get(generation, [])
            return given[index] if index < len(given) else None
        if address.family == socket.AF_UNIX or address.port == 0:
            return None
        held_ports = {known.port for listener in self.listeners if (known := held_address(listener)) is not None}
        if generation not in self.learners and address.port not in held_ports:
            return None  # another address on a held port (IPv6 beside IPv4) is learned in any generation
        return self._learn(address, generation)

    def _learn(self, address: Address, generation: int) -> socket.socket | None:
        taken = {listener.name for listener in self.listeners}
        name, count = "tcp", 1
        while name in taken:
            count += 1
            name = f"tcp{count}"
        try:
            listener = bind_learned(address, name, self.backlog)
        except OSError as exc:
            reason = "address already in use" if exc.errno == errno.EADDRINUSE else (exc.strerror or str(exc))
            self.info(f"cannot hold {address.display()}, which the command binds: {reason}")
            return None
        self.listeners.append(listener)
        succession = self.handover.add(listener, generation)
        self.on_learned(succession)
        self.info(f"holding {address.display()} (bound by the command)")
        return listener.sock
