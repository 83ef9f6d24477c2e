"""Assets declared by the upload operator, and OpenLineage facets of the upload and AS operators."""

from __future__ import annotations

import pandas as pd
import pytest
from airflow.providers.common.compat.sdk import Asset

from airflow_provider_spotfire.operators.library import SpotfireUploadSbdfOperator
from tests.helpers import EXAMPLE_DAGS, run_dag, task_states


class _TI:
    """The part of a task instance the operators use outside a DAG run."""

    def __init__(self):
        self.xcom: dict[str, object] = {}

    def xcom_push(self, key, value):
        self.xcom[key] = value


def test_upload_operator_declares_its_library_item_as_outlet():
    op = SpotfireUploadSbdfOperator(task_id="t", library_path="/Airflow/Reports//sales", source="/tmp/x.sbdf")
    assert op.outlets == [Asset("spotfire://spotfire_default/Airflow/Reports/sales")]
    templated = SpotfireUploadSbdfOperator(task_id="u", library_path="/A/{{ ds }}", source="/tmp/x.sbdf")
    assert templated.outlets == []
    explicit = SpotfireUploadSbdfOperator(
        task_id="v", library_path="/A/b", source="/tmp/x.sbdf", outlets=[Asset("s3://bucket/key")]
    )
    assert explicit.outlets == [Asset("s3://bucket/key")]


def test_upload_openlineage_output_dataset_with_schema(spotfire_emulator, spotfire_conn_id):
    frame = pd.DataFrame(
        {"region": ["EMEA", "APJ"], "units": pd.Series([1, 2], dtype="int16"), "revenue": [1.5, 2.5]}
    )
    op = SpotfireUploadSbdfOperator(
        task_id="upload",
        library_path="/Airflow/Reports/lineage",
        source=frame,
        overwrite=True,
        deferrable=False,
    )
    op.execute({"ti": _TI()})
    lineage = op.get_openlineage_facets_on_complete(None)
    (output,) = lineage.outputs
    assert output.namespace == "spotfire://" + spotfire_emulator.url.split("://", 1)[1]
    assert output.name == "/Airflow/Reports/lineage"
    fields = {f.name: f.type for f in output.facets["schema"].fields}
    assert fields == {"region": "string", "units": "integer", "revenue": "double"}


def test_automation_openlineage_input_job_file_and_job_id(airflow_db, spotfire_emulator, spotfire_conn_id):
    from tests.helpers import xcom_value

    dag_run = run_dag(
        EXAMPLE_DAGS / "example_spotfire_automation_library.py", "example_spotfire_automation_library"
    )
    assert set(task_states(dag_run).values()) == {"success"}
    job_id = xcom_value(dag_run, "export_finance_report", key="job_id")
    from airflow_provider_spotfire.operators.automation import SpotfireRunAutomationJobOperator

    op = SpotfireRunAutomationJobOperator(task_id="as", library_path="/Airflow/Jobs/Export Finance Report")
    op.job_id = job_id
    lineage = op.get_openlineage_facets_on_complete(None)
    (job_file,) = lineage.inputs
    assert job_file.name == "/Airflow/Jobs/Export Finance Report"
    assert job_file.namespace == "spotfire://" + spotfire_emulator.url.split("://", 1)[1]
    assert lineage.run_facets["externalQuery"].externalQueryId == job_id


def test_producer_dag_emits_an_asset_event(airflow_db, spotfire_emulator, spotfire_conn_id):
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session

    dag_run = run_dag(
        EXAMPLE_DAGS / "example_spotfire_assets_producer.py", "example_spotfire_assets_producer"
    )
    assert set(task_states(dag_run).values()) == {"success"}
    with create_session() as session:
        events = (
            session.query(AssetEvent)
            .join(AssetModel, AssetEvent.asset_id == AssetModel.id)
            .filter(AssetModel.uri == "spotfire://spotfire_default/Airflow/Reports/Inventory")
            .all()
        )
        assert len(events) == 1 and events[0].source_task_id == "publish_inventory"


@pytest.mark.parametrize("dag_file", ["example_spotfire_assets_consumer.py"])
def test_consumer_dag_is_scheduled_on_the_asset(dag_file):
    from tests.helpers import load_dag

    dag = load_dag(EXAMPLE_DAGS / dag_file, "example_spotfire_assets_consumer")
    assert "spotfire://spotfire_default/Airflow/Reports/Inventory" in str(dag.timetable.asset_condition)
