"""The web console: server-rendered pages over a node, under ``/console``, for every role.

``mount_console(app, state)`` adds the pages to the node's FastAPI app. Pages sign in with a party's API token,
authorise with :mod:`trustlane.api.authz` (the same rules as the API) and need no JavaScript, except the
ledger entry's "verify" button, which checks the inclusion proof and the checkpoint signature in the browser.
"""

from typing import TYPE_CHECKING

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from trustlane.console.analysis_pages import add_analysis_pages
from trustlane.console.catalog_pages import add_catalog_pages
from trustlane.console.ledger_pages import add_ledger_pages
from trustlane.console.routing import console_router
from trustlane.console.session_pages import add_session_pages
from trustlane.console.trail_pages import add_trail_pages
from trustlane.console.web import PREFIX, Console

if TYPE_CHECKING:
    from trustlane.api.app import NodeState


def mount_console(app: FastAPI, state: "NodeState") -> None:
    console = Console.create(state)
    router = console_router(console)
    for add in (add_session_pages, add_catalog_pages, add_ledger_pages, add_analysis_pages, add_trail_pages):
        add(router, console)
    app.include_router(router)
    app.mount(f"{PREFIX}/static", StaticFiles(packages=[("trustlane.console", "static")]), name="console-static")


__all__ = ["mount_console"]
