"""The patient's questionnaire page: no sign-in; the one-time link is the key."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.responses import Response

from ketacare.app import assessments as sc
from ketacare.app.errors import InvalidInput, NotFound
from ketacare.clinical.instruments import instrument
from ketacare.store.types import utcnow
from ketacare.web.auth import DbSession
from ketacare.web.ui.render import render

router = APIRouter(prefix="/r", include_in_schema=False)
Token = Annotated[str, Path(min_length=20, max_length=100, pattern=r"^[A-Za-z0-9_-]+$")]


def _page(
    request: Request, link: sc.OpenLink, *, status_code: int = 200, **extra: object
) -> Response:
    return render(
        request,
        "selfreport/form.html",
        None,
        status_code=status_code,
        link=link,
        definitions=[instrument(i) for i in link.instruments],
        **extra,
    )


@router.get("/{token}")
def questionnaire(request: Request, db: DbSession, token: Token) -> Response:
    try:
        link = sc.open_self_report(db, token, now=utcnow())
    except NotFound as exc:
        return render(request, "selfreport/gone.html", None, status_code=404, message=exc.message)
    return _page(request, link, values={}, missing=[])


@router.post("/{token}")
async def submit(request: Request, db: DbSession, token: Token) -> Response:
    form = await request.form()
    try:
        link = sc.open_self_report(db, token, now=utcnow())
    except NotFound as exc:
        return render(request, "selfreport/gone.html", None, status_code=404, message=exc.message)
    answers: dict[str, list[int]] = {}
    missing: list[str] = []
    for name in link.instruments:
        values = []
        for item in instrument(name).items:
            raw = form.get(f"{name}-{item.number}")
            if isinstance(raw, str) and raw.isdigit():
                values.append(int(raw))
            else:
                missing.append(f"{name}-{item.number}")
        answers[name] = values
    if missing:
        return _page(request, link, status_code=422, values=dict(form), missing=missing)
    try:
        sc.submit_self_report(db, token, answers, now=utcnow())
    except NotFound as exc:
        return render(request, "selfreport/gone.html", None, status_code=404, message=exc.message)
    except InvalidInput:
        return _page(request, link, status_code=422, values=dict(form), missing=missing)
    return render(request, "selfreport/thanks.html", None)
