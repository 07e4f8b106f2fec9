"""Gateway memory while it takes uploads: its peak resident memory (VmHWM) during one
1 GiB upload and during 8 concurrent 128 MiB uploads, each in a fresh gateway on the S3
backend, fed by client processes in 256 KiB chunks. An upload holds about two parts in
memory whatever its size (``steno.gateway.uploads.multipart``), so the peaks stay near an
idle gateway's plus two parts per stream, however large the upload."""

from __future__ import annotations

from bench.harness import Figure, Scale
from bench.stack import Stack, gateway, peak_rss, run_clients

MIB = 1024 * 1024
MB = 1000 * 1000
CHUNK = 256 * 1024


def run(base: Stack, scale: Scale) -> list[Figure]:
    rounds = scale.pick(full=3, quick=1, tiny=1)
    one = scale.pick(full=1024, quick=256, tiny=16) * MIB
    each = scale.pick(full=128, quick=32, tiny=6) * MIB
    base.bucket()
    many = f"gateway peak RSS, 8 x {each // MIB} MiB uploads at once"
    return [
        _peak(f"gateway peak RSS, one {one // MIB} MiB upload", base, [one], rounds, 150),
        _peak(many, base, [each] * 8, rounds, 250),
        _peak("gateway peak RSS, idle", base, [], rounds, None),
    ]


def _peak(name: str, base: Stack, sizes: list[int], rounds: int, target_mb: float | None) -> Figure:
    """Peak RSS of a fresh gateway (one per round) that takes uploads of ``sizes`` at once,
    after one small upload to load every code path."""
    peaks = []
    for _ in range(rounds):
        with gateway(base) as (address, process):
            run_clients([_upload(address, 8 * MIB)], counting="bytes")
            if sizes:
                run_clients([_upload(address, size) for size in sizes], counting="bytes")
            peaks.append(peak_rss(process.pid) / MB)
    return Figure(
        name,
        peaks,
        unit="MB",
        target=target_mb,
        lower_is_better=True,
        params={"uploads_mib": [size // MIB for size in sizes], "chunk_kib": CHUNK // 1024},
    )


def _upload(address: str, size: int) -> list[str]:
    return ["upload", address, "--size", str(size), "--chunk", str(CHUNK)]
