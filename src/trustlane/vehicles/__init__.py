"""Vehicles: VIN validation and keyed pseudonyms, the vehicle registry (erasure, legal hold), provenance."""
