Feature: Upgrade billing 2.3 -> 3.0
  Background:
    Given the environment "../fixtures/billing/compose.yaml"
    And the dataset "billing" is loaded at scale 5000
    And the trust store "../out/pki/old-root.pem"
    And the vendor chain "../out/pki/cross-chain.pem"

  Scenario: The package as shipped fails at its restart step
    Given the upgrade package "../out/packages/billing-3.0-as-shipped.zip"
    Then the package signature is trusted
    When the upgrade package is applied to "billing" as "deploy"
    Then the upgrade fails at step "restart"
    And step "restart" output contains "sudo"
    And step "precheck" output contains "billing 2.3 found"
    And service "billing" reports version "2.3"
    When I run "sudo -n systemctl status billing.service" in service "billing" as "deploy"
    Then the command fails

  Scenario: The rehearsed package upgrades billing to 3.0
    Given the upgrade package "../out/packages/billing-3.0-rehearsed.zip"
    Then the package signature is trusted
    When the upgrade package is applied to "billing" as "deploy"
    Then the upgrade succeeds
    And service "billing" reports version "3.0"
    And service "invoicing" is healthy
    And the query "SELECT count(*) FROM invoices WHERE total_cents = amount_cents" on "db" returns 5000
    And the query "SELECT count(*) FROM pg_roles WHERE rolname = 'billing_migrator_tmp'" on "db" returns 0
