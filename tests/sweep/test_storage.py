"""Opening a sweep's storage: several processes creating one new SQLite database at the same moment."""
from __future__ import annotations

import multiprocessing

import optuna
import pytest
import sqlalchemy.exc

from encoderlab.errors import EncoderlabError
from encoderlab.sweep import storage as storage_mod
from encoderlab.sweep.storage import open_storage


def test_open_storage_retries_when_another_process_wins_the_schema_race(tmp_path, monkeypatch):
    real = optuna.storages.RDBStorage
    calls = []

    def flaky(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:   # what the loser of the race sees: the version row is already there
            raise sqlalchemy.exc.IntegrityError("INSERT INTO alembic_version", (), Exception("UNIQUE constraint"))
        return real(*args, **kwargs)

    monkeypatch.setattr(optuna.storages, "RDBStorage", flaky)
    monkeypatch.setattr(storage_mod.time, "sleep", lambda s: None)
    storage = open_storage(f"sqlite:///{tmp_path / 'sweep.db'}", heartbeat=None)
    assert len(calls) == 2 and storage.get_all_studies() == []


def test_open_storage_gives_up_with_one_line_when_the_error_persists(tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise sqlalchemy.exc.IntegrityError("INSERT INTO alembic_version", (), Exception("UNIQUE constraint failed"))

    monkeypatch.setattr(optuna.storages, "RDBStorage", broken)
    monkeypatch.setattr(storage_mod.time, "sleep", lambda s: None)
    with pytest.raises(EncoderlabError, match=r"cannot open \(UNIQUE constraint failed\)"):
        open_storage(f"sqlite:///{tmp_path / 'sweep.db'}", heartbeat=None)


def _open_and_create(url: str, name: str, barrier) -> None:
    barrier.wait()
    storage = open_storage(url, heartbeat=None)
    optuna.create_study(study_name=name, storage=storage)


@pytest.mark.slow
def test_processes_opening_one_new_database_at_once_all_succeed(tmp_path):
    url = f"sqlite:///{tmp_path / 'sweep.db'}"
    ctx = multiprocessing.get_context("spawn")
    n = 4
    barrier = ctx.Barrier(n)
    procs = [ctx.Process(target=_open_and_create, args=(url, f"s{i}", barrier)) for i in range(n)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0] * n
    names = {s.study_name for s in open_storage(url, heartbeat=None).get_all_studies()}
    assert names == {f"s{i}" for i in range(n)}
