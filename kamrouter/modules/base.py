"""The module contract.

A module is one package ``kamrouter/modules/<name>/`` exposing a :class:`Module` subclass,
registered under the ``kamrouter.modules`` entry-point group in ``pyproject.toml`` (so a
third-party package adds a module the same way). A module is loaded when its config section
is present, or when ``core.load_modules`` names it; the relay policy's modules
(``kamrouter.core.router.POLICY_MODULES``) always are. It declares:

- ``name`` and ``Config``: its config section (a dataclass; every field has a default). A
  module configured as an array of tables (``[[htable]]``) sets ``config_is_list = True`` and
  receives a list of ``Config``, and may give ``Config`` a static ``validate_all(configs)``
  for problems between the elements (a name defined twice);
- ``api()``: the object scripts use as ``from kamrouter.script import <name>``;
- RPC methods and stats, registered in ``__init__`` through ``router.rpc`` / ``router.stats``;
- ``start(nursery)`` / ``stop()``: background work (probing, sockets) under the router's
  nursery;
- ``requires(config)``: the other modules it uses (the loader loads them too, with their
  default config when they have no section, and starts them first); it reaches them with
  ``router.module(name)`` and uses only their public interface (``api()``);
- ``routing_script``: set by a module that provides a routing mode named after it
  (``[routing] mode = "<name>"`` runs that script instead of the operator's).
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    import trio

    from kamrouter.modules.bus import StateBus
    from kamrouter.core.settings import Settings
    from kamrouter.net import Endpoint
    from kamrouter.net import OwnEndpoints
    from kamrouter.script.message import ScriptMessage
    from kamrouter.sip import Response
    from kamrouter.tm import Transaction
    from kamrouter.rpc.registry import MethodRegistry
    from kamrouter.stats import StatsRegistry
    from kamrouter.timers import Scheduler


class RouterServices(Protocol):
    """What the router offers to modules (implemented by ``kamrouter.core.router.Router``)."""

    stats: StatsRegistry
    rpc: MethodRegistry
    scheduler: Scheduler
    settings: Settings
    #: Where this process listens; a module that listens adds its address (never sent to).
    own_endpoints: OwnEndpoints
    #: Which of several worker processes this is (``[core] workers``); None when it is the
    #: only process.
    worker_index: int | None
    #: Carries in-memory state changes to the other workers; None when this is the only
    #: process (:mod:`kamrouter.modules.bus`).
    bus: StateBus | None

    def clock(self) -> float:
        """Monotonic seconds; the same clock the scheduler uses."""

    def spawn(self, func: Callable[..., Awaitable[Any]], *args: Any) -> None:
        """Run ``func(*args)`` as a task of the router (work that awaits I/O)."""

    async def ask_worker(self, index: int, method: str, params: list[Any]) -> Any:
        """``method(params)`` in worker ``index`` of this router; RpcError if it fails."""

    def emit(self, event: str, **data: Any) -> None:
        """Run the routing script's ``event`` hook for ``event`` (e.g. ``dispatcher:dst-down``)."""

    def send_request(self, method: str, ruri: str, *, from_uri: str, to_uri: str | None = None,
                     dst_uri: str | None = None, socket: str | None = None,
                     headers: tuple[tuple[str, str], ...] = (), timeout: float | None = None,
                     on_reply: Callable[[int, Response | None], None]) -> None:
        """Originate a request through tm; ``on_reply(status, reply)`` is called once."""

    def on_transaction_end(self, callback: Callable[[Transaction], None]) -> None:
        """Call ``callback(txn)`` whenever a transaction is freed."""

    def send_reply(self, msg: ScriptMessage, status: int, reason: str | None = None,
                   headers: tuple[tuple[str, str], ...] = ()) -> bool:
        """Answer a script's request as ``sl.send_reply`` does (stateful if it has a
        transaction); for modules whose functions reply themselves (registrar, auth)."""

    def check_stray_replies(self, check: Callable[[Response, Endpoint], bool]) -> None:
        """Forward a reply without a transaction only if ``check(reply, source)`` is true."""

    def module(self, name: str) -> Module:
        """Another loaded module, by name (raises KeyError when it is not loaded)."""

    def connected(self, dest: Endpoint) -> bool:
        """A connection to ``dest`` (tcp, tls, ws, wss) is open."""


class Module:
    """Base class of every kamrouter module."""

    name: ClassVar[str]
    Config: ClassVar[type | None] = None
    config_is_list: ClassVar[bool] = False
    #: Path of the routing script of the routing mode this module provides, if any.
    routing_script: ClassVar[str | None] = None

    @classmethod
    def requires(cls, config: Any) -> tuple[str, ...]:
        """Names of the modules this one needs with ``config``."""
        return ()

    def __init__(self, router: RouterServices, config: Any) -> None:
        self.router = router
        self.config = config

    def api(self) -> object | None:
        """The script API object, or None when the module offers nothing to scripts."""
        return None

    async def start(self, nursery: trio.Nursery) -> None:
        """Start background work; called once the router's sockets are up."""

    async def stop(self) -> None:
        """Flush state before the router exits (e.g. persist tables)."""


def config_path(router: RouterServices, path: str) -> Path:
    """A file named in a module's config: relative paths are relative to the config file."""
    candidate = Path(path)
    if candidate.is_absolute():
        return candidate
    return Path(getattr(getattr(router, "settings", None), "base_dir", None) or ".") / candidate
