"""Helpers for DAG tests: install a DAG file in the dags folder, run it, read results.

The throwaway AIRFLOW_HOME and its dags folder are set up by ``tests/conftest.py``.
"""

from __future__ import annotations

import os
import shutil
from importlib.metadata import version
from pathlib import Path

from packaging.version import Version

REPO = Path(__file__).resolve().parents[1]
EXAMPLE_DAGS = REPO / "example_dags"
# read from the metadata, so importing this module does not import Airflow (conftest configures it first)
AIRFLOW_BELOW_3_2 = Version(version("apache-airflow-core")) < Version("3.2")


def dags_folder() -> Path:
    return Path(os.environ["AIRFLOW__CORE__DAGS_FOLDER"])


def install_dag_file(source: Path | str, *, resources: tuple[str, ...] = ()) -> Path:
    """Copy a DAG file (and named sibling folders, e.g. ``jobs``) into the dags folder."""
    source = Path(source)
    target = dags_folder() / source.name
    shutil.copyfile(source, target)
    for name in resources:
        src = source.parent / name
        if src.is_dir():
            shutil.copytree(src, dags_folder() / name, dirs_exist_ok=True)
    return target


def load_dag(path: Path | str, dag_id: str):
    """Parse one DAG file from the dags folder and return the DAG ``dag_id``."""
    try:
        from airflow.dag_processing.dagbag import DagBag
    except ImportError:  # Airflow < 3.2
        from airflow.models.dagbag import DagBag  # type: ignore[no-redef]

    bag = DagBag(dag_folder=str(path))
    assert not bag.import_errors, bag.import_errors
    assert dag_id in bag.dags, f"{dag_id} not in {sorted(bag.dags)}"
    return bag.dags[dag_id]


def run_dag(source: Path | str, dag_id: str, *, resources: tuple[str, ...] = (), **test_kwargs):
    """Install ``source`` in the dags folder, run ``dag.test()`` and return the DagRun.

    Use :func:`task_states` on the result to assert per-task outcomes.
    """
    path = install_dag_file(source, resources=resources)
    dag = load_dag(path, dag_id)
    _serialize_for_airflow_below_3_2(path)
    return dag.test(**test_kwargs)


def _serialize_for_airflow_below_3_2(path: Path) -> None:
    """Airflow < 3.2's ``dag.test()`` needs the DAG serialized in the DB first (3.2+ does it itself)."""
    if not AIRFLOW_BELOW_3_2:
        return  # (and there airflow.models.dagbag is a deprecated alias)
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.models.dagbag import DagBag, sync_bag_to_db

    DagBundlesManager().sync_bundles_to_db()
    sync_bag_to_db(DagBag(dag_folder=str(path)), "dags-folder", None)


def task_states(dag_run) -> dict[str, str]:
    """``{task_id (with map index for mapped tasks): state}`` of a finished DagRun."""
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session

    with create_session() as session:
        tis = session.query(TaskInstance).filter(
            TaskInstance.dag_id == dag_run.dag_id, TaskInstance.run_id == dag_run.run_id
        )
        return {
            (ti.task_id if ti.map_index < 0 else f"{ti.task_id}[{ti.map_index}]"): str(ti.state) for ti in tis
        }


def xcom_value(dag_run, task_id: str, key: str = "return_value", map_index: int = -1):
    """An XCom value pushed during ``dag_run`` (deserialised)."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        row = (
            session.query(XComModel)
            .filter(
                XComModel.dag_id == dag_run.dag_id,
                XComModel.run_id == dag_run.run_id,
                XComModel.task_id == task_id,
                XComModel.key == key,
                XComModel.map_index == map_index,
            )
            .one_or_none()
        )
        if row is None:
            return None
        return XComModel.deserialize_value(row)
