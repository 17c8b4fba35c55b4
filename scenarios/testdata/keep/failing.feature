Feature: A failure worth looking at

  Scenario: The check fails
    Given the environment "../world/compose.yaml"
    When I run "echo boom >&2; exit 1" in service "box"
    Then the command succeeds
