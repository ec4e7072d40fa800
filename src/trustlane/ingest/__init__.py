"""Vehicle data ingestion: readers, VSS naming, classification, segments, commitments."""
