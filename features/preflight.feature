Feature: Preflight reads billing 3.0's hazards before anything runs
  Most of what goes wrong in an upgrade rehearsal can be read off the
  package and the environment first: a script that needs sudo, a unit the
  host does not have, a migration that locks a hot table with no lock
  timeout, a cron job that calls the vendor, a shipped secret, a
  configuration key 3.0 removed (fixtures/billing/deprecations.yaml).

  Background:
    Given the environment "../fixtures/billing/compose.yaml"

  Scenario: Preflight reads the hazards of the package as shipped
    Given the upgrade package "../out/packages/billing-3.0-as-shipped.zip"
    When preflight checks run
    Then preflight reports "sudo" in "upgrade.yaml"
    And preflight reports "unknown-unit" in "upgrade.yaml"
    And preflight reports "lock-no-timeout" in "migrations/001_invoice_totals.sql"
    And preflight reports "scheduled-task" in "cron/billing-report"
    And preflight reports "external-endpoint" in "cron/billing-report"
    And preflight reports "hardcoded-credential" in "config/billing.conf.tmpl"
    And preflight reports "deprecated-config" in "config/billing.conf.tmpl"

  Scenario: Preflight finds no errors in the rehearsed package
    Given the upgrade package "../out/packages/billing-3.0-rehearsed.zip"
    When preflight checks run
    Then preflight reports no errors
