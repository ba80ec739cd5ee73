"""Each flow version compiled once into a shared `transitions` machine (no machine per friend)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from transitions import Machine

from bot.catalogue.graph import flow_edges, states, trigger_name
from bot.catalogue.models import FlowDoc


@dataclass(frozen=True)
class CompiledFlow:
    """A flow version and its machine; conversation rows are the machine's models."""

    flow: FlowDoc
    content_hash: str
    machine: Machine

    def move(self, conversation: object, dest: str) -> None:
        """Fire the trigger to `dest` on the shared machine; MachineError if the move is illegal."""
        event = self.machine.events.get(trigger_name(dest))
        if event is None or not event.trigger(conversation):
            raise IllegalMove(
                f"flow {self.flow.flow}: no move from {getattr(conversation, 'state', '?')} "
                f"to {dest}"
            )


class IllegalMove(RuntimeError):
    """The engine tried a move the flow's graph does not allow (a bug, never user input)."""


def compile_flow(flow: FlowDoc, content_hash: str) -> CompiledFlow:
    machine = Machine(
        model=None,
        states=states(flow),
        initial="start",
        auto_transitions=False,
        ignore_invalid_triggers=False,
        send_event=False,
    )
    for edge in flow_edges(flow):
        if edge.dest in machine.states:
            machine.add_transition(trigger_name(edge.dest), edge.source, edge.dest)
    return CompiledFlow(flow=flow, content_hash=content_hash, machine=machine)


class MachineCache:
    """Compiled flows by (flow, content hash); old versions are loaded on demand."""

    def __init__(self) -> None:
        self._compiled: dict[tuple[str, str], CompiledFlow] = {}
        self._lock = threading.Lock()

    def get(self, name: str, content_hash: str, load: Callable[[], FlowDoc]) -> CompiledFlow:
        key = (name, content_hash)
        compiled = self._compiled.get(key)
        if compiled is None:
            flow = load()
            with self._lock:
                compiled = self._compiled.setdefault(key, compile_flow(flow, content_hash))
        return compiled
