"""Per-project masking and recording rules (not built yet; see the issues)."""
