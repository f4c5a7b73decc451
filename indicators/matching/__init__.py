"""Pure-Python STIX 2.1 pattern matching for MDX accounts: parse, evaluate, plan, compare sketches.

``parse_pattern`` is the hand-written parser (fastparse.py); parser.py walks the stix2-patterns
ANTLR tree and is kept as the reference the fast parser is tested against.
"""

from .evaluator import CompiledPattern, compile_pattern
from .fastparse import parse_pattern_fast as parse_pattern
from .observations import Observation, account_observations, observations_as_bundles
from .parser import PatternError
from .plan import MatchPlan, ObservationPlan, ip_to_range
from .records import (
    AccountRecord,
    ApiKeyRecord,
    ClientRecord,
    IdentifierRecord,
    IpRecord,
    PaymentRecord,
    PromptSignatureRecord,
    TimingRecord,
)
from .similarity import jensen_shannon_distance, minhash_jaccard

__all__ = [
    "AccountRecord",
    "ApiKeyRecord",
    "ClientRecord",
    "CompiledPattern",
    "IdentifierRecord",
    "IpRecord",
    "MatchPlan",
    "Observation",
    "ObservationPlan",
    "PatternError",
    "PaymentRecord",
    "PromptSignatureRecord",
    "TimingRecord",
    "account_observations",
    "compile_pattern",
    "ip_to_range",
    "jensen_shannon_distance",
    "minhash_jaccard",
    "observations_as_bundles",
    "parse_pattern",
]
