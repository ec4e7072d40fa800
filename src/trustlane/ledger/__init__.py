"""The evidence ledger: checkpoints, witness policies and proofs (C2SP tlog formats)."""
