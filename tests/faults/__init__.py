"""Fault tests: a real ReplayHub under gunicorn, broken on purpose mid-stream."""
