"""Amazon's official Python SDK (PyPI `amzn-sp-api`, module `spapi`) against the simulator:
a grantless client (client_credentials, scope sellingpartnerapi::notifications) creates and
reads a destination, a seller client (refresh token) creates and reads an ORDER_CHANGE
subscription with an event filter, and the grantless client reads and deletes it by id.

Usage: python3 sdk_notifications.py BASE_URL QUEUE_ARN   (run by tests/notifications.rs)
Prints one JSON line with what the SDK parsed; exits non-zero on any failure.
"""

import json
import sys

from spapi import SPAPIClient, SPAPIConfig
from spapi.api.notifications_v1.notifications_api import NotificationsApi
from spapi.models.notifications_v1 import (
    CreateDestinationRequest,
    CreateSubscriptionRequest,
    DestinationResourceSpecification,
    EventFilter,
    ProcessingDirective,
    SqsResource,
)

base, arn = sys.argv[1], sys.argv[2]
token_url = base + "/auth/o2/token"
client_id, secret = "amzn1.application-oa2-client.python-sdk", "sdk-secret"

grantless = NotificationsApi(
    SPAPIClient(
        SPAPIConfig(client_id, secret, scope="sellingpartnerapi::notifications", region="FE"),
        oauth_endpoint=token_url,
        endpoint=base,
    ).api_client
)
seller = NotificationsApi(
    SPAPIClient(
        SPAPIConfig(client_id, secret, refresh_token="Atzr|python-sdk", region="FE"),
        oauth_endpoint=token_url,
        endpoint=base,
    ).api_client
)

dest = grantless.create_destination(
    CreateDestinationRequest(
        name="python-sdk",
        resource_specification=DestinationResourceSpecification(sqs=SqsResource(arn=arn)),
    )
).payload
assert dest.resource.sqs.arn == arn, dest
listed = grantless.get_destinations().payload
assert [d.destination_id for d in listed] == [dest.destination_id], listed

sub = seller.create_subscription(
    "ORDER_CHANGE",
    CreateSubscriptionRequest(
        payload_version="1.0",
        destination_id=dest.destination_id,
        processing_directive=ProcessingDirective(
            event_filter=EventFilter(
                event_filter_type="ORDER_CHANGE",
                order_change_types=["OrderStatusChange", "BuyerRequestedChange"],
                marketplace_ids=["A1VC38T7YXB528"],
            )
        ),
    ),
).payload
assert sub.destination_id == dest.destination_id, sub
assert sub.processing_directive.event_filter.order_change_types == [
    "OrderStatusChange",
    "BuyerRequestedChange",
], sub
again = seller.get_subscription("ORDER_CHANGE").payload
assert again.subscription_id == sub.subscription_id, again
by_id = grantless.get_subscription_by_id(sub.subscription_id, "ORDER_CHANGE").payload
assert by_id.subscription_id == sub.subscription_id, by_id

print(
    json.dumps(
        {
            "destinationId": dest.destination_id,
            "subscriptionId": sub.subscription_id,
            "eventFilterType": sub.processing_directive.event_filter.event_filter_type,
        }
    )
)
