"""The ``embodia`` command line: ``embodia {demo,collect,train,eval,replay,list,zoo,export} ...`` (``--help``).

:mod:`embodia.cli.app` holds every command but ``train`` and the parser; :mod:`embodia.cli.train` holds ``embodia
train`` (its policy-config subcommands import torch, so only that command loads them).
"""

from embodia.cli.app import main, parse_args

__all__ = ["main", "parse_args"]
