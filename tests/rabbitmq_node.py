"""A RabbitMQ node of a test's own, to stop and start at will.

Stopping the RabbitMQ every other test shares is not an option, so a test that restarts the
broker runs a private node: its own node name, ports, data and log directories under the
test's ``tmp_path`` and an Erlang cookie of its own (HOME points there too), no plugins. It
is stopped with SIGTERM, which the ``rabbitmq-server`` script turns into an orderly
shutdown, and started again on the same port and data directory, so durable queues and
persistent messages survive as they would in production.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import free_port

# The Debian/Ubuntu package's own script: /usr/sbin/rabbitmq-server is a wrapper that
# switches to the rabbitmq user and writes its output under /var/log/rabbitmq.
PACKAGED_SERVER = Path("/usr/lib/rabbitmq/bin/rabbitmq-server")
START_TIMEOUT = 60.0
STOP_TIMEOUT = 30.0


def _server_script() -> str:
    configured = os.environ.get("STENO_TEST_RABBITMQ_SERVER")
    if configured:
        return configured
    if PACKAGED_SERVER.exists():
        return str(PACKAGED_SERVER)
    found = shutil.which("rabbitmq-server")
    if found is None:
        pytest.fail(
            "this test runs a RabbitMQ node of its own and cannot find rabbitmq-server: "
            "install it (`apt-get install rabbitmq-server`) or set STENO_TEST_RABBITMQ_SERVER "
            "to the rabbitmq-server script"
        )
    return found


def _speaks_amqp(port: int) -> bool:
    """True once the node answers an AMQP 0-9-1 protocol header with Connection.Start,
    which it does only when it has finished booting."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
            sock.sendall(b"AMQP\x00\x00\x09\x01")
            return sock.recv(1) == b"\x01"  # a method frame
    except OSError:
        return False


class PrivateRabbitMQ:
    """One RabbitMQ node that only this test uses, started and stopped at will."""

    def __init__(self, root: Path) -> None:
        self.port = free_port()
        self.url = f"amqp://guest:guest@127.0.0.1:{self.port}/"
        self._script = _server_script()
        self._log = root / "node.log"
        home = root / "home"
        home.mkdir()
        config = root / "rabbitmq.conf"
        config.write_text(f"listeners.tcp.1 = 127.0.0.1:{self.port}\n")
        plugins = root / "enabled_plugins"
        plugins.write_text("[].\n")
        env_file = root / "rabbitmq-env.conf"
        env_file.write_text("")
        self._env = {
            **os.environ,
            # The Erlang cookie is made here, not in the user's home directory.
            "HOME": str(home),
            "RABBITMQ_NODENAME": f"steno-test-{uuid.uuid4().hex[:8]}@localhost",
            "RABBITMQ_NODE_PORT": str(self.port),
            # Clear of the shared node's distribution port (25672 by default).
            "RABBITMQ_DIST_PORT": str(free_port()),
            "RABBITMQ_MNESIA_BASE": str(root / "mnesia"),
            "RABBITMQ_LOG_BASE": str(root / "log"),
            "RABBITMQ_CONFIG_FILE": str(config),
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(root / "advanced.config"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(plugins),
            # Not the system's rabbitmq-env.conf, which names the shared node.
            "RABBITMQ_CONF_ENV_FILE": str(env_file),
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
            "ERL_EPMD_ADDRESS": "127.0.0.1",
        }
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> float:
        """Starts the node and waits until it speaks AMQP; returns how long that took."""
        assert self._process is None, "already running"
        began = time.monotonic()
        with self._log.open("ab") as out:
            self._process = subprocess.Popen(
                [self._script],
                env=self._env,
                stdout=out,
                stderr=subprocess.STDOUT,
                # Its own process group, so that stop() can end the node and only the node.
                start_new_session=True,
            )
        while not _speaks_amqp(self.port):
            status = self._process.poll()
            if status is not None:
                self._process = None
                pytest.fail(
                    f"the private RabbitMQ node ({self._script}) exited with status {status} "
                    f"on start; its output, from {self._log}:\n{self._tail()}"
                )
            if time.monotonic() - began > START_TIMEOUT:
                self.stop()
                pytest.fail(
                    f"the private RabbitMQ node did not accept AMQP connections within "
                    f"{START_TIMEOUT:.0f}s:\n{self._tail()}"
                )
            time.sleep(0.1)
        return time.monotonic() - began

    def stop(self) -> None:
        """Stops the node the way an operator or Kubernetes does: SIGTERM, then waits."""
        process, self._process = self._process, None
        if process is None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    def _tail(self) -> str:
        return "\n".join(self._log.read_text(errors="replace").splitlines()[-30:])


@pytest.fixture
def rabbitmq(tmp_path: Path) -> Iterator[PrivateRabbitMQ]:
    node = PrivateRabbitMQ(tmp_path)
    started = node.start()
    print(f"private RabbitMQ node up in {started:.1f}s")
    try:
        yield node
    finally:
        node.stop()
