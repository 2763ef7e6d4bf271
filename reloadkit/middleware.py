"""Public home of the live-reload middleware (it runs in the server process: ``reloadkit.child``)."""

from reloadkit.child.middleware import (
    ASGILiveReloadMiddleware,
    DjangoLiveReloadMiddleware,
    LiveReloadMiddleware,
    inject,
    script_tag,
)

__all__ = ["ASGILiveReloadMiddleware", "DjangoLiveReloadMiddleware", "LiveReloadMiddleware", "inject", "script_tag"]
