Feature: Scenarios in parallel get their own environments

  Scenario: First
    Given the environment "../world/compose.yaml"
    When I run "test ! -e /tmp/claimed && touch /tmp/claimed && sleep 2" in service "box"
    Then the command succeeds

  Scenario: Second
    Given the environment "../world/compose.yaml"
    When I run "test ! -e /tmp/claimed && touch /tmp/claimed && sleep 2" in service "box"
    Then the command succeeds
