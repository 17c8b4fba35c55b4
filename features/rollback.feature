Feature: Roll billing 3.0 back to 2.3
  An upgrade that goes wrong in production is rolled back with the
  package's own rollback: steps. They are rehearsed like the upgrade.

  Background:
    Given the environment "../fixtures/billing/compose.yaml"
    And the dataset "billing" is loaded at scale 5000
    And the trust store "../out/pki/old-root.pem"
    And the vendor chain "../out/pki/cross-chain.pem"

  Scenario: The package as shipped fails, and its own rollback fails too
    Given the upgrade package "../out/packages/billing-3.0-as-shipped.zip"
    Then the package signature is trusted
    When the upgrade package is applied to "billing" as "deploy"
    Then the upgrade fails at step "restart"
    When the upgrade is rolled back
    Then the rollback fails at step "restore-binary"
    And step "restore-binary" output contains "the vendor ships no rollback for the binary"

  Scenario: The rehearsed package's rollback returns billing to 2.3 with the data intact
    Given the upgrade package "../out/packages/billing-3.0-rehearsed.zip"
    Then the package signature is trusted
    When the upgrade package is applied to "billing" as "deploy"
    Then the upgrade succeeds
    And service "billing" reports version "3.0"
    When the upgrade is rolled back
    Then the rollback succeeds
    And service "billing" reports version "2.3"
    And service "billing" is healthy
    And service "invoicing" is healthy
    And table "invoices" on "db" has 5000 rows
    And table "customers" on "db" has 500 rows
    And table "feature_flags" on "db" has 6 rows
    And the query "SELECT count(DISTINCT invoice_id) FROM invoice_lines" on "db" returns 5000
    And the query "SELECT count(*) FROM invoices WHERE total_cents = amount_cents" on "db" returns 5000
