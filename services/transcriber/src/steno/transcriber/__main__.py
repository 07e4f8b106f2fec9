"""``python -m steno.transcriber``: the worker, configured from ``STENO_*``."""

from steno.common.process import run_service
from steno.transcriber.service import run
from steno.transcriber.settings import TranscriberSettings

if __name__ == "__main__":
    run_service("transcriber", TranscriberSettings, run)
