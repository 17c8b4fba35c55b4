Feature: A seeded state is made once
  Background:
    Given the environment "../../../fixtures/billing/compose.yaml"
    And the dataset "seedtest" is loaded at scale 20000

  Scenario: The first scenario loads
    Then table "invoices" on "db" has 20000 rows
    And the query "SELECT sum(amount_cents)::bigint FROM invoices" on "db" returns SUM

  Scenario: The second starts from the cached state
    Then table "invoices" on "db" has 20000 rows
    And the query "SELECT sum(amount_cents)::bigint FROM invoices" on "db" returns SUM
