Feature: One pass and one failure in the billing world

  Scenario: The database answers
    Given the environment "../../../fixtures/billing/compose.yaml"
    When I run "echo ready" in service "db"
    Then the command succeeds

  @nightly
  Scenario: A check that fails on purpose
    Given the environment "../../../fixtures/billing/compose.yaml"
    When I run "echo 'the check failed' >&2; exit 3" in service "billing"
    Then the command succeeds
    And the output contains "never printed"
