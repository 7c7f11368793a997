"""``python -m berthwatch ...``: the same command line as the ``berthwatch`` script."""

from berthwatch.cli import main

if __name__ == "__main__":
    main(prog_name="berthwatch")
