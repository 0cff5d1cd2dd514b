"""``python -m kamcli``."""
from kamcli.main import main

main()
