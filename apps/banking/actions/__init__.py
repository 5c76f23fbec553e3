"""Every write of apps.banking, one module per concept (docs/architecture/recordings-banking.md).

transactions (start, cancel and the state machine's helpers), identity (evidence frames and
verification), principal (entrusted agency), documents (corporate renewal), disclosure (spoken
risk disclosure), confirmation (the customer confirms and signs), submission (the core call and
its result), receipts (sealed receipts and their downloads).
"""
