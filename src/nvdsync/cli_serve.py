"""``nvdsync serve``: the HTTP service (``nvdsync.server``) under uvicorn.

One process by default. With ``--workers N`` uvicorn starts N processes that each
build the app through the import-string factory ``create_app_from_env`` (the
settings travel in an environment variable), and the scheduled sync runs once, in
this supervising process, instead of once per worker.
"""

from __future__ import annotations

import ipaddress
import os
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from nvdsync.config import Settings

from nvdsync.cli import DbOpt, QuietOpt, VerboseOpt, app, fail, settings, verbosity

__all__: list[str] = []


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@app.command("serve")
def serve_cmd(
    host: Annotated[str | None, typer.Option("--host", help="Interface to listen on "
                                             "(default: 127.0.0.1, this machine only).")
                    ] = None,
    port: Annotated[int | None, typer.Option("--port", help="Port (default: 8080).")] = None,
    workers: Annotated[int, typer.Option("--workers", min=1, max=64, help="Server "
                                         "processes (use PostgreSQL for more than one).")
                       ] = 1,
    sync_every: Annotated[str | None, typer.Option("--sync-every", help="Run an incremental "
                                                   "sync this often, e.g. 30m or 2h "
                                                   "(env NVDSYNC_SYNC_EVERY).")] = None,
    token: Annotated[str | None, typer.Option("--token", help="Bearer token that enables "
                                              "POST /api/sync (env NVDSYNC_SERVE_TOKEN).",
                                              show_default=False)] = None,
    cache_size: Annotated[int | None, typer.Option("--cache-size", min=0, max=1_000_000,
                                                   help="Records kept in the LRU cache "
                                                   "(default 50; 0 turns it off; env "
                                                   "NVDSYNC_CACHE_SIZE).")] = None,
    db: DbOpt = None,
    api_url: Annotated[str | None, typer.Option("--api-url", help="CVE API the scheduled "
                                                "sync reads (env NVDSYNC_API_URL).")] = None,
    api_key: Annotated[str | None, typer.Option("--api-key", help="NVD API key for the "
                                                "scheduled sync (env NVD_API_KEY).",
                                                show_default=False)] = None,
    verbose: VerboseOpt = 0,
    quiet: QuietOpt = False,
) -> None:
    """Serve the mirror over HTTP: a JSON API, NVD's CVE API 2.0, /metrics and docs."""
    import uvicorn

    from nvdsync.errors import ConfigError
    from nvdsync.logs import configure
    from nvdsync.server.app import SETTINGS_ENV, create_app
    from nvdsync.server.schedule import SyncService, parse_duration

    cfg = settings(db=db, api_url=api_url, api_key=api_key, serve_host=host,
                   serve_port=port, serve_token=token, sync_every=sync_every,
                   cache_size=cache_size)
    try:
        every = parse_duration(cfg.sync_every) if cfg.sync_every else None
    except ConfigError as exc:
        fail(str(exc), 2, "e.g. --sync-every 2h (NVD changes at most every ~2 hours)")
    level = verbosity(verbose, quiet)
    configure(level)
    if not _is_loopback(cfg.serve_host):
        typer.echo(f"warning: listening on {cfg.serve_host}: the API is reachable from "
                   "other machines", err=True)
    _check_port(cfg.serve_host, cfg.serve_port)
    log_level = "warning" if level < 0 else "info" if level == 0 else "debug"
    if level >= 0:
        typer.echo(f"serving {cfg.db} on http://{cfg.serve_host}:{cfg.serve_port} "
                   f"(API docs at /docs, NVD-compatible API at /rest/json/cves/2.0)", err=True)
    try:
        if workers == 1:
            application = create_app(cfg)
            uvicorn.run(application, host=cfg.serve_host, port=cfg.serve_port,
                        log_level=log_level, log_config=None)
            return
        os.environ[SETTINGS_ENV] = _settings_json(cfg)
        service = SyncService(cfg, every=every)
        service.start()
        try:
            uvicorn.run("nvdsync.server.app:create_app_from_env", factory=True,
                        host=cfg.serve_host, port=cfg.serve_port, workers=workers,
                        log_level=log_level, log_config=None)
        finally:
            service.stop()
    except ConfigError as exc:
        fail(str(exc), 2)
    except OSError as exc:  # e.g. the port is taken
        fail(f"cannot serve on {cfg.serve_host}:{cfg.serve_port}: {exc}", 1,
             "pick another --port, or stop the process using it")


def _check_port(host: str, port: int) -> None:
    """Fail with a clear message when the address is taken: uvicorn would log its own
    error and exit, after the banner has already claimed to be serving."""
    import socket

    try:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host, port))
    except OSError as exc:
        fail(f"cannot serve on {host}:{port}: {exc.strerror or exc}", 1,
             "pick another --port, or stop the process using it")


def _settings_json(cfg: Settings) -> str:
    """The settings as JSON with secrets in clear: the workers must see the token."""
    import json

    from pydantic import SecretStr

    data = cfg.model_dump()
    for name, value in data.items():
        if isinstance(value, SecretStr):
            data[name] = value.get_secret_value()
    return json.dumps(data)
