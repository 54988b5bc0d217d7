"""Catalog updates shared by the server, the agent and the gateway: the bundle format a catalog
travels in (`bundle`) and the TUF client that fetches and applies it (`client`)."""
