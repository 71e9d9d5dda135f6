"""Command-line flag helpers shared by the ``ssr`` commands: old flag spellings kept as aliases."""

from __future__ import annotations

import argparse
import sys


class DeprecatedAlias(argparse.Action):
    """An old spelling of a flag: stores into the new flag's ``dest`` and prints a warning.

    ``convert(value, namespace)`` turns the old flag's value into the new one's (e.g. metres into
    voxels); identity when None.
    """

    def __init__(self, option_strings, dest, new_flag: str = "", convert=None, **kwargs):
        self.new_flag = new_flag
        self.convert = convert
        kwargs.setdefault("help", argparse.SUPPRESS)
        super().__init__(option_strings, dest, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        print(f"ssr: warning: {option_string} is deprecated and will be removed; use {self.new_flag}", file=sys.stderr)
        setattr(namespace, self.dest, self.convert(values, namespace) if self.convert else values)


def add_deprecated_alias(parser, old_flag: str, new_flag: str, dest: str, convert=None, **kwargs) -> None:
    """``old_flag`` sets ``dest`` (the dest of ``new_flag``) with a deprecation warning; hidden from --help."""
    parser.add_argument(old_flag, dest=dest, action=DeprecatedAlias, new_flag=new_flag, convert=convert, **kwargs)
