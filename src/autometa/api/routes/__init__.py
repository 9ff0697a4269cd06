"""Routers by concern; `app.create_app` includes them all."""
