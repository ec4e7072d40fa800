"""Cross-border transfer: decide and plan (rule packs), process (privacy processors), package, verify offline."""
