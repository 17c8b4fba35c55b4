Feature: Steps that need no environment

  Scenario: An entry script is named
    Given the upgrade entry script "install.sh"

  @fails
  Scenario: A command without an environment
    Given the upgrade entry script "install.sh"
    When I run "true" in service "box"
    Then the command succeeds

  Scenario Outline: Entry scripts by row
    Given the upgrade entry script "<script>"
    And the package may be applied unsigned

    Examples:
      | script   |
      | one.sh   |
      | two.sh   |
      | three.sh |
