"""SqlToSpotfireOperator: a SQL query's result streamed into the Spotfire library as SBDF."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from functools import cached_property
from typing import Any

from airflow_provider_spotfire.exceptions import SpotfireConfigurationError, SpotfireDataError
from airflow_provider_spotfire.operators.library import SpotfireUploadSbdfOperator
from airflow_provider_spotfire.transfers.sql_arrow import DEFAULT_BATCH_ROWS, SqlBatchReader

try:  # the optional extra [sql]
    from airflow.providers.common.sql.hooks.sql import DbApiHook
except ImportError:  # pragma: no cover - exercised only without the extra
    DbApiHook = None  # type: ignore[misc,assignment]


class SqlToSpotfireOperator(SpotfireUploadSbdfOperator):
    """Runs ``sql`` on any Airflow SQL connection and streams the result into the Spotfire library.

    Rows are fetched in batches (Arrow batches where the driver offers them, else ``fetchmany``),
    column types come from the cursor description (or the first rows where the driver reports
    none; the mapping is logged and returned), and the batches become SBDF slices streamed into
    upload chunks: the result never has to fit in memory. Everything else — ``library_path``,
    ``overwrite``, ``description``, ``keywords``, ``deferrable``, the XCom result — is as for
    :class:`~airflow_provider_spotfire.operators.library.SpotfireUploadSbdfOperator`.
    Needs the extra ``airflow-provider-spotfire[sql]`` and the provider of the database's connection.

    :param sql: one SQL query returning rows (templated; a path ending in ``.sql`` is read as a
        template file).
    :param conn_id: the Airflow connection of the database (any common-sql ``DbApiHook``).
    :param parameters: query parameters, passed to ``cursor.execute`` (templated).
    :param batch_rows: rows fetched per batch (bounds the memory used).
    :param hook_params: extra keyword arguments for the database hook.
    :param database: database (or schema, per hook) to run the query in, if not the connection's.
    """

    template_fields: Sequence[str] = (
        *(f for f in SpotfireUploadSbdfOperator.template_fields if f != "source"),
        "sql",
        "parameters",
        "conn_id",
    )
    template_ext: Sequence[str] = (".sql",)
    template_fields_renderers = {**SpotfireUploadSbdfOperator.template_fields_renderers, "sql": "sql"}
    ui_color = "#dbe9f6"

    def __init__(
        self,
        *,
        sql: str,
        conn_id: str,
        library_path: str,
        parameters: Mapping[str, Any] | Sequence[Any] | None = None,
        batch_rows: int = DEFAULT_BATCH_ROWS,
        hook_params: Mapping[str, Any] | None = None,
        database: str | None = None,
        **kwargs: Any,
    ) -> None:
        if "source" in kwargs:
            raise SpotfireConfigurationError(
                "SqlToSpotfireOperator takes no source: the query result is the source. Use "
                "SpotfireUploadSbdfOperator to upload a file or a DataFrame."
            )
        if DbApiHook is None:
            raise SpotfireConfigurationError(
                "SqlToSpotfireOperator needs apache-airflow-providers-common-sql: "
                "pip install 'airflow-provider-spotfire[sql]'."
            )
        if not isinstance(sql, str) or not sql.strip():
            raise SpotfireConfigurationError(
                f"sql must be one SQL query (a non-empty string or a .sql file path), got {sql!r}."
            )
        if not isinstance(conn_id, str) or not conn_id.strip():
            raise SpotfireConfigurationError(f"conn_id must name an Airflow SQL connection, got {conn_id!r}.")
        if isinstance(batch_rows, bool) or not isinstance(batch_rows, int) or batch_rows < 1:
            raise SpotfireConfigurationError(
                f"batch_rows must be a positive whole number of rows, got {batch_rows!r}."
            )
        super().__init__(library_path=library_path, source=self._query_batches, **kwargs)
        self.sql = sql
        self.conn_id = conn_id
        self.parameters = parameters
        self.batch_rows = batch_rows
        self.hook_params = dict(hook_params or {})
        self.database = database
        self._reader: SqlBatchReader | None = None

    @cached_property
    def db_hook(self) -> Any:
        """The connection's ``DbApiHook`` (built on first use: no I/O when the DAG is parsed)."""
        from airflow.providers.common.compat.sdk import BaseHook

        connection = BaseHook.get_connection(self.conn_id)
        params = {**connection.extra_dejson, **self.hook_params}
        hook = connection.get_hook(hook_params=params)
        if not isinstance(hook, DbApiHook):
            raise SpotfireConfigurationError(
                f"Connection {self.conn_id!r} (type {connection.conn_type!r}) has no SQL hook "
                f"({type(hook).__name__} is not a common-sql DbApiHook); give a database connection."
            )
        if self.database:
            if hook.conn_type == "postgres":
                hook.database = self.database
            else:
                hook.schema = self.database
        return hook

    def _statement(self) -> str:
        statements = self.db_hook.split_sql_string(self.sql)
        if len(statements) != 1:
            raise SpotfireConfigurationError(
                f"sql holds {len(statements)} statements; give exactly one query that returns rows "
                "(run set-up statements in a task of their own, or use a CTE)."
            )
        return statements[0]

    def _query_batches(self) -> Iterator[Any]:
        """Runs the query and yields its result as Arrow record batches; closes the cursor at the end."""
        statement = self._statement()
        with contextlib.closing(self.db_hook.get_conn()) as conn:
            cursor = _streaming_cursor(conn)
            try:
                try:
                    cursor.execute(statement, self.parameters) if self.parameters else cursor.execute(
                        statement
                    )
                except Exception as exc:
                    raise SpotfireDataError(
                        f"The query failed on connection {self.conn_id!r}: {type(exc).__name__}: {exc}. "
                        "Nothing was uploaded."
                    ) from exc
                self._reader = reader = SqlBatchReader(cursor, batch_rows=self.batch_rows)
                for number, batch in enumerate(reader):
                    if number == 0:
                        for column in reader.mapping:
                            self.log.info("Column mapped: %s", column.describe())
                    yield batch
                self.log.info("The query returned %d rows in %d batches.", reader.rows, reader.batches)
            finally:
                with contextlib.suppress(Exception):
                    cursor.close()

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """OpenLineage: the query's tables (SQL parser) as inputs, the library item as output."""
        lineage = super().get_openlineage_facets_on_complete(task_instance)
        if lineage is None:
            return None
        inputs = _query_inputs(self.db_hook, self.sql, self.database)
        if inputs:
            lineage.inputs = [*inputs, *lineage.inputs]
        return lineage


def _streaming_cursor(conn: Any) -> Any:
    """A cursor that streams: a server-side (named) cursor for PostgreSQL drivers, else the default.

    psycopg2's default cursor would fetch the whole result into memory on ``execute``.
    """
    module = type(conn).__module__.split(".")[0]
    if module in ("psycopg2", "psycopg"):
        return conn.cursor(name="airflow_spotfire_transfer")
    return conn.cursor()


def _query_inputs(hook: Any, sql: str, database: str | None) -> list[Any]:
    """Input datasets for the tables ``sql`` reads, where the OpenLineage SQL parser finds them."""
    try:
        from airflow.providers.openlineage.sqlparser import SQLParser
    except ImportError:
        return []
    try:
        connection = hook.get_connection(getattr(hook, hook.conn_name_attr))
        database_info = hook.get_openlineage_database_info(connection)
        if database_info is None:
            return []
        parser = SQLParser(
            dialect=hook.get_openlineage_database_dialect(connection),
            default_schema=hook.get_openlineage_default_schema(),
        )
        metadata = parser.generate_openlineage_metadata_from_sql(
            sql=sql, hook=hook, database_info=database_info, database=database, use_connection=False
        )
    except Exception:  # lineage must never fail the task
        return []
    return list(metadata.inputs or [])


__all__ = ["SqlToSpotfireOperator"]
