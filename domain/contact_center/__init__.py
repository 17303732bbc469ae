"""The contact center: contacts (calls, chats, emails, web sessions, callbacks), agents,
queues and the automatic call distribution (ACD) that decides who handles what.

* :mod:`.queues`, :mod:`.agents`, :mod:`.contacts`: the aggregates. The Contact and the
  Agent each refuse a second assignment, so a race between two routers (or a router and
  an agent grabbing work) ends with one winner and nothing written for the loser.
* :mod:`.rules`: queue rules (skills, relaxation, ageing, opening hours): pure code.
* :mod:`.routing`: the in-memory matching view the router process keeps: pure code fed
  by event envelopes, answering "who next" in O(log n).
* :mod:`.commands` and :mod:`.handlers`: the commands and their handlers, the same
  shape as every context (:mod:`domain.handling`).
"""
