"""``python -m steno.gateway``: the API server, configured from ``STENO_*``."""

from steno.common.process import run_service
from steno.gateway.service import run
from steno.gateway.settings import GatewaySettings

if __name__ == "__main__":
    run_service("gateway", GatewaySettings, run, streams_uploads=True)
