"""Turn use-case errors into answers: JSON under /api, pages elsewhere. Never a traceback."""

from __future__ import annotations

import logging
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from ketacare.app.errors import (
    AuthenticationFailed,
    Conflict,
    DomainError,
    Forbidden,
    InvalidInput,
    NotFound,
    Throttled,
)
from ketacare.web.auth import CsrfFailed, LoginRequired
from ketacare.web.ui.render import render

log = logging.getLogger(__name__)

STATUS = {
    NotFound: 404,
    Forbidden: 403,
    InvalidInput: 422,
    Conflict: 409,
    AuthenticationFailed: 401,
    Throttled: 429,
}


def is_api(request: Request) -> bool:
    return request.url.path.startswith("/api/")


def status_of(exc: DomainError) -> int:
    for cls, status in STATUS.items():
        if isinstance(exc, cls):
            return status
    return 400


def _page(request: Request, status: int, title: str, message: str) -> Response:
    principal = getattr(request.state, "principal", None)
    return render(
        request, "error.html", principal, status_code=status, title=title, message=message
    )


def install(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def domain_error(request: Request, exc: DomainError) -> Response:
        status = status_of(exc)
        if is_api(request):
            if isinstance(exc, InvalidInput):
                body = {
                    "detail": [
                        {"loc": ["body", exc.field], "msg": exc.message, "type": "value_error"}
                    ]
                }
            else:
                body = {"detail": exc.message}
            return JSONResponse(body, status_code=status)
        titles = {404: "Not found", 403: "Not allowed", 409: "Changed by someone else"}
        return _page(request, status, titles.get(status, "Cannot do that"), exc.message)

    @app.exception_handler(LoginRequired)
    async def login_required(request: Request, _exc: LoginRequired) -> Response:
        if is_api(request):
            return JSONResponse(
                {"detail": "Sign in, or send an API token as 'Authorization: Bearer ...'."},
                status_code=401,
                headers={"WWW-Authenticate": "Bearer"},
            )
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        if request.headers.get("hx-request"):
            return Response(status_code=401, headers={"HX-Redirect": "/login"})
        return RedirectResponse(f"/login?next={quote(target)}", status_code=303)

    @app.exception_handler(CsrfFailed)
    async def csrf_failed(request: Request, _exc: CsrfFailed) -> Response:
        message = (
            "The form's security token is missing or out of date. Reload the page and try again."
        )
        if is_api(request):
            return JSONResponse(
                {"detail": message + " API calls with a session cookie send X-CSRF-Token."},
                status_code=403,
            )
        return _page(request, 403, "Form expired", message)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> Response:
        errors = [
            {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
            for e in exc.errors()
        ]
        if is_api(request):
            return JSONResponse({"detail": errors}, status_code=422)
        text = "; ".join(f"{'.'.join(map(str, e['loc'][1:]))}: {e['msg']}" for e in errors)
        return _page(request, 422, "Check the input", text)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if is_api(request) or exc.status_code < 400:
            return JSONResponse(
                {"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers
            )
        return _page(
            request,
            exc.status_code,
            "Not found" if exc.status_code == 404 else "Error",
            str(exc.detail),
        )

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        message = "Something went wrong on our side. Nothing was saved; the error was logged."
        if is_api(request):
            return JSONResponse({"detail": message}, status_code=500)
        return _page(request, 500, "Error", message)
