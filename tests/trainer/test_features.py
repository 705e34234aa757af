"""Models saved before the split pickled ``trainer.features`` paths; those must keep loading."""

import pickle

from trainer.feature_spec import safe_ratio
from trainer.scaling import SeasonalScaler


def test_pickled_paths_of_older_models_still_resolve():
    # What an older mlforecast/ts.pkl holds for these objects: a GLOBAL module + name reference.
    assert pickle.loads(b"ctrainer.features\nSeasonalScaler\n.") is SeasonalScaler
    assert pickle.loads(b"ctrainer.features\nsafe_ratio\n.") is safe_ratio
