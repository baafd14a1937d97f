"""Class registry and label readers: palette, RGB colour and grey-index masks, atomic writes, pairing."""

import json
import os

import numpy as np
import pytest
from PIL import Image

from landaug.classes import IGNORE_INDEX, SPARCS, ClassRegistry, load_registry, registry_for_data
from landaug.colours import ColourMatch
from landaug.errors import UserError
from landaug.imgio import (folder_has_images, pair_by_stem, read_image, read_label, rgb_to_label,
                           write_image, write_label)


def test_sparcs_registry_matches_the_usgs_palette():
    assert SPARCS.names == ["cloud shadow", "shadow over water", "water", "snow/ice", "land", "cloud", "flooded"]
    assert SPARCS.colors.tolist() == [[0, 0, 0], [0, 0, 128], [0, 0, 255], [0, 255, 255],
                                      [128, 128, 128], [255, 255, 255], [128, 128, 0]]


def test_registry_json_round_trip(tmp_path):
    path = tmp_path / "classes.json"
    SPARCS.save(path)
    assert load_registry(path) == SPARCS
    assert registry_for_data(tmp_path) == SPARCS


def test_custom_registry_from_json(tmp_path):
    path = tmp_path / "classes.json"
    path.write_text(json.dumps([{"index": 1, "name": "b", "color": [0, 255, 0]},
                                {"index": 0, "name": "a", "color": [255, 0, 0]}]))
    reg = load_registry(path)
    assert reg.names == ["a", "b"] and reg.colors.tolist() == [[255, 0, 0], [0, 255, 0]]


@pytest.mark.parametrize("data,needle", [
    ([{"index": 0, "name": "a"}], "expected"),
    ([{"index": 0, "name": "a", "color": [1, 2, 3]}, {"index": 2, "name": "b", "color": [4, 5, 6]}], "indices"),
    ([{"index": 0, "name": "a", "color": [1, 2, 3]}, {"index": 1, "name": "a", "color": [4, 5, 6]}], "unique"),
    ([{"index": 0, "name": "a", "color": [1, 2, 300]}], "0..255"),
])
def test_bad_registry_is_a_user_error_naming_the_file(tmp_path, data, needle):
    path = tmp_path / "classes.json"
    path.write_text(json.dumps(data))
    with pytest.raises(UserError) as e:
        load_registry(path)
    assert str(path) in e.value.line() and needle in e.value.line()


def test_palette_mask_round_trip_is_exact_and_viewable(tmp_path, rng):
    label = rng.integers(0, 7, (20, 30)).astype(np.uint8)
    write_label(tmp_path / "m.png", label, SPARCS)
    im = Image.open(tmp_path / "m.png")
    assert im.mode == "P"
    assert np.array_equal(np.asarray(im.convert("RGB")), SPARCS.colorize(label))
    assert np.array_equal(read_label(tmp_path / "m.png", SPARCS), label)


def test_rgb_colours_must_be_exact_unless_a_tolerance_is_chosen(tmp_path, rng):
    label = rng.integers(0, 7, (16, 16)).astype(np.uint8)
    rgb = SPARCS.colorize(label).astype(int) + rng.integers(-6, 7, (16, 16, 3))
    Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8)).save(tmp_path / "rgb.png")
    with pytest.raises(UserError, match="rgb.png: mask colours that are no class: .* px, nearest .* at "):
        read_label(tmp_path / "rgb.png", SPARCS)
    assert np.array_equal(read_label(tmp_path / "rgb.png", SPARCS, match=ColourMatch(11)), label)


def test_a_near_miss_names_its_pixels_nearest_class_and_distance():
    """The masks' water sits 20 units from the declared land: exact matching refuses it, in one line."""
    reg = ClassRegistry.from_json({"classes": [{"title": "Land", "color": "#EEB929"},
                                               {"title": "Road", "color": [110, 193, 228]}]})
    rgb = np.zeros((4, 5, 3), np.uint8)
    rgb[:] = (110, 193, 228)
    rgb[:, :3] = (226, 169, 41)
    with pytest.raises(UserError) as e:
        rgb_to_label(rgb, reg, "m.png")
    assert e.value.line().startswith("m.png: mask colours that are no class: (226, 169, 41) 12 px, nearest Land "
                                     "(238, 185, 41) at 20.0: ")
    assert "--colour-tolerance N" in e.value.line() and "(110, 193, 228)" not in e.value.line()


def test_a_tolerance_reports_two_mask_colours_taken_as_one_class():
    reg = ClassRegistry.from_json([{"index": 0, "name": "Land", "color": [238, 185, 41]},
                                   {"index": 1, "name": "Road", "color": [110, 193, 228]}])
    rgb = np.array([[[238, 185, 41], [226, 169, 41], [226, 169, 41], [110, 193, 228]]], np.uint8)
    match = ColourMatch(24)
    np.testing.assert_array_equal(rgb_to_label(rgb, reg, match=match), [[0, 0, 0, 1]])
    [warning] = match.warnings(reg)
    assert warning.startswith("--colour-tolerance 24 took 2 different mask colours as Land: (226, 169, 41) 2 px "
                              "at 20.0, (238, 185, 41) 1 px exact")
    far = np.array([[[0, 0, 0]]], np.uint8)
    with pytest.raises(UserError, match=r"farther than --colour-tolerance 24 from every class: \(0, 0, 0\) 1 px"):
        rgb_to_label(far, reg, match=match)


def test_colours_that_are_no_class_are_gathered_over_many_masks():
    reg = ClassRegistry.from_json([{"index": 0, "name": "a", "color": [10, 10, 10]}])
    match = ColourMatch(collect=True)
    for name, colour in (("x.png", (20, 10, 10)), ("y.png", (20, 10, 10)), ("z.png", (99, 0, 0))):
        rgb_to_label(np.array([[colour, (10, 10, 10)]], np.uint8), reg, name, match=match)
    with pytest.raises(UserError) as e:
        match.check("masks", 3)
    assert e.value.line().startswith("masks: mask colours that are no class: (20, 10, 10) 2 px in 2 masks, nearest "
                                     "a (10, 10, 10) at 10.0; (99, 0, 0) 1 px in 1 mask, nearest a")
    assert "the first with such colours: x.png" in e.value.line()


def test_rgb_mask_with_foreign_colour_lists_it(tmp_path):
    rgb = np.zeros((4, 4, 3), np.uint8)
    rgb[0, 0] = (255, 0, 0)
    Image.fromarray(rgb).save(tmp_path / "bad.png")
    with pytest.raises(UserError) as e:
        read_label(tmp_path / "bad.png", SPARCS)
    assert "bad.png" in e.value.line() and "(255, 0, 0)" in e.value.line()


def test_grey_index_mask(tmp_path, rng):
    label = rng.integers(0, 7, (8, 8)).astype(np.uint8)
    Image.fromarray(label, "L").save(tmp_path / "g.png")
    assert np.array_equal(read_label(tmp_path / "g.png", SPARCS), label)
    label[0, 0] = 9
    Image.fromarray(label, "L").save(tmp_path / "g.png")
    with pytest.raises(UserError, match=r"g.png: mask values that are no class: \[9\]"):
        read_label(tmp_path / "g.png", SPARCS)


def test_ignore_index_only_where_allowed(tmp_path):
    label = np.full((4, 4), IGNORE_INDEX, np.uint8)
    write_label(tmp_path / "i.png", label, SPARCS)
    assert (read_label(tmp_path / "i.png", SPARCS, allow_ignore=True) == IGNORE_INDEX).all()
    with pytest.raises(UserError):
        read_label(tmp_path / "i.png", SPARCS)


def test_truncated_and_non_image_files_are_user_errors(tmp_path, rng):
    write_image(tmp_path / "p.png", rng.integers(0, 255, (64, 64, 3), dtype=np.uint8))
    data = (tmp_path / "p.png").read_bytes()
    (tmp_path / "t.png").write_bytes(data[: len(data) // 2])
    (tmp_path / "x.png").write_text("not an image")
    for name in ("t.png", "x.png", "missing.png"):
        with pytest.raises(UserError, match=name):
            read_image(tmp_path / name)


def test_writes_leave_no_temporary_files(tmp_path, rng):
    write_image(tmp_path / "p.png", rng.integers(0, 255, (8, 8, 3), dtype=np.uint8))
    write_label(tmp_path / "l.png", np.zeros((8, 8), np.uint8), SPARCS)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["l.png", "p.png"]


def test_pair_by_stem_matches_by_name_not_order(tmp_path):
    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir()
    for stem in ("z", "m", "a"):
        (tmp_path / "a" / f"{stem}.jpg").write_bytes(b"")
        (tmp_path / "b" / f"{stem}.png").write_bytes(b"")
    (tmp_path / "b" / ".gitkeep").write_bytes(b"")
    pairs = pair_by_stem(tmp_path / "a", tmp_path / "b")
    assert [(s, a.name, b.name) for s, a, b in pairs] == [("a", "a.jpg", "a.png"), ("m", "m.jpg", "m.png"),
                                                          ("z", "z.jpg", "z.png")]
    (tmp_path / "b" / "q.png").write_bytes(b"")
    with pytest.raises(UserError, match="q.png: mask has no photo"):
        pair_by_stem(tmp_path / "a", tmp_path / "b")


def test_folder_has_images_ignores_gitkeep(tmp_path):
    (tmp_path / ".gitkeep").write_text("")
    assert not folder_has_images(tmp_path)
    (tmp_path / "x.png").write_bytes(b"")
    assert folder_has_images(tmp_path)


def test_rgb_to_label_is_vectorised_over_unique_colours(rng):
    label = rng.integers(0, 7, (500, 500)).astype(np.uint8)
    assert np.array_equal(rgb_to_label(SPARCS.colorize(label), SPARCS), label)


def test_registry_validation_rejects_empty():
    with pytest.raises(UserError):
        ClassRegistry(())


def test_rgb_ignore_colour_only_where_allowed(tmp_path):
    label = np.array([[0, IGNORE_INDEX], [4, 5]], np.uint8)
    Image.fromarray(SPARCS.colorize(label)).save(tmp_path / "rgb.png")
    assert np.array_equal(read_label(tmp_path / "rgb.png", SPARCS, allow_ignore=True), label)
    with pytest.raises(UserError, match="colours that are no class"):
        read_label(tmp_path / "rgb.png", SPARCS)


def test_written_files_get_the_umask_mode(tmp_path):
    write_image(tmp_path / "p.png", np.zeros((4, 4, 3), np.uint8))
    mask = os.umask(0)
    os.umask(mask)
    assert (tmp_path / "p.png").stat().st_mode & 0o777 == 0o666 & ~mask


def test_palette_mask_with_a_palette_of_its_own_is_read_through_its_colours(tmp_path):
    """Buildings drawn as value 2 with a red palette entry are red, not SPARCS water."""
    reg = ClassRegistry.from_json([{"index": 0, "name": "ground", "color": [0, 128, 0]},
                                   {"index": 1, "name": "building", "color": [255, 0, 0]}])
    values = np.array([[0, 2], [2, 0]], np.uint8)
    im = Image.fromarray(values, "P")
    pal = [0] * 768
    pal[0:3], pal[6:9] = [0, 128, 0], [255, 0, 0]   # value 0 green, value 2 red
    im.putpalette(pal)
    im.save(tmp_path / "m.png")
    np.testing.assert_array_equal(read_label(tmp_path / "m.png", reg), [[0, 1], [1, 0]])
    pal[6:9] = [10, 20, 30]                          # a colour no class has
    im.putpalette(pal)
    im.save(tmp_path / "m.png")
    with pytest.raises(UserError, match=r"colours that are no class: \(10, 20, 30\)"):
        read_label(tmp_path / "m.png", reg)
    pal[6:9] = [250, 5, 0]                           # near red, under the same rule as RGB masks
    im.putpalette(pal)
    im.save(tmp_path / "m.png")
    with pytest.raises(UserError, match=r"\(250, 5, 0\) 2 px, nearest building \(255, 0, 0\) at 7.1"):
        read_label(tmp_path / "m.png", reg)
    np.testing.assert_array_equal(read_label(tmp_path / "m.png", reg, match=ColourMatch(8)), [[0, 1], [1, 0]])


def test_several_colours_per_class_and_an_ignore_colour(tmp_path):
    path = tmp_path / "classes.json"
    path.write_text(json.dumps([{"index": 0, "name": "water", "color": [0, 0, 255], "colors": [[0, 0, 200]]},
                                {"index": 1, "name": "land", "color": [0, 255, 0]},
                                {"name": "ignore", "ignore": True, "colors": [[0, 0, 0]]}]))
    reg = load_registry(path)
    assert reg.names == ["water", "land"] and reg.ignore_colors == ((0, 0, 0),)
    rgb = np.array([[[0, 0, 255], [0, 0, 200], [0, 255, 0], [0, 0, 0]]], np.uint8)
    np.testing.assert_array_equal(rgb_to_label(rgb, reg, allow_ignore=True), [[0, 0, 1, IGNORE_INDEX]])
    with pytest.raises(UserError, match="no class"):
        rgb_to_label(rgb, reg, allow_ignore=False)
    reg.save(tmp_path / "again.json")
    assert load_registry(tmp_path / "again.json") == reg


def test_supervisely_classes_with_hex_colours_and_an_ignore_entry(tmp_path):
    path = tmp_path / "classes.json"
    path.write_text(json.dumps({"classes": [{"title": "Water", "shape": "polygon", "color": "#E2A929"},
                                            {"name": "ignore", "ignore": True, "colors": [[0, 0, 0]]},
                                            {"title": "Land", "color": "#8429f6", "geometry_config": {}}],
                                "tags": []}))
    reg = load_registry(path)
    assert reg.names == ["Water", "Land"] and reg.colors.tolist() == [[226, 169, 41], [132, 41, 246]]
    assert reg.ignore_colors == ((0, 0, 0),)


@pytest.mark.parametrize("data", [{"foo": 1}, {"classes": "Water"}, ["water"], [], {"classes": [{"title": "W"}]}])
def test_a_file_of_neither_format_says_what_was_expected(tmp_path, data):
    path = tmp_path / "classes.json"
    path.write_text(json.dumps(data))
    with pytest.raises(UserError) as e:
        load_registry(path)
    line = e.value.line()
    assert line.startswith(f"{path}: ") and "Supervisely's {\"classes\": [{\"title\"" in line
    assert "Error" not in line and "attribute" not in line


def test_an_ignored_class_becomes_unlabelled_and_value_masks_keep_their_numbering(tmp_path):
    path = tmp_path / "classes.json"
    path.write_text(json.dumps([{"index": 0, "name": "water", "color": [0, 0, 255]},
                                {"index": 1, "name": "Unlabeled", "color": [155, 155, 155]},
                                {"index": 2, "name": "land", "color": [0, 255, 0]}]))
    reg = load_registry(path, ignore=["Unlabeled"])
    assert reg.names == ["water", "land"] and reg.ignore_colors == ((155, 155, 155),)
    grey = np.array([[0, 1, 2]], np.uint8)
    Image.fromarray(grey, "L").save(tmp_path / "grey.png")
    np.testing.assert_array_equal(read_label(tmp_path / "grey.png", reg, allow_ignore=True), [[0, IGNORE_INDEX, 1]])
    im = Image.fromarray(grey, "P")
    im.putpalette([0, 0, 255, 155, 155, 155, 0, 255, 0] + [0] * 759)      # the file's own palette, by value
    im.save(tmp_path / "pal.png")
    np.testing.assert_array_equal(read_label(tmp_path / "pal.png", reg, allow_ignore=True), [[0, IGNORE_INDEX, 1]])
    rgb = np.array([[[0, 0, 255], [155, 155, 155], [0, 255, 0]]], np.uint8)
    np.testing.assert_array_equal(rgb_to_label(rgb, reg, allow_ignore=True), [[0, IGNORE_INDEX, 1]])
    with pytest.raises(UserError, match=r"mask values that are no class: \[1\] \(class values: 0, 2\)"):
        read_label(tmp_path / "grey.png", reg)
    # what stage 1 writes back: the classes numbered anew, the ignored one an unlabelled colour
    reg.save(tmp_path / "out.json")
    again = load_registry(tmp_path / "out.json")
    assert again.names == ["water", "land"] and again.ignore_colors == ((155, 155, 155),)
    with pytest.raises(UserError, match="--ignore-class 'Sea' is no class here"):
        load_registry(path, ignore=["Sea"])
