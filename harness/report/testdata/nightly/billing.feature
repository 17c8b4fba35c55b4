Feature: A nightly with a failure, for the browser test of the HTML report
  The browser test (harness/report/browser_test.go) runs this file against
  the bundled billing world and opens the report it leaves behind. The first
  scenario fails on purpose, at an assertion after the upgrade ran under a
  fault, so the report has a failure to show; the second passes.

  Background:
    Given the environment "../../../../fixtures/billing/compose.yaml"
    And the dataset "billing" is loaded at scale 5000

  Scenario: The upgrade survives a frozen invoicing, but a row count is wrong
    Given the upgrade package "../../../../out/packages/billing-3.0-rehearsed.zip"
    And the trust store "../../../../out/pki/old-root.pem"
    And the vendor chain "../../../../out/pki/cross-chain.pem"
    And "invoicing" is probed every 250ms
    Then the package signature is trusted
    When "invoicing" is paused for 2s during step "migrate"
    And the upgrade package is applied to "billing" as "deploy"
    Then the upgrade succeeds
    And "invoicing" had an outage
    And table "invoices" on "db" has 4999 rows

  Scenario: The seeded dataset has every invoice
    Then table "invoices" on "db" has 5000 rows
