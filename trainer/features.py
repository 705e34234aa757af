"""Import paths that saved models pickled before the feature code was split by concept.

A model folder's ``mlforecast/ts.pkl`` references its target transform and the ratio function
of its yearly feature by module path, and models trained before the split say
``trainer.features.SeasonalScaler`` and ``trainer.features.safe_ratio``. These aliases keep
those folders loadable; nothing in the trainer or the server imports from here. (Models saved
since then reference :mod:`trainer.scaling` and :mod:`trainer.feature_spec`.)
"""

from __future__ import annotations

__all__ = ["SeasonalScaler", "safe_ratio"]

from trainer.feature_spec import safe_ratio
from trainer.scaling import SeasonalScaler
