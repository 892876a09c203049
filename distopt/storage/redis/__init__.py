"""The Redis backend: one store class (``store.RedisStorage``, built from ``core``,
``leases``, ``liveness`` and ``reports``) and its pipelined variant; its Lua ``scripts``;
the key table (``keys``); ``connection`` (URLs, the client) and ``errors`` (Redis's
exceptions as distopt's); the ``retry`` rule for connection errors; and the embedded
redis-server (``server``)."""
