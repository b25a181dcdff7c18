"""Where a sweep lives: its directory, its Optuna storage (SQLite by default, PostgreSQL to share), its study."""
from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

from ..errors import EncoderlabError
from .config import SweepSpec

STUDY_ATTR = "encoderlab_sweep"        # study user attribute holding the sweep (spec + base configuration)
DEFAULT_HEARTBEAT = 10                 # seconds between a running trial's heartbeats
MAX_RETRY = 3                          # re-queues of a killed trial before it stays failed
SCHEMA_RACE_RETRIES = 5                # re-opens of a database whose schema another process is creating
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


def check_name(name: str) -> str:
    if not NAME_RE.match(name or ""):
        raise EncoderlabError(f"sweep name {name!r}: use letters, digits, '.', '_' or '-' (at most 100 characters)")
    return name


def sweep_dir_for(name: str, sweep_dir: str | Path | None = None) -> Path:
    """The local directory of a sweep: trial run directories, logs, SQLite file, report."""
    return Path(sweep_dir) if sweep_dir else Path("sweeps") / name


def default_storage(sweep_dir: Path) -> str:
    return f"sqlite:///{(sweep_dir / 'sweep.db').resolve()}"


def redact(url: str) -> str:
    """The storage URL with its password hidden (for messages)."""
    return re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", url)


def open_storage(url: str, *, heartbeat: int | None = DEFAULT_HEARTBEAT, grace: int | None = None):
    """An Optuna RDBStorage whose stale trials (worker killed, machine lost) are failed and re-queued.

    A running trial records a heartbeat every `heartbeat` seconds; one silent for `grace` seconds
    (default 3 heartbeats) is marked FAIL by the next worker that asks for a trial, and
    `RetryHeartbeatStaleTrialCallback` puts its parameters back in the queue (WAITING).
    """
    import warnings

    import optuna
    import sqlalchemy.exc

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if not re.match(r"^[a-z][a-z0-9+]*://", url):
        raise EncoderlabError(f"--storage {redact(url)!r}: expected a database URL such as sqlite:///sweep.db "
                              f"or postgresql://user@host:5432/db")
    user_url, url = url, driver_url(url)
    engine_kwargs: dict[str, Any] = {}
    if url.startswith("sqlite"):
        # Several local processes write one SQLite file: wait for its lock instead of failing at once.
        engine_kwargs = {"connect_args": {"timeout": 120}}
    else:
        engine_kwargs = {"pool_pre_ping": True}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # heartbeat / retry callback are flagged experimental
        try:
            for attempt in range(SCHEMA_RACE_RETRIES + 1):
                try:
                    return optuna.storages.RDBStorage(
                        url, engine_kwargs=engine_kwargs, heartbeat_interval=heartbeat,
                        grace_period=grace or (3 * heartbeat if heartbeat else None),
                        heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(
                            max_retry=MAX_RETRY) if heartbeat else None)
                except sqlalchemy.exc.DBAPIError as exc:
                    # Processes opening a new database at once all create Optuna's schema; the losers see "table
                    # ... already exists" or a duplicate version row. Once the winner commits, opening works.
                    if attempt == SCHEMA_RACE_RETRIES or not _schema_race(exc):
                        raise
                    time.sleep(0.2 * (attempt + 1))
        except ImportError as exc:
            raise EncoderlabError(f"storage {redact(user_url)}: database driver missing ({exc.__cause__ or exc}); "
                                  f"for PostgreSQL pip install psycopg2-binary") from exc
        except (sqlalchemy.exc.SQLAlchemyError, sqlalchemy.exc.ArgumentError) as exc:
            first = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
            raise EncoderlabError(f"storage {redact(user_url)}: cannot open ({first})") from exc


def _schema_race(exc) -> bool:
    import sqlalchemy.exc

    return isinstance(exc, sqlalchemy.exc.IntegrityError) or "already exists" in str(getattr(exc, "orig", exc))


def driver_url(url: str) -> str:
    """postgresql://... -> postgresql+psycopg2://... when psycopg (3), SQLAlchemy 2.1's default, is absent."""
    import importlib.util

    for scheme in ("postgresql://", "postgres://"):
        if url.startswith(scheme) and importlib.util.find_spec("psycopg") is None \
                and importlib.util.find_spec("psycopg2") is not None:
            return "postgresql+psycopg2://" + url[len(scheme):]
    return url


def sweep_record(spec: SweepSpec, base: dict) -> dict:
    return {"version": 1, "spec": spec.to_dict(), "base": base}


def create_or_join(name: str, storage, spec: SweepSpec, base: dict, *, seed: int | None = None):
    """Create the study `name`, or join it when it exists with the same sweep and base configuration."""
    import optuna

    record = sweep_record(spec, base)
    study = optuna.create_study(study_name=name, storage=storage, sampler=spec.sampler(seed), pruner=spec.pruner(),
                                direction=spec.direction, load_if_exists=True)
    if seed is not None and study.trials:
        # a resumed or joining worker: a fresh sampler with the same seed would replay the first worker's draws
        study.sampler = spec.sampler(seed + len(study.trials))
    stored = study.user_attrs.get(STUDY_ATTR)
    if stored is None:
        if study.direction.name.lower() != spec.direction:
            raise EncoderlabError(f"sweep {name}: the storage holds a study of that name optimizing in the other "
                                  f"direction; choose another --name")
        study.set_user_attr(STUDY_ATTR, record)
    elif _canon(stored) != _canon(record):
        what = "sweep file" if _canon(stored["spec"]) != _canon(record["spec"]) else "base configuration"
        raise EncoderlabError(f"sweep {name} already exists in {redact(storage.url)} with a different {what}; "
                              f"rerun with the same files to continue it, or choose another --name")
    return study


def load_sweep_study(name: str, storage):
    """(study, spec, base config) of an existing sweep; the study has the sweep's own sampler and pruner."""
    import optuna

    try:
        study = optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        raise EncoderlabError(f"no sweep named {name!r} in {redact(storage.url)}") from None
    except Exception as exc:  # noqa: BLE001  (database errors: one line)
        raise EncoderlabError(f"storage {redact(storage.url)}: cannot read ({str(exc).splitlines()[0]})") from exc
    record = study.user_attrs.get(STUDY_ATTR)
    if record is None:
        raise EncoderlabError(f"study {name!r} in {redact(storage.url)} was not created by encoderlab sweep")
    spec = SweepSpec.from_dict(record["spec"])
    study.sampler, study.pruner = spec.sampler(), spec.pruner()
    return study, spec, record["base"]


def _canon(obj) -> str:
    return json.dumps(obj, sort_keys=True, default=str)
