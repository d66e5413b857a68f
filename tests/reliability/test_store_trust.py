"""Store trust, as ssh's StrictModes: the real worker refuses to start on a model store whose
directory, a parent of it, or key someone else could change, saying which path and how to
fix it; the key is never read through a link; a fit-cache entry written without the key
is never followed. And the ordinary store still works across restarts.

A refused store stops the worker before it serves (exit code 78); a private worker's
client raises WorkerStartError with its stderr, a daemon's starter with its ready line.
"""

from __future__ import annotations

import grp
import json
import os
import pwd
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from scm_client import Worker, WorkerStartError
from support import privileges
from support.worker_env import ONE_THREAD

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
CHAIN = json.loads((FIXTURES / "linear_chain.json").read_text())
ARGS = ("--no-warmup", "--test-methods", *ONE_THREAD)

needs_root = privileges.needs_root("giving a file to nobody needs root", setpriv=False)


@pytest.fixture
def store(tmp_path: Path) -> Path:
    """A store directory as the worker makes it (0700), with its key (0600)."""
    directory = tmp_path / "store"
    directory.mkdir(mode=0o700)
    key = os.open(directory / "store.key", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.write(key, os.urandom(32))
    os.close(key)
    return directory


def start_refused(worker: Worker) -> str:
    """The WorkerStartError message of a worker (private or daemon) that must not start."""
    try:
        with pytest.raises(WorkerStartError) as caught:
            worker.start()
    finally:
        worker.close()
    return str(caught.value)


def refusal(python311: str, store: Path) -> str:
    """What the client says when a private worker on ``store`` does not start."""
    message = start_refused(Worker(python311, worker_args=(*ARGS, "--store", str(store)),
                                   start_timeout=120))
    assert "exit code 78" in message, message
    return message


def foreign_group() -> int:
    """A group that is not this user's alone (the worker accepts a user-private group)."""
    return grp.getgrnam("nogroup").gr_gid


# -- the directory ---------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["group", "others"])
def test_a_store_directory_writable_by_group_or_others_is_refused_naming_it(
    python311: str, tmp_path: Path, who: str
) -> None:
    store = tmp_path / "store"
    store.mkdir(mode=0o700)
    if who == "group":
        os.chown(store, -1, foreign_group())
    store.chmod(0o770 if who == "group" else 0o707)
    message = refusal(python311, store)
    assert f"refusing the model store: {store} is writable by group or others" in message
    assert f"fix: chmod go-w {store}" in message
    assert not (store / "store.key").exists()  # refused before anything was written there


def test_a_parent_of_the_store_writable_by_others_is_refused_naming_the_parent(
    python311: str, tmp_path: Path
) -> None:
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o777)
    shared.chmod(0o777)  # not sticky: anyone may rename the store away and put their own
    store = shared / "store"
    store.mkdir(mode=0o700)
    message = refusal(python311, store)
    assert f"refusing the model store: {shared} (a parent of the store) is writable" in message
    assert f"chmod go-w {shared}" in message


@needs_root
@pytest.mark.parametrize("what", ["directory", "key"])
def test_a_store_or_key_owned_by_another_user_is_refused(python311: str, store: Path, what: str) -> None:
    nobody = pwd.getpwnam("nobody")
    path = store if what == "directory" else store / "store.key"
    os.chown(path, nobody.pw_uid, nobody.pw_gid)
    message = refusal(python311, store)
    assert f"refusing the model store: {path} belongs to nobody (uid {nobody.pw_uid})" in message
    assert f"chown root {path}" in message


# -- the key ---------------------------------------------------------------------------------


def test_a_symlinked_key_is_refused(python311: str, store: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere.key"
    (store / "store.key").rename(elsewhere)  # a good key (32 bytes, 0600, ours), but linked
    (store / "store.key").symlink_to(elsewhere)
    message = refusal(python311, store)
    assert f"refusing the model store: {store / 'store.key'} is a symbolic link" in message


@pytest.mark.parametrize("mode", [0o660, 0o604, 0o640], ids=["0660", "0604", "0640"])
def test_a_key_open_to_group_or_others_is_refused(python311: str, store: Path, mode: int) -> None:
    key = store / "store.key"
    key.chmod(mode)
    message = refusal(python311, store)
    assert f"refusing the model store: {key} is open to group or others (mode {mode:04o})" in message
    assert f"fix: chmod 600 {key}" in message


def test_a_daemon_on_an_unsafe_store_does_not_start_and_its_starter_says_why(
    python311: str, store: Path, daemon_dir: Path
) -> None:
    store.chmod(0o707)
    message = start_refused(Worker.connect(python311, store=str(store), worker_args=ARGS,
                                           start_timeout=120))
    assert message.startswith(f"the daemon could not start: refusing the model store: {store} is "
                              "writable by group or others"), message
    assert f"fix: chmod go-w {store}" in message


# -- the fit cache and the ordinary path -----------------------------------------------------


@pytest.fixture
def private_worker(python311: str, store: Path) -> Iterator[Any]:
    """``start()``: a private worker on ``store``; every one started is closed after."""
    started: list[Worker] = []

    def start() -> Worker:
        worker = Worker(python311, worker_args=(*ARGS, "--store", str(store)), start_timeout=120)
        worker.start()
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.close()


def fit(worker: Worker, seed: int) -> Any:
    return worker.fit(CHAIN["graph"], CHAIN["traces"], seed=seed, persist=True)


def refs(store: Path) -> set[Path]:
    return set(store.glob("*.ref"))


@pytest.mark.parametrize("forgery", ["bare id", "another entry's ref", "tag of another key"])
def test_a_fit_cache_entry_written_without_the_key_is_not_followed(
    private_worker: Any, store: Path, forgery: str
) -> None:
    worker = private_worker()
    first = fit(worker, seed=5)
    (entry,) = refs(store)
    other = fit(worker, seed=6)  # a model the forged entry points the first request at
    (other_entry,) = refs(store) - {entry}
    worker.close()
    entry.write_text({
        "bare id": other.model_id,
        "another entry's ref": other_entry.read_text(),
        "tag of another key": f"{other.model_id} {os.urandom(32).hex()}",
    }[forgery])
    again = fit(private_worker(), seed=5)  # a new worker: its fit cache is the files alone
    assert again.model_id != other.model_id, "the forged entry was followed"
    assert again.metadata["cache_hit"] is False and again.model_id != first.model_id
    assert fit(private_worker(), seed=5).model_id == again.model_id  # the entry rewritten, followed


def test_the_store_still_works_across_restarts(python311: str, private_worker: Any, store: Path,
                                               tmp_path: Path) -> None:
    fresh = tmp_path / "made-by-the-worker" / "store"
    worker = Worker(python311, worker_args=(*ARGS, "--store", str(fresh)), start_timeout=120)
    try:
        assert fit(worker, seed=4).metadata["cache_hit"] is False
    finally:
        worker.close()
    assert [oct(p.stat().st_mode & 0o777) for p in (fresh.parent, fresh, fresh / "store.key")] == \
        ["0o700", "0o700", "0o600"]
    worker = private_worker()
    persisted = fit(worker, seed=5)
    kept = worker.fit(CHAIN["graph"], CHAIN["traces"], seed=7)
    worker.call("models.save", {"model_id": kept.model_id})
    before = worker.sample(kept, num_samples=20, seed=1).samples
    worker.close()
    restarted = private_worker()
    assert restarted.call("models.load", {"model_id": kept.model_id}) == {"model_id": kept.model_id,
                                                                        "loaded": True}
    assert restarted.sample(kept, num_samples=20, seed=1).samples == before
    hit = fit(restarted, seed=5)
    assert hit.metadata["cache_hit"] is True and hit.model_id == persisted.model_id
