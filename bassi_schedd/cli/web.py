"""``web [--host 127.0.0.1] [--port 8765] [--open] [--allow-remote]``: the dashboard."""

from __future__ import annotations

import argparse

from bassi_schedd.config.paths import Home


def main(args: argparse.Namespace, home: Home) -> int:
    """Serve the dashboard of ``home`` until stopped."""
    from bassi_schedd.web.server import WebOptions, serve

    return serve(
        home,
        WebOptions(
            host=args.host,
            port=args.port,
            open_browser=args.open,
            allow_remote=args.allow_remote,
        ),
    )
