"""FrameStore: atomic writes, reopening, metadata checks, stray temp files, locking, merge."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from ase_phisnet.data.merge import merge
from ase_phisnet.data.store import FRAME_KEYS, DatasetError, FrameStore, make_meta

from .conftest import REPO, cli_env, fake_frame

META = make_meta(source="test.xyz", pyscf_version="2.14.0")


def assert_frames_equal(a, b):
    assert set(a) == set(b) == set(FRAME_KEYS)
    for k in FRAME_KEYS:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def test_write_read_reopen(tmp_path):
    path = tmp_path / "ds"
    with FrameStore.create(path, META) as store:
        for i in (5, 0, 12):
            store.write_frame(i, fake_frame(seed=i))
        assert len(store) == 3
        assert store.indices() == [0, 5, 12]
        assert 5 in store and 6 not in store
    assert (path / "dataset.json").is_file()
    assert sorted(p.name for p in (path / "frames").iterdir()) == ["000000.npz", "000005.npz", "000012.npz"]

    store = FrameStore.open(path)
    assert store.meta["method"] == "rks" and store.meta["xc"] == "pbe" and store.meta["basis"] == "def2-svp"
    frame = store.read(5)
    assert_frames_equal(frame, {k: np.asarray(v) for k, v in fake_frame(seed=5).items()})
    assert frame["numbers"].dtype == np.int64 and frame["converged"].dtype == bool and frame["energy"].shape == ()
    assert len(store.read_all()) == 3
    with pytest.raises(KeyError, match="frame 7"):
        store.read(7)
    with pytest.raises(DatasetError, match="read-only"):
        store.write_frame(1, fake_frame())


def test_bulk_write(tmp_path):
    with FrameStore.create(tmp_path / "ds", META) as store:
        assert store.write_frames(((i, fake_frame(seed=i)) for i in range(300)), batch=64) == 300
        assert store.indices() == list(range(300))
        assert_frames_equal(store.read(299), {k: np.asarray(v) for k, v in fake_frame(seed=299).items()})
        with pytest.raises(DatasetError, match="already"):
            store.write_frames([(300, fake_frame()), (5, fake_frame())])
        assert 300 not in store  # the failed batch was not published
        with pytest.raises(DatasetError, match="given twice"):
            store.write_frames([(400, fake_frame()), (400, fake_frame())])
        assert not list((tmp_path / "ds" / "frames").glob("*.tmp"))


def test_validation_and_no_duplicates(tmp_path):
    with FrameStore.create(tmp_path / "ds", META) as store:
        bad = fake_frame()
        del bad["dipole"]
        with pytest.raises(DatasetError, match="missing: dipole"):
            store.write_frame(0, bad)
        bad = fake_frame()
        bad["fock"] = np.zeros((4, 4))
        with pytest.raises(DatasetError, match="'fock' has shape"):
            store.write_frame(0, bad)
        bad = fake_frame()
        bad["extra"] = 1
        with pytest.raises(DatasetError, match="unknown: extra"):
            store.write_frame(0, bad)
        store.write_frame(0, fake_frame())
        with pytest.raises(DatasetError, match="already"):
            store.write_frame(0, fake_frame(seed=1))
        assert len(store) == 1


def test_metadata_mismatch_refused(tmp_path):
    path = tmp_path / "ds"
    FrameStore.create(path, META).close()
    FrameStore.create(path, make_meta(source="test.xyz", pyscf_version="2.14.0")).close()  # same settings: resume
    other = make_meta(xc="b3lyp", basis="sto-3g", source="test.xyz", pyscf_version="2.14.0")
    with pytest.raises(DatasetError) as err:
        FrameStore.create(path, other)
    assert "xc: 'pbe' (stored) vs 'b3lyp' (requested)" in str(err.value) and "basis" in str(err.value)
    assert "conv_tol" not in str(err.value)


def test_not_a_dataset(tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        FrameStore.open(tmp_path / "nope")
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "file.txt").write_text("x")
    with pytest.raises(DatasetError, match="not a dataset"):
        FrameStore.open(tmp_path / "junk")
    with pytest.raises(DatasetError, match="non-empty directory"):
        FrameStore.create(tmp_path / "junk", META)


def test_stray_tmp_ignored_then_cleaned(tmp_path):
    path = tmp_path / "ds"
    with FrameStore.create(path, META) as store:
        store.write_frame(0, fake_frame())
    stray = path / "frames" / ".000001.npz.abc123.tmp"
    stray.write_bytes(b"half a frame")
    store = FrameStore.open(path)
    assert store.indices() == [0] and 1 not in store
    assert stray.exists()  # read-only opening leaves it alone
    FrameStore.open(path, mode="a").close()
    assert not stray.exists()


def test_one_writer_at_a_time(tmp_path):
    path = tmp_path / "ds"
    with FrameStore.create(path, META):
        with pytest.raises(DatasetError, match="another process"):
            FrameStore.open(path, mode="a")
        FrameStore.open(path)  # reading is fine
    FrameStore.open(path, mode="a").close()


@pytest.mark.parametrize("bulk", [False, True], ids=["write_frame", "write_frames"])
def test_kill_during_writes_leaves_whole_frames(tmp_path, bulk):
    """SIGKILL a process that writes frames as fast as it can: every frame file there loads."""
    path = tmp_path / "ds"
    loop = (
        "store.write_frames((i, frame) for i in range(100000))"
        if bulk
        else "for i in range(100000): store.write_frame(i, frame)"
    )
    script = textwrap.dedent(
        f"""
        from ase_phisnet.data.store import FrameStore, make_meta
        from tests.data.conftest import fake_frame
        store = FrameStore.create({str(path)!r}, make_meta(source="test.xyz", pyscf_version="2.14.0"))
        frame = fake_frame(natm=5, nao=120)
        print("ready", flush=True)
        {loop}
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", script], env=cli_env(), cwd=REPO, stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    time.sleep(1.0)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    store = FrameStore.open(path)
    indices = store.indices()
    assert len(indices) > 5
    assert indices == list(range(len(indices)))  # written in order, none lost in between
    for frame in store.read_all():
        assert frame["fock"].shape == (120, 120)
    with FrameStore.open(path, mode="a") as store:
        assert not list((path / "frames").glob("*.tmp"))


def test_arrays_and_converged_mask(tmp_path):
    with FrameStore.create(tmp_path / "ds", META) as store:
        for i in range(4):
            store.write_frame(i * 2, fake_frame(seed=i, converged=i != 2))
        arrays = store.arrays()
        assert arrays["numbers"].tolist() == [8, 1, 1]
        assert arrays["fock"].shape == (4, 5, 5) and arrays["energy"].shape == (4,)
        assert arrays["indices"].tolist() == [0, 2, 4, 6]
        assert store.converged_mask().tolist() == [True, True, False, True]
        assert store.arrays([2, 6], keys=["energy"])["energy"].shape == (2,)
        store.write_frame(9, fake_frame(natm=4, seed=9))
        with pytest.raises(DatasetError, match="same atoms"):
            store.arrays()
        info = store.summary()
        assert info["frames"] == 5 and info["unconverged"] == 1 and set(info["formulas"]) == {"H2O", "CH2O"}
        json.dumps(info)


def test_merge_shards(tmp_path):
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    with FrameStore.create(a, META) as s:
        for i in (0, 2, 4):
            s.write_frame(i, fake_frame(seed=i))
    with FrameStore.create(b, META) as s:
        for i in (1, 3, 4):  # 4 duplicated with identical content
            s.write_frame(i, fake_frame(seed=i))
    with merge(tmp_path / "out", [a, b], progress=False) as out:
        assert out.indices() == [0, 1, 2, 3, 4]
        assert_frames_equal(out.read(3), FrameStore.open(b).read(3))
    # rerunning the merge is a no-op
    with merge(tmp_path / "out", [a, b], progress=False) as out:
        assert len(out) == 5

    with FrameStore.create(c, META) as s:
        s.write_frame(2, fake_frame(seed=99))  # conflicts with a's frame 2
    with pytest.raises(DatasetError, match="frame 2 differs"):
        merge(tmp_path / "out2", [a, c], progress=False)
    assert not (tmp_path / "out2").exists()  # nothing written on conflict

    d = tmp_path / "d"
    FrameStore.create(d, make_meta(basis="sto-3g", source="test.xyz", pyscf_version="2.14.0")).close()
    with pytest.raises(DatasetError, match="basis"):
        merge(tmp_path / "out3", [a, d], progress=False)
