"""Distributed training: MirroredStrategy over logical CPU devices and MultiWorkerMirroredStrategy over
two local processes give the weights of a single-device run of the same global batch; a multi-worker
checkpoint (written by the chief only) resumes on one replica.

Every run is a training in a fresh process: logical devices and TF_CONFIG must be in place before
TensorFlow initialises. The runs are made comparable by fixed seeds and op determinism (same initial
weights, same batches and jitter), no dropout (its noise differs per replica), float32, and batch norm
synchronised across replicas (which the training stage switches on whenever there are several), so a
replica's statistics are those of the global batch.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]
PAIRS = 4          # batch 2 -> 2 steps per epoch
COMMON = ["--epochs", "1", "--batch", "2", "--width", "0.25", "--dropout", "0", "--val-fraction", "0",
          "--deterministic", "--precision", "float32", "--sample-every", "0", "--quiet"]


def _env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "TF_CONFIG"}
    env.update(TF_CPP_MIN_LOG_LEVEL="2", **extra)
    return env


def _train(data: Path, out: Path, *args: str, env: dict | None = None, timeout: int = 600):
    return subprocess.run([sys.executable, "cgan.py", "train", "--data", str(data), "--out", str(out), *COMMON, *args],
                          cwd=ROOT, env=env or _env(), capture_output=True, text=True, timeout=timeout)


def _ok(proc) -> None:
    assert proc.returncode == 0, proc.stderr[-3000:]


def _variables(out: Path) -> dict:
    import tensorflow as tf

    reader = tf.train.load_checkpoint(tf.train.latest_checkpoint(str(out / "ckpt")))
    names = [n for n in reader.get_variable_to_shape_map() if not n.startswith(("config/", "_CHECKPOINTABLE"))]
    return {n: reader.get_tensor(n) for n in names}


def assert_same_weights(a: dict, b: dict) -> None:
    """Every variable of two checkpoints (networks, Adam moments, batch-norm statistics, counters) agrees."""
    assert a.keys() == b.keys()
    for name in sorted(a):
        x, y = np.asarray(a[name]), np.asarray(b[name])
        if np.issubdtype(x.dtype, np.floating):
            np.testing.assert_allclose(x, y, rtol=1e-4, atol=2e-5, err_msg=name)
        else:
            np.testing.assert_array_equal(x, y, err_msg=name)


@pytest.fixture(scope="module")
def pairs(demo_root, tmp_path_factory) -> Path:
    """Four training pairs of the 32 px demo set (copied: the fixture is read-only)."""
    src = demo_root / "images_CGAN" / "train"
    dst = tmp_path_factory.mktemp("dist_data")
    for sub in ("a", "b"):
        (dst / sub).mkdir()
        for p in sorted((src / sub).iterdir())[:PAIRS]:
            shutil.copy(p, dst / sub / p.name)
    shutil.copy(demo_root / "images_CGAN" / "classes.json", dst / "classes.json")
    return dst


# The mirrored run and the single-device run in one process (one TensorFlow start, not two): the logical
# devices must exist before anything touches TensorFlow, so the two-replica run goes first.
TWO_RUNS = """
import sys
from landaug.cgan import main
data, out, common = sys.argv[1], sys.argv[2], sys.argv[3:]
assert main(["train", "--data", data, "--out", out + "/mirrored", *common, "--strategy", "mirrored",
             "--cpu-devices", "2"]) == 0
assert main(["train", "--data", data, "--out", out + "/single", *common]) == 0
"""


@pytest.fixture(scope="module")
def runs(pairs, tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    out = tmp_path_factory.mktemp("two_runs")
    proc = subprocess.run([sys.executable, "-c", TWO_RUNS, str(pairs), str(out), *COMMON], cwd=ROOT, env=_env(),
                          capture_output=True, text=True, timeout=600)
    _ok(proc)
    return out, proc


@pytest.fixture(scope="module")
def single(runs) -> dict:
    """The single-device run everything is compared with."""
    return _variables(runs[0] / "single")


def test_mirrored_two_cpu_devices_equals_single_device(runs, single):
    out, proc = runs
    mirrored_log, single_log = proc.stdout.split("on 1 replica(s)")
    assert "on 2 replica(s)" in mirrored_log and "replica(s)" not in single_log
    mirrored = _variables(out / "mirrored")
    assert int(mirrored["step/.ATTRIBUTES/VARIABLE_VALUE"]) == 2
    # Training moved the weights: the Adam first moments hold the (averaged) gradients, now non-zero.
    moments = [v for k, v in mirrored.items() if k.startswith("g_opt/_variables/") and np.ndim(v) == 4]
    assert moments and max(float(np.abs(m).max()) for m in moments) > 1e-6
    assert_same_weights(single, mirrored)


def _free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def test_multiworker_two_processes_then_resume_on_one(pairs, single, tmp_path):
    out = tmp_path / "multiworker"
    cluster = {"worker": [f"localhost:{p}" for p in _free_ports(2)]}
    procs = []
    for index in range(2):
        tf_config = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})
        procs.append(subprocess.Popen(
            [sys.executable, "cgan.py", "train", "--data", str(pairs), "--out", str(out), *COMMON,
             "--strategy", "multiworker"], cwd=ROOT, env=_env(TF_CONFIG=tf_config),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    try:
        outputs = [p.communicate(timeout=600) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    for p, (stdout, stderr) in zip(procs, outputs):
        assert p.returncode == 0, stderr[-3000:]
    assert "on 2 replica(s)" in outputs[0][0]
    # The chief (worker 0) alone writes the model folder; the other worker's scratch checkpoint is gone.
    assert sorted(p.name for p in (out / "ckpt").iterdir() if p.name.startswith("ckpt-2"))   # numbered by step
    assert not [p for p in out.iterdir() if p.name.startswith(".")], list(out.iterdir())
    assert_same_weights(single, _variables(out))

    # Resume the 2-replica checkpoint on a single device and continue to epoch 2.
    proc = _train(pairs, out, "--resume", "--epochs", "2")
    _ok(proc)
    resumed = _variables(out)
    assert int(resumed["step/.ATTRIBUTES/VARIABLE_VALUE"]) == 4
    assert int(resumed["epoch/.ATTRIBUTES/VARIABLE_VALUE"]) == 2
    rows = (out / "log.csv").read_text().splitlines()
    assert [r.split(",")[0] for r in rows[1:]] == ["1", "2"]
    kernel = "g_opt/_trainable_variables/0/.ATTRIBUTES/VARIABLE_VALUE"   # the generator's first kernel
    assert kernel in resumed and not np.allclose(resumed[kernel], single[kernel])
