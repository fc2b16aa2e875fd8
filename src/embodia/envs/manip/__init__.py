"""Table-top manipulation: PushBlock and PushT."""
