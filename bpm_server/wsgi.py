"""The WSGI application for production servers: ``gunicorn bpm_server.wsgi:app``.

Importing this starts no background threads and runs no migrations; the
``migrate`` step and ``bpm-server worker`` do those jobs.
"""
from bpm_server.app import create_app

app = create_app()
