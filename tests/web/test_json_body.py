"""Reading a JSON body from its bytes, at the ASGI level."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import pytest
from fastapi import HTTPException
from fastapi.exceptions import RequestValidationError
from starlette.requests import Request

from ketacare.app.sessions import VitalsBatch
from ketacare.web.api.json_body import body_bytes, parse_json_body

T = TypeVar("T")


async def read(request: Request) -> VitalsBatch:
    """What the vitals route does with a body: read it whole, then parse it."""
    return parse_json_body(VitalsBatch, request, await body_bytes(request))


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    # A loop of its own in a thread of its own: a browser test earlier in the same process may
    # have left an event loop running in this one.
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def _request(messages: list[dict[str, Any]], content_type: str | None) -> Request:
    headers = [(b"content-type", content_type.encode())] if content_type else []
    pending = list(messages)

    async def receive() -> dict[str, Any]:
        return pending.pop(0)

    scope = {"type": "http", "method": "POST", "path": "/", "headers": headers}
    return Request(scope, receive)


def test_a_body_sent_in_chunks_is_read_whole() -> None:
    chunks = [b'{"samples": [{"measured_at": "2026-01-05T14:10:00Z",', b' "spo2": 97}]}']
    messages = [
        {"type": "http.request", "body": chunks[0], "more_body": True},
        {"type": "http.request", "body": chunks[1], "more_body": False},
    ]
    batch = run(read(_request(messages, "application/json; charset=utf-8")))
    assert batch.samples[0].spo2 == 97
    assert batch.source == "device"


def test_a_caller_gone_before_the_body_arrived_is_answered_400() -> None:
    messages = [{"type": "http.disconnect"}]
    with pytest.raises(HTTPException) as caught:
        run(read(_request(messages, "application/json")))
    assert caught.value.status_code == 400


@pytest.mark.parametrize(
    ("content_type", "accepted"),
    [
        ("application/json", True),
        ("Application/JSON", True),
        ("application/fhir+json", True),
        (None, True),
        ("text/plain", False),
        ("application/x-www-form-urlencoded", False),
    ],
)
def test_only_json_content_types_are_read(content_type: str | None, accepted: bool) -> None:
    body = b'{"samples": [{"measured_at": "2026-01-05T14:10:00Z", "heart_rate": 70}]}'
    messages = [{"type": "http.request", "body": body, "more_body": False}]
    if accepted:
        assert run(read(_request(messages, content_type))).samples[0].heart_rate == 70
    else:
        with pytest.raises(RequestValidationError) as caught:
            run(read(_request(messages, content_type)))
        assert caught.value.errors()[0]["loc"] == ("body",)
