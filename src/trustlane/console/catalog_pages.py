"""The dataset catalog: datasets a party may see, their vehicles (pseudonyms only), signals with units and data
categories, and the legal class of each signal under every jurisdiction's rules."""

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from trustlane.api.authz import may_audit, may_see_dataset
from trustlane.catalog.records import DatasetRecord
from trustlane.compliance.classify import classify_signal
from trustlane.compliance.vocabulary import JURISDICTIONS
from trustlane.console.web import Console, PageRefused


def signal_rows(dataset: DatasetRecord) -> list[dict[str, Any]]:
    """Each signal with its unit, categories and, per jurisdiction, the legal classes of those categories."""
    rows = []
    for signal in dataset.signals:
        legal = {}
        for jurisdiction in JURISDICTIONS:
            classes = classify_signal(signal.path, jurisdiction)
            legal[jurisdiction] = sorted({c for entry in classes for c in entry.classes}) or ["unclassified"]
        rows.append({"path": signal.path, "unit": signal.unit, "categories": list(signal.categories), "legal": legal})
    return rows


def add_catalog_pages(router: APIRouter, console: Console) -> None:
    holder = console.state.holder

    @router.get("/datasets", response_class=HTMLResponse)
    def datasets(request: Request) -> Response:
        party = console.allowed(request, "datasets.list")
        contracts = holder.contracts.all()
        visible = [d for d in holder.catalog.datasets() if may_see_dataset(party, d.id, contracts)]
        shown = {d.vehicle for d in visible}
        vehicles = [v for v in holder.catalog.vehicles() if console.oversight(party) or v.pseudonym in shown]
        counts = {v.pseudonym: sum(1 for d in visible if d.vehicle == v.pseudonym) for v in vehicles}
        return console.page("datasets.html.j2", party, datasets=visible, vehicles=vehicles, counts=counts)

    @router.get("/datasets/{dataset_id}", response_class=HTMLResponse)
    def dataset(request: Request, dataset_id: str) -> Response:
        party = console.allowed(request, "datasets.list")
        found = holder.catalog.dataset(dataset_id)
        if found is None or not may_see_dataset(party, found.id, holder.contracts.all()):
            raise PageRefused(404, f"no dataset {dataset_id} visible to {party.name}")
        segments = holder.catalog.segments(found.id)
        return console.page(
            "dataset.html.j2",
            party,
            d=found,
            signals=signal_rows(found),
            jurisdictions=JURISDICTIONS,
            segments=segments,
            may_audit=may_audit(party, "dataset", found.id, {}),
        )
