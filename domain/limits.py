"""How large an input may be: the one list of the hotline's bounds on what it stores.

Every text a command carries is stored in an event and served on every read, every
number drives a computation or a loop: each has a maximum, named here, so that a client
cannot make the hotline store megabytes or loop forever. The API refuses what exceeds them
with a 422 (a body over ``HOTLINE_MAX_BODY_BYTES`` with a 413, ``api/limits.py``).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

# Text, in characters.
ID_MAX = 100  # an identifier: a department, a problem code, a reference, a contact id
NAME_MAX = 200  # a person's or a thing's name, a title
SHORT_TEXT_MAX = 2_000  # a reason, a comment, a value of a collected field
TEXT_MAX = 10_000  # a description, instructions, a message, a note, a reply
# A whole command's default for any text field that names no limit of its own.
COMMAND_TEXT_MAX = TEXT_MAX

# Headers the hotline stores or echoes (on every event: the actor, the correlation).
HEADER_MAX: dict[str, int] = {
    "x-actor-id": ID_MAX,
    "x-actor-name": NAME_MAX,
    "x-actor-role": ID_MAX,
    "x-actor-roles": 1_000,
    "x-actor-departments": 2_000,
    "x-actor-citizen": ID_MAX,
    "x-correlation-id": 64,  # the read models keep it in 64 characters
    "idempotency-key": NAME_MAX,
    "if-match": 64,
    "x-purpose": 200,
}

# Numbers.
INT_MAX = 2**53 - 1  # a count or an id a client sends: exact in JSON everywhere (and in 64 bits)
POSITION_MAX = 2**63 - 1  # an event position (the stores' BIGINT)
OFFSET_MAX = 1_000_000  # how far a listing may skip
SECONDS_MAX = 366 * 24 * 3600  # a duration in seconds (a retry, a service-level threshold): a year
PRIORITY_MAX = 1_000_000  # a contact's or a queue's priority, either way
COLLECTED_NUMBER_MAX = 1e15  # a number a citizen gives (a household size, an amount)

# Reusable field types for commands.
Id = Annotated[str, Field(max_length=ID_MAX)]
Name = Annotated[str, Field(max_length=NAME_MAX)]
ShortText = Annotated[str, Field(max_length=SHORT_TEXT_MAX)]
Text = Annotated[str, Field(max_length=TEXT_MAX)]
