Feature: Scenarios that fail on purpose

  Scenario: An undefined step
    Given the environment "../world/compose.yaml"
    When I juggle the containers

  Scenario: A compose file that does not exist
    Given the environment "no-such/compose.yaml"

  Scenario: A dataset that does not exist
    Given the environment "../world/compose.yaml"
    And the dataset "no-such-dataset" is loaded at scale 10

  @smoke
  Scenario: A scenario after the broken ones still runs
    Given the environment "../world/compose.yaml"
    When I run "true" in service "box"
    Then the command succeeds
