"""Model format, registry and integrity checks."""

from __future__ import annotations

import io
import json
import os
import pickle
import zipfile

import pytest
import torch
from safetensors.torch import save_file

import xsfm
from xsfm.errors import ModelFormatError, UnknownModelError, WeightsMissingError
from xsfm.models import registry
from xsfm.models.card import ModelCard
from xsfm.models.io import (
    load_card,
    load_weights,
    read_safetensors_header,
    save_model_files,
    tensor_data_sha256,
)


def _card(**kw):
    base = {"name": "t", "version": "1", "kind": "downscaling", "method": "interpolation"}
    base.update(kw)
    return ModelCard(**base)


def test_card_json_round_trip_and_html():
    card = _card(inputs=[{"name": "a", "units": "K", "standard_name": "air_temperature"}])
    assert ModelCard.from_json(card.to_json()) == card
    html = card._repr_html_()
    assert "air_temperature" in html
    assert "<table>" in html
    hostile = _card(
        inputs=[
            {"name": "a", "units": "K", "standard_name": "x", "long_name": "<script>bad()</script>"}
        ]
    )
    rendered = hostile._repr_html_()
    assert "<script>" not in rendered
    assert "&lt;script&gt;" in rendered


def test_card_rejects_unknown_keys_and_bad_kind():
    data = _card().to_dict() | {"colour": "red"}
    with pytest.raises(ValueError, match="unknown keys \\['colour'\\]"):
        ModelCard.from_dict(data)
    with pytest.raises(ValueError, match="kind must be"):
        _card(kind="nowcasting")
    with pytest.raises(ValueError, match=r"inputs\[0\] lacks \['units'\]"):
        _card(inputs=[{"name": "a"}])


def test_save_and_load_weights_with_card_in_metadata(tmp_path):
    card = _card(method="sfm")
    tensors = {"w": torch.arange(6.0).reshape(2, 3)}
    saved = save_model_files(tmp_path / "m", card, tensors)
    assert saved.weights_sha256 == tensor_data_sha256(tmp_path / "m" / "weights.safetensors")
    # the card inside the safetensors metadata carries the same hash (single-file models work)
    header, _ = read_safetensors_header(tmp_path / "m" / "weights.safetensors")
    inner = ModelCard.from_json(header["__metadata__"]["xsfm_card"])
    assert inner.weights_sha256 == saved.weights_sha256
    assert load_card(tmp_path / "m" / "weights.safetensors") == saved
    loaded = load_weights(tmp_path / "m", saved)
    torch.testing.assert_close(loaded["w"], tensors["w"])


def test_sha256_mismatch_is_refused(tmp_path):
    saved = save_model_files(tmp_path / "m", _card(method="sfm"), {"w": torch.zeros(3)})
    save_file({"w": torch.ones(3)}, str(tmp_path / "m" / "weights.safetensors"))
    with pytest.raises(ModelFormatError, match=r"sha256 of the weights .* card says"):
        load_weights(tmp_path / "m", saved)


class _Boom:
    """Unpickling this would create a marker file."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_pickle_weights_refused_and_never_unpickled(tmp_path):
    marker = tmp_path / "executed"
    d = tmp_path / "m"
    d.mkdir()
    (d / "weights.safetensors").write_bytes(pickle.dumps(_Boom(str(marker))))
    card = _card(method="sfm", weights_sha256="0" * 64)
    (d / "card.json").write_text(card.to_json())
    with pytest.raises(ModelFormatError, match=r"pickle.*never unpickles"):
        load_weights(d, card)
    assert not marker.exists()


def test_zip_checkpoint_refused(tmp_path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("archive/data.pkl", pickle.dumps({"w": 1}))
    path = tmp_path / "model.safetensors"
    path.write_bytes(buf.getvalue())
    with pytest.raises(ModelFormatError, match="zip archive"):
        load_card(path)


def test_garbage_file_refused(tmp_path):
    path = tmp_path / "w.safetensors"
    path.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00not json at all!")
    with pytest.raises(ModelFormatError, match="not a safetensors file"):
        read_safetensors_header(path)


def test_unknown_model_suggests_close_names():
    with pytest.raises(UnknownModelError, match="Did you mean 'interpolation'"):
        xsfm.load_model("interpolaton")
    with pytest.raises(KeyError):
        xsfm.load_model("no-such-model-anywhere")


def test_register_model_and_env_path(tmp_path, monkeypatch):
    path = xsfm.load_model("interpolation").save(tmp_path / "lib" / "my-interp")
    try:
        xsfm.register_model("mine", path)
        assert "mine" in xsfm.list_models()
        assert xsfm.load_model("mine").card.method == "interpolation"
        other = xsfm.load_model("interpolation").save(tmp_path / "other")
        with pytest.raises(ValueError, match="already registered"):
            xsfm.register_model("mine", other)
    finally:
        registry.unregister_model("mine")
    assert "mine" not in xsfm.list_models()
    monkeypatch.setenv("XSFM_MODEL_PATH", str(tmp_path / "lib") + os.pathsep + "/nonexistent")
    assert "my-interp" in xsfm.list_models()
    with pytest.raises(FileNotFoundError, match="does not exist"):
        xsfm.register_model("x", tmp_path / "missing")


def test_cwa_card_complete_and_missing_weights_explained():
    model = xsfm.load_model("cwa-2km")
    card = model.card
    assert card.input_names == [
        "tcwv",
        "z500",
        "t500",
        "u500",
        "v500",
        "z850",
        "t850",
        "u850",
        "v850",
        "t2m",
        "u10m",
        "v10m",
    ]
    assert card.output_names == ["maximum_radar_reflectivity", "t2m", "u10m", "v10m"]
    assert all({"name", "standard_name", "units", "long_name"} <= set(s) for s in card.inputs)
    coarse = card.grids["coarse"]
    assert coarse["lat"]["start"] == 19.25
    assert coarse["lat"]["start"] + coarse["lat"]["step"] * (coarse["lat"]["size"] - 1) == 28.0
    # earth2studio's CorrDiffTaiwan input grid: 40 longitudes from 116 E, the end point excluded
    assert coarse["lon"]["start"] + coarse["lon"]["step"] * coarse["lon"]["size"] == 126.0
    fine = card.grids["fine"]
    assert (fine["y"]["size"], fine["x"]["size"]) == (448, 448)
    assert fine["latlon"] == {
        "lat": "out_lat",
        "lon": "out_lon",
        "lat_name": "lat",
        "lon_name": "lon",
    }
    with pytest.raises(WeightsMissingError, match=r"xsfm import corrdiff .*zip") as err:
        model.network()
    assert "XSFM_MODEL_PATH" in str(err.value)
    assert "register_model" in str(err.value)


def test_downscale_with_cwa_without_weights_says_how_to_get_them():
    from xsfm.xr.examples import example_input

    coarse = example_input(xsfm.load_model("cwa-2km"))
    with pytest.raises(WeightsMissingError, match="NVIDIA's CorrDiff Taiwan package"):
        coarse.sfm.downscale(model="cwa-2km", members=1)


def test_shipped_cards_are_valid_json():
    for name in xsfm.list_models():
        path = registry.resolve_model_path(name)
        if path.is_dir() and (path / "card.json").exists():
            json.loads((path / "card.json").read_text())
            assert load_card(path).name == name


def test_safetensors_whose_length_byte_looks_like_a_pickle_is_accepted(tmp_path):
    # a header of 0x80 + 256 k bytes starts with the byte 0x80, like a pickle: it must still load
    meta = {"pad": "x" * 1000}
    for extra in range(300):
        meta["pad"] = "x" * (1000 + extra)
        save_file({"w": torch.zeros(1)}, str(tmp_path / "w.safetensors"), metadata=meta)
        if (tmp_path / "w.safetensors").read_bytes()[:1] == b"\x80":
            break
    assert (tmp_path / "w.safetensors").read_bytes()[:1] == b"\x80"
    header, _ = read_safetensors_header(tmp_path / "w.safetensors")
    assert header["__metadata__"]["pad"] == meta["pad"]
