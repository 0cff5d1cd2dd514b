"""tm's state tables: the pictures in the docstring are the tables, and the code uses exactly
the events the tables list."""
from __future__ import annotations

import inspect
import re
import textwrap

import pytest

from kamrouter.tm import states, transaction
from kamrouter.tm.states import CLIENT, SERVER, BranchState, TransitionError, TxnState


def docstring_picture(title: str) -> str:
    """The indented block after ``title`` in the states module's docstring."""
    doc = states.__doc__ or ""
    block = doc.split(title, 1)[1].split("::\n\n", 1)[1]
    lines = []
    for line in block.splitlines():
        if not line.startswith("    "):
            break
        lines.append(line)
    return textwrap.dedent("\n".join(lines))


def test_the_pictures_are_the_tables() -> None:
    assert docstring_picture("Server transaction") == states.render(SERVER)
    assert docstring_picture("Client transaction") == states.render(CLIENT)


def test_the_code_uses_exactly_the_events_of_the_tables() -> None:
    source = inspect.getsource(transaction)
    used = set(re.findall(r'_to\("([^"]+)"\)', source))
    used |= set(re.findall(r'_end_after\([^"]*"([^"]+)"\)', source))
    used.add(inspect.signature(transaction.Transaction.terminate).parameters["event"].default)
    assert used == {event for _, event in SERVER} | {event for _, event in CLIENT}


def test_every_state_is_reachable_and_terminated_is_final() -> None:
    for table, start, enum in ((SERVER, TxnState.PROCEEDING, TxnState),
                               (CLIENT, BranchState.CALLING, BranchState)):
        reached, todo = {start}, [start]
        while todo:
            state = todo.pop()
            for (old, _), new in table.items():
                if old is state and new not in reached:
                    reached.add(new)
                    todo.append(new)
        assert reached == set(enum)
        assert not [event for (old, event) in table if old.name == "TERMINATED"]


def test_an_event_the_table_does_not_list_is_an_error() -> None:
    assert SERVER[TxnState.COMPLETED, "ACK"] is TxnState.CONFIRMED
    with pytest.raises(TransitionError, match="'ACK' is not allowed in state ACCEPTED"):
        SERVER[TxnState.ACCEPTED, "ACK"]
