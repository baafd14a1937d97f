"""The runtime helpers: quiet TensorFlow start-up that still explains a failed import; what --precision auto picks."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _python(code: str, cwd: Path, **env) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    full_env.update(PYTHONPATH=f"{ROOT}{os.pathsep}{cwd}", **env)
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=300)


def _package(root: Path, name: str, body: str) -> None:
    (root / name).mkdir()
    (root / name / "__init__.py").write_text(textwrap.dedent(body))


@pytest.fixture(scope="module")
def script_process(tmp_path_factory) -> subprocess.CompletedProcess:
    """One process run as landaug's scripts run (``script_main``): TensorFlow imported quietly and used, a
    checkpoint saved and resumed, one inference function per model for eight models, as the pipeline builds
    a labeller per arm and seed. Each step prints what it saw; TensorFlow may print nothing."""
    return _python("""
        import gc
        import importlib.util
        import sys
        from pathlib import Path
        from types import SimpleNamespace
        from landaug.errors import script_main

        installed = importlib.util.find_spec("sklearn") is not None

        def main(argv):
            from landaug.runtime import call_inference, model_function, quiet_tensorflow
            quiet_tensorflow()
            import tensorflow as tf
            print("op", float(tf.constant(1.0) + 1))
            import keras
            import numpy as np
            print("sklearn", installed, sys.modules.get("sklearn") is not None)
            from landaug.harness.checkpoints import Checkpoints
            rt = SimpleNamespace(is_chief=True)
            first = {"step": tf.Variable(3, dtype=tf.int64), "w": tf.Variable([1.0, 2.0])}
            Checkpoints(first, Path("ck"), rt).save(3)
            again = {"step": tf.Variable(0, dtype=tf.int64), "w": tf.Variable([0.0, 0.0])}
            Checkpoints(again, Path("ck"), rt).resume(Path("."), ("ck",))
            gc.collect()
            print("resumed", int(again["step"].numpy()), again["w"].numpy().tolist())
            x = np.zeros((1, 4), np.float32)
            for i in range(8):
                model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
                model_function(call_inference, model)(x)
            print("traced eight")

        script_main(main)
    """, tmp_path_factory.mktemp("script"))


def _said(proc: subprocess.CompletedProcess, key: str) -> str:
    assert proc.returncode == 0, proc.stderr
    return next(line for line in proc.stdout.splitlines() if line.startswith(key + " "))


def test_tensorflow_import_prints_nothing(script_process):
    assert _said(script_process, "op") == "op 2.0"
    assert script_process.stderr == ""


def test_scripts_import_keras_without_scikit_learn(script_process):
    """Keras loads scikit-learn whenever it is installed (the test set-up installs it); a script's process,
    which runs landaug's code only, spares itself that import."""
    assert _said(script_process, "sklearn") == "sklearn True False"
    for script in sorted(ROOT.glob("*.py")):
        assert "sys.exit(script_main(main))" in script.read_text(), script.name


def test_resuming_a_checkpoint_warns_of_nothing(script_process):
    # A resume restores every tracked value, the manager's save counter included, so TensorFlow has
    # nothing unrestored to warn about when the read status is collected.
    assert _said(script_process, "resumed") == "resumed 3 [1.0, 2.0]"
    assert "unrestored" not in script_process.stderr and "could not be found" not in script_process.stderr


def test_one_inference_function_per_model_does_not_warn_of_retracing(script_process, tmp_path):
    assert _said(script_process, "traced") == "traced eight"
    assert "retracing" not in script_process.stderr, script_process.stderr
    # The check can fail: a lambda per model does trigger TensorFlow's warning.
    plain = _python("""
        from landaug.runtime import quiet_tensorflow
        quiet_tensorflow()
        import keras, numpy as np, tensorflow as tf
        x = np.zeros((1, 4), np.float32)
        for i in range(8):
            model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
            tf.function(lambda v: model(v, training=False))(x)
    """, tmp_path)
    assert "retracing" in plain.stderr


def test_quiet_import_replays_output_of_a_failed_import(tmp_path):
    _package(tmp_path, "noisy", """
        import os
        os.write(2, b"start-up notice\\n")
        VALUE = 7
    """)
    _package(tmp_path, "broken", """
        import os
        os.write(2, b"libfoo.so: cannot open shared object file\\n")
        raise ImportError("broken needs libfoo")
    """)
    code = """
        from landaug.runtime import quiet_tensorflow
        quiet_tensorflow(("noisy", "broken"))
        import noisy
        assert noisy.VALUE == 7 and noisy.__loader__.__class__.__name__ == "SourceFileLoader"
        import sys
        print("after noisy", flush=True)
        import broken
    """
    r = _python(code, tmp_path)
    assert r.returncode == 1
    assert "after noisy" in r.stdout
    assert "start-up notice" not in r.stderr
    assert "libfoo.so: cannot open shared object file" in r.stderr
    assert "ImportError: broken needs libfoo" in r.stderr


def test_log_level_zero_keeps_output(tmp_path):
    _package(tmp_path, "noisy", """
        import os
        os.write(2, b"start-up notice\\n")
    """)
    r = _python("""
        from landaug.runtime import quiet_tensorflow
        quiet_tensorflow(("noisy",))
        import noisy
    """, tmp_path, TF_CPP_MIN_LOG_LEVEL="0")
    assert r.returncode == 0, r.stderr
    assert "start-up notice" in r.stderr


def test_precision_auto_follows_the_environment_and_the_onednn_cap(monkeypatch):
    import tensorflow as tf

    from landaug import runtime
    from landaug.errors import UserError

    for name in (runtime.PRECISION_ENV, *runtime.ONEDNN_ISA_ENV):
        monkeypatch.delenv(name, raising=False)
    native = runtime._resolve_precision("auto", tf)
    assert native == ("mixed_bfloat16" if runtime.cpu_supports_bf16() else "float32")
    monkeypatch.setenv(runtime.PRECISION_ENV, "float32")
    assert runtime._resolve_precision("auto", tf) == "float32"
    # an explicit --precision wins over the variable
    assert runtime._resolve_precision("mixed_bfloat16", tf) == "mixed_bfloat16"
    monkeypatch.setenv(runtime.PRECISION_ENV, "half")
    with pytest.raises(UserError, match="LANDAUG_PRECISION='half' is not one of float32"):
        runtime.validate_runtime_options("auto", "default", 0)
    monkeypatch.delenv(runtime.PRECISION_ENV)
    # oneDNN limited to AVX2 has no native bfloat16, whatever the CPU: auto is float32, as on an AVX2 CPU
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "avx2")
    assert runtime.onednn_isa_cap() == "AVX2" and not runtime.cpu_supports_bf16()
    assert runtime._resolve_precision("auto", tf) == "float32"
    assert runtime.speed_settings()["ONEDNN_MAX_CPU_ISA"] == "avx2"
    # bfloat16 asked for under that cap, on a CPU whose flags have it: refused before any compute
    monkeypatch.setattr(runtime, "cpu_features", lambda: ["AVX512F", "AVX512-BF16"])
    assert runtime.bfloat16_kernels_capped()
    with pytest.raises(UserError, match="--precision mixed_bfloat16: oneDNN is capped at AVX2 .* use --precision float32"):
        runtime.validate_runtime_options("mixed_bfloat16", "default", 0)
    monkeypatch.setenv(runtime.PRECISION_ENV, "mixed_bfloat16")
    with pytest.raises(UserError, match="--precision mixed_bfloat16: oneDNN is capped"):
        runtime.validate_runtime_options("auto", "default", 0)
    runtime.validate_runtime_options("float32", "default", 0)
    monkeypatch.setattr(runtime, "cpu_features", lambda: ["AVX2"])      # an AVX2 CPU: no such trap
    assert not runtime.bfloat16_kernels_capped()
    runtime.validate_runtime_options("auto", "default", 0)


def test_setup_freezes_the_import_time_objects_once():
    import gc

    from landaug.runtime import setup_runtime

    setup_runtime("float32")
    frozen = gc.get_freeze_count()
    assert frozen > 100_000
    setup_runtime("float32")
    assert gc.get_freeze_count() == frozen
