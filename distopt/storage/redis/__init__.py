"""The Redis backend: one store class (and its pipelined variant), the key table, the
retry rule for connection errors, and the embedded redis-server."""
