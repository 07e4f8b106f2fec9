"""What every Steno process is told, whatever it does: where its files go, how it logs,
and its ports."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from steno.common.settings.base import StenoSettings


class ProcessSettings(StenoSettings):
    # Where the embedded defaults keep their files.
    data_dir: Path = Path(".steno")
    log_level: str = "INFO"
    # JSON lines for log shippers, or ``text`` for a person reading a terminal.
    log_format: Literal["json", "text"] = "json"
    grpc_host: str = "0.0.0.0"
    # Unset means the service's own default (gateway 50051, transcriber 50052).
    grpc_port: int | None = Field(default=None, ge=0, le=65535)
    # Unset means the service's own default (gateway 9090, transcriber 9091); 0 turns it off.
    metrics_port: int | None = Field(default=None, ge=0, le=65535)
    # Test only: comma-separated points at which the process dies (see steno.common.faults).
    fault_points: str = ""

    def grpc_port_or(self, default: int) -> int:
        """The configured gRPC port, or the calling service's default."""
        return default if self.grpc_port is None else self.grpc_port

    def metrics_port_or(self, default: int) -> int:
        """The configured metrics port, or the calling service's default."""
        return default if self.metrics_port is None else self.metrics_port
