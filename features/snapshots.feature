Feature: Snapshots: what an upgrade leaves behind, and what a rollback gives back
  A snapshot records the data of every database (each table's rows by
  primary key, its schema, the sequences) and the declared configuration
  of every service (files, units, crontabs, roles, feature flags, webhook
  registrations). An upgrade and its rollback are judged against it.

  Background:
    Given the environment "../fixtures/billing/compose.yaml"
    And the dataset "billing" is loaded at scale 5000
    And the trust store "../out/pki/old-root.pem"
    And the vendor chain "../out/pki/cross-chain.pem"

  Scenario: The package as shipped leaves its migration role and its webhook behind
    Given a snapshot "before the upgrade"
    And the upgrade package "../out/packages/billing-3.0-as-shipped.zip"
    And the package signature is trusted
    When the upgrade package is applied to "billing" as "deploy"
    Then the upgrade fails at step "restart"
    And database roles created during the upgrade remain: "billing_migrator_tmp"
    And webhook registrations created during the upgrade remain: "http://billing:8080/hooks/payments"
    And the configuration differs from snapshot "before the upgrade" at "/opt/billing/bin/billing-api"
    And the data differs from snapshot "before the upgrade" in table "invoices"
    But no rows are lost in table "invoices"
    # The vendor's own rollback does not roll back; the snapshot does.
    When the upgrade is rolled back
    Then the rollback fails at step "restore-binary"
    And step "restore-binary" output contains "the vendor ships no rollback for the binary"
    When the environment is rolled back to snapshot "before the upgrade"
    Then the data matches snapshot "before the upgrade"
    And the configuration matches snapshot "before the upgrade"
    And no database roles created during the upgrade remain
    And no webhook registrations created during the upgrade remain
    And service "billing" reports version "2.3"

  Scenario: The rehearsed package cleans up; its rollback loses no row, and the snapshot's restore gives back the rest
    Given a snapshot "before the upgrade"
    And the upgrade package "../out/packages/billing-3.0-rehearsed.zip"
    And the package signature is trusted
    When the upgrade package is applied to "billing" as "deploy"
    Then the upgrade succeeds
    And no database roles created during the upgrade remain
    And no webhook registrations created during the upgrade remain
    When the upgrade is rolled back
    Then the rollback succeeds
    And service "billing" reports version "2.3"
    And no rows are lost in table "invoices"
    And no rows are lost in table "invoice_lines"
    And no rows are lost in table "customers"
    And feature flag "dunning_v2" is "true"
    And feature flag "webhooks_v2" is "false"
    # The rollback keeps total_cents (2.3 never reads it; dropping it would
    # lose what 3.0 wrote), so the data is not the snapshot's; and the 2.3
    # binary it puts back is the copy deploy made, owned by deploy where the
    # original was root's. Only the snapshot's restore gives those back.
    But the data differs from snapshot "before the upgrade" in table "invoices"
    And the configuration differs from snapshot "before the upgrade" at "/opt/billing/bin/billing-api"
    When the environment is rolled back to snapshot "before the upgrade"
    Then the data matches snapshot "before the upgrade"
    And the configuration matches snapshot "before the upgrade"
    And service "billing" reports version "2.3"
    And service "invoicing" is healthy

  Scenario: A broken rollback is caught: the diffs name the changed invoice and the changed byte
    Given a snapshot "before"
    When I run "psql -v ON_ERROR_STOP=1 -d billing -c 'UPDATE invoices SET amount_cents = amount_cents + 1 WHERE id = 17'" in service "db" as "postgres"
    Then the command succeeds
    When I run "sed -i 's/^invoice_batch_size = 500$/invoice_batch_size = 501/' /etc/billing/billing.conf" in service "billing"
    Then the command succeeds
    Then the data differs from snapshot "before" in table "invoices"
    And the configuration differs from snapshot "before" at "/etc/billing/billing.conf"
    But no rows are lost in table "invoices"
