"""``python -m bench [--quick | --tiny] [--only NAME,…]``: Steno's benchmark suite
(``make bench``, ``make bench-quick``). Prints one table as it goes and writes it to
``bench/results/latest.json`` and ``latest.md``, which the README quotes.

Needs what the tests need: the machine's Postgres and RabbitMQ (``STENO_TEST_POSTGRES_URL``,
``STENO_TEST_AMQP_URL``), and starts its own S3 server.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from bench import janitor, lexicon_quality, long_audio, pipeline, status, upload, upload_memory
from bench.harness import Figure, Report, Scale
from bench.stack import Stack, stack

RESULTS = Path(__file__).parent / "results"
BENCHMARKS: dict[str, Callable[[Stack, Scale], list[Figure]]] = {
    "upload": upload.run,
    "upload_memory": upload_memory.run,
    "status": status.run,
    "janitor": janitor.run,
    "pipeline": pipeline.run,
    "long_audio": long_audio.run,
    "lexicon_quality": lexicon_quality.run,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    scales = parser.add_mutually_exclusive_group()
    scales.add_argument(
        "--quick",
        dest="scale",
        action="store_const",
        const=Scale.QUICK,
        default=Scale.FULL,
        help="smaller inputs, fewer rounds",
    )
    scales.add_argument(
        "--tiny",
        dest="scale",
        action="store_const",
        const=Scale.TINY,
        help="tiny inputs, one round: does every benchmark still run?",
    )
    parser.add_argument(
        "--only", type=lambda v: v.split(","), default=list(BENCHMARKS), metavar="NAME,…",
        help=f"run only these ({', '.join(BENCHMARKS)})",
    )  # fmt: skip
    parser.add_argument("--results", type=Path, default=RESULTS, help="where the table goes")
    args = parser.parse_args(argv)
    unknown = set(args.only) - set(BENCHMARKS)
    if unknown:
        parser.error(f"no benchmark {', '.join(sorted(unknown))}")

    report = Report(" ".join(["python -m bench", *map(shlex.quote, argv or sys.argv[1:])]),
                    scale=args.scale)  # fmt: skip
    report.start()
    with (
        tempfile.TemporaryDirectory(prefix="steno-bench-") as workdir,
        stack(Path(workdir)) as base,
    ):
        for name in args.only:
            for figure in BENCHMARKS[name](base, args.scale):
                report.add(figure, name)
    report.write(args.results)
    print(f"{len(report.figures)} figures, {len(report.missed)} below target; "
          f"written to {args.results}/latest.json and latest.md")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
