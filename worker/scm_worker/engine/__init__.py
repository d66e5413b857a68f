"""The model work: fit, store, sample and answer questions, through DoWhy's public API.

Where a fast path exists (``scm_worker.fast``), the engine asks the gate whether it is
on and otherwise runs DoWhy's and scikit-learn's own public path.
"""
