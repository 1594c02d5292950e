"""A faithful, fast, deterministic mock of the NVD CVE API 2.0, for tests and benchmarks.

It serves real (bundled) or generated NVD records with NVD's envelope, paging, ordering,
parameter rules, error style, API-key handling and rate limits, and injects the faults
seen in practice: 5xx bursts, 403 bursts, slow pages, bodies cut mid-stream, and
records changing while a client pages. See ``shared/nvd-api.md`` §2-§8 and §13.

- :func:`serve` / :func:`serve_forever` run it; :class:`MockConfig` configures it.
- :func:`load_bundled`, :func:`load_jsonl` and :func:`generate` provide records.
"""

from __future__ import annotations

from nvdsync.mock.config import MockConfig
from nvdsync.mock.data import generate, load_bundled, load_jsonl
from nvdsync.mock.dataset import Dataset
from nvdsync.mock.faults import MockStats, RequestLogEntry
from nvdsync.mock.server import MockServer, serve, serve_forever

__all__ = [
    "Dataset",
    "MockConfig",
    "MockServer",
    "MockStats",
    "RequestLogEntry",
    "generate",
    "load_bundled",
    "load_jsonl",
    "serve",
    "serve_forever",
]
