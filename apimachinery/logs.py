"""Structured logging for every tinykube process: one logfmt line per record on stderr."""

from __future__ import annotations

import logging
import sys
import time

__all__ = ["setup_logging"]


class LogfmtFormatter(logging.Formatter):
    """`ts=… level=… logger=… msg="…"` lines, easy to grep and to parse."""

    def format(self, record: logging.LogRecord) -> str:
        ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        msg = record.getMessage().replace('"', '\\"')
        line = f'ts={ts}.{int(record.msecs):03d}Z level={record.levelname.lower()} logger={record.name} msg="{msg}"'
        if record.exc_info:
            exc = self.formatException(record.exc_info).replace("\n", "\\n").replace('"', '\\"')
            line += f' exc="{exc}"'
        return line


def setup_logging(level: str = "info") -> None:
    """Send every logger's records to stderr as logfmt."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(LogfmtFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        lg = logging.getLogger(name)
        lg.handlers[:] = []
        lg.propagate = True
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
    # the HTTP client logs every request at INFO (a component polling the apiserver: ~95 lines a minute idle)
    logging.getLogger("httpx").setLevel(logging.DEBUG if root.level <= logging.DEBUG else logging.WARNING)
    logging.getLogger("httpcore").setLevel(logging.WARNING)
