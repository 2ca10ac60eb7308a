from __future__ import annotations

from pathlib import Path

import pytest

from lambdalake.config import Config, data_size_bytes, load_config
from lambdalake.errors import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "lambdalake.toml"
    path.write_text(text)
    return path


def test_defaults_bind_loopback_and_resolve_paths_against_the_file(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, ""), environ={})
    assert config.host == "127.0.0.1"
    assert config.data_dir == tmp_path / ".lambdalake"
    assert config.cache_dir == Path("~/.cache/lambdalake").expanduser()
    assert config.iceberg.namespaces == ("raw", "speed", "batch", "serving", "meta")


def test_file_then_environment(tmp_path: Path) -> None:
    path = write(tmp_path, '[trino]\nport = 18080\nheap = "2G"\n[paths]\ndata_dir = "/srv/ll"\n')
    config = load_config(path, environ={"LAMBDALAKE__TRINO__PORT": "28080", "LAMBDALAKE__START_TIMEOUT": "5"})
    assert config.trino.port == 28080  # environment wins over the file
    assert config.trino.heap == "2G"  # the file wins over the default
    assert config.start_timeout == 5
    assert config.data_dir == Path("/srv/ll")


def test_tuple_from_environment(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, ""), environ={"LAMBDALAKE__ICEBERG__NAMESPACES": "raw, meta"})
    assert config.iceberg.namespaces == ("raw", "meta")


@pytest.mark.parametrize(("text", "environ", "message"), [
    ("[kafka]\nprot = 1\n", {}, "unknown key(s) prot in [kafka]"),
    ("[kafka]\nport = 'x'\n", {}, "kafka.port = 'x' is not a valid int"),
    ("", {"LAMBDALAKE__FLINK__TASK_SLOTS": "many"}, "flink.task_slots = 'many' is not a valid int"),
    ("", {"LAMBDALAKE__A__B__C": "1"}, "expected LAMBDALAKE__<SECTION>__<KEY>"),
    ("kafka = 3\n", {}, "[kafka] must be a table"),
    ("[kafka\n", {}, "is not valid TOML"),
])
def test_invalid_config_names_the_key(tmp_path: Path, text: str, environ: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as error:
        load_config(write(tmp_path, text), environ=environ)
    assert message in str(error.value)


def test_missing_file_named_by_environment_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(environ={"LAMBDALAKE_CONFIG": str(tmp_path / "nope.toml")})


def test_to_dict_is_plain_json_data(tmp_path: Path) -> None:
    data = load_config(write(tmp_path, ""), environ={}).to_dict()
    assert data["paths"]["data_dir"] == str(tmp_path / ".lambdalake")
    assert data["kafka"]["port"] == Config().kafka.port
    assert data["iceberg"]["namespaces"] == ["raw", "speed", "batch", "serving", "meta"]


def test_the_dedup_horizon_is_whole_seconds_and_the_watermark_trails_two_discoveries(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, '[dedup]\nhorizon = "90 min"\n[kafka]\npartition_discovery = "2 s"\n'),
                         environ={})
    assert config.dedup.horizon_seconds == 5400
    assert config.kafka.watermark_delay_seconds == 4
    with pytest.raises(ConfigError, match="dedup.horizon"):
        _ = load_config(write(tmp_path, '[dedup]\nhorizon = "500 ms"\n'), environ={}).dedup.horizon_seconds
    with pytest.raises(ConfigError, match="dedup.horizon"):
        _ = load_config(write(tmp_path, '[dedup]\nhorizon = "soon"\n'), environ={}).dedup.horizon_seconds


@pytest.mark.parametrize(("text", "expected"), [("2400MB", 2400 * 2**20), ("4GB", 4 * 2**30), ("512kB", 512 * 1024),
                                                ("100B", 100), ("1.5GB", int(1.5 * 2**30))])
def test_trino_data_sizes(text: str, expected: int) -> None:
    assert data_size_bytes(text, "k") == expected


def test_the_batch_memory_defaults_to_trinos_and_a_bad_size_names_the_key(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, ""))
    assert config.batch.memory_bytes(config.trino) == data_size_bytes(config.trino.query_max_memory, "k")
    config = load_config(write(tmp_path, "[batch]\nquery_max_memory = '500MB'\n"))
    assert config.batch.memory_bytes(config.trino) == 500 * 2**20
    with pytest.raises(ConfigError, match=r"batch.query_max_memory = '4G' is not a Trino data size"):
        load_config(write(tmp_path, "[batch]\nquery_max_memory = '4G'\n")).batch.memory_bytes(config.trino)


def test_the_history_retention_is_a_trino_duration(tmp_path: Path) -> None:
    assert load_config(write(tmp_path, "[serving]\nhistory_retention = '90m'\n")).serving.history_seconds == 5400
    with pytest.raises(ConfigError, match=r"serving.history_retention = '7 days' is not a Trino duration"):
        load_config(write(tmp_path, "[serving]\nhistory_retention = '7 days'\n")).serving.history_seconds


def test_flinks_internal_ports_are_one_range_apart_from_its_rest_and_rpc_ports(tmp_path: Path) -> None:
    from lambdalake.engines.flink import FlinkNode, flink_settings

    config = load_config(write(tmp_path, "[flink]\ninternal_ports = ' 7000 - 7009 '\n"), environ={})
    assert config.flink.internal_port_range == range(7000, 7010)
    node = FlinkNode(rpc_address="127.0.0.1", bind_host="127.0.0.1", advertised_host="127.0.0.1", checkpoints="file:/c",
                     savepoints="file:/s", work_dir="/w", python="python", jobmanager_memory="1g",
                     taskmanager_memory="1g", task_slots=1)
    settings = flink_settings(config, node)
    assert settings["jobmanager.rpc.port"] == 6123
    for key in ("blob.server.port", "taskmanager.rpc.port", "taskmanager.data.bind-port",
                "metrics.internal.query-service.port"):
        assert settings[key] == "7000-7009", key
    for text, error in (("6124", "is not a range of ports"), ("7010-7000", "is not a range of ports"),
                        ("80-90", "is not a range of ports"), ("8000-8100", r"holds flink.rest_port \(8081\)"),
                        ("6100-6130", r"holds flink.rpc_port \(6123\)")):
        bad = load_config(write(tmp_path, f"[flink]\ninternal_ports = '{text}'\n"), environ={})
        with pytest.raises(ConfigError, match=rf"flink.internal_ports = '{text}' {error}"):
            flink_settings(bad, node)
