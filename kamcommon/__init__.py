"""What kamrouter and kamcli both need and neither owns (kamcli imports nothing of kamrouter):
file formats both sides read and write, and htable's match expressions."""
