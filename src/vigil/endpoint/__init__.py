"""What every enrolled endpoint of the server shares — the agent and an enrolled gateway: the
enrolment in its home, the server's HTTP API seen from the endpoint's side, the durable spool and
its delivery, incident reports, TUF catalog sync, the intervals of `agent.toml` and logging for
journald. A library of the fronts, not a front: it imports no front, and none of the server's
modules (fronts meet only over HTTP)."""
