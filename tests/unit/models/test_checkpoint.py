"""Checkpoint loading: official layouts round-trip strictly; bad files give one-line errors."""

import json

import pytest
import torch

from hyperstyle_trt.models.checkpoint import (build_model, load_g_ema, load_hyperstyle_checkpoint,
                                               load_w_encoder_checkpoint)
from hyperstyle_trt.core.errors import HsError
from hyperstyle_trt.models.fill import canonical_key, fill_value
from hyperstyle_trt.models.hyperstyle import HyperStyle
from tests.unit._helpers.checkpoints import save_checkpoint, save_w_encoder_checkpoint


@pytest.fixture(scope="module")
def tiny():
    return build_model("tiny", quiet=True)


@pytest.fixture()
def tiny_files(tmp_path, tiny):
    hs, enc = tmp_path / "hyperstyle.pt", tmp_path / "w_encoder.pt"
    save_checkpoint(tiny, hs)
    save_w_encoder_checkpoint(tiny, enc)
    return hs, enc


def _one_line(e):
    return "\n" not in str(e.value)


def test_round_trip_reproduces_the_model(tiny, tiny_files):
    hs, enc = tiny_files
    m = build_model(None, str(hs), str(enc))
    assert m.cfg.generator == tiny.cfg.generator and m.cfg.hypernet == tiny.cfg.hypernet
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    a, b = tiny.invert(x, n_iters=2), m.invert(x, n_iters=2)
    assert torch.equal(a.image, b.image)
    assert all(torch.equal(a.deltas[k], b.deltas[k]) for k in a.deltas)


def test_saved_file_has_official_layout_and_aliases(tiny_files):
    ck = torch.load(tiny_files[0], weights_only=True)
    sd = ck["state_dict"]
    aliases = [k for k in sd if canonical_key(k) != k]
    assert len(aliases) == 9 * 4  # 9 shared layers x {w1,b1,w2,b2}
    assert set(ck["opts"]) >= {"encoder_type", "layers_to_tune", "output_size"}
    assert all(k.startswith(("hypernet.", "decoder.")) for k in sd)


def test_loaded_aliases_are_one_tensor(tiny_files):
    m = build_model(None, str(tiny_files[0]), str(tiny_files[1]))
    blocks = [b for b in m.hypernet.refinement_blocks if b is not None and hasattr(b, "hypernet")]
    assert len(blocks) == 9
    assert all(b.hypernet.w2 is m.hypernet.shared_weight_hypernet.w2 for b in blocks)


def _edit(path, fn):
    ck = torch.load(path, weights_only=True)
    fn(ck)
    torch.save(ck, path)


def test_missing_unexpected_and_misshaped_keys_are_named(tiny_files):
    hs, _ = tiny_files
    _edit(hs, lambda ck: (ck["state_dict"].pop("decoder.conv1.activate.bias"),
                          ck["state_dict"].__setitem__("decoder.extra.weight", torch.zeros(1)),
                          ck["state_dict"].__setitem__("hypernet.bn1.weight", torch.zeros(3))))
    with pytest.raises(HsError) as e:
        load_hyperstyle_checkpoint(None, hs)
    msg = str(e.value)
    assert "decoder.conv1.activate.bias" in msg and "decoder.extra.weight" in msg and "hypernet.bn1.weight" in msg
    assert _one_line(e)


def test_alias_copy_that_differs_is_refused(tiny_files):
    hs, _ = tiny_files

    def corrupt(ck):
        sd = ck["state_dict"]
        sd["hypernet.refinement_blocks.3.hypernet.b1"] = sd["hypernet.shared_weight_hypernet.b1"].clone() + 1
    _edit(hs, corrupt)
    with pytest.raises(HsError, match="alias hypernet.refinement_blocks.3.hypernet.b1 differs"):
        load_hyperstyle_checkpoint(None, hs)


def test_file_without_alias_names_is_accepted(tiny, tiny_files):
    hs, _ = tiny_files
    _edit(hs, lambda ck: [ck["state_dict"].pop(k) for k in list(ck["state_dict"]) if canonical_key(k) != k])
    m = load_hyperstyle_checkpoint(None, hs)
    assert torch.equal(m.hypernet.shared_weight_hypernet.w2, tiny.hypernet.shared_weight_hypernet.w2)


def test_opts_disagreeing_with_state_dict(tiny_files):
    hs, _ = tiny_files
    _edit(hs, lambda ck: ck["opts"].__setitem__("layers_to_tune", "0,2,3"))
    with pytest.raises(HsError, match="disagrees with the refinement blocks"):
        load_hyperstyle_checkpoint(None, hs)


def test_truncated_file(tiny_files, tmp_path):
    p = tmp_path / "trunc.pt"
    data = tiny_files[0].read_bytes()
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(HsError, match="truncated or not a PyTorch checkpoint") as e:
        load_hyperstyle_checkpoint(None, p)
    assert _one_line(e)


def test_not_a_checkpoint(tmp_path):
    p = tmp_path / "notes.txt"
    p.write_text("hello, I am not a checkpoint\n")
    with pytest.raises(HsError, match="not a PyTorch checkpoint") as e:
        load_hyperstyle_checkpoint(None, p)
    assert _one_line(e)


class Evil:
    def __reduce__(self):
        return (print, ("arbitrary code ran",))


def test_checkpoint_needing_arbitrary_code_is_refused(tmp_path, capsys):
    p = tmp_path / "evil.pt"
    torch.save({"state_dict": {}, "payload": Evil()}, p)
    with pytest.raises(HsError, match="refused: it needs arbitrary code to unpickle") as e:
        load_hyperstyle_checkpoint(None, p)
    assert _one_line(e)
    assert "arbitrary code ran" not in capsys.readouterr().out


def test_missing_file_and_missing_w_encoder(tmp_path, tiny_files):
    with pytest.raises(HsError, match="not found"):
        build_model(None, str(tmp_path / "nope.pt"), str(tmp_path / "nope2.pt"))
    with pytest.raises(HsError, match="needs its W encoder"):
        build_model(None, str(tiny_files[0]))


def test_w_encoder_checkpoint_strict(tiny, tiny_files):
    _, enc = tiny_files
    _edit(enc, lambda ck: ck["state_dict"].pop("encoder.linear.bias"))
    with pytest.raises(HsError, match="missing .*encoder.linear.bias"):
        load_w_encoder_checkpoint(HyperStyle(tiny.cfg), enc)


def test_g_ema_round_trip(tiny, tmp_path):
    p = tmp_path / "g.pt"
    torch.save({"g_ema": tiny.decoder.state_dict(), "latent_avg": torch.zeros(32)}, p)
    g = load_g_ema(p, tiny.cfg.generator)
    codes = torch.randn(1, 12, 32)
    assert torch.equal(g(codes), tiny.decoder(codes))
    torch.save({"g": tiny.decoder.state_dict()}, p)
    with pytest.raises(HsError, match="no 'g_ema'"):
        load_g_ema(p, tiny.cfg.generator)


@pytest.mark.slow
def test_official_ffhq_layout_from_key_list(official_keys_path, tmp_path):
    """A synthetic hyperstyle_ffhq.pt / faces_w_encoder.pt written straight from official_keys.json (aliases share one
    storage, as torch.save of the official model does) loads strictly and equals the embedded default."""
    keys = json.loads(official_keys_path.read_text())

    def state(section):
        names = {e["key"] for e in section["keys"]}
        sd = {}
        for e in section["keys"]:
            c = canonical_key(e["key"])
            if c in sd:
                sd[e["key"]] = sd[c]
                continue
            sd[e["key"]] = fill_value(c, tuple(e["shape"]), names)
        return sd

    default = build_model("ffhq1024", quiet=True)
    constructed = {**{f"hypernet.{k}": v for k, v in default.hypernet.state_dict().items()},
                   **{f"decoder.{k}": v for k, v in default.decoder.state_dict().items()},
                   **{f"encoder.{k}": v for k, v in default.w_encoder.state_dict().items()}}

    def with_kept(sd):  # 'keep' keys (num_batches_tracked, FIR kernels) hold their constructed values
        return {k: constructed[k] if v is None else v for k, v in sd.items()}

    opts = {"encoder_type": "SharedWeightsHyperNetResNet", "layers_to_tune": keys["source"]["config"]["layers_to_tune"],
            "output_size": 1024, "input_nc": 6, "n_hypernet_outputs": 26, "device": "cuda:0"}
    torch.save({"state_dict": with_kept(state(keys["hyperstyle_state_dict"])), "opts": opts,
                "latent_avg": default.latent_avg, "global_step": 1, "best_val_loss": 0.5},
               tmp_path / "hyperstyle_ffhq.pt")
    torch.save({"state_dict": with_kept(state(keys["w_encoder_state_dict"])), "opts": {},
                "latent_avg": torch.zeros(512)}, tmp_path / "faces_w_encoder.pt")
    m = build_model(None, str(tmp_path / "hyperstyle_ffhq.pt"), str(tmp_path / "faces_w_encoder.pt"))
    assert m.cfg.generator == default.cfg.generator and m.cfg.hypernet == default.cfg.hypernet
    for a, b in ((m.hypernet, default.hypernet), (m.decoder, default.decoder), (m.w_encoder, default.w_encoder)):
        sa, sb = a.state_dict(), b.state_dict()
        assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)
    assert torch.equal(m.latent_avg, default.latent_avg)


LFS_POINTER = ("version https://git-lfs.github.com/spec/v1\n"
               "oid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393\nsize 1230765569\n")


def _bad_files(tmp_path, good: bytes) -> dict:
    """One file of each kind a wrong checkpoint usually is: text, a Git LFS pointer, empty, a zip cut short."""
    files = {"text": tmp_path / "notes.txt", "lfs": tmp_path / "lfs.pt", "empty": tmp_path / "empty.pt",
             "truncated": tmp_path / "cut.pt"}
    files["text"].write_text("download the checkpoint from the release page\n")
    files["lfs"].write_text(LFS_POINTER)
    files["empty"].write_bytes(b"")
    files["truncated"].write_bytes(good[: len(good) // 3])
    return files


@pytest.mark.parametrize("kind,parts", [
    ("text", ["is not a PyTorch checkpoint: it is a text file", "'download the checkpoint"]),
    ("lfs", ["is not a PyTorch checkpoint: it is a Git LFS pointer", "1,230,765,569 bytes", "git lfs pull"]),
    ("empty", ["is not a PyTorch checkpoint: it is an empty file (0 bytes)"]),
    ("truncated", ["is truncated or not a PyTorch checkpoint: a zip archive cut short", "no end-of-archive"]),
])
def test_each_wrong_file_says_what_it_is(tmp_path, tiny_files, kind, parts):
    """Each kind of wrong file gets its own one-line message naming the file and what it is (describe_file), and
    never the 'arbitrary code' one (the message for a pickle that wants to run code)."""
    p = _bad_files(tmp_path, tiny_files[0].read_bytes())[kind]
    with pytest.raises(HsError) as e:
        load_hyperstyle_checkpoint(None, p)
    msg = str(e.value)
    assert _one_line(e) and str(p) in msg and all(x in msg for x in parts), msg
    assert "arbitrary code" not in msg and len(msg) < 300


def test_describe_file_kinds(tmp_path, tiny_files):
    import numpy as np

    from hyperstyle_trt.models.checkpoint import describe_file

    files = _bad_files(tmp_path, tiny_files[0].read_bytes())
    np.save(tmp_path / "d.npy", np.zeros(3, np.float32))
    torch.save({"a": torch.zeros(1)}, tmp_path / "legacy.pt", _use_new_zipfile_serialization=False)
    (tmp_path / "blob.bin").write_bytes(bytes(range(256)))
    kinds = {k: describe_file(p).kind for k, p in files.items()}
    assert kinds == {"text": "text", "lfs": "lfs_pointer", "empty": "empty", "truncated": "truncated_zip"}
    assert describe_file(tiny_files[0]).kind == "torch_zip" and describe_file(tiny_files[0]).torch_loadable
    assert describe_file(tmp_path / "legacy.pt").kind == "pickle"
    assert describe_file(tmp_path / "d.npy").kind == "npy"
    assert describe_file(tmp_path / "blob.bin").kind == "binary"
    assert not any(describe_file(p).torch_loadable for p in files.values())


def test_legacy_pickle_checkpoint_still_loads(tmp_path):
    p = tmp_path / "legacy.pt"
    torch.save({"g_ema": {}, "latent_avg": torch.zeros(3)}, p, _use_new_zipfile_serialization=False)
    from hyperstyle_trt.models.checkpoint import read_checkpoint

    assert torch.equal(read_checkpoint(p)["latent_avg"], torch.zeros(3))


def test_arbitrary_code_message_names_the_call_whole(tmp_path):
    """The refusal names what the pickle wanted to call and is not PyTorch's message cut mid-word."""
    p = tmp_path / "evil.pt"
    torch.save({"payload": Evil()}, p)
    with pytest.raises(HsError) as e:
        load_hyperstyle_checkpoint(None, p)
    msg = str(e.value)
    assert "it calls print" in msg and not msg.endswith("...") and "Weights only load failed" not in msg, msg
