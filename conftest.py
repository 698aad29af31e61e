"""Root pytest configuration: doctests run on src/, but not on Alembic's migration scripts."""

collect_ignore_glob = ["src/modelpilot/store/migrations/*"]
