"""bench.py: the JSON result of tiny configurations (training, whole scene), FLOP counting, utilisation against
the run's own precision, the fused-kernel, labeller and XLA ablations, the instruction-set cap in the machine
record, the batch-size advice, option errors."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from landaug import bench
from landaug.errors import UserError

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--size", "32", "--batch", "2", "--steps", "2", "--warmup", "1", "--peak-size", "256"]


def _start(*args: str, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "bench.py", *TINY, *args], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, **(env or {})})


@pytest.fixture(scope="module")
def runs() -> dict:
    """Six tiny benchmark processes, started together to share the start-up time."""
    procs = {"compare": _start("--model", "pix2pix", "--width", "0.25", "--compare", "--json"),
             "paired": _start("--model", "paired", "--width", "16", "--precision", "float32", "--profile", "1", "--json"),
             "oom": _start("--model", "synth", "--size", "16", "--width", "0.125", "--memory-limit-mb", "1",
                           "--no-search-batch"),
             # later options win: the scene run replaces TINY's training size and batch; oneDNN limited to AVX2,
             # as the CPUs without AVX-512 run it: auto precision is float32 there
             "scene": _start("--scene", "100", "--size", "32", "--width", "0.125", "--batch", "8", "--json",
                             env={"ONEDNN_MAX_CPU_ISA": "AVX2"}),
             "ablation": _start("--model", "dcgan", "--size", "16", "--width", "8", "--precision", "float32", "--ablation",
                                 "--json"),
             "labellers": _start("--size", "16", "--width", "0.125", "--precision", "float32", "--steps", "1",
                                 "--ablation", "labeller", "--json"),
             "inference": _start("--scene", "60", "--size", "16", "--width", "0.125", "--batch", "16", "--steps", "1",
                                 "--warmup", "1", "--ablation", "inference", "--tta", "--json")}
    out = {}
    for name, p in procs.items():
        stdout, stderr = p.communicate(timeout=600)
        out[name] = (p.returncode, stdout, stderr)
    return out


def _result(runs, name) -> dict:
    code, stdout, stderr = runs[name]
    assert code == 0, stderr[-3000:]
    return json.loads(stdout)


def _sane(r: dict, gflop_range: tuple[float, float]) -> None:
    for key in bench.JSON_KEYS + ("peak_float32_gflops", "inference_images_per_second", "step_only_images_per_second",
                                  "input_seconds_per_batch", "input_wait_seconds", "peak_host_memory_mb"):
        assert isinstance(r[key], float) and r[key] > 0, key
    lo, hi = gflop_range
    assert lo < r["train_gflop_per_image"] < hi
    assert r["achieved_gflops"] == pytest.approx(r["train_gflop_per_image"] * r["images_per_second"])
    assert r["utilization"] == pytest.approx(r["achieved_gflops"] / r["peak_gflops"])
    assert r["utilization_float32"] == pytest.approx(r["achieved_gflops"] / r["peak_float32_gflops"])
    assert r["inference_gflop_per_image"] < r["train_gflop_per_image"]
    assert r["step_seconds"] >= r["input_wait_seconds"]
    assert 50 < r["peak_host_memory_mb"] < 24_000


@pytest.mark.slow
def test_compare_json_has_both_implementations(runs):
    r = _result(runs, "compare")
    # pix2pix at 32 px, width 0.25: a forward pass of the generator is ~12 MFLOP, a training step ~10x that
    _sane(r, (0.02, 1.0))
    _sane(r["reference"], (0.02, 1.0))
    # Same architecture, so the same work within the output layers' difference (logits vs tanh, losses).
    assert r["reference"]["train_gflop_per_image"] == pytest.approx(r["train_gflop_per_image"], rel=0.05)
    assert r["reference"]["precision"] == "float32"
    assert r["speedup"] == pytest.approx(r["images_per_second"] / r["reference"]["images_per_second"])
    assert r["machine"]["tensorflow"] and r["machine"]["cores"] >= 1
    # The headline is against the peak of the precision the step computes in.
    assert r["peak_dtype"] == {"mixed_bfloat16": "bfloat16", "mixed_float16": "float16"}.get(r["precision"], "float32")
    assert set(r["peak_measurements_gflops"]) == {"float32", r["peak_dtype"]}
    assert r["reference"]["peak_dtype"] == "float32"
    assert r["reference"]["utilization"] == r["reference"]["utilization_float32"]
    assert r["fused"] == {"batchnorm": True, "adam": True} and r["reference"]["fused"] is None


@pytest.mark.slow
def test_paired_dcgan_json(runs):
    r = _result(runs, "paired")
    _sane(r, (1e-4, 1.0))
    assert r["precision"] == "float32" and r["peak_gflops"] == r["peak_float32_gflops"]
    assert r["peak_dtype"] == "float32" and r["utilization"] == r["utilization_float32"]
    profile = r["profile"]
    by_type, by_node = profile["by_op_type"], profile["by_node"]
    assert by_type and all(ms > 0 for ms in by_type.values())
    # The DCGAN's work is convolutions and their gradients; the trace must see them by op type.
    assert {"Conv2D", "Conv2DBackpropInput", "Conv2DBackpropFilter"} & set(by_type)
    assert sum(by_type.values()) <= profile["op_ms_per_step"] + 1e-6
    assert max(by_node.values()) <= max(by_type.values()) + 1e-6


@pytest.mark.slow
def test_scene_json(runs):
    from landaug.tiling import count_windows

    r = _result(runs, "scene")
    assert (r["mode"], r["scene_px"], r["size"], r["width"], r["batch"]) == ("scene", 100, 32, 0.125, 8)
    assert r["windows_per_scene"] == count_windows(100, 100, 32, 1.0, 0.25)
    # 32 px windows, 8 px overlap: stride 24 over 100 + 2 * 4 px of margin gives 5 starts per axis
    assert r["windows_per_scene"] == 25 and r["forward_passes_per_scene"] == math.ceil(25 / 8)
    assert r["seconds_per_scene"] > 0 and len(r["scene_seconds"]) == 2
    assert r["megapixels_per_second"] == pytest.approx(0.01 / r["seconds_per_scene"])
    assert 0 < r["network_seconds_per_scene"] < r["seconds_per_scene"]
    assert r["network_share"] == pytest.approx(r["network_seconds_per_scene"] / r["seconds_per_scene"])
    assert 0 < r["blending_seconds_per_scene"] < r["seconds_per_scene"]
    assert r["gflop_per_scene"] > 0 and r["fused"] == {"batchnorm": True}
    m = r["machine"]
    assert r["precision"] == "float32" and not m["bf16_native"]
    assert m["isa_cap"] == "AVX2" and m["settings"]["ONEDNN_MAX_CPU_ISA"] == "AVX2"
    assert "avx2" in m["cpu_flags"].split() and m["threads"] == {"intra_op": 0, "inter_op": 0}


@pytest.mark.slow
def test_inference_ablation_json(runs):
    from landaug.tiling import count_windows

    r = _result(runs, "inference")
    assert (r["mode"], r["scene_px"], r["tta"]) == ("inference", 60, True)
    v = r["variants"]
    assert sorted(v) == ["before", "strips_b32", "strips_b32_threads", "strips_b32_threads_xla",
                         "strips_b32_threads_xla_softmax", "strips_b32_threads_xla_softmax_head", "strips_b8"]
    windows = count_windows(60, 60, 16, 1.0, 0.25)          # each of the four mirror images
    assert v["before"]["speedup_vs_before"] == 1.0 and v["before"]["batch"] == 8
    assert v["before"]["forward_passes"] == v["strips_b8"]["forward_passes"] == 4 * math.ceil(windows / 8)
    for name in ("strips_b32_threads", "strips_b32_threads_xla_softmax_head"):
        assert v[name]["batch"] == 16 and v[name]["forward_passes"] == 4 * math.ceil(windows / 16)
    for x in v.values():
        assert x["megapixels_per_second"] == pytest.approx(0.0036 / x["seconds_per_scene"]) and x["network_gflops"] > 0


@pytest.mark.slow
def test_ablation_json(runs):
    r = _result(runs, "ablation")
    assert r["mode"] == "ablation" and r["rounds"] == 2
    fused = {name: v["fused"] for name, v in r["variants"].items()}
    assert fused == {"fused": {"batchnorm": True, "adam": True}, "keras_both": {"batchnorm": False, "adam": False},
                     "keras_batchnorm": {"batchnorm": False, "adam": True},
                     "keras_adam": {"batchnorm": True, "adam": False}}
    for v in r["variants"].values():
        assert len(v["step_seconds_all"]) == 2 and len(v["cpu_seconds_all"]) == 2
        assert v["images_per_second"] == pytest.approx(2 / v["step_seconds"])
    f = r["variants"]["fused"]["step_seconds_all"]
    both = r["variants"]["keras_both"]["step_seconds_all"]
    # Two rounds: the median of the two per-round ratios is their mean.
    assert r["variants"]["keras_both"]["speed_vs_fused"] == pytest.approx((f[0] / both[0] + f[1] / both[1]) / 2)
    assert r["variants"]["fused"]["speed_vs_fused"] == 1.0


@pytest.mark.slow
def test_labeller_ablation_json(runs):
    r = _result(runs, "labellers")
    assert r["mode"] == "ablation" and r["ablation"] == "labeller" and r["reference_variant"] == "pix2pix"
    v = r["variants"]
    assert set(v) == {"pix2pix", "unet", "unet_dice", "unet_lovasz", "unet_resize", "pix2pix_resize", "unet_width2x"}
    assert v["pix2pix"]["speed_vs_pix2pix"] == 1.0
    gflop = {name: x["train_gflop_per_image"] for name, x in v.items()}
    # no discriminator, no second optimizer; a 3x3 convolution at twice the resolution costs more than a
    # 4x4 transposed one; twice the width about four times the work
    assert gflop["unet"] < 0.7 * gflop["pix2pix"] and v["unet"]["fused"] == {"batchnorm": True, "adam": True}
    assert gflop["unet_resize"] > gflop["unet"] and gflop["pix2pix_resize"] > gflop["pix2pix"]
    assert 3 < gflop["unet_width2x"] / gflop["unet"] < 4.5
    assert "width 0.25" in v["unet_width2x"]["label"]


def test_xla_ablation_compiles_the_step_and_the_forward_pass_of_its_xla_variant(monkeypatch):
    """The ablation's orchestration on stand-in models: each variant's options reach its build, the XLA variant's
    forward pass is compiled, training steps and then forward passes take turns, ratios against the first."""
    import tensorflow as tf

    from landaug.bench import ablation, project
    from landaug.bench.measure import Bench

    built = []

    def fake_build(cfg, photos, labels, work):
        built.append(cfg.xla)
        w = tf.Variable(1.0)
        step = tf.function(lambda: w.assign_add(1.0), jit_compile=cfg.xla)
        forward = lambda: tf.reduce_sum(tf.ones([cfg.batch, 4]) * w)   # noqa: E731
        concrete = tf.function(lambda: w * 2.0).get_concrete_function()
        return Bench(f"stand-in{' XLA' if cfg.xla else ''}", cfg.precision, lambda batch: step(), iter(range(10 ** 6)),
                     forward, concrete, concrete, cfg.batch)

    monkeypatch.setattr(project, "BUILDERS", {"pix2pix": fake_build})
    monkeypatch.setattr(project, "synthetic_scenes", lambda n, size, seed: (None, None))
    compiled = []
    real_compiled = ablation._compiled
    monkeypatch.setattr(ablation, "_compiled", lambda infer: compiled.append(infer) or real_compiled(infer))
    out = ablation.measure_ablation(bench.resolve(bench.BenchConfig(ablation="xla", size=16, batch=2, steps=3,
                                                                    warmup=1, precision="float32")))
    assert built == [False, True] and len(compiled) == 1
    v = out["variants"]
    assert list(v) == ["graph", "xla"] and v["xla"]["label"] == "stand-in XLA"
    assert len(v["xla"]["step_seconds_all"]) == 3 and len(v["xla"]["inference_seconds_all"]) == 3
    assert v["graph"]["speed_vs_graph"] == 1.0 and v["graph"]["inference_speed_vs_graph"] == 1.0
    g, x = v["graph"]["inference_seconds_all"], v["xla"]["inference_seconds_all"]
    assert v["xla"]["inference_speed_vs_graph"] == pytest.approx(sorted(a / b for a, b in zip(g, x))[1])
    assert v["xla"]["inference_images_per_second"] == pytest.approx(2 / sorted(x)[1])


def test_utilization_is_against_the_precision_used():
    # 800 GFLOP/s achieved in bfloat16 on a machine with a 1600 GFLOP/s bfloat16 and 400 float32 peak
    u = bench.utilization(800.0, 1600.0, 400.0)
    assert u == {"utilization": 0.5, "utilization_float32": 2.0}
    line = bench.utilization_line({"achieved_gflops": 800.0, "peak_dtype": "bfloat16", **u})
    assert line.strip() == "800.0 GFLOP/s = 50 % of the bfloat16 peak (200 % of the float32 peak)"
    f32 = bench.utilization_line({"achieved_gflops": 100.0, "peak_dtype": "float32",
                                  **bench.utilization(100.0, 400.0, 400.0)})
    assert f32.strip() == "100.0 GFLOP/s = 25 % of the float32 peak"


@pytest.mark.parametrize("no_fused, expected", [(None, {"batchnorm": True, "adam": True}),
                                                ("all", {"batchnorm": False, "adam": False}),
                                                ("batchnorm", {"batchnorm": False, "adam": True}),
                                                ("adam", {"batchnorm": True, "adam": False})])
def test_no_fused_swaps_the_pieces_asked_for(no_fused, expected):
    from landaug.bench.project import fused_as_built, fused_pieces
    from landaug.harness.module import optimizer
    from landaug.models import layers
    from landaug.models.pix2pix import build_generator

    rt = SimpleNamespace(precision="float32")
    with fused_pieces(no_fused):
        gen = build_generator(16, 7, 0.125)
        inner, _ = optimizer(rt, 2e-4, 0.5, "g_adam")     # the way the GAN modules make their optimizers
    assert fused_as_built([gen], [inner]) == expected
    # Afterwards the defaults are back for whatever is built next.
    assert layers.fused_enabled() and type(optimizer(rt, 2e-4, 0.5, "next")[0]) is layers.FusedAdam


@pytest.mark.slow
def test_out_of_memory_is_one_line_with_advice(runs):
    code, stdout, stderr = runs["oom"]
    assert code == 2 and "Traceback" not in stderr
    last = stderr.strip().splitlines()[-1]
    assert last.startswith("bench.py: error: --batch 2 does not fit in memory") and "smaller --batch" in last


def test_largest_fitting_batch_halves_then_bisects():
    calls = []

    def fits(b):
        calls.append(b)
        return b <= 11

    assert bench.largest_fitting_batch(fits, 64) == 11
    assert calls[:3] == [32, 16, 8]
    assert bench.largest_fitting_batch(lambda b: False, 8) == 0
    assert bench.largest_fitting_batch(lambda b: True, 9) == 8


def test_too_large_message_suggests_the_batch():
    cfg = bench.resolve(bench.BenchConfig(batch=64))
    assert bench.too_large_message(cfg, 11, "OOM").endswith("the largest batch that fits is 11, use --batch 11")
    assert "not even --batch 1" in bench.too_large_message(cfg, 0, "OOM")


def test_count_flops_counts_what_runs():
    import tensorflow as tf

    @tf.function
    def f(a, b):
        tf.matmul(b, tf.transpose(b))                 # result unused: pruned before running, not counted
        return tf.matmul(a, b)                        # 2 * 8 * 16 * 4 = 1024 FLOPs

    concrete = f.get_concrete_function(tf.TensorSpec([8, 16]), tf.TensorSpec([16, 4]))
    assert bench.count_flops(concrete) == 2 * 8 * 16 * 4

    @tf.function
    def conv(x, k):
        return tf.nn.conv2d(x, k, strides=2, padding="SAME")

    c = conv.get_concrete_function(tf.TensorSpec([1, 16, 16, 3]), tf.TensorSpec([4, 4, 3, 5]))
    assert bench.count_flops(c) == 2 * 8 * 8 * 4 * 4 * 3 * 5


@pytest.mark.parametrize("argv, message", [
    (["--model", "dcgan", "--compare"], "pix2pix only"),
    (["--impl", "reference", "--xla"], "drop --xla"),
    (["--impl", "reference", "--precision", "mixed_bfloat16"], "float32"),
    (["--size", "100"], "power of two"),
    (["--model", "dcgan", "--width", "0.5"], "power of two >= 8"),
    (["--steps", "0"], "--steps and --warmup"),
    (["--impl", "reference", "--no-fused"], "drop --no-fused"),
    (["--no-fused", "conv"], "invalid choice"),
    (["--scene", "1000", "--model", "dcgan"], "use --model pix2pix"),
    (["--scene", "1000", "--compare"], "drop it"),
    (["--scene", "-5"], "side of the whole scene"),
    (["--ablation", "--no-fused"], "drop --no-fused"),
    (["--ablation", "labeller", "--model", "dcgan"], "use --model pix2pix"),
    (["--ablation", "labeller", "--labeller", "unet"], "drop --labeller"),
    (["--ablation", "xla", "--xla"], "drop --xla"),
    (["--model", "synth", "--width", "8"], "--width for synth is a filter multiplier"),
    (["--model", "synth", "--loss", "ce+dice"], "apply to pix2pix only"),
    (["--labeller", "unet", "--compare"], "the reference is the paper's pix2pix"),
    (["--model", "dcgan", "--upsample", "resize"], "apply to pix2pix only"),
    (["--scene", "1000", "--loss", "ce+lovasz"], "not --scene: drop it"),
    (["--ablation", "inference"], "give its side with --scene"),
    (["--scene", "1000", "--tta"], "--tta is for --scene PX --ablation inference"),
])
def test_bad_options(argv, message):
    with pytest.raises(UserError, match=message):
        bench.main(argv)
