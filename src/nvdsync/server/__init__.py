"""The HTTP service (``nvdsync serve``): a JSON API and an NVD-compatible CVE API.

Importing this package needs the ``fastapi`` dependency; the rest of nvdsync does not.
"""

from __future__ import annotations

from nvdsync.server.app import ServerContext, create_app, create_app_from_env

__all__ = ["ServerContext", "create_app", "create_app_from_env"]
