"""The one timestamp format of the public contract: RFC 3339 UTC, six fractional digits, ``Z``."""

from __future__ import annotations

import functools
from datetime import UTC, datetime


@functools.lru_cache(maxsize=4096)
def rfc3339(moment: datetime) -> str:
    """Formatted once per distinct instant (every transfer of a group shares its timestamps).

    ``isoformat`` pads the year to four digits; ``strftime("%Y")`` does not on glibc (year 1 -> "1").
    """
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"
