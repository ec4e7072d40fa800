"""Everything the holder side of a node opens to serve parties: catalog, vehicles, blobs, parties,
algorithms, contracts and the analysis service, opened together and closed together."""

from __future__ import annotations

from contextlib import ExitStack
from types import TracebackType

from trustlane.analysis.algorithms import AlgorithmRegistry
from trustlane.analysis.contracts import ContractBook
from trustlane.analysis.parties import PartyRegistry
from trustlane.catalog.db import CatalogDB
from trustlane.catalog.home import master_key, open_catalog
from trustlane.node import Node
from trustlane.storage.blobs import BlobStore
from trustlane.vehicles.registry import VehicleRegistry


class Holder:
    def __init__(self, node: Node) -> None:
        self.node = node
        self._stack = ExitStack()
        self.catalog: CatalogDB = self._stack.enter_context(open_catalog(node))
        self._vehicles: VehicleRegistry | None = None
        self.blobs = BlobStore(node.home / "blobs")
        self.parties = PartyRegistry(node.home, self.catalog, node.log)
        self.algorithms = AlgorithmRegistry(node.home, self.catalog, node.log)
        self.contracts = ContractBook(self.catalog, node.log, self.parties, self.algorithms, node.signer)

    @property
    def vehicles(self) -> VehicleRegistry:
        """Opened on first use: it needs the master key, which parties-only work does not."""
        if self._vehicles is None:
            self._vehicles = VehicleRegistry(self.catalog, master_key(self.node), self.node.log)
        return self._vehicles

    def close(self) -> None:
        self._stack.close()

    def __enter__(self) -> Holder:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
