Feature: Undefined and passing steps, which need no environment

  Scenario: Undefined one
    Given the package may be applied unsigned
    When a step nobody defined runs

  Scenario: Undefined two
    Given a step nobody defined runs

  Scenario: Undefined three
    Given the upgrade entry script "three.sh"
    Then a step nobody defined runs

  Scenario: Undefined four
    Given a step nobody defined runs

  Scenario: Undefined five
    Given the package may be applied unsigned
    And a step nobody defined runs

  Scenario: Undefined six
    Given a step nobody defined runs

  Scenario: Undefined seven
    Given a step nobody defined runs

  Scenario: Undefined eight
    Given a step nobody defined runs

  Scenario: Passing one
    Given the package may be applied unsigned

  Scenario: Passing two
    Given the package may be applied unsigned

  Scenario: Passing three
    Given the package may be applied unsigned

  Scenario: Passing four
    Given the package may be applied unsigned

  Scenario: Passing five
    Given the package may be applied unsigned

  Scenario: Passing six
    Given the package may be applied unsigned
