"""End-to-end tests: the API through a real gunicorn on loopback."""
