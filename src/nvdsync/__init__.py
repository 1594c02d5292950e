"""nvdsync: a local mirror of the NVD CVE API 2.0 with memory bounded by a mini-batch.

Public API (everything else is internal)::

    from nvdsync import Mirror, SearchQuery, load_settings, sync
    settings = load_settings(db="nvd.sqlite")
    report = sync(settings)
    with Mirror.open(settings) as mirror:
        raw = mirror.get("CVE-2021-44228")  # the record as NVD sent it (cached)
        page = mirror.search(SearchQuery(cpe="cpe:2.3:a:apache:log4j:2.14.1:*:*:*:*:*:*:*"))

Heavy modules are imported on first use, so ``import nvdsync`` stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from nvdsync.errors import (
    BadRequest,
    ConfigError,
    InvalidApiKey,
    InvalidQuery,
    MirrorBusy,
    NvdSyncError,
    ParseError,
    RateLimited,
    RetryBudgetExceeded,
    ServerError,
    SourceError,
    StoreError,
    SyncIncomplete,
    TransportError,
)

if TYPE_CHECKING:
    from nvdsync.config import Settings, load_settings
    from nvdsync.mirror import Mirror
    from nvdsync.search import SearchQuery
    from nvdsync.store import open_store
    from nvdsync.sync import SyncReport, sync, sync_async
    from nvdsync.verify import VerifyReport, verify

__version__ = "0.1.0"

__all__ = [
    "BadRequest",
    "ConfigError",
    "InvalidApiKey",
    "InvalidQuery",
    "Mirror",
    "MirrorBusy",
    "NvdSyncError",
    "ParseError",
    "RateLimited",
    "RetryBudgetExceeded",
    "SearchQuery",
    "ServerError",
    "Settings",
    "SourceError",
    "StoreError",
    "SyncIncomplete",
    "SyncReport",
    "TransportError",
    "VerifyReport",
    "__version__",
    "load_settings",
    "open_store",
    "sync",
    "sync_async",
    "verify",
]

_LAZY = {
    "Settings": "nvdsync.config",
    "load_settings": "nvdsync.config",
    "Mirror": "nvdsync.mirror",
    "SearchQuery": "nvdsync.search",
    "open_store": "nvdsync.store",
    "SyncReport": "nvdsync.sync",
    "sync": "nvdsync.sync",
    "sync_async": "nvdsync.sync",
    "VerifyReport": "nvdsync.verify",
    "verify": "nvdsync.verify",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'nvdsync' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
