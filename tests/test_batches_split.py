"""Step batches and the split of a seed: pure functions of their seeds, scenes kept whole, shares kept."""

from __future__ import annotations

import json

import numpy as np
import pytest

from landaug.batches import StepSampler, step_dataset
from landaug.errors import UserError
from landaug.split import draw_split, in_scenes, read_split, val_scenes, write_split


def _synthetic_drawn(sampler, steps):
    return sum(len(sampler.indices(step)[1]) for step in range(steps))


@pytest.mark.parametrize("batch,share", [(1, 0.25), (2, 0.25), (1, 0.1), (3, 0.3), (5, 0.5)])
def test_a_synthetic_share_is_honoured_at_any_batch(batch, share):
    s = StepSampler([7, 5], batch=batch, shares=[1 - share, share], seed=0)
    drawn = 0
    for step in range(200):
        real, synth = s.indices(step)
        assert len(real) + len(synth) == batch
        drawn += len(synth)
        assert abs(drawn - share * batch * (step + 1)) <= 0.5 + 1e-9, (step, drawn)   # within one pair
    assert s.realised_share(200) == pytest.approx(share, abs=0.5 / (200 * batch))
    assert s.drawn(200) == [200 * batch - drawn, drawn]


def test_whole_shares_keep_the_batches_of_a_fixed_count():
    """Where share x batch is whole (batch 8, share 0.25), every step is what a fixed 6 + 2 split gives."""
    s = StepSampler([30, 11], batch=8, shares=[0.75, 0.25], seed=5)
    assert s.batch_counts == [6, 2]
    for step in (0, 1, 4, 17, 250):
        for pool, (n, k) in enumerate(zip((30, 11), (6, 2))):
            pos = step * k + np.arange(k)
            fixed = [np.random.default_rng([5, pool, e]).permutation(n)[w] for e, w in zip(pos // n, pos % n)]
            assert s.indices(step)[pool].tolist() == fixed
    assert StepSampler([10], batch=4).batch_counts == [4]
    assert StepSampler([10, 3], batch=1, shares=[0.75, 0.25]).batch_counts == [0.75, 0.25]


def test_sampler_is_safe_from_the_threads_of_a_parallel_map():
    """tf.data calls ``indices`` from several threads; its permutation cache is cleared while they read.
    The cache is swapped for one that hands over to the other threads inside each write, as a free-threaded
    or unlucky schedule would (under the GIL the window is too short to hit by chance)."""
    import threading
    import time

    class Handoff(dict):
        def __setitem__(self, key, value):
            super().__setitem__(key, value)
            time.sleep(2e-4)

        def clear(self):
            super().clear()
            time.sleep(2e-4)

    reference = StepSampler([3, 2], batch=4, shares=[0.5, 0.5], seed=1)
    shared = StepSampler([3, 2], batch=4, shares=[0.5, 0.5], seed=1)
    shared._perms = Handoff()
    got, errors = {}, []

    def work(first):
        try:
            for step in range(first, 200, 4):
                got[step] = shared.indices(step)
        except Exception as e:  # a KeyError of the cache is the failure looked for
            errors.append(repr(e))

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert all(np.array_equal(a, b) for st in range(200) for a, b in zip(got[st], reference.indices(st)))


def test_sampler_walks_each_pool_in_seeded_epochs():
    s = StepSampler([10, 4], batch=4, shares=[0.5, 0.5], seed=3)
    assert s.batch_counts == [2, 2]
    first_epoch = np.concatenate([s.indices(step)[0] for step in range(5)])
    assert sorted(first_epoch) == list(range(10))            # one pass over the real pool in 5 steps
    synth = np.concatenate([s.indices(step)[1] for step in range(2)])
    assert sorted(synth) == [0, 1, 2, 3]                       # the small pool cycles on its own
    again = StepSampler([10, 4], batch=4, shares=[0.5, 0.5], seed=3)
    assert all(np.array_equal(a, b) for st in (0, 7, 123) for a, b in zip(s.indices(st), again.indices(st)))
    other = StepSampler([10, 4], batch=4, shares=[0.5, 0.5], seed=4)
    assert not np.array_equal(np.concatenate([s.indices(k)[0] for k in range(5)]),
                              np.concatenate([other.indices(k)[0] for k in range(5)]))
    assert s.epochs_done(5) == 1.0


def test_step_dataset_is_a_pure_function_of_the_step():
    data = np.arange(10 * 2 * 2, dtype=np.uint8).reshape(10, 2, 2)
    sampler = StepSampler([10], 4, seed=1)

    def make(step):
        return (data[sampler.indices(step)[0]],)

    def steps(start, stop):
        return [b[0].numpy() for b in step_dataset(make, [(np.uint8, (4, 2, 2))], start, stop)]

    full = steps(0, 6)
    resumed = steps(3, 6)
    assert all(np.array_equal(a, b) for a, b in zip(full[3:], resumed))
    assert len(full) == 6 and full[0].shape == (4, 2, 2)


def test_distributed_batches_are_the_same_without_tf_data_autotuning():
    """The replicas' pipeline has no autotuning thread (deleting its iterator waited that thread out, for
    up to a minute on one core), and its replicas' slices are still the batch of each step."""
    data = np.arange(8 * 2 * 2, dtype=np.uint8).reshape(8, 2, 2)

    def make(step):
        return (np.roll(data, step, axis=0)[:4],)

    one = step_dataset(make, [(np.uint8, (4, 2, 2))], 0, 3)
    two = step_dataset(make, [(np.uint8, (4, 2, 2))], 0, 3, replicas=2, local_replicas=2)
    assert one.options().autotune.enabled and not two.options().autotune.enabled
    slices = [x[0].numpy() for x in two]          # each step's replicas one after the other
    assert len(slices) == 6
    for k, whole in enumerate(one):
        np.testing.assert_array_equal(whole[0].numpy(), np.concatenate(slices[2 * k:2 * k + 2]))


def test_split_draws_validation_by_scene_and_keeps_test():
    scenes = [f"s{i}" for i in range(20)]
    split = draw_split(scenes, ["s3", "s7"], 0.1, seed=0)
    assert split["test"] == ["s3", "s7"] and len(split["val"]) == 2
    assert not set(split["val"]) & set(split["train"]) and not {"s3", "s7"} & set(split["train"] + split["val"])
    assert sorted(split["train"] + split["val"] + split["test"]) == sorted(scenes)
    assert draw_split(scenes, ["s3"], 0.1, seed=0)["val"] != draw_split(scenes, ["s3"], 0.1, seed=1)["val"]
    assert val_scenes(scenes, 0.0, 0) == []
    with pytest.raises(UserError, match="at least 2 training scenes"):
        val_scenes(["only"], 0.1, 0)


def test_tiles_follow_their_scene():
    stems = [f"a__t{r}_{c}" for r in range(2) for c in range(2)] + ["b__t0_0", "c"]
    assert in_scenes(stems, ["a", "c"]) == ["a__t0_0", "a__t0_1", "a__t1_0", "a__t1_1", "c"]


def test_split_file_round_trip_and_refusals(tmp_path):
    split = draw_split([f"s{i}" for i in range(10)], ["s0"], 0.2, seed=2)
    write_split(tmp_path / "split.json", split)
    assert read_split(tmp_path / "split.json")["val"] == split["val"]
    bad = {**split, "val": split["val"] + ["s0"]}
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    with pytest.raises(UserError, match="is in both"):
        read_split(tmp_path / "bad.json")
    (tmp_path / "junk.json").write_text("{")
    with pytest.raises(UserError, match="not a readable split.json"):
        read_split(tmp_path / "junk.json")
