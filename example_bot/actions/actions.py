"""Custom actions for the GPU shop example bot.

Run them with `rasa run actions` (port 5055). Everything here is
deterministic and makes no network calls, so tests can check the replies.
"""

import re
from typing import Any, Dict, List, Optional, Text

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

# The shop has no database: an order's status follows from its number.
ORDER_STATUSES = [
    "is on its way",  # order number divisible by 3, e.g. 42
    "is being packed",
    "has been delivered",
]

NAME_PREFIXES = re.compile(
    r"^\s*(?:my name is|the name is|name is|it's under|it is under|"
    r"under|it's|it is|i am|i'm)\s+",
    re.IGNORECASE,
)


def order_status_text(order_id: Text, customer_name: Optional[Text]) -> Text:
    """The reply for an order, e.g. 'Order 42 for Alice is on its way.'"""
    status = ORDER_STATUSES[int(order_id) % len(ORDER_STATUSES)]
    owner = f" for {customer_name}" if customer_name else ""
    return f"Order {order_id}{owner} {status}."


class ActionCheckOrderStatus(Action):
    """Looks the order up and tells the user where it is."""

    def name(self) -> Text:
        return "action_check_order_status"

    def run(
        self,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: Dict[Text, Any],
    ) -> List[Dict[Text, Any]]:
        match = re.search(r"\d+", str(tracker.get_slot("order_id") or ""))
        customer_name = tracker.get_slot("customer_name")
        if not match:
            dispatcher.utter_message(text="I need an order number to check an order.")
            return []
        order_id = str(int(match.group()))
        dispatcher.utter_message(text=order_status_text(order_id, customer_name))
        # Forget the order number so that the next check asks for it again.
        return [SlotSet("order_id", None)]


class ValidateOrderStatusForm(FormValidationAction):
    """Cleans up what the user typed while the order status form runs."""

    def name(self) -> Text:
        return "validate_order_status_form"

    def validate_customer_name(
        self,
        slot_value: Any,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
    ) -> Dict[Text, Any]:
        name = NAME_PREFIXES.sub("", str(slot_value or "")).strip(" .!?")
        if not name:
            return {"customer_name": None}
        return {"customer_name": " ".join(part.capitalize() for part in name.split())}

    def validate_order_id(
        self,
        slot_value: Any,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
    ) -> Dict[Text, Any]:
        match = re.search(r"\d+", str(slot_value or ""))
        if not match:
            dispatcher.utter_message(
                text="Order numbers are digits only, for example 42. Please try again."
            )
            return {"order_id": None}
        return {"order_id": str(int(match.group()))}
