"""Faces over HTTP: the JSON API (/api/v1) and the clinician UI (server-rendered HTML)."""
