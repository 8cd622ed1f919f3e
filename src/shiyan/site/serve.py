"""Serve a built site with the standard library (no reload, no external requests)."""

from __future__ import annotations

import functools
import http.server
from pathlib import Path


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    extensions_map = {
        **http.server.SimpleHTTPRequestHandler.extensions_map,
        ".svg": "image/svg+xml",
        ".xml": "application/xml",
        ".json": "application/json",
        ".js": "text/javascript",
    }

    def log_message(self, format: str, *args) -> None:  # noqa: A002 -- the stdlib signature
        pass


def make_server(out_dir: Path, host: str = "127.0.0.1", port: int = 8000) -> http.server.ThreadingHTTPServer:
    """An HTTP server for ``out_dir`` bound to ``host:port`` (port 0 picks a free one); not started."""
    root = Path(out_dir)
    if not (root / "index.html").is_file():
        raise FileNotFoundError(f"{root} holds no built site (no index.html); build it first")
    handler = functools.partial(_QuietHandler, directory=str(root.resolve()))
    return http.server.ThreadingHTTPServer((host, port), handler)


def serve_site(out_dir: Path, host: str = "127.0.0.1", port: int = 8000) -> None:
    """Serve the built folder on ``http://host:port/`` until interrupted (Ctrl-C)."""
    server = make_server(out_dir, host, port)
    with server:
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
