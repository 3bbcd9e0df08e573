"""``python -m flenwheel``: the CLI, so launchers (torchrun, accelerate launch -m) can start any command."""

from .cli import main

if __name__ == "__main__":
    main()
