"""Wiring: config → transports + tm + script + modules + rpc; process lifecycle."""
