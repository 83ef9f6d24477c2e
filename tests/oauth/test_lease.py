"""The shared refresh-token grant in virtual time: many processes, one refresh per token lifetime.

Every test drives the real flows of :class:`TokenManager` (the same generators the sync and async
drivers run) against an in-memory store and an authorization server with rotation and reuse
detection, interleaved by :class:`~tests.oauth.fakes.Simulation`. Nothing sleeps on the wall clock.
"""

from __future__ import annotations

import logging
from dataclasses import replace

import pytest

from airflow_provider_spotfire.exceptions import SpotfireAuthenticationError
from airflow_provider_spotfire.oauth import Lease, LeaseTimings, StoredGrant
from tests.oauth.fakes import (
    CONFIG,
    FakeAuthorizationServer,
    FakeClock,
    MemoryStore,
    Process,
    Simulation,
    SkewedClock,
)


def _world(**server):
    clock = FakeClock()
    store = MemoryStore()
    auth = FakeAuthorizationServer(clock, **server)
    return clock, store, auth, Simulation(auth, store, clock)


@pytest.mark.parametrize("seed", range(5))
def test_twenty_processes_share_one_refresh_per_lifetime_and_never_reuse(seed):
    clock, store, auth, sim = _world(lifetime=30.0)
    sim.rng.seed(seed)
    procs = [Process(sim.manager()) for _ in range(20)]
    sim.run(procs, until=clock.now + 300, every=1.0)
    assert [p.error for p in procs] == [None] * 20
    assert auth.reuse_detected == 0 and auth.refused == 0 and not auth.revoked
    # renewed 3 s (10%) ahead of expiry: one refresh per 27 s for the whole deployment, not per process
    assert 10 <= auth.refreshes <= 13
    assert len(set(auth.sent_tokens)) == len(auth.sent_tokens)  # no refresh token sent twice
    assert all(len(p.tokens) >= 250 for p in procs)
    assert store.value is not None and store.value.refresh_token == auth.current


def test_a_process_that_starts_late_uses_the_stored_token_without_a_request():
    clock, _, auth, sim = _world()
    first = Process(sim.manager())
    sim.run([first], until=clock.now + 1, every=1.0)
    late = Process(sim.manager())
    sim.run([late], until=clock.now + 1, every=1.0)
    assert auth.refreshes == 1 and late.manager.token_requests == 0
    assert late.tokens == [first.tokens[0]]


@pytest.mark.parametrize("echo", [True, False], ids=["same-token-echoed", "no-refresh-token"])
def test_servers_that_do_not_rotate_keep_working_without_needless_writes(echo):
    clock, store, auth, sim = _world(rotate=False, echo_refresh_token=echo, lifetime=30.0)
    procs = [Process(sim.manager()) for _ in range(8)]
    sim.run(procs, until=clock.now + 120, every=1.0)
    assert [p.error for p in procs] == [None] * 8
    assert set(auth.sent_tokens) == {"rt-0"} and auth.refused == 0
    assert {w.refresh_token for w in store.writes} == {"rt-0"}  # the refresh token is never changed
    # the grant is written once per refresh, with its new access token; the lease is taken and released
    assert (
        len(store.writes) == auth.refreshes and len({w.access_token for w in store.writes}) == auth.refreshes
    )
    assert sum(1 for lease in store.lease_writes if lease is None) == auth.refreshes


def test_a_process_stalled_past_the_settle_delay_recovers_after_invalid_grant():
    """A lease written after the settle delay does not overwrite the tokens: the late process adopts them."""
    clock, store, auth, sim = _world()
    # process 1 takes 2 s between reading the lease and writing its own (settle is 0.5 s)
    sim.latency = lambda kind, index: 2.0 if (index == 1 and kind == "LoadLease") else 0.01
    procs = [Process(sim.manager()), Process(sim.manager())]
    sim.run(procs, until=clock.now + 5, every=1.0)
    assert [p.error for p in procs] == [None, None]
    assert len([lease for lease in store.lease_writes if lease]) == 2  # both believed they could lead
    assert auth.refreshes == 1 and auth.refused == 0 and auth.reuse_detected == 0
    assert procs[0].tokens[-1] == procs[1].tokens[-1]


def test_invalid_grant_after_a_concurrent_rotation_adopts_the_new_token():
    """The refresh token this process sent was rotated by another one meanwhile: wait for its result."""
    clock, store, auth, sim = _world(reuse_detection=False)
    proc = Process(sim.manager())
    auth.current = "rt-rotated-elsewhere"  # another process refreshed; its write arrives 1 s later

    def late_write(kind, index):
        if kind == "Send" and store.value is None and auth.refused:
            store.save(
                CONFIG,
                StoredGrant(
                    refresh_token="rt-rotated-elsewhere",
                    access_token="at-other",
                    expires_at=clock.time() + 30,
                    lifetime=30,
                ),
            )
        return 1.0 if kind == "Send" else 0.01

    sim.latency = late_write
    sim.run([proc], until=clock.now + 1, every=1.0)
    assert proc.error is None and proc.tokens == ["at-other"]
    assert auth.sent_tokens == ["rt-0"]


def test_a_dead_grant_fails_every_process_once_with_the_fix_and_is_not_resent():
    clock, store, auth, sim = _world()
    auth.revoked = True
    procs = [Process(sim.manager()) for _ in range(6)]
    sim.run(procs, until=clock.now + 30, every=1.0)
    assert all(isinstance(p.error, SpotfireAuthenticationError) for p in procs)
    message = str(procs[0].error)
    assert "airflow-spotfire login --conn-id sf_user" in message
    assert message.count("invalid") == 1, message  # the cause once, not the same sentence twice
    assert auth.sent_tokens == ["rt-0"]  # the others read the dead marker instead of resending
    assert store.value is not None and store.value.dead is not None


def test_a_new_login_after_a_dead_grant_works_again():
    clock, store, auth, sim = _world()
    auth.revoked = True
    sim.run([Process(sim.manager())], until=clock.now + 5, every=1.0)
    auth.revoked, auth.current = False, "rt-new-login"
    store.value = None  # the Variable store ignores the old record once the connection's token changed
    fresh = Process(sim.manager(replace(CONFIG, refresh_token="rt-new-login")))
    sim.run([fresh], until=clock.now + 5, every=1.0)
    assert fresh.error is None and auth.sent_tokens[-1] == "rt-new-login"


def test_a_leader_that_died_holding_the_lease_is_replaced_once_the_lease_expires():
    clock, store, auth, sim = _world()
    store.lease = Lease("ghost", clock.time() + 8)
    procs = [Process(sim.manager()) for _ in range(4)]
    sim.run(procs, until=clock.now + 12, every=1.0)
    assert [p.error for p in procs] == [None] * 4
    assert auth.refreshes == 1 and auth.reuse_detected == 0
    assert clock.now >= 1_008  # nobody refreshed before the ghost's lease ran out


def test_a_token_rejected_with_401_is_not_adopted_again_from_the_store():
    clock, _, auth, sim = _world()
    proc = Process(sim.manager())
    sim.run([proc], until=clock.now + 1, every=1.0)
    proc.manager.forget(proc.tokens[-1])
    sim.run([proc], until=clock.now + 2, every=1.0)
    assert auth.refreshes == 2 and proc.tokens[-1] != proc.tokens[0]


def test_an_unreadable_store_falls_back_to_refreshing_alone_with_a_warning(caplog):
    clock, store, auth, sim = _world()
    store.fail_reads = True
    proc = Process(sim.manager())
    with caplog.at_level(logging.WARNING):
        sim.run([proc], until=clock.now + 40, every=1.0)
    assert proc.error is None and auth.refreshes == 2 and auth.refused == 0
    assert caplog.text.count("Could not read the shared Spotfire tokens") == 1
    assert "rt-" not in caplog.text and "at-" not in caplog.text


def test_clock_skew_below_the_renewal_margin_keeps_one_refresh_per_lifetime():
    clock, _, auth, sim = _world(lifetime=60.0)
    procs = [Process(sim.manager(clock=SkewedClock(clock, skew))) for skew in (-2.0, 0.0, 2.0, 4.0)]
    sim.run(procs, until=clock.now + 600, every=1.0)
    assert [p.error for p in procs] == [None] * 4 and auth.reuse_detected == 0
    assert 10 <= auth.refreshes <= 13


def test_a_host_whose_clock_runs_behind_never_trusts_a_token_longer_than_its_lifetime():
    clock, _, _, sim = _world(lifetime=30.0)
    behind = SkewedClock(clock, -3600.0)  # sees every stored expiry an hour in the future
    proc = Process(sim.manager(clock=behind))
    sim.run([Process(sim.manager())], until=clock.now + 1, every=1.0)
    sim.run([proc], until=clock.now + 1, every=1.0)
    token = proc.manager.cached(frozenset({"*"}))
    assert token is not None and token.expires_at - clock.now <= 30.0


def test_lease_ttl_defaults_to_twice_the_request_timeout_plus_settle():
    assert LeaseTimings(settle=1.0).ttl(CONFIG) == 2 * CONFIG.timeout + 1.0
