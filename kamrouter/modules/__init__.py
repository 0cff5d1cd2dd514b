"""Router modules, one package each; see :mod:`kamrouter.modules.base` for the contract."""
