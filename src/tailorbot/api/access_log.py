"""Keep user ids out of the access log: uvicorn logs each request's path, and
``/v1/users/{user_id}`` carries one. The filter rewrites such paths to the route template
before the record is written (an erased user must leave no trace in log files either).

>>> import logging
>>> record = logging.LogRecord("uvicorn.access", logging.INFO, "", 0,
...     '%s - "%s %s HTTP/%s" %d', ("1.2.3.4:5", "GET", "/v1/users/alice/features", "1.1", 200),
...     None)
>>> UserIdsOut().filter(record), record.getMessage()
(True, '1.2.3.4:5 - "GET /v1/users/{user_id}/features HTTP/1.1" 200')
"""

from __future__ import annotations

import logging
import re

ACCESS_LOGGER = "uvicorn.access"
_USER_PATH = re.compile(r"^/v1/users/[^/?]+")


class UserIdsOut(logging.Filter):
    """Replaces the user id in ``/v1/users/<id>...`` paths of access-log records."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and any(isinstance(a, str) and "/v1/users/" in a for a in args):
            record.args = tuple(
                _USER_PATH.sub("/v1/users/{user_id}", a) if isinstance(a, str) else a for a in args
            )
        return True


def keep_user_ids_out_of_access_logs() -> None:
    """Install :class:`UserIdsOut` on uvicorn's access logger (once)."""
    logger = logging.getLogger(ACCESS_LOGGER)
    if not any(isinstance(f, UserIdsOut) for f in logger.filters):
        logger.addFilter(UserIdsOut())
