"""The browser: the error page and the live-reload channel."""
