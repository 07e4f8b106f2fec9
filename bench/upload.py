"""Upload throughput: a 128 MiB file streamed through the gateway (256 KiB chunks, S3
backend) against minio-py's ``put_object`` of the same bytes straight to the same S3
server; and 8 such streams at once against 8 direct puts at once (aggregate)."""

from __future__ import annotations

from bench.harness import Figure, ab_rounds
from bench.stack import Stack, gateway, run_clients

MIB = 1024 * 1024
CHUNK = 256 * 1024
PART = 8 * MIB


def run(base: Stack, *, quick: bool) -> list[Figure]:
    size = (32 if quick else 128) * MIB
    rounds = 3 if quick else 5
    s3 = base.s3
    bucket = base.env["STENO_S3_BUCKET"]
    if not s3.client().bucket_exists(bucket):
        s3.client().make_bucket(bucket)
    put = ["put", s3.endpoint, bucket, "--size", str(size), "--part-size", str(PART),
           "--access-key", s3.access_key, "--secret-key", s3.secret_key]  # fmt: skip
    params = {"size_mib": size // MIB, "chunk_kib": CHUNK // 1024, "part_mib": PART // MIB}
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
                rounds=max(2, rounds - 2),
                target=0.85,
                params={**params, "streams": streams},
            )
        )
    return figures
