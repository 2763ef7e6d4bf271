"""The project checkpoint: a second warm parent that also holds the project's own modules.

The installed-modules parent (``warm.py``) makes a reload cost the project's import, which
grows with the project. The checkpoint holds, besides the installed modules, every project
module that was not edited lately (*hot*) and whose import does not import a hot one, so a
generation forked from it imports only what changed and what imports it: a router and
``main``, never the other routers, models and schemas.

What it holds must be what a cold start would import, so it is never used when one of its
modules, or a file it does not know (it may have been read at import: a settings file, a
new module a package lists), changed: that generation forks from the installed-modules
parent, and the checkpoint is rebuilt in the background with the edited modules hot.

:class:`~reloadkit.proc.warmplan.ProjectImports` is the pure part (what to hold, whether a change leaves it usable);
:class:`WarmParents` puts the two parents behind the one interface the supervisor uses.
"""

from __future__ import annotations

import selectors
from collections.abc import Callable, Iterable, Mapping, Sequence

from reloadkit.config.settings import Config
from reloadkit.proc.process import Child
from reloadkit.proc.warm import WarmParent
from reloadkit.proc.warmplan import ProjectImports

__all__ = ["ProjectImports", "WarmParents"]  # ProjectImports: warmplan.py, the pure part

class WarmParents:
    """The installed-modules parent and the project checkpoint, as one warm parent to the
    supervisor: a generation forks from the checkpoint when it is usable, else as before."""

    def __init__(self, base: WarmParent, project: WarmParent | None) -> None:
        self.base = base
        self.project = project
        self.from_project: set[int] = set()

    @classmethod
    def for_config(
        cls,
        config: Config,
        selector: selectors.BaseSelector,
        environ: Mapping[str, str],
        info: Callable[[str], None],
        debug: Callable[[str], None],
        *,
        unsupported: str | None = None,
    ) -> WarmParents:
        base = WarmParent.for_config(config, selector, environ, info, debug, unsupported=unsupported)
        project = None
        if base.command is not None and config.checkpoint:
            # Said at -v only: what the installed-modules parent says is not said twice.
            project = WarmParent.for_config(config, selector, environ, debug, debug, unsupported=unsupported)
            project.project = ProjectImports()
            project.excluded = base.excluded
            project.failed_imports = base.failed_imports
            project.not_found = base.not_found
            project.origin = base
        return cls(base, project)

    def _all(self) -> list[WarmParent]:
        return [self.base] if self.project is None else [self.base, self.project]

    @property
    def reporting(self) -> bool:
        return self.base.reporting

    def pids(self) -> set[int]:
        return set().union(*(parent.pids() for parent in self._all()))

    def _due(self) -> list[WarmParent]:
        """The parents whose build may start now: one build at a time on a small machine, the
        checkpoint's after the installed-modules parent's. A checkpoint build that must wait
        is no deadline either: the loop would wake at once, again and again, until the other
        build ends (the end of a build wakes it through the selector)."""
        if self.project is None or self.base.building is not None:
            return [self.base]
        return [self.base, self.project]

    def deadline(self) -> float | None:
        due = [at for at in (parent.deadline() for parent in self._due()) if at is not None]
        return min(due) if due else None

    def learn(self, values: Iterable[str]) -> None:
        values = list(values)
        for parent in self._all():
            parent.learn(values)

    def expect(self, added: Mapping[str, str]) -> None:
        for parent in self._all():
            parent.expect(added)

    def look_ahead(self, now: float) -> None:
        """A burst of changes began: the checks of the start that follows it, done while the
        supervisor waits for the burst to end instead of after, and the generation forked
        ahead from the parent it will most likely start from (the checkpoint, once built)."""
        ready = [parent for parent in self._all() if parent.parent is not None and parent.given_up is None]
        likely = ready[-1] if ready else None
        for parent in self._all():
            parent.look_ahead(now, spare=parent is likely)

    def tick(self, now: float) -> None:
        self.base.tick(now)
        if self.project is not None and self.project in self._due():
            self.project.tick(now)

    def spawn(
        self,
        env: Mapping[str, str],
        socket_fds: Sequence[int],
        *,
        generation: int,
        own_group: bool,
        stderr_fd: int | None,
        changed: Sequence[str] = (),
    ) -> Child | None:
        try:
            if self.project is not None:
                child = self.project.spawn_checkpoint(
                    env, socket_fds, generation=generation, own_group=own_group, stderr_fd=stderr_fd, changed=changed
                )
                if child is not None:
                    self.from_project.add(generation)
                    return child
            return self.base.spawn(env, socket_fds, generation=generation, own_group=own_group, stderr_fd=stderr_fd)
        finally:
            self.drop_spare()

    def drop_spare(self) -> None:
        """What was forked ahead and not used by this start (or a cold one) is killed now."""
        for parent in self._all():
            parent.drop_spare()

    def failed(self, generation: int, *, off: str | None = None) -> None:
        """A warm generation failed where cold ones served: one from the checkpoint turns the
        checkpoint off for the session; the installed-modules parent decides for its own."""
        project = self.project
        if project is not None and project.given_up is None and (generation in self.from_project or off is not None):
            project.given_up = f"generation {generation} failed warm"
            project.close()
            if off is None:
                self.base.info(f"--warm: generation {generation} failed from the project checkpoint; the checkpoint is off")
                return
        self.base.failed(generation, off=off)

    def close(self) -> None:
        for parent in self._all():
            parent.close()

    def __enter__(self) -> WarmParents:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
