"""Sans-IO transaction layer (RFC 3261 §17) with proxy forking logic (§16.7)."""
from kamrouter.tm.layer import MAGIC_COOKIE, SendFn, TmHooks, TransactionLayer
from kamrouter.tm.params import TmParams
from kamrouter.tm.states import BranchState, CancelState, TxnState
from kamrouter.tm.transaction import Branch, Transaction, reply_priority

__all__ = ["MAGIC_COOKIE", "Branch", "BranchState", "CancelState", "SendFn", "TmHooks",
           "TmParams", "Transaction", "TransactionLayer", "TxnState", "reply_priority"]
