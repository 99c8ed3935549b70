"""WSGI entry point: `gunicorn wsgi:app`, `flask --app wsgi ...`."""

from companion import create_app

app = create_app()
