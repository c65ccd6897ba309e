"""``python -m services.session``: the session service on ``SESSION_PORT``."""

from shared.serve import checked_settings, serve

if __name__ == "__main__":
    serve("session", "services.session.app:create_app", checked_settings("session").session.port)
