"""The nathelper script API: ``nat_uac_test``, ``fix_nated_register``, ``fix_nated_contact``,
``set_contact_alias`` and ``handle_ruri_alias``.

Flags of ``nat_uac_test`` (Kamailio's; true when any selected test finds NAT):
1 Contact host is a private address (RFC 1918 / RFC 6598), 2 top Via host is not the source
address, 4 top Via host is private, 16 source port is not the Via port, 32 source address is
private, 128 Contact port is not the source port.

In-dialog routing to a NATed phone (Kamailio's alias): ``set_contact_alias`` appends
``;alias=IP~PORT~PROTO`` (the source address, PROTO as Kamailio numbers transports) to the
Contact URI of a dialog-forming request or reply, so the remote target the other side uses
names the NAT's public address; ``handle_ruri_alias`` on an in-dialog request sends it there
(the destination URI) and removes the parameter from the Request-URI.
"""
from __future__ import annotations

import ipaddress

from kamrouter.modules.registrar.api import RECEIVED_VAR
from kamrouter.script.message import ScriptMessage
from kamrouter.sip import SipParseError, SipUri, parse_uri

_SHARED = ipaddress.ip_network("100.64.0.0/10")  # RFC 6598 carrier-grade NAT
#: Kamailio's transport numbers in an alias parameter.
PROTO_NUMBERS = {"udp": 1, "tcp": 2, "tls": 3, "sctp": 4, "ws": 5, "wss": 6}
_PROTO_NAMES = {str(number): name for name, number in PROTO_NUMBERS.items()}
#: handle_ruri_alias when the Request-URI has no alias (Kamailio's 2; -1 is an error).
NO_ALIAS = 2


def is_private(host: str) -> bool:
    """RFC 1918, RFC 6598 or IPv6 unique-local; names are not private."""
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    if address.version == 4:
        return any(address in net for net in _RFC1918) or address in _SHARED
    return address in _ULA


_RFC1918 = [ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")]
_ULA = ipaddress.ip_network("fc00::/7")


def _first_contact(msg: ScriptMessage) -> SipUri | None:
    try:
        contacts = msg.sip.contacts
    except SipParseError:
        return None
    if contacts == "*" or not contacts:
        return None
    uri = contacts[0].uri
    return uri if isinstance(uri, SipUri) else None


class NathelperApi:
    def nat_uac_test(self, msg: ScriptMessage, flags: int) -> bool:
        via = msg.sip.via
        source = msg.source
        contact = _first_contact(msg) if flags & (1 | 128) else None
        via_port = via.port or 5060
        checks = (
            (1, lambda: contact is not None and is_private(contact.host)),
            (2, lambda: via.host.strip("[]") != source.host),
            (4, lambda: is_private(via.host)),
            (16, lambda: via_port != source.port),
            (32, lambda: is_private(source.host)),
            (128, lambda: contact is not None and (contact.port or 5060) != source.port),
        )
        return any(flags & bit and test() for bit, test in checks)

    def fix_nated_register(self, msg: ScriptMessage) -> bool:
        """Have registrar.save() store the source address as the binding's received
        address: calls to the AoR are then sent to the NAT's public side."""
        source = msg.source
        host = f"[{source.host}]" if ":" in source.host else source.host
        msg.vars[RECEIVED_VAR] = f"sip:{host}:{source.port};transport={source.proto}"
        return True

    def fix_nated_contact(self, msg: ScriptMessage) -> bool:
        """Rewrite the host:port of the (first) Contact URI with the source address."""
        line = msg.get_header("Contact")
        contact = _first_contact(msg)
        if line is None or contact is None:
            return False
        source = msg.source
        host = f"[{source.host}]" if ":" in source.host else source.host
        old = str(contact)
        fixed = old.replace(f"{contact.host}:{contact.port}" if contact.port else contact.host,
                            f"{host}:{source.port}", 1)
        msg.sip.set_header("Contact", line.replace(old, fixed, 1))
        return True

    def set_contact_alias(self, msg: ScriptMessage) -> bool:
        """Append ``;alias=IP~PORT~PROTO`` of the source address to the first Contact URI
        (once: a Contact that has an alias keeps it)."""
        line = msg.get_header("Contact")
        contact = _first_contact(msg)
        if line is None or contact is None:
            return False
        if "alias" in contact.params:
            return True
        source = msg.source
        host = f"[{source.host}]" if ":" in source.host else source.host
        aliased = str(contact.with_params(
            alias=f"{host}~{source.port}~{PROTO_NUMBERS.get(source.proto, 1)}"))
        old = str(contact)
        if f"<{old}>" in line:
            fixed = line.replace(f"<{old}>", f"<{aliased}>", 1)
        else:  # a bare URI: brackets keep the new URI parameter off the header's params
            fixed = line.replace(old, f"<{aliased}>", 1)
        msg.sip.set_header("Contact", fixed)
        return True

    def handle_ruri_alias(self, msg: ScriptMessage) -> int:
        """Send the request to the Request-URI's alias address (the destination URI) and
        remove the alias: 1 done, 2 no alias, -1 an alias that does not parse."""
        try:
            uri = parse_uri(msg.ruri)
        except SipParseError:
            return -1
        if not isinstance(uri, SipUri) or "alias" not in uri.params:
            return NO_ALIAS
        host, _, rest = (uri.params["alias"] or "").partition("~")
        port, _, proto = rest.partition("~")
        name = _PROTO_NAMES.get(proto)
        if not host or not port.isdigit() or not 0 < int(port) < 65536 or name is None:
            return -1
        try:
            ipaddress.ip_address(host.strip("[]"))
        except ValueError:  # an alias names an address this router saw, never a name
            return -1
        transport = "" if name == "udp" else f";transport={name}"
        msg.dst_uri = f"sip:{host}:{port}{transport}"
        msg.ruri = str(uri.without_params("alias"))
        return 1
