"""calsync.snapstart: the runtime hooks' local stand-in and the after-restore reset (docs/adr/0025)."""

from __future__ import annotations

import random

import pytest

from calsync import snapstart


def test_calsync_registers_its_hooks_on_import() -> None:
    assert (snapstart.prime, (), {}) in snapstart.LOCAL_HOOKS.before
    assert (snapstart.reset, (), {}) in snapstart.LOCAL_HOOKS.after


def test_hooks_run_in_the_runtimes_order() -> None:
    # the runtime: before-snapshot hooks in the reverse order of registration, after-restore in order
    hooks = snapstart.LocalHooks()
    ran: list[tuple[str, int]] = []

    @hooks.register_before_snapshot
    def first() -> None:
        ran.append(("before", 1))

    hooks.register_before_snapshot(lambda n, *, tag: ran.append((tag, n)), 2, tag="before")
    hooks.register_after_restore(lambda: ran.append(("after", 1)))
    hooks.register_after_restore(lambda n: ran.append(("after", n)), 2)
    hooks.run_before_snapshot()
    hooks.run_after_restore()
    assert first.__name__ == "first"  # the decorator gives the function back
    assert ran == [("before", 2), ("before", 1), ("after", 1), ("after", 2)]


def test_each_restored_copy_draws_its_own_random_numbers() -> None:
    # two copies restored from one snapshot start from the same generator state
    snapshot = random.getstate()
    try:
        snapstart.reset()
        first = [random.random() for _ in range(4)]
        random.setstate(snapshot)
        snapstart.reset()
        second = [random.random() for _ in range(4)]
        random.setstate(snapshot)
        unchanged = [random.random() for _ in range(4)]
        random.setstate(snapshot)
        assert unchanged == [random.random() for _ in range(4)]  # what a copy without reset draws
    finally:
        random.seed()
    assert first != second


def test_a_restored_copy_says_when_its_clients_sign_with_keys_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import boto3

    for name in ("AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_PROFILE", "AWS_SHARED_CREDENTIALS_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", boto3.session.Session(region_name="eu-west-1"))
    with caplog.at_level("WARNING", logger="calsync.snapstart"):
        assert snapstart.check_credentials() == "env"
    assert "access keys from the environment" in caplog.text
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)
    caplog.clear()
    assert snapstart.check_credentials() is None
    assert caplog.text == ""


def test_before_the_snapshot_nothing_connects_but_the_credentials_endpoint(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import socket

    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        monkeypatch.delenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", raising=False)
        with snapstart.no_connections(), socket.socket() as sock, pytest.raises(snapstart.CallBeforeSnapshot):
            sock.connect(("127.0.0.1", port))
        monkeypatch.setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", f"http://127.0.0.1:{port}/credentials")
        with snapstart.no_connections(), socket.socket() as sock:
            sock.connect(("127.0.0.1", port))  # the endpoint Lambda gives the SDK with SnapStart
    with socket.socket() as sock, pytest.raises(ConnectionRefusedError):
        sock.connect(("127.0.0.1", port))  # the guard is gone after the block
