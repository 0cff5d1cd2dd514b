"""``python -m kamrouter`` runs the router CLI."""
from kamrouter.core.main import main

main()
