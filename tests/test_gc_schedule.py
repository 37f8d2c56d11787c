"""The scheduled garbage collection needs no service of its own (issue 14, must-have 4): `make run` starts
django-q2's cluster (`manage.py qcluster`, brokered over the same database) beside gunicorn, `migrate` keeps
the `swr-gc` schedule, the cluster runs the collector, and stopping `make run` stops the cluster too."""

import os
import signal
import sqlite3
import subprocess

import pytest

from .test_first_use import MakeRun

pytestmark = pytest.mark.live


def _cluster_pids() -> set[int]:
    found = subprocess.run(["pgrep", "-f", "manage.py qcluster"], capture_output=True, text=True).stdout.split()
    return {int(pid) for pid in found}


def test_make_run_runs_the_collector_on_its_schedule_and_stops_the_cluster_with_the_server(tmp_path):
    before, ours = _cluster_pids(), set()
    run = MakeRun(tmp_path)
    try:
        run.read_until(r"Booting worker with pid")
        run.read_until(r"Q Cluster \S+ \[swr\] running")
        # The schedule is due at once after the first migrate; the cluster's scheduler looks every 30 s.
        run.read_until(r"Processed 'swr\.tasks\.collect_garbage'", timeout=120)
        with sqlite3.connect(tmp_path / "db.sqlite3") as database:
            results = database.execute("SELECT func, success, result FROM django_q_task").fetchall()
            schedule = database.execute("SELECT func, minutes FROM django_q_schedule WHERE name = 'swr-gc'").fetchall()
        assert schedule == [("swr.tasks.collect_garbage", 60)]
        assert [row[:2] for row in results][:1] == [("swr.tasks.collect_garbage", 1)]
        ours = _cluster_pids() - before
        assert ours, "no qcluster process of make run"
    finally:
        os.killpg(run.process.pid, signal.SIGINT)  # Ctrl-C at the terminal: the whole group
        try:
            run.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            run.stop()
        else:
            run.process.stdout.close()
    assert not (_cluster_pids() - before) & ours, "the cluster outlived make run"


def test_a_term_to_make_runs_group_stops_the_server_and_the_cluster(tmp_path):
    """`docker stop`, systemd and `kill -TERM -<group>` signal every process of the group at once: make run and
    its cluster end within seconds. (The group's TERM reached the cluster's worker processes as well as the
    cluster, which make run's trap then signalled again, and its stop hung; it now runs in a session of its own
    and gets the trap's signal alone.)"""
    before, ours = _cluster_pids(), set()
    run = MakeRun(tmp_path)
    try:
        run.read_until(r"Booting worker with pid")
        run.read_until(r"Q Cluster \S+ \[swr\] running")
        ours = _cluster_pids() - before
        assert ours, "no qcluster process of make run"
        os.killpg(run.process.pid, signal.SIGTERM)
        run.process.wait(timeout=30)
    finally:
        if run.process.poll() is None:
            run.stop()
        for pid in _cluster_pids() & ours:  # a hung cluster is not left behind for the rest of the suite
            os.kill(pid, signal.SIGKILL)
    assert not (_cluster_pids() - before) & ours, "the cluster outlived make run"
