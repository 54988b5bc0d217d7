"""`vigil demo`: the whole system on one machine (server, mail sink, agent) on benign photos,
and the engine-only demo (`vigil demo --engine`).

The demo is a front: it drives `vigil server` and `vigil agent` as child processes through their
commands and the HTTP API, never through their internals.
"""
