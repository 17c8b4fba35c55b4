Feature: Breaking the billing world on purpose
  A rehearsal is also the place to find out what a failure half-way does,
  and whether a fault stays where it was put.

  Background:
    Given the environment "../fixtures/billing/compose.yaml"
    And the dataset "billing" is loaded at scale 5000

  Scenario: The database dies during the migration: the upgrade stops there, and comes back
    Given the upgrade package "../out/packages/billing-3.0-rehearsed.zip"
    And the trust store "../out/pki/old-root.pem"
    And the vendor chain "../out/pki/cross-chain.pem"
    And "invoicing" is probed every 250ms
    Then the package signature is trusted
    When "db" is killed during step "migrate"
    And the upgrade package is applied to "billing" as "deploy"
    Then the upgrade fails at step "migrate"
    And service "billing" reports version "2.3"
    And "invoicing" had an outage
    When "db" is started
    Then service "invoicing" is healthy
    And table "invoices" on "db" has 5000 rows

  Scenario: A cut between invoicing and the database leaves billing untouched
    Given "invoicing" is probed every 250ms
    And "billing" is probed with HTTP "/health" every 250ms
    And "db" is probed with SQL "SELECT count(*) FROM invoices" every 250ms
    When the network between "invoicing" and "db" is cut for 4s
    Then "invoicing" had an outage
    And no outage of "invoicing" lasts longer than 15s
    And "billing" stays available
    And "db" stays available
    And the error budget of "billing" (SLO 99.9%) is intact
