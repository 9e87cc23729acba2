"""Operating the service: the HTTP endpoints `/livez`, `/readyz`, `/metrics`, `/status.json`
(`http`), Prometheus metrics (`metrics`), JSON logs with secrets redacted (`logs`) and the event
log's export (`audit`)."""

from bot.ops import metrics
from bot.ops.logs import setup_logging

__all__ = ["metrics", "setup_logging"]
