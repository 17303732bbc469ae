"""Which calls are recorded: a queue's recording policy, as a pure function.

A queue records ``all`` its calls, ``none`` (a confidential line: not even on demand),
a ``sample`` of ``sample_percent`` % of them, or only ``on_demand`` (the agent asks).
The sample is deterministic by contact id (SHA-256 of the id, not a random draw), so
the adapter, a replay and an auditor all agree on which calls were in the sample, and a
re-delivered PBX event does not flip the decision. An agent's demand (``RecordCall``)
records the call in every mode but ``none``; under ``all``, and for a call in the
sample, the call is recorded already and the demand is refused as such
(``Contact.demand_recording``). A voicemail is recorded whatever the policy: the caller
chose to leave a message.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Literal

Mode = Literal["all", "none", "sample", "on_demand"]
MODES: tuple[str, ...] = ("all", "none", "sample", "on_demand")
Reason = Literal["policy", "sample", "agent_demand", "voicemail"]
REASONS: tuple[str, ...] = ("policy", "sample", "agent_demand", "voicemail")
# The prompt played before bridging when a queue says nothing else (an ARI media URI).
DEFAULT_ANNOUNCEMENT = "sound:hotline/call-recorded"
# Resolution of the sample: hundredths of a percent.
_BUCKETS = 10_000


@dataclass(frozen=True)
class QueuePolicy:
    """A queue's recording policy (the state of its ``RecordingPolicy`` aggregate)."""

    mode: Mode = "none"
    sample_percent: float = 0.0
    announcement: str | None = None  # the prompt that tells the caller; None when nothing is recorded


NOT_RECORDED = QueuePolicy()  # a queue without a policy records nothing


def sample_bucket(contact_id: str) -> int:
    """The contact's place in 0..9999, uniform over contact ids."""
    digest = hashlib.sha256(str(contact_id).encode()).digest()
    return int.from_bytes(digest[:8], "big") % _BUCKETS


def in_sample(contact_id: str, percent: float) -> bool:
    return sample_bucket(contact_id) < round(percent * _BUCKETS / 100)


def reason_to_record(policy: QueuePolicy | None, contact_id: str, agent_demand: bool) -> Reason | None:
    """Why this contact is recorded under ``policy`` (None: it is not)."""
    policy = policy or NOT_RECORDED
    if policy.mode == "none":
        return None
    if policy.mode == "all":
        return "policy"
    if agent_demand:
        return "agent_demand"
    if policy.mode == "sample" and in_sample(contact_id, policy.sample_percent):
        return "sample"
    return None


def should_record(policy: QueuePolicy | None, contact_id: str, agent_demand: bool) -> bool:
    """The agreed interface (the ARI adapter asks when it bridges a call to an agent)."""
    return reason_to_record(policy, contact_id, agent_demand) is not None


def allows(policy: QueuePolicy | None, contact_id: str, reason: str) -> bool:
    """Whether a recording started for ``reason`` is one the policy asks for (or permits)."""
    if reason == "voicemail":
        return True
    if reason == "agent_demand":
        return (policy or NOT_RECORDED).mode != "none"
    return reason_to_record(policy, contact_id, agent_demand=False) == reason
