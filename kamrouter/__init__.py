"""kamrouter: a SIP signalling router on trio, operated over JSON-RPC.

Layers (arrows point downwards only): ``sip`` (sans-IO messages) and ``tm`` (sans-IO
transactions) know nothing of sockets; ``transport`` owns trio sockets; ``script`` loads the
operator's routing script; ``modules/<name>`` each own one capability; ``rpc`` is the control
plane; ``core`` wires them together.
"""

__version__ = "0.1.0"
NAME = "kamrouter"
