"""Every DoWhy name the worker uses that DoWhy does not export, behind one door.

``dowhy.gcm`` exports the queries (``fit``, ``draw_samples``, ``arrow_strength``, ...);
the worker also reaches past them: it fits nodes itself (so it books the mechanism the
way ``gcm.fit`` does), validates the graph before its own samplers draw (as DoWhy's
samplers do) and prunes model selection (so it scores DoWhy's own candidate lists).
Those names are private or internal to DoWhy and may move in any release: they are all
imported here and nowhere else, and tests/worker/test_dowhy_private.py checks each one,
so a DoWhy upgrade that moves one breaks one file, loudly, instead of a fit deep inside
a request.
"""

from __future__ import annotations

from dowhy.gcm.causal_models import (
    PARENTS_DURING_FIT,
    validate_causal_dag,
    validate_causal_model_assignment,
)
from dowhy.gcm.fitting_sampling import fit_causal_model_of_target

__all__ = [
    "PARENTS_DURING_FIT",
    "fit_causal_model_of_target",
    "validate_causal_dag",
    "validate_causal_model_assignment",
]
