select
    id as payment_id,
    order_id,
    lower(payment_method) as payment_method,
    amount_cents / 100.0 as amount
from {{ source('raw', 'payments') }}
