"""Enumerate the app's routes (including those of included routers)."""

from __future__ import annotations

from fastapi import FastAPI

try:  # FastAPI >= 0.16x keeps included routers lazily
    from fastapi.routing import iter_route_contexts
except ImportError:  # pragma: no cover - older FastAPI flattens app.routes
    iter_route_contexts = None


def routes(app: FastAPI) -> set[tuple[str, str]]:
    items = iter_route_contexts(app.routes) if iter_route_contexts else app.routes
    return {
        (method, route.path)
        for route in items
        for method in (getattr(route, "methods", None) or ())
        if method != "HEAD"
    }
