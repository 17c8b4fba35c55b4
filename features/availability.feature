Feature: What invoicing feels while billing 2.3 -> 3.0 is applied
  invoicing reads the invoices table on every health check. The vendor's
  migration rewrites that table; at production's scale the rewrite takes
  seconds, and every query behind its lock waits.

  Background:
    Given the environment "../fixtures/billing/compose.yaml"
    And the dataset "billing" is loaded at scale 400000
    And the trust store "../out/pki/old-root.pem"
    And the vendor chain "../out/pki/cross-chain.pem"

  Scenario: The migration as shipped takes invoicing down while it rewrites invoices
    Given the upgrade package "../out/packages/billing-3.0-as-shipped.zip"
    And "invoicing" is probed every 500ms
    Then the package signature is trusted
    When the upgrade package is applied to "billing" as "deploy"
    Then the upgrade fails at step "restart"
    And "invoicing" had an outage during step "migrate"
    And the downtime of "invoicing" is within the promised window

  Scenario: The rehearsed migration keeps invoicing available
    Given the upgrade package "../out/packages/billing-3.0-rehearsed.zip"
    And "invoicing" is probed every 500ms
    Then the package signature is trusted
    When the upgrade package is applied to "billing" as "deploy"
    Then the upgrade succeeds
    And "invoicing" stays available during step "migrate"
    # billing-api's restart is a blip invoicing may see (its health calls
    # billing-api): seconds at most, well inside the promise
    And no outage of "invoicing" lasts longer than 3s
    And the downtime of "invoicing" is within the promised window
    And the query "SELECT count(*) FROM invoices WHERE total_cents = amount_cents" on "db" returns 400000
