"""The server's HTTP API (FastAPI): pydantic models at this edge only."""
