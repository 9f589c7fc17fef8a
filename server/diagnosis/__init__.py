"""The diagnosis engine: rules over a run's series, evaluated incrementally as batches arrive.

``Diagnoser.observe`` is called by ingest for every stored batch; ``Engine`` holds the
incremental logic; each rule in ``rules/`` is a pure function of the run's windows.
"""

from .base import Facts, Finding, Rule
from .engine import Engine
from .labels import EVIDENCE_LABELS, evidence_labels
from .rules import BY_ID, RULES
from .service import Diagnoser
from .state import RunState
from .webhook import Webhook

__all__ = [
    "BY_ID",
    "EVIDENCE_LABELS",
    "RULES",
    "Diagnoser",
    "Engine",
    "Facts",
    "Finding",
    "Rule",
    "RunState",
    "Webhook",
    "evidence_labels",
]
