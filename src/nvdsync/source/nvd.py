"""The NVD CVE API 2.0 source: builds requests, streams page bodies, maps errors.

It knows URLs, query parameters, the ``apiKey`` header and HTTP status codes, and
nothing about JSON records or databases: a page comes back as a file-like spool of
the body's bytes (RAM up to ``spool_bytes``, a temporary file past it), so pages
waiting for the writer never pile up in memory.
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
from typing import IO, TYPE_CHECKING

import httpx

from nvdsync import __version__
from nvdsync.errors import (
    BadRequest,
    InvalidApiKey,
    RateLimited,
    ServerError,
    SourceError,
    TransportError,
)

if TYPE_CHECKING:
    from nvdsync.models import Window
    from nvdsync.ratelimit import RateLimiter

__all__ = ["NvdSource", "PageBody"]

log = logging.getLogger(__name__)

PageBody = IO[bytes]
_RETRYABLE_5XX = {500, 502, 503, 504, 520, 521, 522, 523, 524}


class NvdSource:
    """Fetches one page of the CVE endpoint per call through an injected client."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        api_url: str,
        api_key: str | None = None,
        limiter: RateLimiter | None = None,
        spool_bytes: int = 1 << 20,
        deadline: float = 900.0,
    ) -> None:
        self.client = client
        self.api_url = api_url
        self._headers = {"User-Agent": f"nvdsync/{__version__}"}
        if api_key:
            self._headers["apiKey"] = api_key
        self.limiter = limiter
        self.spool_bytes = spool_bytes
        self.deadline = deadline
        self.requests = 0

    @staticmethod
    def params(window: Window, start_index: int, page_size: int) -> dict[str, str | int]:
        params: dict[str, str | int] = {"startIndex": start_index, "resultsPerPage": page_size}
        if window.kind != "all":
            if not window.start or not window.end:
                raise ValueError(f"a {window.kind} window needs both bounds")
            prefix = "lastMod" if window.kind == "lastmod" else "pub"
            params[f"{prefix}StartDate"] = window.start
            params[f"{prefix}EndDate"] = window.end
        return params

    async def fetch(self, window: Window, start_index: int, page_size: int) -> PageBody:
        """One page body, complete, rewound to its start. Raises SourceError subclasses."""
        params = self.params(window, start_index, page_size)
        slot = await self.limiter.acquire() if self.limiter is not None else None
        spool: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=self.spool_bytes)  # noqa: SIM115
        try:
            self.requests += 1
            async with asyncio.timeout(self.deadline), self.client.stream(
                "GET", self.api_url, params=params, headers=self._headers
            ) as response:
                if slot is not None:
                    slot.release()
                self._check_status(response)
                async for chunk in response.aiter_bytes():
                    spool.write(chunk)
        except TimeoutError as exc:
            spool.close()
            raise TransportError(f"page at startIndex={start_index} took longer than "
                                 f"{self.deadline:g}s") from exc
        except httpx.TimeoutException as exc:
            spool.close()
            raise TransportError(f"timed out fetching startIndex={start_index}: {exc!r}") from exc
        except httpx.RequestError as exc:  # resets, refused connections, bodies cut short
            spool.close()
            raise TransportError(
                f"connection failed fetching startIndex={start_index}: {exc!r}"
            ) from exc
        except BaseException:
            spool.close()
            raise
        finally:
            if slot is not None:
                slot.release()
        spool.seek(0)
        return spool

    @staticmethod
    def _check_status(response: httpx.Response) -> None:
        status = response.status_code
        if status == 200:
            return
        message = response.headers.get("message", "")
        if status == 404:
            if "apikey" in message.lower():
                raise InvalidApiKey(message, url=str(response.url))
            raise BadRequest(message, url=str(response.url))
        if status in (403, 429):
            retry_after = response.headers.get("Retry-After")
            try:
                seconds = float(retry_after) if retry_after is not None else None
            except ValueError:
                seconds = None
            raise RateLimited(f"HTTP {status}: rate limited by NVD", retry_after=seconds)
        if status in _RETRYABLE_5XX:
            raise ServerError(f"HTTP {status} from NVD", status=status)
        error = SourceError(f"unexpected HTTP {status} from {response.url} {message}".strip())
        error.retryable = False
        raise error
