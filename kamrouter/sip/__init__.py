"""Sans-IO SIP message library (no sockets, no trio)."""
