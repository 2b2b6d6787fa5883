import numpy as np
import pytest
import torch

from mnistgan import data
from mnistgan.errors import DataError

from helpers.datasets import make_dataset, write_idx


def test_reads_gzip_and_raw(tmp_path):
    arr = np.arange(2 * 28 * 28, dtype=np.uint8).reshape(2, 28, 28)
    gz = write_idx(tmp_path / "a.gz", arr)
    raw = write_idx(tmp_path / "a.idx", arr, compress=False)
    np.testing.assert_array_equal(data.read_images(gz), arr)
    np.testing.assert_array_equal(data.read_images(raw, count=2), arr)


def test_bad_magic_number(tmp_path):
    p = write_idx(tmp_path / "x.gz", np.zeros((2, 28, 28)), magic=0x12345678)
    with pytest.raises(DataError, match=r"x.gz: bad magic number 0x12345678; expected 0x00000803 \(images\)"):
        data.read_images(p)


def test_non_byte_data_type(tmp_path):
    p = write_idx(tmp_path / "x.gz", np.zeros((2, 28, 28)), magic=0x00000D03)  # float IDX
    with pytest.raises(DataError, match="bad magic number 0x00000d03"):
        data.read_images(p)


def test_wrong_image_dimensions(tmp_path):
    p = write_idx(tmp_path / "x.gz", np.zeros((2, 32, 32)))
    with pytest.raises(DataError, match=r"x.gz: is an image file \(magic 0x00000803, 2 x 32 x 32\); "
                                        r"expected image data: magic 0x00000803, N x 28 x 28 images"):
        data.read_images(p)


def test_labels_given_as_images(tmp_path):
    p = write_idx(tmp_path / "x.gz", np.zeros((2, 28, 28)))
    with pytest.raises(DataError, match=r"is an image file \(magic 0x00000803, 2 x 28 x 28\); "
                                        r"expected label data: magic 0x00000801, N labels"):
        data.read_labels(p)


def test_truncated_data(tmp_path):
    p = tmp_path / "x.idx"
    write_idx(p, np.zeros((3, 28, 28)), compress=False)
    p.write_bytes(p.read_bytes()[:-100])
    with pytest.raises(DataError, match=r"x.idx: holds 2252 bytes of data but its header \(3 x 28 x 28\) promises 2352 \(truncated\?\)"):
        data.read_images(p)


def test_truncated_gzip(tmp_path):
    p = write_idx(tmp_path / "x.gz", np.zeros((3, 28, 28)))
    p.write_bytes(p.read_bytes()[:20])
    with pytest.raises(DataError, match="x.gz: corrupt or truncated gzip data"):
        data.read_images(p)


def test_too_short_for_a_header(tmp_path):
    p = tmp_path / "x.idx"
    p.write_bytes(b"\x00\x00")
    with pytest.raises(DataError, match="2 bytes is too short for an IDX header"):
        data.read_idx(p)


def test_wrong_count(tmp_path):
    p = write_idx(tmp_path / "x.gz", np.zeros((3, 28, 28)))
    with pytest.raises(DataError, match="x.gz: its header says it holds 3 images; expected 60000"):
        data.read_images(p, count=60000)


def test_label_out_of_range(tmp_path):
    p = write_idx(tmp_path / "l.gz", np.array([1, 2, 10, 3]))
    with pytest.raises(DataError, match=r"l.gz: label 10 at index 2 is out of range; expected 0..9"):
        data.read_labels(p)


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="nope.gz: file not found"):
        data.read_idx(tmp_path / "nope.gz")


def test_image_and_label_counts_must_agree(tmp_path, isolated_env):
    folder = make_dataset(tmp_path / "d", n_train=60000, n_test=10000)
    write_idx(folder / "t10k-labels-idx1-ubyte.gz", np.zeros(9999))
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte.gz: its header says it holds 9999 labels; expected 10000"):
        data.load_split("mnist", "test", folder, download=False)


def test_locate_prefers_explicit_folder_then_env_then_cache(tmp_path, isolated_env, monkeypatch):
    spec = data.get_spec("mnist")
    explicit = make_dataset(tmp_path / "explicit", 10, 10)
    env = make_dataset(tmp_path / "env", 10, 10)
    cache = make_dataset(tmp_path / "cache" / "mnist", 10, 10)
    assert data.locate(spec, cache, download=False) == cache
    monkeypatch.setenv("MNISTGAN_DATA_DIR", str(env))
    assert data.locate(spec, explicit, download=False) == explicit
    assert data.locate(spec, None, download=False) == env
    monkeypatch.delenv("MNISTGAN_DATA_DIR")
    assert data.locate(spec, None, download=False) == cache


def test_locate_finds_uncompressed_files(tmp_path, isolated_env):
    folder = tmp_path / "raw"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for split, n in (("train", 60000), ("t10k", 10000)):
        write_idx(folder / f"{split}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28)), compress=False)
        write_idx(folder / f"{split}-labels-idx1-ubyte", rng.integers(0, 10, n), compress=False)
    images, labels = data.load_split("mnist", "test", folder, download=False)
    assert images.shape == (10000, 1, 28, 28) and labels.shape == (10000,)


def test_offline_error_lists_the_files_and_where_to_put_them(tmp_path, isolated_env):
    with pytest.raises(DataError) as e:
        data.locate(data.get_spec("mnist"), tmp_path / "empty", download=False)
    msg = str(e.value)
    assert "downloading is off" in msg and str(tmp_path / "empty") in msg
    for name in ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                 "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        assert name in msg


def test_fashion_mnist_system_folder_is_searched():
    assert "/usr/share/datasets/fashion-mnist" in data.get_spec("fashion-mnist").system_dirs


def test_device_data_batches_are_index_slices():
    imgs = np.arange(10 * 28 * 28, dtype=np.uint64).astype(np.uint8).reshape(10, 1, 28, 28)
    d = data.DeviceData(imgs, np.arange(10, dtype=np.uint8))
    order = d.epoch_order(seed=0, epoch=0)
    assert sorted(order.tolist()) == list(range(10))
    x, y = d.batch(order, 1, 4)
    assert x.shape == (4, 1, 28, 28) and x.dtype == torch.float32
    idx = order[4:8]
    torch.testing.assert_close(x, torch.from_numpy(imgs)[idx].float() / 255)
    assert y.tolist() == idx.tolist()


def test_epoch_order_is_a_function_of_seed_and_epoch():
    d = data.DeviceData(np.zeros((1000, 1, 28, 28), np.uint8), np.zeros(1000, np.uint8))
    assert torch.equal(d.epoch_order(3, 5), d.epoch_order(3, 5))
    assert not torch.equal(d.epoch_order(3, 5), d.epoch_order(3, 6))
    assert not torch.equal(d.epoch_order(3, 5), d.epoch_order(4, 5))


def test_a_label_file_where_images_belong_says_so(tmp_path):
    """Image data with the label magic (the header claims one dimension of 47,040,008)."""
    p = tmp_path / "x.idx"
    p.write_bytes(data.LABEL_MAGIC.to_bytes(4, "big") + (47040008).to_bytes(4, "big") + bytes(100))
    with pytest.raises(DataError, match=r"is a label file \(magic 0x00000801, 47040008\); expected image data"):
        data.read_images(p, 60000)


def test_a_huge_count_is_named_with_what_was_expected(tmp_path):
    p = tmp_path / "x.idx"
    p.write_bytes(data.IMAGE_MAGIC.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in (0xFFFFFFFF, 28, 28)))
    with pytest.raises(DataError, match="its header says it holds 4294967295 images; expected 60000"):
        data.read_images(p, 60000)
    # without an expected count: sizes are Python integers, refused before any data is read
    with pytest.raises(DataError, match=r"header \(4294967295 x 28 x 28\) promises 3,367,254,359,280 bytes"):
        data.read_images(p)
    q = tmp_path / "y.idx"   # four dimensions whose product overflows int64
    q.write_bytes(b"\x00\x00\x08\x04" + b"\xff\xff\xff\xff" * 4)
    with pytest.raises(DataError, match="more than the 2,147,483,648 this reader accepts"):
        data.read_idx(q)


def test_a_decompression_bomb_stops_past_the_promised_size(tmp_path):
    """1 MB of gzip that inflates to 1 GiB: reading stops one byte past what the header
    promises, using a few MB of memory, not a gigabyte."""
    import gzip
    import resource

    p = tmp_path / "bomb.gz"
    header = data.IMAGE_MAGIC.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in (10, 28, 28))
    chunk = bytes(1 << 24)
    with gzip.open(p, "wb", compresslevel=9) as f:
        f.write(header)
        for _ in range(64):         # 1 GiB of zeros
            f.write(chunk)
    assert p.stat().st_size < 2 << 20
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(DataError, match=r"holds more data than the 7840 bytes its header \(10 x 28 x 28\) promises"):
        data.read_images(p)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 200 * 1024  # KiB: < 200 MB grown


def test_trailing_data_is_refused(tmp_path):
    p = tmp_path / "x.idx"
    write_idx(p, np.zeros((3, 28, 28)), compress=False)
    p.write_bytes(p.read_bytes() + b"\0")
    with pytest.raises(DataError, match="holds more data than the 2352 bytes"):
        data.read_images(p)


def test_a_folder_of_no_known_dataset_is_used_as_is(isolated_env, fake_mnist):
    # random labels: neither MNIST nor Fashion-MNIST
    assert data.load_split("fashion-mnist", "test", fake_mnist, download=False)[1].shape == (10000,)
