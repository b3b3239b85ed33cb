"""Entry point of the ``phisnet`` console command.

Each command lives in its own module under :mod:`ase_phisnet.cli` and exposes
``add_parser(subparsers)``, which registers the command and sets ``func`` on its parser.
The package's own errors (:class:`ase_phisnet.errors.PhiSNetError`: input, files, configs,
datasets) end with one message on stderr and exit code 2; anything else is a bug and keeps its
traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from .. import __version__
from ..errors import PhiSNetError

#: Command modules, in the order ``phisnet --help`` lists them.
COMMAND_MODULES = ["data", "train", "evaluate", "md", "optimize", "vibrations", "plot", "density"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="phisnet",
        description="PhiSNet: a learned Kohn-Sham Hamiltonian as an ASE calculator, "
        "with the PySCF data pipeline, training and evaluation around it.",
    )
    parser.add_argument("--version", action="version", version=f"ase_phisnet {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(f"{__package__}.{name}").add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        # a command group without its subcommand: show that group's help
        (getattr(args, "group_parser", None) or parser).print_help()
        return 1
    command = " ".join(c for c in (args.command, getattr(args, "data_command", None)) if c)
    try:
        return int(args.func(args) or 0)
    except PhiSNetError as err:
        print(f"phisnet {command}: error: {err}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into `head` and closed early
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    # run through the package module, so that the error classes are the ones the commands raise
    from ase_phisnet.cli.main import main as package_main

    sys.exit(package_main())
