"""Fixtures of the sweep tests: a tiny base run configuration and a throwaway PostgreSQL server."""
from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
import yaml

# scratch:bert-tiny on a few SQuAD questions: a trial trains in about a second; process start dominates.
TINY_BASE = {
    "model": "scratch:bert-tiny", "train": "builtin:squad-sample", "train_split": "train", "eval_split": "test",
    "limit": 16, "eval_limit": 8, "max_steps": 2, "eval_steps": 1, "logging_steps": 1, "train_batch_size": 8,
    "eval_batch_size": 16, "max_seq_length": 128, "doc_stride": 32, "precision": "fp32", "save_total_limit": 1,
    "warmup_ratio": 0.0,
}


@pytest.fixture
def base_yaml(tmp_path) -> Path:
    path = tmp_path / "base.yaml"
    path.write_text(yaml.safe_dump(TINY_BASE), encoding="utf-8")
    return path


def _write_yaml(path: Path, obj) -> Path:
    path.write_text(obj if isinstance(obj, str) else yaml.safe_dump(obj, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture
def write_yaml():
    """write_yaml(path, text_or_mapping) -> path"""
    return _write_yaml


def _pg_bin() -> Path | None:
    """A directory with initdb, pg_ctl and createdb (PATH entries resolved through symlinks, then Debian's)."""
    need = ("initdb", "pg_ctl", "createdb")
    candidates = [Path(f).resolve().parent for f in filter(None, map(shutil.which, need))]
    candidates += [Path(d) for d in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)]
    for d in candidates:
        if all(os.access(d / n, os.X_OK) for n in need):
            return d
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def postgres_url():
    """A PostgreSQL server on a free loopback port (trust auth), torn down after the module.

    PostgreSQL refuses to run as root: as root, initdb and pg_ctl run as the `postgres` system user.
    Skips with the reason when the server binaries (Debian `postgresql`) or the driver are absent.
    """
    pytest.importorskip("psycopg2", reason="needs psycopg2 (pip install psycopg2-binary)")
    bindir = _pg_bin()
    if bindir is None:
        pytest.skip("needs the PostgreSQL server binaries (Debian package postgresql; `make postgres` installs it)")
    prefix: list[str] = []
    data_root = Path(tempfile.mkdtemp(prefix="encoderlab-pg-"))
    if os.geteuid() == 0:
        try:
            pg = pwd.getpwnam("postgres")
        except KeyError:
            shutil.rmtree(data_root, ignore_errors=True)
            pytest.skip("running as root and there is no `postgres` user to run the server as")
        os.chown(data_root, pg.pw_uid, pg.pw_gid)
        prefix = ["runuser", "-u", "postgres", "--"]
    data = data_root / "data"
    port = _free_port()

    def run(*cmd, check=True):
        return subprocess.run([*prefix, *map(str, cmd)], capture_output=True, text=True, check=check, timeout=120)

    try:
        run(bindir / "initdb", "-D", data, "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8")
        run(bindir / "pg_ctl", "-D", data, "-w", "-l", data_root / "server.log", "-o",
            f"-p {port} -h 127.0.0.1 -k {data_root} -F -c max_connections=100", "start")
        run(bindir / "createdb", "-h", "127.0.0.1", "-p", port, "-U", "postgres", "sweeps")
    except subprocess.CalledProcessError as exc:
        run(bindir / "pg_ctl", "-D", data, "-m", "immediate", "stop", check=False)
        shutil.rmtree(data_root, ignore_errors=True)
        pytest.fail(f"could not start PostgreSQL: {exc.stderr or exc.stdout}")
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/sweeps"
    finally:
        run(bindir / "pg_ctl", "-D", data, "-m", "immediate", "stop", check=False)
        time.sleep(0.2)
        shutil.rmtree(data_root, ignore_errors=True)
