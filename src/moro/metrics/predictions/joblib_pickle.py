"""Re-export of :mod:`moro.data.joblib_pickle` (the data-only reader of ``joblib.dump`` files)."""

from moro.data.joblib_pickle import UnsafePickleError, load_joblib_pickle

__all__ = ["load_joblib_pickle", "UnsafePickleError"]
