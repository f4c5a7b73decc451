"""Pure-Python STIX 2.1 pattern matching for MDX accounts: parse, evaluate, plan, compare sketches."""

from .evaluator import CompiledPattern, compile_pattern
from .observations import Observation, account_observations, observations_as_bundles
from .parser import PatternError, parse_pattern
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
