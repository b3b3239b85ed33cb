"""The ``phisnet`` command line. Each submodule adds one command group with ``add_parser``."""
