"""``python -m api.cli_entry …`` runs the ``hotline`` CLI without an installed script."""

from api.cli import main

if __name__ == "__main__":
    main()
