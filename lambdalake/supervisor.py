"""Process control through supervisord: one daemon per data dir supervises every engine.

Each engine's programs run in the foreground under supervisord, which restarts them when they
die, keeps their logs under ``<data_dir>/logs`` and stops whole process groups on shutdown.
Every process it starts inherits ``LAMBDALAKE_HOME=<data_dir>`` and supervisord's session, so
`down` can find and end anything left behind (e.g. an Airflow task process that left its group),
and only that: a process of another data dir, or no platform's, is never touched.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import xmlrpc.client
from collections.abc import Iterable
from pathlib import Path

import psutil
from supervisor.xmlrpc import SupervisorTransport

from lambdalake.config import Config
from lambdalake.engines import Program
from lambdalake.errors import EngineError

MARKER = "LAMBDALAKE_HOME"


def _session(pid: int) -> int | None:
    try:
        return os.getsid(pid)
    except (ProcessLookupError, PermissionError):
        return None  # ended meanwhile


def _quote(value: str) -> str:
    # supervisord expands %(name)s in its config: a literal % must be doubled
    return '"' + value.replace("%", "%%").replace('"', '\\"') + '"'


class Supervisor:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.run_dir = config.data_dir / "run"
        self.conf_file = self.run_dir / "supervisord.conf"
        self.socket = self.run_dir / "supervisor.sock"
        self.pid_file = self.run_dir / "supervisord.pid"
        #: the session id of every supervisord started for this data dir (its pid: it calls setsid)
        self.sessions_file = self.run_dir / "sessions"

    def log_file(self, program: str) -> Path:
        return self.config.logs_dir / f"{program}.log"

    def render(self, programs: Iterable[Program]) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.config.logs_dir.mkdir(parents=True, exist_ok=True)
        lines = [
            "; written by lambdalake; edits are overwritten",
            "[unix_http_server]", f"file={self.socket}", "chmod=0700", "",
            "[supervisord]", f"logfile={self.config.logs_dir / 'supervisord.log'}", f"pidfile={self.pid_file}",
            f"childlogdir={self.config.logs_dir}", "", 
            "[rpcinterface:supervisor]",
            "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface", "",
            "[supervisorctl]", f"serverurl=unix://{self.socket}", "",
        ]
        for priority, program in enumerate(programs, start=1):
            lines += [
                f"[program:{program.name}]",
                "command=" + " ".join(_quote(part) for part in program.command),
                f"priority={priority * 10}",
                "autostart=false",
                "autorestart=true",
                "startsecs=3",
                "startretries=2",
                "stopasgroup=true",
                "killasgroup=true",
                f"stopwaitsecs={program.stop_wait_seconds}",
                f"stopsignal={program.stop_signal}",
                "redirect_stderr=true",
                f"stdout_logfile={self.log_file(program.name)}",
                "stdout_logfile_maxbytes=50MB",
                "stdout_logfile_backups=2",
            ]
            if program.user:
                lines.append(f"user={program.user}")
            if program.directory:
                lines.append(f"directory={program.directory}")
            if program.environment:
                lines.append("environment=" + ",".join(f"{k}={_quote(v)}" for k, v in program.environment.items()))
            lines.append("")
        self.conf_file.write_text("\n".join(lines))

    def rpc(self) -> xmlrpc.client.ServerProxy:
        transport = SupervisorTransport(None, None, f"unix://{self.socket}")
        return xmlrpc.client.ServerProxy("http://127.0.0.1", transport=transport)

    def is_running(self) -> bool:
        if not self.socket.exists():
            return False
        try:
            return self.rpc().supervisor.getState()["statename"] == "RUNNING"
        except (OSError, xmlrpc.client.Fault):
            return False

    def ensure_running(self) -> None:
        """Start supervisord (it daemonizes itself), or make a running one load the new config."""
        if self.is_running():
            added, changed, removed = self.rpc().supervisor.reloadConfig()[0]
            for name in changed + removed:
                self.rpc().supervisor.stopProcessGroup(name)
                self.rpc().supervisor.removeProcessGroup(name)
            for name in added + changed:
                self.rpc().supervisor.addProcessGroup(name)
            return
        env = {**os.environ, MARKER: str(self.config.data_dir)}
        supervisord = str(Path(sys.executable).parent / "supervisord")
        subprocess.run([supervisord, "-c", str(self.conf_file)], check=True, env=env)
        deadline = time.monotonic() + 20
        while not self.is_running():
            if time.monotonic() > deadline:
                raise EngineError(f"supervisord did not start; see {self.config.logs_dir / 'supervisord.log'}")
            time.sleep(0.2)
        with self.sessions_file.open("a") as sessions:
            sessions.write(f"{os.getsid(self.rpc().supervisor.getPID())}\n")

    def state(self, program: str) -> str:
        """RUNNING, STARTING, BACKOFF, FATAL, EXITED, STOPPED, ...; NOT RUNNING without supervisord."""
        if not self.is_running():
            return "NOT RUNNING"
        try:
            return self.rpc().supervisor.getProcessInfo(program)["statename"]
        except xmlrpc.client.Fault:
            return "UNKNOWN"

    def start(self, program: str) -> None:
        if self.state(program) in ("RUNNING", "STARTING"):
            return
        try:
            self.rpc().supervisor.startProcess(program, False)
        except xmlrpc.client.Fault as fault:
            raise EngineError(f"{program}: supervisord could not start it: {fault.faultString}") from fault

    def stop(self, program: str) -> None:
        """Stop one program (supervisord waits for it to end)."""
        if self.state(program) not in ("RUNNING", "STARTING", "BACKOFF"):
            return
        try:
            self.rpc().supervisor.stopProcess(program, True)
        except xmlrpc.client.Fault as fault:
            raise EngineError(f"{program}: supervisord could not stop it: {fault.faultString}") from fault

    def log_tail(self, program: str, lines: int = 30) -> str:
        path = self.log_file(program)
        if not path.exists():
            return f"(no log at {path})"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def stop_together(self, programs: Iterable[str], timeout: float) -> None:
        """Stop the programs at once and wait until each has ended (or timeout; supervisord kills
        one that outlives its stop timeout): the nodes of one cluster (Engine.stop_order)."""
        running = [name for name in programs if self.state(name) in ("RUNNING", "STARTING", "BACKOFF")]
        for name in running:
            try:
                self.rpc().supervisor.stopProcess(name, False)
            except xmlrpc.client.Fault:
                continue  # ended meanwhile
        deadline = time.monotonic() + timeout
        while any(self.state(name) in ("RUNNING", "STARTING", "BACKOFF", "STOPPING") for name in running):
            if time.monotonic() > deadline:
                return  # supervisord's own shutdown kills what is left after its stop timeout
            time.sleep(0.5)

    def shutdown(self, timeout: float = 180) -> None:
        """Stop every program (in reverse start order) and supervisord itself; wait until gone."""
        if not self.is_running():
            return
        pid = int(self.pid_file.read_text()) if self.pid_file.exists() else None
        self.rpc().supervisor.shutdown()
        if pid is None:
            return
        try:
            psutil.Process(pid).wait(timeout=timeout)
        except psutil.NoSuchProcess:
            pass
        except psutil.TimeoutExpired as exc:
            raise EngineError(f"supervisord (pid {pid}) still running after {timeout:.0f}s") from exc

    def leftovers(self) -> list[psutil.Process]:
        """Processes started for this data dir that are still alive: found by their environment, or
        listening on one of the platform's endpoints in the session of one of this data dir's
        supervisords. A process that retitles itself (Airflow's api-server does) can overwrite its
        environment, and one whose parent was killed outlives it: it still holds the port, and the
        next `up` would find the port taken. A port holder in any other session is not ours (another
        clone's platform, or a user's service): it is left alone."""
        found: dict[int, psutil.Process] = {}
        for proc in psutil.process_iter():
            try:
                if proc.pid != os.getpid() and proc.environ().get(MARKER) == str(self.config.data_dir):
                    found[proc.pid] = proc
            except (psutil.AccessDenied, psutil.NoSuchProcess, psutil.ZombieProcess):
                continue
        sessions = self._sessions() | {_session(pid) for pid in found}
        sessions -= {None, os.getsid(0)}  # the caller's own session (a shell, CI) is never the platform's
        for pid in {pid for pid, _ in self._port_holders()}:
            if _session(pid) in sessions:
                try:
                    found.setdefault(pid, psutil.Process(pid))
                except psutil.NoSuchProcess:
                    continue
        return list(found.values())

    def strangers(self) -> list[tuple[str, str]]:
        """The platform's endpoint ports that a process of no platform of this data dir listens on,
        each as (config key, "port N is held by pid P (its command line)"). `up` cannot start there."""
        ours = {proc.pid for proc in self.leftovers()}
        keys = self.endpoint_ports()
        taken = []
        for pid, port in sorted(self._port_holders(), key=lambda held: held[1]):
            if pid in ours:
                continue
            try:
                command = " ".join(psutil.Process(pid).cmdline())[:100]
            except psutil.Error:
                command = "?"
            taken.append((keys[port], f"port {port} is held by pid {pid} ({command})"))
        return taken

    def _port_holders(self) -> set[tuple[int, int]]:
        """(pid, port) for every listener (not this process) on one of the endpoint ports: one
        process may hold several (a Kafka broker, SeaweedFS)."""
        ports = self.endpoint_ports()
        return {(c.pid, c.laddr.port) for c in psutil.net_connections(kind="tcp")
                if c.status == psutil.CONN_LISTEN and c.pid and c.pid != os.getpid() and c.laddr
                and c.laddr.port in ports}

    def _sessions(self) -> set[int | None]:
        """The sessions of this data dir's supervisords, as recorded when each started."""
        if not self.sessions_file.exists():
            return set()
        return {int(line) for line in self.sessions_file.read_text().split()}

    def crash(self, command_part: str | None = None) -> int:
        """SIGKILL, with their process groups (children of children too), the platform's processes
        whose command line holds command_part, or all of them: what a lost host, the OOM killer or
        `kill -9` does. For fault injection (tests, bench/recovery.py). Returns how many were killed."""
        procs, groups = [], set()
        for proc in self.leftovers():
            try:
                if command_part is None or any(command_part in part for part in proc.cmdline()):
                    groups.add(os.getpgid(proc.pid))
                    procs.append(proc)
            except (psutil.NoSuchProcess, ProcessLookupError):
                continue  # ended meanwhile (a short-lived helper)
        # all stopped first, then all killed: killed one group at a time, supervisord lived long
        # enough to restart a program it saw die, and that new process outlived the "crash"
        # (seen in CI: a flink-keeper and an Airflow process left behind)
        for proc in procs:
            try:
                proc.suspend()
            except psutil.NoSuchProcess:
                continue
        for group in groups - {os.getpgid(0)}:
            try:
                os.killpg(group, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for proc in procs:  # each one too: those in the caller's own process group were skipped above
            try:
                proc.kill()
            except psutil.NoSuchProcess:
                continue
        psutil.wait_procs(procs, timeout=30)
        return len(procs)

    def endpoint_ports(self) -> dict[int, str]:
        """The TCP ports the platform's engines listen on: port -> its config key."""
        from lambdalake.engines import all_engines

        return {port: key for engine in all_engines(self.config) for port, key in engine.ports().items()}

    def sweep(self, grace: float = 10) -> list[str]:
        """End leftovers: SIGTERM, then SIGKILL after grace seconds. Returns what was ended."""
        procs = self.leftovers()
        ended = [f"{p.pid} {' '.join(p.cmdline())[:80]}" for p in procs if p.is_running()]
        for proc in procs:
            try:
                proc.terminate()
            except psutil.NoSuchProcess:
                pass
        _, alive = psutil.wait_procs(procs, timeout=grace)
        for proc in alive:
            try:
                proc.kill()
            except psutil.NoSuchProcess:
                pass
        psutil.wait_procs(alive, timeout=5)
        if not self.leftovers():  # nothing of theirs is left: a recorded session id could be reused
            self.sessions_file.unlink(missing_ok=True)
        return ended
