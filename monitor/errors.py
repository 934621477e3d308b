"""The exception tree of `monitor`.

Split by who handles an error and whether retrying helps::

    MonitorError
    ├── ConfigError              bad YAML, field or reference: fatal at start, ignored on reload
    │   └── MissingRunError          a run id the command or request names is not stored
    ├── BenchmarkError           unreadable data file, bad line, missing template field
    ├── EndpointError            one request failed; carries the ErrorKind recorded on the item
    │   ├── TransientEndpointError   timeout, connect, 429, 5xx: retried with backoff
    │   └── PermanentEndpointError   other 4xx, invalid or oversized response: not retried
    ├── StorageError             the database refused or is unreachable
    └── NotifyError              an alert was not delivered (`permanent`: retrying cannot help)

Expected outcomes (an endpoint that is down, too few samples for a test) are values
(`ErrorKind`, `RunStatus`, `VerdictKind`), not exceptions.
"""

from __future__ import annotations

from monitor.core.model import ErrorKind


class MonitorError(Exception):
    """Root of every error `monitor` raises on purpose."""


class ConfigError(MonitorError):
    """The configuration cannot be used; the message names file, line and field."""


class MissingRunError(ConfigError):
    """A run id given to a command or an API route names no stored run."""


class BenchmarkError(MonitorError):
    """A benchmark's data or template is unusable; the message names file and line."""


class EndpointError(MonitorError):
    """A request to a model endpoint failed."""

    def __init__(self, kind: ErrorKind, detail: str, *, retry_after: float | None = None) -> None:
        super().__init__(f"{kind.value}: {detail}")
        self.kind = kind
        self.detail = detail
        self.retry_after = retry_after


class TransientEndpointError(EndpointError):
    """A failure that may go away: retried under the endpoint's retry policy."""


class PermanentEndpointError(EndpointError):
    """A failure that retrying cannot fix (4xx, a response of the wrong shape)."""


class StorageError(MonitorError):
    """The database could not be read or written."""


class NotifyError(MonitorError):
    """An alert could not be delivered to a receiver."""

    def __init__(self, receiver: str, detail: str, *, permanent: bool) -> None:
        super().__init__(f"receiver {receiver!r}: {detail}")
        self.receiver = receiver
        self.permanent = permanent


class BudgetExhaustedError(MonitorError):
    """A monitor's daily budget is used up: its scheduled runs wait for the next UTC day."""
