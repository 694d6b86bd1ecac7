"""The bus: the only code in Gather that touches the broker.

Guarantees, and where each comes from:
- Nothing lost on the way out (outbox.py, relay.py): a message is written in the transaction of the
  change it announces, and deleted from the outbox only after the broker confirmed it.
- Nothing done twice on the way in (inbox.py): a message's effects and its inbox row commit together,
  and the consumer acks only after that commit.
- Nothing blocks a queue (consumer.py): an invalid message, or one from a source that may not send its
  type, goes to `<queue>.dlq` at once; a failing handler is retried, then dead-lettered.

Modules, in the order a message meets them: outbox (emit), relay (Relay), topology (the exchange, the
queues, who may send what), consumer (Consumer), inbox (Message, handle); transport (connections);
deadletters (what the operator's toolkit, gather_shared.admin, reads and moves).
Services import what they need from here; the modules' own constants are imported from the module.
"""

from gather_shared.bus.consumer import Consumer
from gather_shared.bus.inbox import Handler, Message, handle, handle_batch, received
from gather_shared.bus.outbox import emit
from gather_shared.bus.relay import Relay
from gather_shared.bus.transport import check, connect

__all__ = ["Consumer", "Handler", "Message", "Relay", "check", "connect", "emit", "handle", "handle_batch", "received"]
