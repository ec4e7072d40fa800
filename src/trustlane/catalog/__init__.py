"""The holder's metadata catalog: vehicles, datasets, segments and which ledger events concern a vehicle."""
