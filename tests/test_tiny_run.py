import h5py

from models.config import Config


def test_tiny_run_writes_the_run_folder(tiny_run):
    for name in ("config.json", "history.csv", "best.weights.h5", "last.weights.h5", "checkpoint.keras"):
        assert (tiny_run / name).is_file(), name
    assert Config.load(tiny_run / "config.json").val_size == 50
    for name in ("best.weights.h5", "last.weights.h5"):
        with h5py.File(tiny_run / name) as f:
            assert "layers" in f
