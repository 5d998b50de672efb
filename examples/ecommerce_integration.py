"""An online shop that bills its customers for the AI features they use.

- product search: 0.05 per search (per API request)
- review sentiment analysis: billed by the tokens the model used (per token)
- premium support: 9.99, charged only to customers who ask for the premium tier
  (instant, with a condition)
- a gift-wrap suggestion bundle, billed from inside a ``with`` block
- a monthly AI budget per customer, checked before the expensive work runs

Runs with no server and no key, on the embedded ledger ~/.agentmeter/ledger.db:

    python examples/ecommerce_integration.py
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from agentmeter import (
    AgentMeterClient,
    BudgetExceededError,
    meter_api_request_pay,
    meter_instant_pay,
    meter_token_based_pay,
    track_api_request_pay,
)

logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")

PROJECT = "shop-demo"
client = AgentMeterClient(project_id=PROJECT, agent_id="shop-assistant")

CATALOG = {
    "kettle": ["Steel kettle 1.7 l", "Glass kettle 1.5 l", "Travel kettle 0.5 l"],
    "mug": ["Enamel camping mug", "Double-wall glass mug"],
}


@dataclass
class Sentiment:
    """What our (pretend) model returns, with the tokens it used."""

    label: str
    score: float
    prompt_tokens: int
    completion_tokens: int


def review_tokens(*args, result: Sentiment | None = None, **kwargs) -> tuple[int, int]:
    """tokens_extractor: called as review_tokens(*args, result=result, **kwargs)."""
    assert result is not None
    return result.prompt_tokens, result.completion_tokens


def asks_for_premium(*args, **kwargs) -> bool:
    """condition_func: called with the method's own arguments (self first)."""
    return bool(kwargs.get("premium", False))


class EcommerceService:
    @meter_api_request_pay(client, unit_price="0.05")
    def search_products(self, query: str, user_id: str) -> list[str]:
        """Product search: 0.05 per search."""
        return CATALOG.get(query, [])

    @meter_token_based_pay(
        client,
        input_token_price="0.0001",
        output_token_price="0.0003",
        tokens_extractor=review_tokens,
        enforce_budget=True,
    )
    def analyze_review_sentiment(self, review_text: str, user_id: str) -> Sentiment:
        """AI review analysis: billed by tokens, refused once the budget is spent."""
        words = review_text.split()
        positive = sum(word.strip(".,!").lower() in {"great", "love", "perfect"} for word in words)
        # Pretend model: a fixed prompt of 150 tokens plus 2 per word; 25 out.
        return Sentiment(
            label="positive" if positive else "neutral",
            score=min(1.0, 0.5 + 0.25 * positive),
            prompt_tokens=150 + 2 * len(words),
            completion_tokens=25,
        )

    @meter_instant_pay(
        client, amount="9.99", description="Premium support", condition_func=asks_for_premium
    )
    def get_premium_support(self, issue: str, user_id: str, premium: bool = False) -> str:
        """Support: the premium tier is charged 9.99 at once; the basic tier is free."""
        if premium:
            return f"A specialist will call you about {issue!r} within the hour."
        return f"Our help centre has articles about {issue!r}."

    def gift_wrap_ideas(self, items: list[str], user_id: str) -> list[str]:
        """One suggestion lookup per item, billed as one event when the block ends."""
        with track_api_request_pay(client, PROJECT, "gift-helper", user_id, "0.02") as usage:
            ideas = [f"Wrap the {item.lower()} in recycled kraft paper" for item in items]
            usage["api_calls"] = len(items)
            usage["metadata"]["items"] = len(items)
        return ideas


def main() -> None:
    shop = EcommerceService()
    # Ana: a premium customer. Ben: a free-tier customer with an AI allowance of 0.05.
    client.set_user_meter(threshold_amount="0.05", user_id="ben")

    kettles = shop.search_products("kettle", "ana")
    shop.search_products(query="mug", user_id="ana")
    mood = shop.analyze_review_sentiment("Great kettle, boils fast. Love it!", "ana")
    print(f"ana: found {len(kettles)} kettles; review is {mood.label} ({mood.score})")
    print("ana:", shop.get_premium_support("a leaking lid", "ana", premium=True))
    print("ana:", shop.gift_wrap_ideas(kettles[:2], "ana"))

    # A token cost is known only once the work ran, so Ben's analyses run
    # until his usage reaches the allowance; the next one is refused.
    reviews = [
        "The mug is perfect for camping trips and keeps coffee warm.",
        "Arrived quickly, good packaging.",
        "Handle feels a bit loose but otherwise fine.",
        "Colour is lovely, a great gift.",
    ]
    for review in reviews:
        try:
            mood = shop.analyze_review_sentiment(review, user_id="ben")
            print(f"ben: review is {mood.label}")
        except BudgetExceededError as exc:
            print(
                f"ben: review analysis refused, AI allowance spent "
                f"({exc.current_usage} of {exc.threshold_amount})"
            )
    shop.search_products("mug", user_id="ben")
    print("ben:", shop.get_premium_support("a late delivery", "ben"))  # basic tier: free

    # Deliver what was tracked, then print each customer's bill from the ledger.
    if not client.flush(timeout=10):
        raise SystemExit("some events could not be delivered")
    for customer in ("ana", "ben"):
        print(f"--- bill of {customer}")
        for event in reversed(client.get_events(user_id=customer)):
            what = event.metadata.get("function", event.agent_id).rsplit(".", 1)[-1]
            print(f"  {what:<28} {event.payment_type.value:<16} {event.total_cost:>10}")
        print(f"  {'total':<45} {client.get_user_meter(user_id=customer).current_usage:>10}")


if __name__ == "__main__":
    try:
        main()
    finally:
        client.close()
