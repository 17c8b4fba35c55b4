Feature: More steps that need no environment

  Scenario: The package may go unsigned
    Given the package may be applied unsigned

  Scenario: Two entry scripts, the last wins
    Given the upgrade entry script "first.sh"
    And the upgrade entry script "second.sh"

  Scenario Outline: An outline row fails without an environment
    Given the upgrade entry script "<script>"
    When I run "<cmd>" in service "box"

    Examples:
      | script | cmd  |
      | a.sh   | true |

  Scenario: The last scenario of the file
    Given the upgrade entry script "last.sh"
