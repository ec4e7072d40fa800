"""The ledger explorer: checkpoints, entries page by page, and an entry with a proof the browser verifies."""

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from trustlane.console.ledger_view import (
    PAGE_SIZE,
    EventLens,
    entries_page,
    inclusion_view,
    recent_checkpoints,
)
from trustlane.console.web import Console, PageRefused


def add_ledger_pages(router: APIRouter, console: Console) -> None:
    node = console.state.node
    holder = console.state.holder

    @router.get("/ledger", response_class=HTMLResponse)
    def ledger(request: Request, start: int | None = Query(default=None, ge=0)) -> Response:
        party = console.allowed(request, "ledger.read")
        size = node.store.tree_size()
        if start is None:  # the newest page first
            start = max(0, size - PAGE_SIZE)
        entries = entries_page(node, EventLens(holder, party), start)
        checkpoints, total = recent_checkpoints(node)
        return console.page(
            "ledger.html.j2",
            party,
            size=size,
            start=start,
            entries=list(reversed(entries)),
            older=max(0, start - PAGE_SIZE) if start > 0 else None,
            newer=start + PAGE_SIZE if start + PAGE_SIZE < size else None,
            checkpoints=checkpoints,
            checkpoint_total=total,
            log_vkey=node.log_verifier.vkey,
        )

    @router.get("/ledger/entries/{index}", response_class=HTMLResponse)
    def entry(request: Request, index: int) -> Response:
        party = console.allowed(request, "ledger.read")
        found = entries_page(node, EventLens(holder, party), index, 1) if index >= 0 else []
        if not found:
            raise PageRefused(404, f"the ledger has no entry {index} (its size is {node.store.tree_size()})")
        return console.page("entry.html.j2", party, e=found[0], inclusion=inclusion_view(node, index))
