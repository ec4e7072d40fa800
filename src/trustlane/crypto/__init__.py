"""Keys, C2SP signed notes and verifier keys, cosignatures."""
