Feature: A broken rollback is caught by the snapshot

  Scenario: One invoice and one byte of billing.conf are not what they were
    Given the environment "../../../fixtures/billing/compose.yaml"
    And the dataset "billing" is loaded at scale 200
    And a snapshot "before"
    When I run "psql -v ON_ERROR_STOP=1 -d billing -c 'UPDATE invoices SET amount_cents = amount_cents + 1 WHERE id = 17'" in service "db" as "postgres"
    Then the command succeeds
    When I run "sed -i 's/^invoice_batch_size = 500$/invoice_batch_size = 501/' /etc/billing/billing.conf" in service "billing"
    Then the command succeeds
    And no rows are lost in table "invoices"
    And the data matches snapshot "before"
