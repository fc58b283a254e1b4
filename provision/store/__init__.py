"""The state store: hosts and their lifecycle, runs and their journal, events, documents, tokens,
the per-host lock and the schema with its migrations."""
