"""Selection algorithms: which target of a set takes a call, and the failover order.

| alg | first target |
|-----|--------------|
| 0 1 2 3 5 7 | Kamailio hash of Call-ID / From / To / R-URI / auth user / ``hash_key`` (5 without credentials: round robin) |
| 4   | round robin |
| 6   | random |
| 8   | serial: highest priority first |
| 9   | ``weight`` as relative shares, smooth weighted round robin over all targets (Kamailio: percent slots of a 100-slot table, the rest to the last target); none weighted: equal shares |
| 10  | call load: fewest active calls under ``maxload`` (INVITE only; other methods: first target) |
| 11  | ``rweight`` among usable targets only (equal shares when none has one) |
| 12  | parallel: the first target, all others become branches (done by the caller) |
| 13  | latency: round robin among the best adjusted priority ``priority - est_ms / priority`` |
| other | first target |

When the target an algorithm lands on is unusable, Kamailio walks forward to the next
usable one (so a dead target's whole share lands on its neighbour, kamailio/kamailio#2361).
With ``dead_target_share = "spread"`` the hash, random and weight algorithms instead
re-pick among the usable targets (hash modulo their number, random, weighted), so the share
spreads evenly and a given key still always lands on the same live target.

Indexes are positions in the set's Kamailio order (see ``model.DestinationSet``), so a hash
slot names the same target as in Kamailio (tests/dispatcher/test_kamailio_parity.py).

Failover order (Kamailio's): the chosen target, the ones after it to the end of the set,
then the ones before it, skipping unusable ones (and for alg 10 full ones), the default
target (``use_default``) last; at most ``limit`` of them. Alg 13 orders by adjusted priority.
"""
from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kamrouter.modules.dispatcher.hashing import ds_hash
from kamrouter.modules.dispatcher.keys import HashKeyTemplate, auth_username, uri_keys
from kamrouter.modules.dispatcher.model import Destination, DestinationSet

HASH_CALLID, HASH_FROM, HASH_TO, HASH_RURI = 0, 1, 2, 3
ROUND_ROBIN, HASH_AUTH, RANDOM, HASH_KEY = 4, 5, 6, 7
SERIAL, WEIGHT, CALL_LOAD, RELATIVE_WEIGHT, PARALLEL, LATENCY = 8, 9, 10, 11, 12, 13
KNOWN = frozenset(range(14))


@dataclass(frozen=True)
class SelectOptions:
    use_default: bool = False
    spread_dead_share: bool = False
    hash_user_only: bool = False
    hash_key: HashKeyTemplate | None = None


def _hash(alg: int, msg: Any, options: SelectOptions) -> int | None:
    if alg == HASH_CALLID:
        return ds_hash((msg.call_id or "").strip())
    if alg == HASH_FROM:
        return ds_hash(*uri_keys(msg.from_uri, options.hash_user_only))
    if alg == HASH_TO:
        return ds_hash(*uri_keys(msg.to_uri, options.hash_user_only))
    if alg == HASH_RURI:
        return ds_hash(*uri_keys(msg.ruri, options.hash_user_only))
    if alg == HASH_AUTH:
        user = auth_username(msg)
        return None if user is None else ds_hash(user)
    if options.hash_key is None:
        raise ValueError("algorithm 7 needs dispatcher.hash_key (e.g. \"{from_user}@{call_id}\")")
    return ds_hash(options.hash_key.expand(msg))


def _adjusted_priority(dest: Destination) -> int:
    return dest.priority - int(dest.health.latency.estimate) // max(dest.priority, 1)


def _is_full(dest: Destination) -> bool:
    maxload = dest.attrs.maxload
    return maxload > 0 and dest.health.load >= maxload


def select_targets(dset: DestinationSet, alg: int, msg: Any, options: SelectOptions,
                   rng: random.Random, limit: int | None = None) -> list[Destination]:
    """The failover list of one selection (first = chosen); empty when nothing is usable.

    ``alg`` must already be the effective one (see :func:`effective_alg`).
    """
    targets = dset.targets
    n = len(targets)
    if n == 0:
        return []
    span = n - 1 if options.use_default and n > 1 else n
    usable = [d.health.usable for d in targets]
    chosen: int | None = None
    start = 0
    respread: Callable[[list[int]], int] | None = None

    if alg in (HASH_CALLID, HASH_FROM, HASH_TO, HASH_RURI, HASH_AUTH, HASH_KEY):
        h = _hash(alg, msg, options)
        if h is None:
            alg = ROUND_ROBIN
        else:
            start = h % span
            respread = lambda live: live[h % len(live)]  # noqa: E731
    if alg == ROUND_ROBIN:
        start = dset.rr_next % span
    elif alg == RANDOM:
        start = rng.randrange(span)
        respread = rng.choice
    elif alg == WEIGHT:
        pool = [i for i in range(span) if usable[i]] if options.spread_dead_share else range(span)
        shares = [(i, targets[i].attrs.weight) for i in pool]
        if not any(w > 0 for _, w in shares):
            shares = [(i, 1) for i, _ in shares]
        start = dset.weighted.pick(shares) or 0
    elif alg == CALL_LOAD:
        room = [i for i in range(span) if usable[i] and not _is_full(targets[i])]
        if room:
            chosen = min(room, key=lambda i: targets[i].health.load)
        elif options.use_default and n > 1 and usable[n - 1] and not _is_full(targets[n - 1]):
            chosen = n - 1
        else:
            return []
    elif alg == RELATIVE_WEIGHT:
        live = [i for i in range(span) if usable[i]]
        if live:
            shares = [(i, targets[i].attrs.rweight) for i in live]
            if not any(w > 0 for _, w in shares):
                shares = [(i, 1) for i in live]
            chosen = dset.relative.pick(shares)
    elif alg == LATENCY:
        return _latency_order(dset, usable, span, options, limit)

    if chosen is None:
        if usable[start]:
            chosen = start
        else:
            live = [i for i in range(span) if usable[i]]
            if live and respread is not None and options.spread_dead_share:
                chosen = respread(live)
            elif live:
                chosen = next(i for i in (*range(start + 1, span), *range(start)) if usable[i])
            elif options.use_default and n > 1 and usable[n - 1]:
                chosen = n - 1
            else:
                return []
    if alg == ROUND_ROBIN:
        dset.rr_next = chosen + 1

    order = [targets[chosen]]
    skip_full = alg == CALL_LOAD
    for i in (*range(chosen + 1, span), *range(min(chosen, span))):
        if usable[i] and not (skip_full and _is_full(targets[i])):
            order.append(targets[i])
    if options.use_default and n > 1 and chosen != n - 1 and usable[n - 1]:
        order.append(targets[n - 1])
    return order[:limit] if limit else order


def _latency_order(dset: DestinationSet, usable: list[bool], span: int,
                   options: SelectOptions, limit: int | None) -> list[Destination]:
    targets = dset.targets
    live = [i for i in range(span) if usable[i]]
    if not live:
        n = len(targets)
        if options.use_default and n > 1 and usable[n - 1]:
            return [targets[n - 1]]
        return []
    adjusted = {i: _adjusted_priority(targets[i]) for i in live}
    best = max(adjusted.values())
    group = [i for i in live if adjusted[i] == best]
    chosen = group[dset.rr_next % len(group)]
    dset.rr_next += 1
    rest = sorted((i for i in live if i != chosen), key=lambda i: -adjusted[i])
    order = [targets[chosen], *(targets[i] for i in rest)]
    n = len(targets)
    if options.use_default and n > 1 and usable[n - 1]:
        order.append(targets[n - 1])
    return order[:limit] if limit else order


def effective_alg(alg: int, method: str) -> int:
    """Call load only applies to INVITEs; other requests go to the first target."""
    if alg == CALL_LOAD and method != "INVITE":
        return SERIAL
    return alg
