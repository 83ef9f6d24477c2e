"""A throwaway Airflow home for ``dag.test()`` in users' tests (used by the ``spotfire_airflow_home`` fixture).

:class:`AirflowHome` points Airflow at a temporary directory with its own sqlite database (migrated) and
dags folder, through the ``AIRFLOW__...`` environment variables, and re-reads them if Airflow was already
imported (test modules usually import Airflow at collection time, before any fixture runs). Airflow is
imported only inside the methods, so importing this module stays cheap.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any


class AirflowHome:
    """A temporary ``AIRFLOW_HOME`` with a migrated sqlite database and a ``dags`` folder."""

    def __init__(self, base_dir: str | Path | None = None) -> None:
        self.path = Path(tempfile.mkdtemp(prefix="spotfire-airflow-home-", dir=base_dir))
        self.dags_folder = self.path / "dags"
        self.database = self.path / "airflow.db"
        self._saved_env: dict[str, str | None] = {}

    def environment(self) -> dict[str, str]:
        """The ``AIRFLOW__...`` variables that point Airflow at this home."""
        return {
            "AIRFLOW_HOME": str(self.path),
            "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags_folder),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(self.path / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{self.database}",
            "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(self.path / "logs"),
        }

    def activate(self) -> AirflowHome:
        """Set the environment, re-read it if Airflow is loaded already, and migrate the database."""
        self.dags_folder.mkdir(parents=True, exist_ok=True)
        for key, value in self.environment().items():
            self._saved_env.setdefault(key, os.environ.get(key))
            os.environ[key] = value
        _reconfigure_airflow()
        from airflow.utils import db

        db.resetdb()
        return self

    def deactivate(self) -> None:
        """Restore the previous environment (and Airflow's view of it) and delete the directory."""
        for key, value in self._saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        self._saved_env.clear()
        _reconfigure_airflow()
        shutil.rmtree(self.path, ignore_errors=True)

    def install_dag(self, source: str | Path, *resources: str) -> Path:
        """Copy a DAG file (and sibling folders or files named in ``resources``) into the dags folder."""
        source = Path(source)
        if not source.is_file():
            raise FileNotFoundError(f"DAG file {source} does not exist")
        target = self.dags_folder / source.name
        shutil.copyfile(source, target)
        for name in resources:
            src = source.parent / name
            if src.is_dir():
                shutil.copytree(src, self.dags_folder / name, dirs_exist_ok=True)
            elif src.is_file():
                shutil.copyfile(src, self.dags_folder / name)
            else:
                raise FileNotFoundError(f"resource {src} of the DAG file does not exist")
        return target

    def load_dag(self, source: str | Path, dag_id: str, *resources: str) -> Any:
        """Install ``source`` in the dags folder, parse it and return the DAG ``dag_id`` (ready for ``test()``)."""
        path = self.install_dag(source, *resources)
        bag = _dag_bag(path)
        if bag.import_errors:
            raise ImportError(f"{path} does not import: {bag.import_errors}")
        if dag_id not in bag.dags:
            raise KeyError(f"{path} has no DAG {dag_id!r} (it has {sorted(bag.dags)})")
        _serialize_below_airflow_3_2(path)
        return bag.dags[dag_id]


def _reconfigure_airflow() -> None:
    """Make an already imported Airflow re-read the database and folder settings from the environment."""
    if "airflow.settings" not in sys.modules:
        return  # Airflow reads the environment when it is first imported
    from airflow import settings

    settings.configure_vars()
    settings.reconfigure_orm()


def _dag_bag(path: Path) -> Any:
    try:
        from airflow.dag_processing.dagbag import DagBag
    except ImportError:  # Airflow < 3.2
        from airflow.models.dagbag import DagBag  # type: ignore[no-redef,attr-defined,unused-ignore]
    return DagBag(dag_folder=str(path))


def _serialize_below_airflow_3_2(path: Path) -> None:
    """Airflow < 3.2's ``dag.test()`` needs the DAG serialized in the database first (3.2+ does it)."""
    try:
        from airflow.models.dagbag import DagBag, sync_bag_to_db  # type: ignore[attr-defined,unused-ignore]
    except ImportError:
        return
    from airflow.dag_processing.bundles.manager import DagBundlesManager

    DagBundlesManager().sync_bundles_to_db()
    sync_bag_to_db(DagBag(dag_folder=str(path)), "dags-folder", None)
