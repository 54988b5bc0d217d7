"""`vigil agent`: the endpoint daemon. It watches folders, scans what lands and what is scheduled
through the engine (vigil.engine), keeps every match in a durable spool and delivers it to the
server over the documented HTTP API (it never imports the server)."""
