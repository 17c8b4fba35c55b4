Feature: Broken on purpose

  Scenario: A line that is not Gherkin
    Given the environment "../world/compose.yaml"
  this line is not a step
    Then the command succeeds
