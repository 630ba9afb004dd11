"""``python -m taskrpc`` is the ``taskrpc`` command."""

from .cli import main

if __name__ == "__main__":
    main()
