"""One router per resource."""

from veil.api.routes import account, audit, health, jobs, links, web

__all__ = ["account", "audit", "health", "jobs", "links", "web"]
