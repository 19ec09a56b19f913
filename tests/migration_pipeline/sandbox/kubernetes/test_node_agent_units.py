"""The node agent's pure parts: environment and $(VAR) expansion, volume plans and mounts, status documents, logs."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from migration_pipeline.sandbox.kubernetes.node_agent_logs import (
    LogQuery,
    encode_records,
    parse_query,
    parse_record,
    render,
    select,
    stream_log,
)
from migration_pipeline.sandbox.kubernetes.node_agent_probe import run_probe
from migration_pipeline.sandbox.kubernetes.node_agent_process import Launch, exit_code_of, spawn, terminate
from migration_pipeline.sandbox.kubernetes.node_agent_spec import (
    CONTAINER_CONFIG_ERROR,
    Lookups,
    PodSpecError,
    base_env,
    command_line,
    container_env,
    decode_config_map,
    decode_secret,
    expand,
)
from migration_pipeline.sandbox.kubernetes.node_agent_status import (
    ContainerView,
    container_status,
    failed_pod_status,
    parse_rfc3339,
    pod_conditions,
    pod_phase,
    rfc3339_nano,
)
from migration_pipeline.sandbox.kubernetes.node_agent_volumes import (
    Mount,
    container_mounts,
    materialize,
    mount_wrapper,
    plan_volumes,
    pv_host_path,
)

Doc = dict[str, Any]
SECRETS = {"db": {"password": b"s3cret", "user": b"admin"}}
CONFIG_MAPS = {"settings": {"LEVEL": b"debug", "bad key": b"x", "app.conf": b"a=1\n"}}


def claim_path(name: str) -> str:
    if name == "bound":
        return "/srv/pv/bound"
    raise PodSpecError("ContainerCreating", f'persistentvolumeclaim "{name}" is not bound yet', retry=True)


LOOKUPS = Lookups("team", SECRETS.get, CONFIG_MAPS.get, claim_path, lambda _a, _s: "token-value")


def pod(containers: list[Doc], volumes: list[Doc] | None = None) -> Doc:
    return {"metadata": {"name": "job-1", "namespace": "team", "uid": "u-1", "labels": {"app": "x"}},
            "spec": {"nodeName": "sandbox-node", "containers": containers, "volumes": volumes or []}}


# ---- environment ------------------------------------------------------------------------------------------------

def test_expand_follows_kubernetes_rules() -> None:
    env = {"A": "1", "EMPTY": ""}
    assert expand("$(A)-$$(A)-$(B)-$$-$x-$(EMPTY)|", env) == "1-$(A)-$(B)-$-$x-|"
    assert expand("tail $(A", env) == "tail $(A"
    assert expand("end$", env) == "end$"


def test_base_env_is_not_the_agents(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENT_ONLY", "leak")
    env = base_env(pod([]), tmpdir="/r/tmp", api_server="https://127.0.0.1:6443")
    assert "AGENT_ONLY" not in env
    assert env["PATH"].split(":")[0] == os.path.dirname(sys.executable)
    assert env["PATH"].endswith(":/usr/local/bin:/usr/bin:/bin")
    assert (env["KUBERNETES_SERVICE_HOST"], env["KUBERNETES_SERVICE_PORT"]) == ("127.0.0.1", "6443")
    assert (env["HOSTNAME"], env["TMPDIR"]) == ("job-1", "/r/tmp")


def test_container_env_order_refs_and_expansion() -> None:
    container = {
        "name": "main",
        "envFrom": [{"configMapRef": {"name": "settings"}, "prefix": "CFG_"},
                    {"secretRef": {"name": "absent", "optional": True}}],
        "env": [
            {"name": "USER", "valueFrom": {"secretKeyRef": {"name": "db", "key": "user"}}},
            {"name": "DSN", "value": "pg://$(USER)@$(POD_IP)/$(CFG_LEVEL)"},
            {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
            {"name": "APP", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
            {"name": "NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
            {"name": "OPT", "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "nope", "optional": True}}},
            {"name": "CPU", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu"}}},
        ],
    }
    env = container_env(container, pod([container]), LOOKUPS, {"PATH": "/bin"})
    assert env["CFG_LEVEL"] == "debug" and "CFG_bad key" not in env
    assert env["USER"] == "admin"
    # POD_IP is defined after DSN, so it stays unexpanded, as in Kubernetes
    assert env["DSN"] == "pg://admin@$(POD_IP)/debug"
    assert (env["POD_IP"], env["APP"], env["NS"]) == ("127.0.0.1", "x", "team")
    assert "OPT" not in env and "CPU" not in env


@pytest.mark.parametrize(("ref", "message"), [
    ({"secretKeyRef": {"name": "db", "key": "token"}}, "couldn't find key token in Secret team/db"),
    ({"secretKeyRef": {"name": "other", "key": "k"}}, 'secret "other" not found'),
    ({"configMapKeyRef": {"name": "gone", "key": "k"}}, 'configmap "gone" not found'),
])
def test_missing_reference_keeps_the_pod_pending(ref: Doc, message: str) -> None:
    container = {"name": "main", "env": [{"name": "X", "valueFrom": ref}]}
    with pytest.raises(PodSpecError) as info:
        container_env(container, pod([container]), LOOKUPS, {})
    assert info.value.retry and info.value.reason == CONTAINER_CONFIG_ERROR
    assert info.value.message == message
    assert "s3cret" not in info.value.message


def test_command_line_expands_and_needs_a_command() -> None:
    container = {"name": "main", "command": ["python", "-c"], "args": ["print('$(WHO)')"]}
    assert command_line(container, {"WHO": "pod"}) == ["python", "-c", "print('pod')"]
    with pytest.raises(PodSpecError) as info:
        command_line({"name": "main", "image": "x", "args": ["a"]}, {})
    assert info.value.reason == "NoCommand" and not info.value.retry
    assert "needs the container's `command`" in info.value.message


def test_decoding_secrets_and_config_maps() -> None:
    assert decode_secret({"data": {"k": "dmFsdWU="}}) == {"k": b"value"}
    assert decode_config_map({"data": {"a": "b"}, "binaryData": {"c": "AAE="}}) == {"a": b"b", "c": b"\x00\x01"}


# ---- volumes ----------------------------------------------------------------------------------------------------

VOLUMES = [
    {"name": "data", "hostPath": {"path": "/srv/data", "type": "DirectoryOrCreate"}},
    {"name": "scratch", "emptyDir": {}},
    {"name": "creds", "secret": {"secretName": "db", "defaultMode": 0o400,
                                 "items": [{"key": "password", "path": "pw/password"}]}},
    {"name": "conf", "configMap": {"name": "settings"}},
    {"name": "claim", "persistentVolumeClaim": {"claimName": "bound"}},
    {"name": "kube-api-access-abcde", "projected": {"sources": [
        {"serviceAccountToken": {"path": "token", "expirationSeconds": 3607}},
        {"configMap": {"name": "settings", "items": [{"key": "LEVEL", "path": "level"}]}},
        {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"fieldPath": "metadata.namespace"}}]}}]}},
    {"name": "nfs", "nfs": {"server": "x", "path": "/"}},
]


def test_volume_plan() -> None:
    plan = plan_volumes(pod([], VOLUMES), "/root/pods/team_job-1_u-1", LOOKUPS)
    assert (plan["data"].host_path, plan["data"].create, plan["data"].owned) == ("/srv/data", "dir", False)
    assert plan["scratch"].host_path == "/root/pods/team_job-1_u-1/volumes/scratch" and plan["scratch"].owned
    assert plan["creds"].files == {"pw/password": (b"s3cret", 0o400)}
    assert set(plan["conf"].files) == {"LEVEL", "bad key", "app.conf"}
    assert plan["claim"].host_path == "/srv/pv/bound"
    access = plan["kube-api-access-abcde"]
    assert access.best_effort
    assert access.files == {"token": (b"token-value", 0o644), "level": (b"debug", 0o644),
                            "namespace": (b"team", 0o644)}
    assert plan["nfs"].unsupported == "nfs"


def test_unbound_claim_and_missing_secret_wait() -> None:
    for volume in ({"name": "c", "persistentVolumeClaim": {"claimName": "pending"}},
                   {"name": "s", "secret": {"secretName": "nope"}}):
        with pytest.raises(PodSpecError) as info:
            plan_volumes(pod([], [volume]), "/p", LOOKUPS)
        assert info.value.retry
    optional = plan_volumes(pod([], [{"name": "s", "secret": {"secretName": "nope", "optional": True}}]), "/p", LOOKUPS)
    assert optional["s"].files == {}


def test_pv_host_path() -> None:
    assert pv_host_path({"spec": {"hostPath": {"path": "/a"}}}) == "/a"
    assert pv_host_path({"spec": {"local": {"path": "/b"}}}) == "/b"
    assert pv_host_path({"spec": {"csi": {}}}) is None


def test_container_mounts() -> None:
    plan = plan_volumes(pod([], VOLUMES), "/p", LOOKUPS)
    container = {"name": "main", "volumeMounts": [
        {"name": "data", "mountPath": "/srv/data"},  # already there: nothing to do
        {"name": "scratch", "mountPath": "/work/scratch/"},
        {"name": "creds", "mountPath": "/etc/pw", "subPath": "pw/password", "readOnly": True},
        {"name": "claim", "mountPath": "/work", "subPath": "$(SUB)"},
        {"name": "claim", "mountPath": "/w2", "subPathExpr": "$(SUB)"},
    ]}
    mounts = container_mounts(container, plan, {"SUB": "x"}, can_mount=True)
    assert mounts == [
        Mount("/srv/pv/bound/$(SUB)", "/work", False),  # subPath is not expanded, subPathExpr is
        Mount("/srv/pv/bound/x", "/w2", False),
        Mount("/p/volumes/scratch", "/work/scratch", False),  # after /work, which it sits in
        Mount("/p/volumes/creds/pw/password", "/etc/pw", True, is_file=True),
    ]


def test_mounts_elsewhere_need_a_mount_namespace() -> None:
    plan = plan_volumes(pod([], VOLUMES), "/p", LOOKUPS)
    same = {"name": "main", "volumeMounts": [{"name": "data", "mountPath": "/srv/data"},
                                             {"name": "kube-api-access-abcde", "mountPath": "/var/run/secrets/x"}]}
    assert container_mounts(same, plan, {}, can_mount=False) == []
    moved = {"name": "main", "volumeMounts": [{"name": "scratch", "mountPath": "/scratch"}]}
    with pytest.raises(PodSpecError) as info:
        container_mounts(moved, plan, {}, can_mount=False)
    assert "'scratch'" in info.value.message and "its own host path" in info.value.message and not info.value.retry
    with pytest.raises(PodSpecError) as unsupported:
        container_mounts({"name": "m", "volumeMounts": [{"name": "nfs", "mountPath": "/n"}]}, plan, {},
                         can_mount=True)
    assert unsupported.value.reason == "UnsupportedVolume"


@pytest.mark.skipif(os.geteuid() != 0 or not Path("/usr/bin/unshare").exists(), reason="needs root and unshare")
def test_mount_wrapper_binds_volumes_privately(tmp_path: Path) -> None:
    plan = plan_volumes(pod([], VOLUMES[2:4]), str(tmp_path / "pod"), LOOKUPS)
    materialize(plan)
    assert oct((tmp_path / "pod/volumes/creds/pw/password").stat().st_mode & 0o777) == oct(0o400)
    target = tmp_path / "seen"
    container = {"name": "m", "volumeMounts": [{"name": "conf", "mountPath": str(target / "conf"), "readOnly": True},
                                               {"name": "creds", "mountPath": str(target / "pw"), "subPath": "pw"}]}
    mounts = container_mounts(container, plan, {}, can_mount=True)
    script = f"cat {target}/conf/LEVEL {target}/pw/password; touch {target}/conf/x 2>/dev/null || echo ro; pwd"
    argv = mount_wrapper(["/bin/sh", "-c", script], mounts, str(tmp_path))
    out = subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True, timeout=10, check=True).stdout
    assert out == f"debugs3cretro\n{tmp_path}\n"
    assert not (target / "conf" / "LEVEL").exists()  # the agent's own view is untouched


def test_mount_wrapper_without_mounts_is_the_command() -> None:
    assert mount_wrapper(["a", "b"], [], "/w") == ["a", "b"]


# ---- status -----------------------------------------------------------------------------------------------------

def test_container_status_documents() -> None:
    view = ContainerView("main", "python:3.11", pid=42, started_at="2026-01-01T00:00:00Z")
    doc = container_status(view)
    assert doc["state"] == {"running": {"startedAt": "2026-01-01T00:00:00Z"}}
    assert (doc["containerID"], doc["started"], doc["ready"], doc["restartCount"]) == ("sandbox://42", True, False, 0)
    view.exit_code, view.finished_at = 1, "2026-01-01T00:00:05Z"
    assert container_status(view)["state"]["terminated"]["reason"] == "Error"
    view.backing_off, view.waiting_message = True, "back-off 2s"
    doc = container_status(view)
    assert doc["state"]["waiting"]["reason"] == "CrashLoopBackOff" and "containerID" not in doc
    assert container_status(ContainerView("x", "i"))["state"] == {"waiting": {"reason": "ContainerCreating"}}


def test_pod_phase() -> None:
    done_ok = ContainerView("a", "", pid=1, started_at="t", exit_code=0)
    done_bad = ContainerView("b", "", pid=2, started_at="t", exit_code=2)
    running = ContainerView("c", "", pid=3, started_at="t")
    assert pod_phase("Never", [done_ok], will_restart=False) == "Succeeded"
    assert pod_phase("Never", [done_ok, done_bad], will_restart=False) == "Failed"
    assert pod_phase("Never", [done_ok, running], will_restart=False) == "Running"
    assert pod_phase("OnFailure", [done_bad], will_restart=True) == "Running"
    assert pod_phase("Never", [ContainerView("d", "")], will_restart=False) == "Pending"
    assert exit_code_of(-15) == 143 and exit_code_of(-9) == 137 and exit_code_of(3) == 3


def test_conditions_keep_their_transition_times() -> None:
    transitions: dict[str, tuple[bool, str]] = {}
    first = pod_conditions(initialized=True, ready=False, started=True, transitions=transitions, at="t1")
    second = pod_conditions(initialized=True, ready=True, started=True, transitions=transitions, at="t2")
    by_type = {c["type"]: c for c in second}
    assert {c["type"] for c in first} == {"PodScheduled", "Initialized", "ContainersReady", "Ready",
                                          "PodReadyToStartContainers"}
    assert by_type["Ready"] == {"type": "Ready", "status": "True", "lastProbeTime": None, "lastTransitionTime": "t2",
                                "reason": None}
    assert by_type["Initialized"]["lastTransitionTime"] == "t1"


def test_failed_pod_status_names_the_reason() -> None:
    status = failed_pod_status("NoCommand", "needs command", [ContainerView("main", "img")], "t0", "t1")
    assert (status["phase"], status["reason"], status["podIP"]) == ("Failed", "NoCommand", "127.0.0.1")
    assert status["containerStatuses"][0]["state"]["waiting"]["reason"] == "NoCommand"


def test_timestamps_are_fixed_width_and_parse_back() -> None:
    stamp = rfc3339_nano(1_700_000_000_000_000_500)
    assert stamp == "2023-11-14T22:13:20.000000500Z"
    assert len(rfc3339_nano()) == len(stamp)
    assert parse_rfc3339(stamp) == pytest.approx(1_700_000_000.0000005)
    assert parse_rfc3339("2023-11-14T22:13:20Z") == 1_700_000_000


# ---- logs -------------------------------------------------------------------------------------------------------

def records_of(*chunks: tuple[bytes, int]) -> bytes:
    return b"".join(encode_records(chunk, ns)[0] for chunk, ns in chunks)


def parsed(data: bytes) -> list[Any]:
    return [r for r in (parse_record(line) for line in data.splitlines(keepends=True)) if r]


def test_each_line_has_its_own_timestamp() -> None:
    data, last = encode_records(b"a\nb\nc", 5)
    assert [r.stamp[-3:] for r in parsed(data)] == ["05Z", "06Z", "07Z"] and last == 7
    assert encode_records(b"a\n", 5) == (rfc3339_nano(5).encode() + b" F a\n", 5)


def test_plain_read_is_the_exact_output() -> None:
    data = records_of((b"one\ntw", 1_000_000_000_000_000_000), (b"o\n\nthr", 2_000_000_000_000_000_000),
                      (b"ee", 3_000_000_000_000_000_000))
    recs = parsed(data)
    assert render(recs, False) == b"one\ntwo\n\nthree"
    assert render(recs, True) == (b"2001-09-09T01:46:40.000000000Z one\n2001-09-09T01:46:40.000000001Z two\n"
                                  b"2033-05-18T03:33:20.000000001Z \n2033-05-18T03:33:20.000000002Z three")
    assert render(select(recs, LogQuery(tail_lines=2)), False) == b"\nthree"
    assert render(select(recs, LogQuery(since=1_500_000_000)), False) == b"\nthree"


def test_query_parsing() -> None:
    query = parse_query("follow=true&tailLines=5&limitBytes=10&timestamps=1&sinceSeconds=30&previous=false", now=100)
    assert query == LogQuery(follow=True, tail_lines=5, limit_bytes=10, timestamps=True, since=70, previous=False)


def test_follow_ends_when_the_writer_is_done(tmp_path: Path) -> None:
    path = tmp_path / "c.log"
    path.write_bytes(encode_records(b"start\n", time.time_ns())[0])
    done = threading.Event()

    def write_more() -> None:
        time.sleep(0.3)
        with open(path, "ab") as out:
            out.write(encode_records(b"end", time.time_ns())[0])
        done.set()

    threading.Thread(target=write_more).start()
    out = b"".join(stream_log(path, LogQuery(follow=True), done.is_set))
    assert out == b"start\nend"
    assert b"".join(stream_log(path, LogQuery(limit_bytes=3), lambda: True)) == b"sta"


# ---- processes and probes (local processes only) ------------------------------------------------------------------

def test_spawn_logs_both_streams_and_terminate_reports_the_signal(tmp_path: Path) -> None:
    launch = Launch(["/bin/sh", "-c", "echo out; echo err >&2; exec sleep 30"], {"PATH": "/usr/bin:/bin"},
                    str(tmp_path / "work"))
    # Started from a thread that blocks SIGTERM and a process that ignores SIGINT (as a long test session or a
    # library may leave them): the pod's process must still start with a clean signal state, or SIGTERM would never
    # reach it and every graceful stop would end in SIGKILL.
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    previous_int = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        attempt = spawn(launch, tmp_path / "c.log")
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)
        signal.signal(signal.SIGINT, previous_int)
    assert attempt.proc is not None
    time.sleep(0.3)
    terminate([attempt.proc], grace=5)
    assert exit_code_of(attempt.proc.returncode) == 143
    assert attempt.pump is not None and attempt.pump.wait(5)
    assert render(parsed((tmp_path / "c.log").read_bytes()), False) == b"out\nerr\n"


def test_probes(tmp_path: Path) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        container = {"name": "c", "ports": [{"name": "web", "containerPort": port}]}
        assert run_probe({"tcpSocket": {"port": "web"}}, container, {}, str(tmp_path))
    assert not run_probe({"tcpSocket": {"port": port}}, container, {}, str(tmp_path))
    env = {"PATH": "/usr/bin:/bin", "FLAG": str(tmp_path / "flag")}
    probe = {"exec": {"command": ["sh", "-c", "test -f $FLAG"]}}
    assert not run_probe(probe, container, env, str(tmp_path))
    (tmp_path / "flag").touch()
    assert run_probe(probe, container, env, str(tmp_path))
