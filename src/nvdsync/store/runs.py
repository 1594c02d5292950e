"""The runs history: run rows with their memory figures, and their RSS samples.

Kept beside :class:`~nvdsync.store.sql.SqlStore` rather than in it: only ``sync`` (to
save a run's samples) and ``nvdsync runs`` (to read them) need it, and it works on any
SQL store through its engine. A store without an engine (a test fake) has no history.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Self

from sqlalchemy import delete, select

from nvdsync.memory_sampler import RssSample
from nvdsync.models import RunInfo
from nvdsync.store.engine import WRITE, translate_errors
from nvdsync.store.schema import run_samples, runs

if TYPE_CHECKING:
    from collections.abc import Sequence

    from sqlalchemy.engine import Engine

__all__ = ["RunHistory"]

_INSERT_CHUNK = 500  # rows per executemany: bounded however many samples a run has


class RunHistory:
    """Read and write the ``runs`` and ``run_samples`` tables of one mirror."""

    def __init__(self, engine: Engine, location: str) -> None:
        self._engine = engine
        self._writer = engine.execution_options(**{WRITE: True})
        self.location = location

    @classmethod
    def of(cls, store: object) -> Self | None:
        """The history of ``store``, or None when it is not a SQL store."""
        engine = getattr(store, "engine", None)
        location = getattr(store, "location", None)
        if engine is None or not isinstance(location, str):
            return None
        return cls(engine, location)

    def save_samples(self, run_id: int, samples: Sequence[RssSample]) -> None:
        """Replace run ``run_id``'s samples with ``samples`` (in one transaction)."""
        rows = [
            {"run_id": run_id, "seq": seq, "t_seconds": round(s.t_seconds, 3),
             "rss_mb": round(s.rss_mb, 2), "page": s.page}
            for seq, s in enumerate(samples)
        ]
        with translate_errors(self.location, "saving the run's memory samples"), \
                self._writer.begin() as conn:
            conn.execute(delete(run_samples).where(run_samples.c.run_id == run_id))
            for start in range(0, len(rows), _INSERT_CHUNK):
                conn.execute(run_samples.insert(), rows[start:start + _INSERT_CHUNK])

    def list_runs(self, limit: int = 20) -> list[RunInfo]:
        """The newest ``limit`` runs, newest first."""
        query = select(runs).order_by(runs.c.id.desc()).limit(limit)
        with translate_errors(self.location, "listing runs"), self._engine.begin() as conn:
            rows = conn.execute(query).mappings().all()
        return [RunInfo(**dict(row)) for row in rows]

    def get_run(self, run_id: int) -> RunInfo | None:
        query = select(runs).where(runs.c.id == run_id)
        with translate_errors(self.location, "reading a run"), self._engine.begin() as conn:
            row = conn.execute(query).mappings().first()
        return None if row is None else RunInfo(**dict(row))

    def samples(self, run_id: int) -> list[RssSample]:
        """Run ``run_id``'s samples in time order (empty for runs before schema 0002)."""
        query = (select(run_samples.c.t_seconds, run_samples.c.rss_mb, run_samples.c.page)
                 .where(run_samples.c.run_id == run_id).order_by(run_samples.c.seq))
        with translate_errors(self.location, "reading run samples"), \
                self._engine.begin() as conn:
            return [RssSample(float(t), float(rss), page) for t, rss, page in conn.execute(query)]
