"""Upload throughput: a 128 MiB file streamed through the gateway (256 KiB chunks, S3
backend) against minio-py's ``put_object`` of the same bytes straight to the same S3
server; and 8 such streams at once against 8 direct puts at once (aggregate). Then the
embedded directory store: the gateway against a bare grpc.aio server that writes the
chunks to a file (the limit with a gRPC leg), and, for information, a plain file copy."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

from bench.clients import audio_bytes
from bench.harness import Figure, Scale, ab_rounds
from bench.stack import Stack, bare_server, gateway, run_clients

MIB = 1024 * 1024
CHUNK = 256 * 1024
PART = 8 * MIB


def run(base: Stack, scale: Scale) -> list[Figure]:
    size = scale.pick(full=128, quick=32, tiny=6) * MIB
    rounds = scale.pick(full=5, quick=3, tiny=1)
    params = {"size_mib": size // MIB, "chunk_kib": CHUNK // 1024, "part_mib": PART // MIB}
    return [*_to_s3(base, size, rounds, params), *_to_directory(base, size, rounds, params)]


def _to_s3(base: Stack, size: int, rounds: int, params: dict[str, object]) -> list[Figure]:
    s3 = base.s3
    put = ["put", s3.endpoint, base.bucket(), "--size", str(size), "--part-size", str(PART),
           "--access-key", s3.access_key, "--secret-key", s3.secret_key]  # fmt: skip
    figures = []
    with gateway(base, STENO_UPLOAD_PART_BYTES=str(PART)) as (address, _):
        upload = ["upload", address, "--size", str(size), "--chunk", str(CHUNK)]
        figures.append(
            ab_rounds(
                "upload, one stream",
                unit="MiB/s",
                baseline="direct put_object",
                measure_baseline=lambda: run_clients([put], counting="bytes") / MIB,
                measure_steno=lambda: run_clients([upload], counting="bytes") / MIB,
                rounds=rounds,
                target=0.9,
                params=params,
            )
        )
        streams = 8
        figures.append(
            ab_rounds(
                f"upload, {streams} streams (aggregate)",
                unit="MiB/s",
                baseline=f"{streams} direct put_objects",
                measure_baseline=lambda: run_clients([put] * streams, counting="bytes") / MIB,
                measure_steno=lambda: run_clients([upload] * streams, counting="bytes") / MIB,
                rounds=max(1, rounds - 2),
                target=0.85,
                params={**params, "streams": streams},
            )
        )
    return figures


def _to_directory(base: Stack, size: int, rounds: int, params: dict[str, object]) -> list[Figure]:
    sink = base.workdir / "file-sink"
    sink.mkdir(exist_ok=True)
    source = base.workdir / "copy-source"
    with source.open("wb") as file:
        for chunk in audio_bytes(size, MIB):
            file.write(chunk)
    embedded = {"STENO_S3_ENDPOINT": "", "STENO_DATA_DIR": str(base.workdir / "data")}

    def upload_rate(address: str) -> float:
        command = ["upload", address, "--size", str(size), "--chunk", str(CHUNK)]
        return run_clients([command], counting="bytes") / MIB

    with (
        gateway(base, STENO_UPLOAD_PART_BYTES=str(PART), **embedded) as (address, _),
        bare_server("bench.file_sink_server", str(sink)) as bare,
    ):
        return [
            ab_rounds(
                "upload to the directory store",
                unit="MiB/s",
                baseline="bare gRPC stream to a file",
                measure_baseline=lambda: upload_rate(bare),
                measure_steno=lambda: upload_rate(address),
                rounds=rounds,
                target=0.9,
                params=params,
            ),
            ab_rounds(
                "upload to the directory store, vs a copy",
                unit="MiB/s",
                baseline="plain file copy",
                measure_baseline=lambda: _copy(source, base.workdir / "copy") / MIB,
                measure_steno=lambda: upload_rate(address),
                rounds=rounds,
                params=params,
            ),
        ]


def _copy(source: Path, destination: Path) -> float:
    """Bytes per second of copying ``source`` to a file that is then synced, as the
    directory store syncs what it stores."""
    start = time.perf_counter()
    shutil.copyfile(source, destination)
    with destination.open("rb") as file:
        os.fsync(file.fileno())
    rate = source.stat().st_size / (time.perf_counter() - start)
    destination.unlink()
    return rate
