"""The dashboard: server-rendered pages (Jinja2 + htmx) for staff, signed in with a password."""
