"""Where the ``steno`` command's defaults come from: the environment, over a ``.env`` file
in the working directory. The services read their ``STENO_*`` settings from the same file
(pydantic-settings), so one file beside a project can say which server, API key and TLS
its commands use; a variable set in the environment still wins over the file."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from dotenv import dotenv_values

ENV_FILE = Path(".env")


def client_environment(
    environ: Mapping[str, str] = os.environ, env_file: Path = ENV_FILE
) -> dict[str, str]:
    """``environ`` over the variables ``env_file`` sets (none if there is no such file)."""
    from_file = {
        name: value for name, value in dotenv_values(env_file).items() if value is not None
    }
    return {**from_file, **environ}
