"""An aiohttp session opened on first use and closed once: shared by the two HTTP adapters.

`monitor.endpoints` (model endpoints) and `monitor.notify` (alert receivers) each own a
session with their own settings; they may not import each other, so the lifecycle they
share lives here.
"""

from __future__ import annotations

from types import TracebackType
from typing import Self

import aiohttp


class SessionOwner:
    """Base for clients that hold one lazily opened `aiohttp.ClientSession`.

    Subclasses implement `_new_session`; `session()` opens it on first use, `aclose()`
    (or leaving `async with`) closes it, after which the client refuses to reopen.
    """

    _session: aiohttp.ClientSession | None = None
    _closed: bool = False

    def _new_session(self) -> aiohttp.ClientSession:
        raise NotImplementedError

    def session(self) -> aiohttp.ClientSession:
        """The open session (opened now if this is the first use)."""
        if self._session is None:
            if self._closed:
                raise RuntimeError(f"{type(self).__name__} is closed")
            self._session = self._new_session()
        return self._session

    async def aclose(self) -> None:
        """Close the session and its pooled connections; the client cannot be used afterwards."""
        self._closed = True
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()

    async def __aenter__(self) -> Self:
        self.session()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
