"""Nothing the platform runs listens beyond the configured host (127.0.0.1 by default).

Every listening TCP socket of every process the platform started (engines, helpers, their
children: PyFlink's Python workers, Airflow's task runners) is listed with psutil while jobs run.
One exception is allowed, and the README's security section names it: the TaskManager's Beam
gRPC servers, through which it talks to PyFlink's Python workers, on ephemeral ports. Beam builds
them with `NettyServerBuilder.forPort(port)`, which binds every interface whatever address it
was given, and Flink has no setting for it.

Each port on the host comes from the config: the engines' endpoint ports, and Flink's
`[flink] internal_ports` range for the servers Flink would otherwise put on random ports.
"""

from __future__ import annotations

import ipaddress
import time

import psutil

from lambdalake import jobs
from lambdalake.config import Config
from lambdalake.engines import fetch_json
from lambdalake.engines.flink import Flink
from lambdalake.supervisor import Supervisor

TASK_MANAGER = "org.apache.flink.runtime.taskexecutor.TaskManagerRunner"
JOB_MANAGER = "org.apache.flink.runtime.entrypoint.StandaloneSessionClusterEntrypoint"
#: Linux's default ip_local_port_range starts here: where random ports land
EPHEMERAL = 32768


def platform_processes(config: Config) -> dict[int, psutil.Process]:
    found: dict[int, psutil.Process] = {}
    for proc in Supervisor(config).leftovers():
        try:
            for each in [proc, *proc.children(recursive=True)]:
                found[each.pid] = each
        except psutil.NoSuchProcess:
            continue
    return found


def binds_host(address: str, host: str) -> bool:
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip == ipaddress.ip_address(host)


def test_every_listening_socket_binds_the_configured_host(config: Config, running_job: str) -> None:
    assert_every_socket_binds_the_host(config, running_job)


def assert_every_socket_binds_the_host(config: Config, running_job: str) -> None:
    """Every listening socket of the platform's processes, with running_job's Python workers up."""
    deadline = time.monotonic() + 120
    while not jobs.every_task_running(config, running_job):  # each Python operator starts its worker as it opens
        assert time.monotonic() < deadline, f"{running_job} never ran"
        time.sleep(1)
    time.sleep(10)
    procs = platform_processes(config)
    configured = set(Supervisor(config).endpoint_ports()) | set(config.flink.internal_port_range)
    listening, wrong, allowed, unconfigured = [], [], [], []
    for connection in psutil.net_connections(kind="inet"):
        if connection.status != psutil.CONN_LISTEN or connection.pid not in procs:
            continue
        proc = procs[connection.pid]
        port = connection.laddr.port
        try:
            what = f"{proc.name()} (pid {proc.pid}) on {connection.laddr.ip}:{port}"
            command = proc.cmdline()
        except psutil.NoSuchProcess:
            continue
        listening.append(what)
        task_manager = TASK_MANAGER in command
        if not binds_host(connection.laddr.ip, config.host):
            (allowed if task_manager and port >= EPHEMERAL else wrong).append(what)
        elif port not in configured and (JOB_MANAGER in command or (task_manager and port < EPHEMERAL)):
            # a TaskManager's random port on the host is a query's result server
            # (taskmanager.collect-sink.port: two queries at once need two ports)
            unconfigured.append(what)
    print(f"{len(listening)} listening sockets; the TaskManager's Beam gRPC servers on every interface: {allowed}")
    assert len(listening) >= 6, listening  # PostgreSQL, Kafka, Flink, Trino, Airflow at least
    assert not wrong, f"listening beyond {config.host}: {wrong}"
    assert not unconfigured, f"Flink listening on ports the config does not give it: {unconfigured}"
    # the TaskManagers' RPC and data ports, as Flink reports them, from [flink] internal_ports
    taskmanagers = fetch_json(f"{Flink(config).rest_url}/taskmanagers")["taskmanagers"]
    assert len(taskmanagers) == len(Flink(config).taskmanagers), taskmanagers
    for taskmanager in taskmanagers:
        rpc_port = int(taskmanager["path"].split("@", 1)[1].split("/", 1)[0].rsplit(":", 1)[1])
        assert {rpc_port, taskmanager["dataPort"]} <= set(config.flink.internal_port_range), taskmanager
