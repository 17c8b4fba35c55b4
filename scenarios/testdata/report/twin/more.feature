Feature: A feature named like another, in another directory

  Scenario: The package may go unsigned
    Given the package may be applied unsigned
