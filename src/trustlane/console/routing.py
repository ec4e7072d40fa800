"""Console routes answer in HTML even when they fail: a login redirect, or an error page with the reason."""

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute

from trustlane.console.web import PREFIX, Console, LoginRequired, PageRefused, login_redirect
from trustlane.errors import TrustlaneError

_STATUS = {2: 400, 3: 500, 4: 500, 5: 503, 6: 422, 7: 500, 8: 409, 9: 502}

Handler = Callable[[Request], Coroutine[Any, Any, Response]]


def console_router(console: Console) -> APIRouter:
    """A router whose pages turn refusals and node errors into pages (never JSON, never a traceback)."""

    class ConsoleRoute(APIRoute):
        def get_route_handler(self) -> Handler:
            original = super().get_route_handler()

            async def handler(request: Request) -> Response:
                try:
                    return await original(request)
                except LoginRequired:
                    return login_redirect(request)
                except PageRefused as exc:
                    return console.refusal(request, exc.status, str(exc))
                except HTTPException as exc:
                    return console.refusal(request, exc.status_code, str(exc.detail))
                except RequestValidationError as exc:  # e.g. a page number that is not a number
                    where = ", ".join(".".join(map(str, e.get("loc", ()))) for e in exc.errors())
                    return console.refusal(request, 400, f"the address has a bad parameter: {where}")
                except TrustlaneError as exc:
                    return console.refusal(request, _STATUS.get(exc.exit_code, 400), exc.message, exc.hint)

            return handler

    return APIRouter(prefix=PREFIX, route_class=ConsoleRoute, include_in_schema=False)
