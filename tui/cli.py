"""The `bastion` command. `bastion up` runs a local daemon on its embedded defaults."""

from __future__ import annotations

import argparse
import os
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bastion", description="Bastion's operator console and command line.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.add_parser("up", help="run a local bastiond on its embedded defaults")
    args = parser.parse_args(argv)
    if args.command == "up":
        os.execvp(sys.executable, [sys.executable, "-m", "daemon", "serve"])
    parser.print_help()
    return 2
