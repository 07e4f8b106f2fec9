"""The pipeline: audio seconds transcribed per wall-clock second for a batch of files through
the running services (gateway and transcriber on Postgres, RabbitMQ and S3) and through
``steno dev``, against faster-whisper itself on the same files with the same model and
settings; the word error rate of Steno's text against the bare engine's; and how long a job
waits for an idle worker, from its upload to the start of its processing."""

from __future__ import annotations

import contextlib
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import jiwer

from bench.audio import repeated_speech
from bench.harness import Figure, Scale
from bench.stack import Stack, free_port, gateway, run_clients_results, wait_serving


def _bare_engine(files: list[Path]) -> dict[str, object]:
    out = subprocess.run(
        [sys.executable, "-m", "bench.bare_engine", *map(str, files)],
        check=True, capture_output=True, text=True, timeout=1800,
    ).stdout  # fmt: skip
    result: dict[str, object] = json.loads(out.splitlines()[-1])
    return result


@contextlib.contextmanager
def _services(base: Stack) -> Iterator[str]:
    with gateway(base) as (address, _):
        worker = base.service(
            "steno.transcriber", "transcriber.log", STENO_GRPC_PORT="0", STENO_LOG_LEVEL="INFO"
        )
        try:
            # Serving once its model is loaded: a request now goes straight to work.
            _wait_for_consumer(base.workdir / "transcriber.log", worker)
            yield address
        finally:
            worker.terminate()
            worker.wait(timeout=60)


def _wait_for_consumer(log: Path, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 180
    while "transcriber consuming" not in log.read_text(errors="replace"):
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"the transcriber did not start: see {log}")
        time.sleep(0.2)


@contextlib.contextmanager
def _steno_dev(base: Stack) -> Iterator[str]:
    port = free_port()
    data = base.workdir / "dev-data"
    env = {k: v for k, v in base.env.items() if not k.startswith("STENO_")}
    env.update(STENO_DATA_DIR=str(data), STENO_AUTH="disabled", STENO_METRICS_PORT="0",
               STENO_LOG_LEVEL="WARNING")  # fmt: skip
    with (base.workdir / "dev.log").open("ab") as log:
        dev = subprocess.Popen(
            [sys.executable, "-m", "steno.cli", "dev", "--port", str(port)],
            env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        address = f"127.0.0.1:{port}"
        wait_serving(address, timeout=180)
        yield address
    finally:
        dev.terminate()
        dev.wait(timeout=60)


def _through(address: str, files: list[Path], *, batch: bool) -> dict[str, object]:
    command = ["pipeline", address, *map(str, files)] + (["--batch"] if batch else [])
    [result] = run_clients_results([command])
    return result


def _rate(result: dict[str, object]) -> float:
    if "seconds" in result:
        return float(result["audio_seconds"]) / float(result["seconds"])  # type: ignore[arg-type]
    elapsed = float(result["end"]) - float(result["start"])  # type: ignore[arg-type]
    return float(result["audio_seconds"]) / elapsed  # type: ignore[arg-type]


def run(base: Stack, scale: Scale) -> list[Figure]:
    count, seconds, rounds = scale.pick(full=(10, 17, 3), quick=(4, 16, 3), tiny=(1, 4, 1))
    files = [repeated_speech(base.workdir / f"speech-{n}.wav", seconds) for n in range(count)]
    figures = []
    for name, serving in (("services", _services), ("steno dev", _steno_dev)):
        with serving(base) as address:
            _through(address, files[:1], batch=True)  # warm
            rates: dict[str, list[float]] = {"bare": [], "steno": []}
            wers = []
            for number in range(rounds):
                order = ["bare", "steno"] if number % 2 == 0 else ["steno", "bare"]
                results = {
                    which: _bare_engine(files) if which == "bare"
                    else _through(address, files, batch=True)
                    for which in order
                }  # fmt: skip
                for which, result in results.items():
                    rates[which].append(_rate(result))
                wers.append(
                    jiwer.wer(" ".join(results["bare"]["texts"]),  # type: ignore[arg-type]
                              " ".join(results["steno"]["texts"]))  # type: ignore[arg-type]
                )  # fmt: skip
            params = {"files": count, "seconds_each": seconds}
            figures.append(
                Figure(
                    f"pipeline through {name}: audio s per wall s",
                    [s / b for s, b in zip(rates["steno"], rates["bare"], strict=True)],
                    baseline="bare faster-whisper",
                    target=0.95,
                    params=params,
                    rates={
                        "baseline": f"{statistics.median(rates['bare']):.4g} audio s/s",
                        "steno": f"{statistics.median(rates['steno']):.4g} audio s/s",
                    },
                )
            )
            figures.append(
                Figure(
                    f"pipeline through {name}: WER vs the bare engine",
                    wers,
                    unit="",
                    target=0.0,
                    lower_is_better=True,
                    params=params,
                )
            )
            if name == "services":
                idle = _through(address, files, batch=False)
                latencies = sorted(float(x) * 1000 for x in idle["start_latencies"])  # type: ignore[union-attr]
                figures.append(
                    Figure(
                        "upload start -> processing start, idle worker (p99)",
                        [latencies[-1]],
                        unit="ms",
                        target=100,
                        lower_is_better=True,
                        params={"p50_ms": statistics.median(latencies)},
                    )
                )
    return figures
