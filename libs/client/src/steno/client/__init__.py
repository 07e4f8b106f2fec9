"""Steno's Python SDK: upload audio and read jobs over gRPC.

from steno.client import StenoClient

with StenoClient("127.0.0.1:50051") as steno:
    job = steno.upload("meeting.ogg")
    job = steno.wait(job.job_id)
    print(job.processed_text or job.original_text)
"""

from steno.client.channels import ClientTls
from steno.client.sdk import DEFAULT_SERVER, StenoClient
from steno.client.uploading import DEFAULT_CHUNK_SIZE

__all__ = ["DEFAULT_CHUNK_SIZE", "DEFAULT_SERVER", "ClientTls", "StenoClient"]
