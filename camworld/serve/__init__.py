"""Serving the world model: an HTTP app (FastAPI) with a browser page for interactive play, and a gymnasium
environment for agents. Both drive `camworld.play.PlaySession`."""
