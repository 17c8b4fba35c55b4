Feature: The bundled world is a faithful copy of production
  Before anyone rehearses an upgrade on it, the staging copy must look like
  production: same services, same OS and init, same accounts and rights,
  production-shaped data.

  Background:
    Given the environment "../fixtures/billing/compose.yaml"
    And the dataset "billing" is loaded at scale 20000

  Scenario: Every service comes up healthy with the data at scale
    Then service "db" is healthy
    And service "billing" is healthy
    And service "invoicing" is healthy
    And service "payments" is healthy
    And table "invoices" on "db" has 20000 rows
    And table "customers" on "db" has 2000 rows
    And table "feature_flags" on "db" has 6 rows
    And the query "SELECT count(*) > 20000 FROM invoice_lines" on "db" returns true
    And the query "SELECT count(*) FROM invoices WHERE customer_id NOT IN (SELECT id FROM customers)" on "db" returns 0

  Scenario: The billing host runs systemd and the renamed unit, and deploy has no sudo
    When I run "systemctl is-system-running" in service "billing"
    Then the command succeeds
    And the output contains "running"
    When I run "systemctl is-active billing-api.service" in service "billing"
    Then the command succeeds
    When I run "systemctl status billing.service" in service "billing"
    Then the command fails
    And the output contains "billing.service could not be found"
    When I run "sudo -n true" in service "billing" as "deploy"
    Then the command fails
    And the output contains "a password is required"
    When I run "/opt/billing/bin/billing-api -version" in service "billing"
    Then the output contains "2.3"
