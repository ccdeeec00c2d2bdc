"""Command line: `python -m ddjax.data import NAME PATH...` puts a standard image data set into the cache from a
copy on disk (`ddjax.data.importer`); bad input prints one line and exits with code 2."""

from __future__ import annotations

import argparse
import sys

from ddjax.data.download import cache_root
from ddjax.data.image_sets import IMAGE_SETS
from ddjax.errors import ConfigError


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # One line and exit code 2, like every other bad input.
        self.exit(2, f"error: {message}\n")


def main(argv: list[str] | None = None) -> int:
    parser = _Parser(prog="python -m ddjax.data", description="Manage the data cache.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    importing = commands.add_parser("import", help="put a standard data set into the cache from files on disk")
    importing.add_argument("name", help=f"one of {', '.join(IMAGE_SETS)}")
    importing.add_argument("paths", nargs="+", metavar="PATH",
                           help="the original files, one Keras .npz, or (mnist) one deeplearning.net mnist.pkl.gz")
    args = parser.parse_args(argv)
    from ddjax.data.importer import import_dataset

    try:
        source = import_dataset(args.name, args.paths)
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    checked = ("content sha256 checked" if source["content_checked"] else
               "md5s of the originals checked" if source["format"] == "original" else
               "sizes and labels checked; no published content checksum to compare")
    print(f"imported {args.name} ({source['format']}) into {cache_root() / args.name}: {checked}; "
          f"content sha256 {source['content_sha256']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
