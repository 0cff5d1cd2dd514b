"""Dispatcher: load balancing and failover over destination sets, with OPTIONS probing.

Layout (each module one job):
``flags`` state bits and letters · ``attrs`` / ``listfile`` / ``uri`` parsing ·
``health`` the per-target state machine · ``latency`` probe RTT statistics ·
``model`` targets, sets and reload merging · ``hashing`` / ``keys`` Kamailio's hash and
what it hashes · ``weighted`` / ``algorithms`` selection · ``calls`` call load ·
``core`` the state and its operations · ``probing`` OPTIONS rounds · ``api`` the script
functions · ``rpc`` ``dispatcher.*`` methods · ``module`` wiring to the router.
"""
from kamrouter.modules.dispatcher.module import DispatcherModule

__all__ = ["DispatcherModule"]
