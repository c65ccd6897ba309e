"""The operations of docs/api.md (sections 8 to 12) in the OpenAPI document, as data.

Same conventions as :mod:`.openapi_operations` (whose :class:`Operation` these are): a stable
``operationId`` each, one tag, per-status ``code`` lists (the operation's own codes first, then the
gateway's). Every write may carry Idempotency-Key, as every POST and PATCH does.

``AWAITING_LEDGER`` names the operations the gateway routes (forwarded as for every public path)
but the served document leaves out for now: the ledger does not serve them yet (it answers 404
``not_found``, which their documented statuses could not describe), or the schemathesis run
(tests/adversarial/test_schemathesis.py) has no real id yet for their ``transaction_id`` or
``endpoint_id``. Remove a name once both hold; tests/gateway/test_openapi.py and
tests/gateway/test_openapi_client.py check the whole document, these included.
"""

from __future__ import annotations

from services.gateway.openapi_operations import _ACCOUNT_RULES, _AUTH, _READ, _TRANSFER_RULES, _WRITE, Operation, _with
from shared.errors import ErrorCode as E
from shared.ledger_api import MAX_ENTRIES, MIN_ENTRIES

_MOVEMENT = [*_TRANSFER_RULES, *_ACCOUNT_RULES]
_LIST_FILTERS = ["account_id_filter", "transfer_status", "created_from", "created_to", "metadata", "order"]
_PAGE = ["limit", "cursor"]

_TRANSACTION_OPS = [
    Operation(
        "post",
        "/v1/transactions",
        "createTransaction",
        "Transactions",
        f"Create a balanced transaction of {MIN_ENTRIES} to {MAX_ENTRIES} entries (a fee split, a payout ...)",
        {
            201: ("The transaction", "Transaction"),
            200: ("Same id, same request: the transaction as it is now", "Transaction"),
        },
        _with(
            _WRITE,
            {
                404: [E.ACCOUNT_NOT_FOUND],
                409: [E.ID_CONFLICT],
                422: [E.UNBALANCED, E.CURRENCY_MISMATCH, *_MOVEMENT],
            },
        ),
        body="TransactionCreate",
        description="All or nothing: for each currency the debits sum to the credits (else `unbalanced`); each "
        "entry's currency is its account's (`currency_mismatch`, `errors[].index` = the entry); the account "
        "rules (limits with `overdraft_limit`, overflow, frozen, closed, `expected_versions`) are checked on each "
        "account's state after all its entries. `pending: true` reserves every entry until posted, voided or "
        "expired. Replay and `id_conflict` by `id` as for transfers.",
    ),
    Operation(
        "get",
        "/v1/transactions",
        "listTransactions",
        "Transactions",
        "List the tenant's transactions, filtered",
        {200: ("A page of transactions", "TransactionPage")},
        _READ,
        params=[*_LIST_FILTERS, *_PAGE],
        description="Filters combine with AND; `order` defaults to `asc`, the order the ledger applied them.",
    ),
    Operation(
        "get",
        "/v1/transactions/{transaction_id}",
        "getTransaction",
        "Transactions",
        "Get a transaction",
        {200: ("The transaction", "Transaction")},
        _with(_READ, {404: [E.TRANSACTION_NOT_FOUND]}),
        params=["transaction_id"],
    ),
    Operation(
        "post",
        "/v1/transactions/{transaction_id}/post",
        "postPendingTransaction",
        "Transactions",
        "Post a pending transaction (whole amounts only)",
        {200: ("The transaction, now posted", "Transaction")},
        _with(
            _WRITE,
            {404: [E.TRANSACTION_NOT_FOUND], 422: [E.TRANSFER_NOT_PENDING, E.PENDING_EXPIRED, *_TRANSFER_RULES]},
        ),
        params=["transaction_id"],
    ),
    Operation(
        "post",
        "/v1/transactions/{transaction_id}/void",
        "voidPendingTransaction",
        "Transactions",
        "Void a pending transaction",
        {200: ("The transaction, now voided", "Transaction")},
        _with(_WRITE, {404: [E.TRANSACTION_NOT_FOUND], 422: [E.TRANSFER_NOT_PENDING, E.PENDING_EXPIRED]}),
        params=["transaction_id"],
    ),
    Operation(
        "post",
        "/v1/transactions/{transaction_id}/reverse",
        "reverseTransaction",
        "Transactions",
        "Reverse a posted transaction, whole",
        {
            201: ("The reversing transaction", "Transaction"),
            200: ("Same id, same request: the reversing transaction as it is now", "Transaction"),
        },
        _with(
            _WRITE,
            {
                404: [E.TRANSACTION_NOT_FOUND],
                409: [E.ID_CONFLICT],
                422: [E.TRANSFER_NOT_POSTED, E.AMOUNT_EXCEEDS_REVERSIBLE, *_MOVEMENT],
            },
        ),
        body="TransactionReverse",
        params=["transaction_id"],
        description="Creates a posted transaction with every entry's direction swapped and `reverses` set to "
        "the original. Only a posted transaction can be reversed, once (a second time: "
        "`amount_exceeds_reversible`).",
    ),
]

_TRANSFER_OPS = [
    Operation(
        "get",
        "/v1/transfers",
        "listTransfers",
        "Transfers",
        "List the tenant's transfers, filtered",
        {200: ("A page of transfers", "TransferPage")},
        _READ,
        params=[*_LIST_FILTERS, *_PAGE],
        description="Filters combine with AND; `order` defaults to `asc`, the order the ledger applied them.",
    ),
    Operation(
        "post",
        "/v1/transfers/{transfer_id}/reverse",
        "reverseTransfer",
        "Transfers",
        "Reverse a posted transfer (a refund), all that is left or `amount`",
        {
            201: ("The reversing transfer", "Transfer"),
            200: ("Same id, same request: the reversing transfer as it is now", "Transfer"),
        },
        _with(
            _WRITE,
            {
                404: [E.TRANSFER_NOT_FOUND],
                409: [E.ID_CONFLICT],
                422: [E.TRANSFER_NOT_POSTED, E.AMOUNT_EXCEEDS_REVERSIBLE, *_MOVEMENT],
            },
        ),
        body="TransferReverse",
        params=["transfer_id"],
        description="Creates a posted transfer with the accounts swapped and `reverses` set to the original. "
        "The reversals of a transfer never sum above its `posted_amount` (`amount_exceeds_reversible`); only a "
        "posted transfer can be reversed (`transfer_not_posted`). The reversal is an ordinary transfer for "
        "every rule and for replay by its own `id`.",
    ),
]


def _lifecycle(action: str, operation_id: str, summary: str, codes: list[E], description: str) -> Operation:
    return Operation(
        "post",
        f"/v1/accounts/{{account_id}}/{action}",
        operation_id,
        "Accounts",
        summary,
        {200: ("The account", "Account")},
        _with(_WRITE, {404: [E.ACCOUNT_NOT_FOUND], 422: codes}),
        params=["account_id"],
        description=description,
    )


_ACCOUNT_OPS = [
    Operation(
        "patch",
        "/v1/accounts/{account_id}",
        "updateAccount",
        "Accounts",
        "Replace an account's metadata or overdraft limit",
        {200: ("The account", "Account")},
        _with(_WRITE, {404: [E.ACCOUNT_NOT_FOUND], 422: [E.VERSION_MISMATCH, E.ACCOUNT_CLOSED]}),
        body="AccountPatch",
        params=["account_id"],
        description="Replaces what is given. With `expected_versions` (this account only) the change applies "
        "only at that version, else `version_mismatch`; send an Idempotency-Key to retry it safely.",
    ),
    _lifecycle(
        "freeze",
        "freezeAccount",
        "Freeze an account",
        [E.ACCOUNT_CLOSED],
        "A frozen account takes no new transfer or transaction entry (`account_frozen`); pending ones touching "
        "it may still be posted, voided or expire. No body.",
    ),
    _lifecycle("unfreeze", "unfreezeAccount", "Unfreeze an account", [E.ACCOUNT_CLOSED], "No body."),
    _lifecycle(
        "close",
        "closeAccount",
        "Close an account, for good",
        [E.ACCOUNT_NOT_EMPTY, E.ACCOUNT_CLOSED],
        "Only with a zero posted balance and nothing pending (`account_not_empty`). Final: any later movement "
        "is `account_closed`, and so are freeze and unfreeze. No body.",
    ),
    Operation(
        "get",
        "/v1/accounts/{account_id}/entries",
        "listAccountEntries",
        "Accounts",
        "List every change to an account's counters, with running balances",
        {200: ("A page of entries", "EntryPage")},
        _with(_READ, {404: [E.ACCOUNT_NOT_FOUND]}),
        params=["account_id", "entries_from", "entries_to", *_PAGE],
    ),
    Operation(
        "get",
        "/v1/accounts/{account_id}/statement",
        "getAccountStatement",
        "Accounts",
        "Get an account's statement for [from, to)",
        {200: ("The statement", "Statement")},
        _with(_READ, {404: [E.ACCOUNT_NOT_FOUND]}),
        params=["account_id", "statement_from", "statement_to"],
    ),
]

_FEED_OPS = [
    Operation(
        "get",
        "/v1/events",
        "listEvents",
        "Events",
        "Read the tenant's events after a seq, waiting for one if asked",
        {200: ("The events after `after`, in commit order", "EventPage")},
        _READ,
        params=["after", "limit", "wait"],
        description="`seq` is per tenant, from 1, without gaps, in commit order: a reader that has seen `seq = n` "
        "never later finds a smaller one it missed. With `wait`, the call returns as soon as an event is "
        "available, or with empty `data` once `wait` seconds passed. Each gateway process lets a limited "
        "number of calls wait at once (in all and per tenant): one past the limit does not wait, and is "
        "answered with its page at once when that has events, else 429 `rate_limited` with `Retry-After`.",
    ),
    Operation(
        "post",
        "/v1/webhook-endpoints",
        "createWebhookEndpoint",
        "Webhooks",
        "Register a webhook endpoint",
        {201: ("The endpoint, with its signing secret (shown only here)", "WebhookEndpointCreated")},
        _WRITE,
        body="WebhookEndpointCreate",
        description="Every matching event is POSTed to `url` at least once, in seq order, signed as in the "
        "Standard Webhooks specification; a delivery counts on a 2xx within 10 s, else it is retried with "
        "exponential backoff for at least 24 hours, after which the endpoint is `failing`.",
    ),
    Operation(
        "get",
        "/v1/webhook-endpoints",
        "listWebhookEndpoints",
        "Webhooks",
        "List the tenant's webhook endpoints",
        {200: ("A page of endpoints", "WebhookEndpointPage")},
        _READ,
        params=_PAGE,
    ),
    Operation(
        "get",
        "/v1/webhook-endpoints/{endpoint_id}",
        "getWebhookEndpoint",
        "Webhooks",
        "Get a webhook endpoint",
        {200: ("The endpoint", "WebhookEndpoint")},
        _with(_READ, {404: [E.WEBHOOK_ENDPOINT_NOT_FOUND]}),
        params=["endpoint_id"],
    ),
    Operation(
        "delete",
        "/v1/webhook-endpoints/{endpoint_id}",
        "deleteWebhookEndpoint",
        "Webhooks",
        "Delete a webhook endpoint",
        {204: ("Deleted: nothing more is delivered to it", None)},
        _with(_AUTH, {400: [E.INVALID_REQUEST], 404: [E.WEBHOOK_ENDPOINT_NOT_FOUND]}),
        params=["endpoint_id"],
    ),
    Operation(
        "post",
        "/v1/webhook-endpoints/{endpoint_id}/enable",
        "enableWebhookEndpoint",
        "Webhooks",
        "Re-enable a failing webhook endpoint",
        {200: ("The endpoint; deliveries resume from where they stopped", "WebhookEndpoint")},
        _with(_WRITE, {404: [E.WEBHOOK_ENDPOINT_NOT_FOUND]}),
        params=["endpoint_id"],
    ),
    Operation(
        "get",
        "/v1/webhook-endpoints/{endpoint_id}/deliveries",
        "listWebhookDeliveries",
        "Webhooks",
        "List an endpoint's delivery attempts",
        {200: ("A page of attempts", "WebhookDeliveryPage")},
        _with(_READ, {404: [E.WEBHOOK_ENDPOINT_NOT_FOUND]}),
        params=["endpoint_id", "order", *_PAGE],
    ),
]

OPERATIONS_PART2 = [*_TRANSACTION_OPS, *_TRANSFER_OPS, *_ACCOUNT_OPS, *_FEED_OPS]

AWAITING_LEDGER: frozenset[str] = frozenset()
"""Routed, left out of the served document for now (see the module docstring)."""

TAGS_PART2 = [
    {"name": "Transactions", "description": "Multi-leg transactions: fee splits and payouts in one record."},
    {"name": "Events", "description": "The tenant's gap-free, hash-chained feed of committed changes."},
    {"name": "Webhooks", "description": "Signed deliveries of the event feed to your endpoints."},
]
